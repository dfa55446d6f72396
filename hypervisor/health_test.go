package hypervisor

import (
	"strings"
	"testing"

	"libvirt.org/go/libvirt"
)

func TestCondition(t *testing.T) {
	for _, tc := range []struct {
		s      State
		reason int
		qmp    string
		want   Condition
	}{
		{StateRunning, int(libvirt.DOMAIN_RUNNING_BOOTED), "", ConditionRunning},
		{StateRunning, int(libvirt.DOMAIN_RUNNING_BOOTED), "running", ConditionRunning},
		{StateShutoff, int(libvirt.DOMAIN_SHUTOFF_SHUTDOWN), "", ConditionStopped},
		{StateShutoff, int(libvirt.DOMAIN_SHUTOFF_MIGRATED), "", ConditionStopped},
		{StateShutoff, int(libvirt.DOMAIN_SHUTOFF_CRASHED), "", ConditionCrashed},
		{StateShutoff, int(libvirt.DOMAIN_SHUTOFF_FAILED), "", ConditionCrashed},
		{StatePaused, int(libvirt.DOMAIN_PAUSED_USER), "paused", ConditionPaused},
		{StatePaused, int(libvirt.DOMAIN_PAUSED_MIGRATION), "finish-migrate", ConditionPaused},
		{StatePaused, int(libvirt.DOMAIN_PAUSED_IOERROR), "io-error", ConditionIOError},
		{StatePaused, int(libvirt.DOMAIN_PAUSED_IOERROR), "", ConditionIOError},
		{StatePaused, int(libvirt.DOMAIN_PAUSED_CRASHED), "guest-panicked", ConditionPanicked},
		{StateCrashed, int(libvirt.DOMAIN_CRASHED_PANICKED), "", ConditionPanicked},
		{StateCrashed, int(libvirt.DOMAIN_CRASHED_UNKNOWN), "", ConditionCrashed},
		{StatePMSuspended, 0, "suspended", ConditionPaused},
		// QEMU knows better than a libvirt that missed an event.
		{StateRunning, 0, "io-error", ConditionIOError},
		{StateRunning, 0, "guest-panicked", ConditionPanicked},
		{StateRunning, 0, "internal-error", ConditionCrashed},
		{StateRunning, 0, "prelaunch", ConditionRunning},
		{StateNoState, 0, "", ConditionUnknown},
	} {
		if got := condition(tc.s, tc.reason, tc.qmp); got != tc.want {
			t.Errorf("condition(%v, %s, %q) = %v, want %v", tc.s, ReasonName(tc.s, tc.reason), tc.qmp, got, tc.want)
		}
	}
}

func TestParseQueryStatus(t *testing.T) {
	for _, tc := range []struct {
		reply, want, wantErr string
	}{
		{`{"return":{"status":"io-error","singlestep":false,"running":false},"id":"libvirt-42"}`, "io-error", ""},
		{`{"return":{"status":"running","running":true}}`, "running", ""},
		{`{"error":{"class":"CommandNotFound","desc":"The command query-status has not been found"}}`, "", "CommandNotFound"},
		{`{"return":{}}`, "", "has no status"},
		{`garbage`, "", "bad reply"},
	} {
		got, err := parseQueryStatus(tc.reply)
		if got != tc.want || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("parseQueryStatus(%s) = %q, %v; want %q, error containing %q", tc.reply, got, err, tc.want, tc.wantErr)
		}
	}
}

// test:/// has no QMP and no guest agent: Health falls back to libvirt's
// view and says why, and PingAgent says the driver cannot do it. The real
// QMP and agent paths are covered by the integration tests.
func TestHealthOnTestDriver(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm2")
	ctx := testCtx(t)
	for _, tc := range []struct {
		name  string
		state State
		want  Condition
	}{
		{"temp1", StateRunning, ConditionRunning},
		{"crash1", StateCrashed, ConditionCrashed},
		{"sleep1", StatePMSuspended, ConditionPaused},
	} {
		h, err := c.Health(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if h.Domain != tc.name || h.State != tc.state || h.Condition != tc.want || h.QMPStatus != "" {
			t.Errorf("Health(%s) = %+v, want state %v condition %v", tc.name, h, tc.state, tc.want)
		}
		wantErrIs(t, h.QMPError, ErrUnsupported)
	}

	k := dialHost(t, "kvm1")
	h, err := k.Health(ctx, "db1")
	if err != nil {
		t.Fatal(err)
	}
	if h.Condition != ConditionStopped || h.QMPError != nil {
		t.Errorf("Health(db1) = %+v: a stopped domain is stopped, without asking QEMU", h)
	}
	_, err = k.Health(ctx, "nope")
	wantErrIs(t, err, ErrNotFound)
}

func TestPingAgentOnTestDriver(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)
	err := c.PingAgent(ctx, "web1")
	wantErrIs(t, err, ErrUnsupported)
	err = c.PingAgent(ctx, "nope")
	wantErrIs(t, err, ErrNotFound)
}

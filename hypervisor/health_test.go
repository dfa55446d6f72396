package hypervisor

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

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

// Health is libvirt's view alone: it never asks QEMU, so it works on
// test:/// (which has no QMP) and a stuck QEMU cannot hold it up.
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
		if h.Domain != tc.name || h.State != tc.state || h.Condition != tc.want {
			t.Errorf("Health(%s) = %+v, want state %v condition %v", tc.name, h, tc.state, tc.want)
		}
	}

	k := dialHost(t, "kvm1")
	for name, want := range map[string]Condition{"db1": ConditionStopped, "batch1": ConditionPaused} {
		h, err := k.Health(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if h.Condition != want {
			t.Errorf("Health(%s) = %+v, want condition %v", name, h, want)
		}
	}
	_, err := k.Health(ctx, "nope")
	wantErrIs(t, err, ErrNotFound)
}

// test:/// answers virDomainGetTime for a running domain as if a guest
// agent were there (a fixed time), has no agent response timeout to set, and
// refuses a domain that is not running: enough for every branch but the
// agent's own failures, which need a real QEMU (integration tests).
func TestPingAgentOnTestDriver(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)
	if err := c.PingAgent(ctx, "web1"); err != nil {
		t.Errorf("PingAgent(running web1) = %v, want the test driver's agent to answer", err)
	}
	err := c.PingAgent(ctx, "db1")
	wantErrIs(t, err, ErrNotRunning)
	err = c.PingAgent(ctx, "batch1") // paused: on, but its agent cannot answer
	wantErrIs(t, err, ErrAgentUnavailable)
	err = c.PingAgent(ctx, "nope")
	wantErrIs(t, err, ErrNotFound)

	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.PingAgent(done, "web1"); !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Errorf("PingAgent with a cancelled context = %v, want context.Canceled and not ErrTimeout", err)
	}
}

// An agent that answers with an error is up: only libvirt's own failures
// (no agent, no answer) are failures of the ping.
func TestAgentAnswered(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{libvirt.Error{Code: libvirt.ERR_AGENT_COMMAND_FAILED, Message: "guest agent command failed: Command guest-get-time has been disabled"}, true},
		{libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "internal error: unable to execute QEMU agent command 'guest-get-time': Command guest-get-time has been disabled"}, true},
		{libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "internal error: Missing agent reply object"}, false},
		{libvirt.Error{Code: libvirt.ERR_AGENT_UNRESPONSIVE, Message: "Guest agent is not responding: QEMU guest agent is not connected"}, false},
		{libvirt.Error{Code: libvirt.ERR_ARGUMENT_UNSUPPORTED, Message: "argument unsupported: QEMU guest agent is not configured"}, false},
		{errors.New("unable to execute QEMU agent command"), false},
	} {
		if got := agentAnswered(tc.err); got != tc.want {
			t.Errorf("agentAnswered(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A libvirt call that does not return costs its goroutine, not the caller:
// the caller gets ErrTimeout at the bound, or the context's own error.
func TestWaitDetachedGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		hung := func() error { <-release; return nil }

		start := time.Now()
		err := waitDetached(t.Context(), 7*time.Second, "guest-get-time", hung)
		var g *gaveUp
		if !errors.As(err, &g) || g.class() != ErrTimeout || time.Since(start) != 7*time.Second {
			t.Errorf("waitDetached = %v after %v, want a timeout after 7s", err, time.Since(start))
		}

		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		err = waitDetached(ctx, time.Hour, "qmp", hung)
		if !errors.As(err, &g) || g.class() != ErrTimeout || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("waitDetached past the deadline = %v, want a timeout wrapping context.DeadlineExceeded", err)
		}

		ctx, cancel = context.WithCancel(t.Context())
		cancel()
		err = waitDetached(ctx, time.Hour, "qmp", hung)
		if !errors.As(err, &g) || g.class() != nil || !errors.Is(err, context.Canceled) {
			t.Errorf("waitDetached cancelled = %v, want context.Canceled without a class", err)
		}

		want := errors.New("no such domain")
		if err := waitDetached(t.Context(), time.Hour, "qmp", func() error { return want }); err != want {
			t.Errorf("waitDetached = %v, want the call's own error %v", err, want)
		}
	})
}

package maintenance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A stop of wingmand alone never moves a guest, whatever the policy; the
// policy applies when the host goes down; keep needs a hardware watchdog.
func TestPlanStop(t *testing.T) {
	const hw, sw = true, false
	const resume = 2500 * time.Millisecond
	for _, tc := range []struct {
		policy   ShutdownPolicy
		hostDown bool
		hw       bool
		watchdog time.Duration // W; 3s when 0
		want     StopPlan      // Reason and Notice checked by the fields below
		reason   string        // in Reason
		notice   []string      // in Notice; none: Notice is empty
	}{
		// Only the service stops: the guests stay, whatever the policy.
		{PolicyMigrate, false, hw, 0, StopPlan{Guests: KeepGuests, Window: resume, KeepWatchdogArmed: true}, "only wingmand stops",
			[]string{"wingmand stopping, guests stay; restart within 2.5s or host kvm1 is declared dead and its guests restarted elsewhere", "hardware watchdog, left armed, resets it 3s after"}},
		{PolicyMigrate, false, sw, 0, StopPlan{Guests: KeepGuests, Window: resume, Warn: true}, "shutdown.policy applies when the host goes down",
			[]string{"restart within 2.5s or host kvm1 is declared dead", "no hardware watchdog", "past D (7.5s) they also run elsewhere", "cannot be told from a frozen host", "wingman maintenance enter kvm1"}},
		{PolicyFailover, false, sw, 0, StopPlan{Guests: KeepGuests, Window: resume, Warn: true}, "guests stay", []string{"restart within 2.5s"}},
		{PolicyFreeze, false, hw, 0, StopPlan{Guests: KeepGuests, Window: resume, KeepWatchdogArmed: true}, "guests stay", []string{"restart within 2.5s"}},
		{PolicyKeep, false, sw, 0, StopPlan{Guests: KeepGuests, Window: resume, Warn: true}, "guests stay", []string{"restart within 2.5s"}},
		// A hardware watchdog shorter than the resume window bounds the restart.
		{PolicyMigrate, false, hw, time.Second, StopPlan{Guests: KeepGuests, KeepWatchdogArmed: true, Window: time.Second}, "guests stay", []string{"restart within 1s", "resets it 1s after"}},
		// The host goes down: the policy applies, and the host leaves once its guests are handled.
		{PolicyMigrate, true, hw, 0, StopPlan{Guests: MigrateGuests, Leave: true}, "host going down, shutdown policy migrate", nil},
		{PolicyMigrate, true, sw, 0, StopPlan{Guests: MigrateGuests, Leave: true}, "live-migrated away", nil},
		{PolicyFailover, true, sw, 0, StopPlan{Guests: ReleaseGuests, Leave: true}, "shutdown policy failover", nil},
		{PolicyFreeze, true, sw, 0, StopPlan{Guests: FreezeGuests, Leave: true}, "stopped until this host is back", nil},
		{PolicyKeep, true, hw, 0, StopPlan{Guests: KeepGuests, KeepWatchdogArmed: true}, "restarted elsewhere once it is declared dead (D = 7.5s)", nil},
		{PolicyKeep, true, sw, 0, StopPlan{Guests: ReleaseGuests, Leave: true}, "needs a hardware watchdog", nil},
		{"", true, sw, 0, StopPlan{Guests: MigrateGuests, Leave: true}, "shutdown policy migrate", nil},
	} {
		w := tc.watchdog
		if w == 0 {
			w = 3 * time.Second
		}
		in := StopInput{Policy: tc.policy, HostDown: tc.hostDown, HardwareWatchdog: tc.hw, Host: "kvm1",
			Resume: resume, Watchdog: w, Dead: 7500 * time.Millisecond}
		got := PlanStop(in)
		name := string(tc.policy) + map[bool]string{true: " host down", false: " service stop"}[tc.hostDown] + map[bool]string{true: " hw", false: " sw"}[tc.hw]
		if got.Guests != tc.want.Guests || got.Leave != tc.want.Leave || got.KeepWatchdogArmed != tc.want.KeepWatchdogArmed ||
			got.Warn != tc.want.Warn || got.Window != tc.want.Window {
			t.Errorf("%s: plan %+v, want %+v", name, got, tc.want)
		}
		if !strings.Contains(got.Reason, tc.reason) {
			t.Errorf("%s: reason %q lacks %q", name, got.Reason, tc.reason)
		}
		if len(tc.notice) == 0 && got.Notice != "" {
			t.Errorf("%s: notice %q, want none", name, got.Notice)
		}
		for _, s := range tc.notice {
			if !strings.Contains(got.Notice, s) {
				t.Errorf("%s: notice %q lacks %q", name, got.Notice, s)
			}
		}
	}
}

func TestParseShutdownPolicy(t *testing.T) {
	for _, s := range []string{"migrate", "failover", "freeze", "keep"} {
		if p, err := ParseShutdownPolicy(s); err != nil || string(p) != s {
			t.Errorf("%s: %q, %v", s, p, err)
		}
	}
	if _, err := ParseShutdownPolicy("evacuate"); err == nil || err.Error() != `"evacuate": use migrate, failover, freeze or keep` {
		t.Errorf("evacuate: %v", err)
	}
}

// serviceManager answers HostGoingDown as told and counts the questions.
type serviceManager struct {
	down  bool
	err   error
	asked int
}

func (m *serviceManager) HostGoingDown(context.Context) (bool, string, error) {
	m.asked++
	return m.down, "systemd has a start job for reboot.target", m.err
}

func TestStopCause(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), HostShutdownFile)
	for _, tc := range []struct {
		name     string
		file     bool
		sm       serviceManager
		wantDown bool
		why      string
	}{
		{"systemd says the host reboots", false, serviceManager{down: true}, true, "reboot.target"},
		{"systemd says only the service stops", false, serviceManager{}, false, ""},
		{"no systemd: only the service stops", false, serviceManager{err: errors.New("dial unix /run/systemd/private: no such file or directory")}, false,
			"taken as a stop of wingmand alone: the service manager cannot tell (dial unix /run/systemd/private: no such file or directory)"},
		{"the host-shutdown file wins", true, serviceManager{err: errors.New("no systemd")}, true, file + " says the host is going down"},
	} {
		if tc.file {
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		down, why := StopCause(ctx, file, &tc.sm)
		if down != tc.wantDown || !strings.Contains(why, tc.why) {
			t.Errorf("%s: down %v (%s), want %v (%s)", tc.name, down, why, tc.wantDown, tc.why)
		}
		if tc.file && tc.sm.asked != 0 {
			t.Errorf("%s: systemd asked although the file says it", tc.name)
		}
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Errorf("%s: %s left behind: %v", tc.name, file, err)
		}
	}
}

// ApplyStop asks the VM manager for the plan's action, and for nothing
// when the guests stay.
func TestApplyStop(t *testing.T) {
	ctx := context.Background()
	h, vms, _, _ := newHost(t, nil)
	if err := h.ApplyStop(ctx, StopPlan{Guests: KeepGuests}); err != nil || vms.evacuations() != 0 || len(vms.released) != 0 {
		t.Fatalf("keep: %v, %d evacuations, released %v", err, vms.evacuations(), vms.released)
	}
	if _, err := os.Stat(h.frozenFile()); !os.IsNotExist(err) {
		t.Errorf("keep froze: %v", err)
	}
	if err := h.ApplyStop(ctx, StopPlan{Guests: MigrateGuests}); err != nil || vms.evacuations() != 1 {
		t.Errorf("migrate: %v, %d evacuations", err, vms.evacuations())
	}
	if err := h.ApplyStop(ctx, StopPlan{Guests: ReleaseGuests, Reason: "host going down"}); err != nil || len(vms.released) != 1 || vms.released[0] != "host going down" {
		t.Errorf("release: %v, released %v", err, vms.released)
	}
	if err := h.ApplyStop(ctx, StopPlan{Guests: FreezeGuests}); err != nil {
		t.Errorf("freeze: %v", err)
	}
	if _, err := os.Stat(h.frozenFile()); err != nil {
		t.Errorf("freeze wrote no frozen list: %v", err)
	}
}

package main

import (
	"context"
	"strings"
	"testing"
)

// TestRollingUpdateCommands runs rolling-update against the fake daemon,
// each case on a fresh one, and compares with testdata/cli/NAME.golden.
func TestRollingUpdateCommands(t *testing.T) {
	upgrade := []string{"rolling-update", "--exec", "apt-get -y upgrade"}
	for _, tc := range []struct {
		name  string
		args  []string
		setup func(d *fakeDaemon)
		code  int
	}{
		{"rolling_update_dry_run", append(upgrade, "--hosts", "kvm1,kvm2", "--dry-run"), nil, exitOK},
		{"rolling_update_dead_host", upgrade, nil, exitFailed},
		{"rolling_update_no_room", append(upgrade, "--hosts", "kvm1,kvm2", "--dry-run"), func(d *fakeDaemon) { d.noRoom = "kvm2" }, exitFailed},
		{"rolling_update_in_maintenance", append(upgrade, "--hosts", "kvm2"), func(d *fakeDaemon) { d.evacuate["kvm2"] = 0 }, exitFailed},
		{"rolling_update", append(upgrade, "--hosts", "kvm1,kvm2"), nil, exitOK},
		{"rolling_update_reboot", append(upgrade, "--hosts", "kvm1,kvm2", "--reboot", "--timeout", "1h"), nil, exitOK},
		{"rolling_update_exec_fails", []string{"rolling-update", "--exec", "apt-get install -y nosuch", "--hosts", "kvm1,kvm2", "--reboot", "--all"}, nil, exitFailed},
		// Ctrl-C during kvm2's command: kvm2's step completes, kvm1's never starts.
		{"rolling_update_interrupted", append(upgrade, "--hosts", "kvm1,kvm2"), func(d *fakeDaemon) { d.onExec = d.interrupt }, exitFailed},
		{"rolling_update_exec_denied", append(upgrade, "--hosts", "kvm1,kvm2"), func(d *fakeDaemon) { d.execDenied = "kvm1" }, exitFailed},
		{"rolling_update_exec_not_in_maintenance", append(upgrade, "--hosts", "kvm2"), func(d *fakeDaemon) { d.dropMaint = "kvm2" }, exitFailed},
		{"rolling_update_evacuation_fails", append(upgrade, "--hosts", "kvm1"), func(d *fakeDaemon) { d.evacFails = "kvm1" }, exitFailed},
		{"maintenance_enter_fails", []string{"maintenance", "enter", "kvm1"}, func(d *fakeDaemon) { d.evacFails = "kvm1" }, exitFailed},
		{"rolling_update_no_exec", []string{"rolling-update", "--hosts", "kvm1"}, nil, exitUsage},
		{"rolling_update_exec_too_long", []string{"rolling-update", "--exec", "echo " + strings.Repeat("x", 600)}, nil, exitUsage},
		{"rolling_update_unknown_host", append(upgrade, "--hosts", "kvm1,kvm9"), nil, exitUsage},
		{"rolling_update_twice", append(upgrade, "--hosts", "kvm2,kvm2"), nil, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startFakeDaemon(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d.interrupt = cancel
			if tc.setup != nil {
				tc.setup(d)
			}
			d.runGolden(t, ctx, tc.name, session{args: tc.args}, tc.code)
		})
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/vm/maintenance"
)

func remoteStatus(err error) int {
	var re *api.RemoteError
	if errors.As(err, &re) {
		return re.Status
	}
	return 0
}

// TestExecRunsOnlyOnAnEmptyHostInMaintenance: exec is refused on a host in
// service and on one that still holds a protected VM; on an empty host in
// maintenance it runs there (forwarded over serf), reports the exit code
// and the end of the output, and is killed at its time limit.
func TestExecRunsOnlyOnAnEmptyHostInMaintenance(t *testing.T) {
	a, b := twoDaemons(t)
	ctx := context.Background()
	dir := t.TempDir()

	_, err := a.client.Exec(ctx, "kvm2", api.ExecRequest{Command: "true"})
	if remoteStatus(err) != 409 || !strings.Contains(err.Error(), "kvm2 is not in maintenance") || !strings.Contains(err.Error(), "patching tool") ||
		!strings.Contains(err.Error(), "wingman maintenance enter kvm2") {
		t.Errorf("exec on a host in service: %v", err)
	}
	if _, err := a.client.Exec(ctx, "kvm9", api.ExecRequest{Command: "true"}); !api.IsNotFound(err) {
		t.Errorf("exec on an unknown host: %v", err)
	}
	if _, err := a.client.Exec(ctx, "kvm2", api.ExecRequest{Command: "  "}); remoteStatus(err) != 400 || !strings.Contains(err.Error(), "no command") {
		t.Errorf("exec without a command: %v", err)
	}
	long := "echo " + strings.Repeat("x", maintenance.ExecCommandMax)
	if _, err := a.client.Exec(ctx, "kvm2", api.ExecRequest{Command: long}); remoteStatus(err) != 400 || !strings.Contains(err.Error(), "in one serf query") {
		t.Errorf("exec of a command too long to forward: %v", err)
	}

	// kvm1 holds web1, which the test driver cannot migrate: its
	// evacuation fails and exec stays refused.
	if _, err := a.client.Protect(ctx, "web1", api.ProtectRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.Maintenance(ctx, "kvm1", api.MaintenanceRequest{Enter: true}); err == nil {
		t.Fatal("evacuation of web1 on the test driver succeeded")
	}
	_, err = b.client.Exec(ctx, "kvm1", api.ExecRequest{Command: "true"})
	if remoteStatus(err) != 409 || !strings.Contains(err.Error(), "still holds protected VMs web1") {
		t.Errorf("exec on a host that holds web1: %v", err)
	}

	// Stopped through Wingman, web1 keeps its lease on kvm1 but runs nowhere: kvm1 may be patched.
	if err := b.client.Stop(ctx, "web1"); err != nil {
		t.Fatal(err)
	}
	if res, err := b.client.Exec(ctx, "kvm1", api.ExecRequest{Command: "true"}); err != nil || res.ExitCode != 0 {
		t.Errorf("exec on kvm1 holding only the stopped web1: %+v, %v", res, err)
	}

	// kvm2 holds nothing: in maintenance it runs commands.
	if _, err := a.client.Maintenance(ctx, "kvm2", api.MaintenanceRequest{Enter: true}); err != nil {
		t.Fatalf("maintenance enter kvm2: %v", err)
	}
	marker := filepath.Join(dir, "patched")
	res, err := a.client.Exec(ctx, "kvm2", api.ExecRequest{Command: fmt.Sprintf("echo patching; touch %s; echo oops >&2; exit 3", marker)})
	if err != nil {
		t.Fatalf("exec on kvm2 via kvm1: %v", err)
	}
	if res.Host != "kvm2" || res.ExitCode != 3 || res.TimedOut || res.Output != "patching\noops\n" || res.Truncated {
		t.Errorf("exec result = %+v", res)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the command did not run: %v", err)
	}

	// The longest command accepted still fits one forwarded serf query.
	longest := "echo '" + strings.Repeat("<", (maintenance.ExecCommandMax-9)/6) + "'"
	if b, _ := json.Marshal(longest); len(b) < maintenance.ExecCommandMax-6 {
		t.Fatalf("test command is %d bytes as JSON, want close to %d", len(b), maintenance.ExecCommandMax)
	}
	if res, err := a.client.Exec(ctx, "kvm2", api.ExecRequest{Command: longest}); err != nil || res.ExitCode != 0 {
		t.Errorf("exec of the longest command: %+v, %v", res, err)
	}

	// Long output: the end of it, small enough for one serf response.
	res, err = a.client.Exec(ctx, "kvm2", api.ExecRequest{Command: `i=0; while [ $i -lt 3000 ]; do echo "line <$i> & more"; i=$((i+1)); done`})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(res)
	if res.ExitCode != 0 || !res.Truncated || !strings.HasSuffix(res.Output, "line <2999> & more\n") || len(js) > maintenance.ExecResultMax {
		t.Errorf("long output: %d bytes of JSON, result %+v", len(js), res)
	}

	// The time limit kills the command and its children.
	start := time.Now()
	res, err = b.client.Exec(ctx, "kvm2", api.ExecRequest{Command: "sleep 30 & sleep 30; echo never", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.ExitCode != -1 || strings.Contains(res.Output, "never") || time.Since(start) > 10*time.Second {
		t.Errorf("timed-out exec after %v: %+v", time.Since(start), res)
	}

	// A site may forbid remote execution: see vm/maintenance's TestExecAndRebootMayBeForbidden.

	evs, _ := a.client.Events(ctx, time.Time{}, 0)
	var kinds []string
	for _, e := range evs {
		if e.HostName == "kvm2" && strings.HasPrefix(e.Kind, "exec-") {
			kinds = append(kinds, e.Kind)
		}
	}
	if strings.Join(kinds, " ") != "exec-start exec-done exec-start exec-done exec-start exec-done exec-start exec-done" {
		t.Errorf("kvm2's exec events: %v", kinds)
	}
}

// TestEvacuationPlanIsAWhatIf: any host answers what entering maintenance
// on a host would move where, and nothing changes.
func TestEvacuationPlanIsAWhatIf(t *testing.T) {
	a, b := twoDaemons(t)
	ctx := context.Background()
	if _, err := a.client.Protect(ctx, "web1", api.ProtectRequest{}); err != nil {
		t.Fatal(err)
	}
	p, err := b.client.EvacuationPlan(ctx, "kvm1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Host != "kvm1" || len(p.Moves) != 1 || p.Moves[0] != (api.EvacuationMove{VM: "web1", To: "kvm2"}) || len(p.Unplaced) != 0 {
		t.Errorf("plan for kvm1 = %+v", p)
	}
	if p, err := a.client.EvacuationPlan(ctx, "kvm2"); err != nil || len(p.Moves) != 0 {
		t.Errorf("plan for the empty kvm2 = %+v, %v", p, err)
	}
	if _, err := a.client.EvacuationPlan(ctx, "kvm9"); !api.IsNotFound(err) {
		t.Errorf("plan for an unknown host: %v", err)
	}
	if h, _ := a.client.Host(ctx, "kvm1"); h.Maintenance || h.VMs != 1 {
		t.Errorf("the what-if changed kvm1: %+v", h)
	}
}

// TestRebootThenLeaveMaintenanceByItself: a reboot is refused on a host in
// service; on an empty host in maintenance it answers, runs the reboot
// command, and the host's next wingmand leaves maintenance by itself once
// it is back (new generation). A failing reboot command is an event, and
// the host stays in maintenance.
func TestRebootThenLeaveMaintenanceByItself(t *testing.T) {
	dir := t.TempDir()
	rebooted := filepath.Join(dir, "rebooted")
	a, b := twoDaemons(t, func(c *Config) { c.Maintenance.RebootCommand = "touch " + rebooted + "-" + c.HostName })
	ctx := context.Background()

	_, err := a.client.Reboot(ctx, "kvm2", api.RebootRequest{ExitMaintenance: true})
	if remoteStatus(err) != 409 || !strings.Contains(err.Error(), "kvm2 is not in maintenance") {
		t.Errorf("reboot of a host in service: %v", err)
	}
	if _, err := a.client.Reboot(ctx, "kvm2", api.RebootRequest{Failback: true}); remoteStatus(err) != 400 {
		t.Errorf("failback without exit: %v", err)
	}
	if _, err := a.client.Maintenance(ctx, "kvm2", api.MaintenanceRequest{Enter: true}); err != nil {
		t.Fatal(err)
	}
	// temp1 runs on kvm2 and sleep1 is suspended there, unprotected: a reboot would stop them.
	_, err = a.client.Reboot(ctx, "kvm2", api.RebootRequest{ExitMaintenance: true})
	if remoteStatus(err) != 409 || !strings.Contains(err.Error(), "kvm2 still runs guests sleep1, temp1: a reboot would stop them") ||
		!strings.Contains(err.Error(), "maintenance enter --all kvm2") {
		t.Errorf("reboot with an unprotected guest running: %v", err)
	}
	destroyGuests(t, b.d, "sleep1", "temp1")
	res, err := a.client.Reboot(ctx, "kvm2", api.RebootRequest{ExitMaintenance: true, Failback: true})
	if err != nil {
		t.Fatalf("reboot kvm2 via kvm1: %v", err)
	}
	if res.Host != "kvm2" || res.Generation != b.d.slot.Generation() || !strings.Contains(res.Command, "touch") {
		t.Errorf("reboot result = %+v", res)
	}
	waitFor(t, "the reboot command to run on kvm2", func() bool { _, err := os.Stat(rebooted + "-kvm2"); return err == nil })
	if exit, failback := b.d.maint.RebootRequested(); !exit || !failback {
		t.Fatalf("exit-after-reboot not saved: exit %v failback %v", exit, failback)
	}

	// The "reboot": wingmand stops and starts again with the same state.
	cfg := b.d.cfg
	b.shutdown(t)
	cfg.Serf.Bind = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startDaemon(t, cfg)
	waitFor(t, "kvm2 out of maintenance by itself", func() bool {
		h, err := a.client.Host(ctx, "kvm2")
		return err == nil && !h.Maintenance && h.State == "alive" && h.Generation > res.Generation
	})
	waitEvent(t, a.client, res.At, "kvm2", "reboot-done", "")
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "maintenance")); !os.IsNotExist(err) {
		t.Errorf("maintenance state left behind: %v", err)
	}
	// A reboot command that fails: see vm/maintenance's TestFailedRebootStaysInMaintenance.
}

// waitEvent waits for an event of kind from host, since, whose message
// contains text.
func waitEvent(t *testing.T, c *api.Client, since time.Time, host, kind, text string) {
	t.Helper()
	waitFor(t, "event "+kind+" of "+host, func() bool {
		evs, _ := c.Events(context.Background(), since, 0)
		for _, e := range evs {
			if e.HostName == host && e.Kind == kind && strings.Contains(e.Message, text) {
				return true
			}
		}
		return false
	})
}

func destroyGuests(t *testing.T, d *Daemon, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := d.hv.Destroy(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
}

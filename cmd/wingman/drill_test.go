package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
)

// Canned drill reports of the fake cluster: kvm3 is in maintenance, so
// kvm1 and kvm2 are the targets.
var (
	drillHostsPass = []api.DrillHost{
		{Name: "kvm1", State: "alive", Drilled: true, VMs: 2, Placed: 1, Target: true, Pass: true},
		{Name: "kvm2", State: "alive", Target: true, Checked: 2, Pass: true},
		{Name: "kvm3", State: "maintenance", Pass: true},
	}
	drillPass = api.DrillReport{Pass: true, Lost: []string{"kvm1"}, Duration: 412 * time.Millisecond, Hosts: drillHostsPass,
		VMs: []api.DrillVM{
			{Name: "batch1", UUID: "6f1c2a9e-0000-4000-8000-000000000003", Owner: "kvm1", Skipped: "stopped by the operator",
				Checks: []api.DrillCheck{{Host: "kvm2"}}, Pass: true},
			{Name: "web1", UUID: "6f1c2a9e-0000-4000-8000-000000000001", Owner: "kvm1", LockManager: "lockd", Target: "kvm2",
				Checks: []api.DrillCheck{{Host: "kvm2", Planned: true}}, Pass: true},
		}}
	drillFail = api.DrillReport{Lost: []string{"kvm1", "kvm2", "kvm3"}, Duration: 1900 * time.Millisecond,
		VMs: []api.DrillVM{
			{Name: "db1", UUID: "6f1c2a9e-0000-4000-8000-000000000002", Owner: "kvm2", LockManager: "none", Unplaced: "no capacity (needs 32GiB, 1 vCPUs)",
				Checks: []api.DrillCheck{{Host: "kvm1"}}},
			{Name: "fast1", UUID: "6f1c2a9e-0000-4000-8000-000000000006", Owner: "kvm1", Target: "kvm2",
				Problems: []string{"disk vda has cache='unsafe', which ignores the guest's flushes: writes the guest was told are on disk are lost " +
					"when its host loses power, and a failover restarts the VM from what reached the disk; set cache='none' (or writethrough or directsync) on disk vda"},
				Checks: []api.DrillCheck{{Host: "kvm2", Planned: true}}},
			{Name: "web1", UUID: "6f1c2a9e-0000-4000-8000-000000000001", Owner: "kvm1", Target: "kvm2",
				Checks: []api.DrillCheck{{Host: "kvm2", Planned: true, Problem: "disk vda: /srv/vm/web1.img: no such file or directory"}}},
		},
		Hosts: []api.DrillHost{
			{Name: "kvm1", State: "alive", Drilled: true, VMs: 1, Placed: 1, Target: true, Checked: 1, Pass: true},
			{Name: "kvm2", State: "alive", Drilled: true, VMs: 1, Unplaced: 1, Target: true, Checked: 1, CheckFailures: 1},
			{Name: "kvm3", State: "maintenance", Drilled: true, Pass: true},
		},
		Hops: []api.DrillHop{
			{Guest: "wingman-drill-kvm1", From: "kvm1", To: "kvm2", Duration: 530 * time.Millisecond, Downtime: 14 * time.Millisecond, Pass: true},
			{Guest: "wingman-drill-kvm2", From: "kvm2", To: "kvm1", Error: "migration failed: destination unreachable"},
		}}
)

// startDrillDaemon serves POST /v1/drill the way wingmand does, with the
// canned reports above, and records the requests like the fake daemon.
func startDrillDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	d := &fakeDaemon{socket: filepath.Join(t.TempDir(), "wingman.sock")}
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/drill", func(w http.ResponseWriter, r *http.Request) {
		var req api.DrillRequest
		json.NewDecoder(r.Body).Decode(&req)
		switch {
		case req.Host == "kvm1":
			reply(w, 200, drillPass)
		case req.Host == "":
			reply(w, 200, drillFail)
		default:
			reply(w, 404, api.Error{Error: "no host named \"" + req.Host + "\": hosts are kvm1, kvm2, kvm3"})
		}
	})
	ln, err := net.Listen("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: recordRequests(d, m)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return d
}

func TestDrillCommand(t *testing.T) {
	d := startDrillDaemon(t)
	for _, tc := range []struct {
		name string
		session
		code int
	}{
		{"drill_host", session{args: []string{"drill", "kvm1"}}, exitOK},
		{"drill_all_live_failing", session{args: []string{"drill", "--live"}}, exitFailed},
		{"drill_unknown_host", session{args: []string{"drill", "kvm9"}}, exitFailed},
		{"drill_too_many_args", session{args: []string{"drill", "kvm1", "kvm2"}}, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) { d.runGolden(t, context.Background(), tc.name, tc.session, tc.code) })
	}
}

// TestDrillJSON: --json prints the API's report, and a failed drill still
// exits 1.
func TestDrillJSON(t *testing.T) {
	d := startDrillDaemon(t)
	for _, tc := range []struct {
		args []string
		code int
	}{{[]string{"drill", "--json", "kvm1"}, exitOK}, {[]string{"--json", "drill"}, exitFailed}} {
		code, out, errOut := d.exec(t, context.Background(), session{args: tc.args})
		if code != tc.code {
			t.Errorf("wingman %s: exit %d, want %d; stderr %s", strings.Join(tc.args, " "), code, tc.code, errOut)
		}
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		var rep api.DrillReport
		if err := dec.Decode(&rep); err != nil || dec.More() {
			t.Errorf("wingman %s: output is not one DrillReport: %v\n%s", strings.Join(tc.args, " "), err, out)
		}
	}
}

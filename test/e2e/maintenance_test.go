package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/test/cluster"
)

// restartKinds are the events of a guest being started, restarted or destroyed by Wingman: none
// may appear for a guest that planned work only migrates.
var restartKinds = map[string]bool{
	"started": true, "restarted": true, "destroyed-stale-copy": true, "isolated": true,
	"self-fenced": true, "lease-lost": true, "evacuation-failed": true, "migration-failed": true,
}

// noRestartEvents fails the test for every event in evs that says one of guests was started,
// restarted or destroyed.
func noRestartEvents(t *testing.T, evs []Event, guests []Guest) {
	t.Helper()
	mine := map[string]bool{}
	for _, g := range guests {
		mine[g.Name], mine[g.UUID] = true, true
	}
	for _, ev := range evs {
		if !restartKinds[ev.Kind] {
			continue
		}
		// The daemon's evacuation events name the VM only in their message.
		names := []string{ev.VM, strings.ToLower(ev.VM)}
		if ev.VM == "" {
			names = strings.Fields(ev.Message)
		}
		for _, n := range names {
			if mine[n] {
				t.Errorf("planned work only migrates, but: %s", FormatEvent(ev))
				break
			}
		}
	}
}

// runningDomains lists the domains h's libvirt runs, protected or not.
func runningDomains(ctx context.Context, e *Env, h *cluster.Host) ([]string, error) {
	c, err := e.conn(ctx, h)
	if err != nil {
		return nil, err
	}
	doms, err := c.ListDomains(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range doms {
		if d.State == hypervisor.StateRunning {
			out = append(out, d.Name)
		}
	}
	return out, nil
}

// arrivedByMigration fails the test for each guest whose arrival reason on its host is not
// libvirt's own record that it came by migration.
func arrivedByMigration(t *testing.T, ctx context.Context, e *Env, guests []Guest) {
	t.Helper()
	r, err := e.reasons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range guests {
		for h, why := range r[g.UUID] {
			if why != "migrated" {
				t.Errorf("%s runs on %s with reason %q, want migrated", g.Name, h, why)
			}
		}
	}
}

// TestMaintenance: maintenance enter on a host with 6 running guests empties it by live migration
// only (every guest arrives "migrated", never stops for more than a switch-over, no start event),
// the host ends empty and in maintenance, and exit makes it a target again.
func TestMaintenance(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{}, 6, Policy{Priority: "medium"}, "mt")
	h1, h2 := e.Hosts()[0], e.Hosts()[1]
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	t0 := time.Now()
	if _, err := e.Client(h2).Maintenance(ctx, h1.Name(), MaintenanceRequest{Enter: true}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s empty after %v", h1.Name(), time.Since(t0).Round(time.Millisecond))
	p, err := e.WaitRunningOnce(ctx, 10*time.Second, guests, h1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("placement after the evacuation: %v", p)
	if doms, err := runningDomains(ctx, e, h1); err != nil {
		t.Fatal(err)
	} else if len(doms) > 0 {
		t.Errorf("%s still runs %v after maintenance enter returned", h1.Name(), doms)
	}
	// Each target claims the lease of a guest that arrived at its next step (reconcile rule c).
	var hs Host
	if err := Poll(ctx, 10*time.Second, 100*time.Millisecond, func() (bool, error) {
		var err error
		hs, err = e.Client(h2).Host(ctx, h1.Name())
		return err == nil && hs.VMs == 0 && hs.State == "maintenance", nil
	}); err != nil {
		t.Errorf("%s: state %q owning %d protected VMs, want maintenance owning none: %v", h1.Name(), hs.State, hs.VMs, err)
	}
	t.Logf("%s in maintenance and owning no VM %v after maintenance enter", h1.Name(), time.Since(t0).Round(time.Millisecond))
	arrivedByMigration(t, ctx, e, guests)
	evs := eventsSince(t, ctx, e, h2, t0)
	if moved := countKind(evs, "evacuated", false); moved != len(guests) {
		t.Errorf("%d evacuated events, want %d", moved, len(guests))
	}
	noRestartEvents(t, evs, guests)
	if _, err := e.Client(h2).Maintenance(ctx, h1.Name(), MaintenanceRequest{Enter: false}); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitHealthy(ctx, e.Hosts()...); err != nil {
		t.Fatal(err)
	}
	checkWatch(t, w)
}

// TestMaintenanceSurvivesDaemonRestart: a host in maintenance stays in maintenance when its
// wingmand restarts, cleanly (SIGTERM, as a package upgrade does) or after a crash (SIGKILL),
// and no guest comes back to it.
func TestMaintenanceSurvivesDaemonRestart(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 2, Policy{Priority: "medium"}, "mr")
	h1, h2 := e.Hosts()[0], e.Hosts()[1]
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	if _, err := e.Client(h2).Maintenance(ctx, h1.Name(), MaintenanceRequest{Enter: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitRunningOnce(ctx, 10*time.Second, guests, h1); err != nil {
		t.Fatal(err)
	}
	for _, crash := range []bool{false, true} {
		how := "stopped"
		t0 := time.Now()
		if crash {
			how = "killed"
			if err := e.C.KillWingmand(h1); err != nil {
				t.Fatal(err)
			}
		} else if err := e.C.StopWingmand(h1, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := e.C.StartWingmand(ctx, h1, e.WingmandOptions()); err != nil {
			t.Fatal(err)
		}
		// Until the new daemon has written its first heartbeats the others may still see
		// the old state or "joining": wait for a settled one, then require maintenance.
		var seen, own string
		if err := Poll(ctx, 20*time.Second, 100*time.Millisecond, func() (bool, error) {
			seen, _ = e.HostState(ctx, h2, h1)
			own, _ = e.HostState(ctx, h1, h1)
			return (seen == "maintenance" || seen == "alive") && (own == "maintenance" || own == "alive"), nil
		}); err != nil {
			t.Fatalf("after wingmand on %s was %s and started again: %s sees it %q, it sees itself %q: %v", h1.Name(), how, h2.Name(), seen, own, err)
		}
		t.Logf("wingmand of %s %s and restarted: %s sees it %q, it sees itself %q after %v", h1.Name(), how, h2.Name(), seen, own, time.Since(t0).Round(time.Millisecond))
		if seen != "maintenance" || own != "maintenance" {
			t.Errorf("wingmand of %s %s and restarted: %s sees it %q, it sees itself %q; want maintenance", h1.Name(), how, h2.Name(), seen, own)
		}
		observe(3 * time.Second) // a few heartbeats: the state stays and no guest comes back
		if st, _ := e.HostState(ctx, h2, h1); st != "maintenance" {
			t.Errorf("3 s after the restart %s sees %s %q, want maintenance", h2.Name(), h1.Name(), st)
		}
		if doms, err := runningDomains(ctx, e, h1); err != nil {
			t.Fatal(err)
		} else if len(doms) > 0 {
			t.Errorf("%s in maintenance runs %v after its wingmand restart", h1.Name(), doms)
		}
	}
	if _, err := e.Client(h2).Maintenance(ctx, h1.Name(), MaintenanceRequest{Enter: false}); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitHealthy(ctx, e.Hosts()...); err != nil {
		t.Fatal(err)
	}
	checkWatch(t, w)
}

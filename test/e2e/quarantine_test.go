package e2e

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/test/cluster"
)

// setQuarantine sets the cluster-wide quarantine keys from h.
func setQuarantine(t *testing.T, ctx context.Context, e *Env, h *cluster.Host, kv ...string) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if _, err := e.Client(h).SetClusterSetting(ctx, kv[i], kv[i+1]); err != nil {
			t.Fatalf("config set %s %s: %v", kv[i], kv[i+1], err)
		}
	}
}

// quarantineOf is host's quarantine as from sees it (nil: none).
func quarantineOf(ctx context.Context, e *Env, from, host *cluster.Host) *api.HostQuarantine {
	h, err := e.Client(from).Host(ctx, host.Name())
	if err != nil {
		return nil
	}
	return h.Quarantine
}

// waitQuarantine waits until from sees host quarantined (want) or not.
func waitQuarantine(t *testing.T, ctx context.Context, e *Env, from, host *cluster.Host, want bool) {
	t.Helper()
	// The service reads the record every 10 s; a change can take two rounds to show.
	if err := Poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, error) {
		return (quarantineOf(ctx, e, from, host) != nil) == want, nil
	}); err != nil {
		t.Fatalf("%s does not see %s quarantined=%v: %v", from.Name(), host.Name(), want, err)
	}
}

// TestQuarantineAfterThreeIsolations: a host cut off its peers three times within the window
// (isolation response leave-running: its pill is applied and its guests keep running) is
// quarantined by the coordinator; every host shows it. When the coordinator's host then loses
// power, its guests restart on the one other host, never on the quarantined one and never on two
// hosts at once, though the quarantined host has room. The operator's unquarantine ends it.
func TestQuarantineAfterThreeIsolations(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 3, Policy{Priority: "high", Isolation: "leave-running"}, "qa")
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	setQuarantine(t, ctx, e, h1, "quarantine.threshold", "3", "quarantine.window", "10m", "quarantine.duration", "30m")
	w := e.StartWatch(guests, WatchOptions{})
	t0 := time.Now()
	for i := 1; i <= 3; i++ {
		isolate(t, ctx, e, h3, h1)
		if err := Poll(ctx, 60*time.Second, 200*time.Millisecond, func() (bool, error) {
			evs, err := e.Client(h1).Events(ctx, t0, 0)
			return err == nil && countKind(evs, "pill-acknowledged", false) >= i, err
		}); err != nil {
			t.Fatalf("isolation %d of %s: no acknowledged pill: %v", i, h3.Name(), err)
		}
		heal(t, ctx, e, h3)
		t.Logf("isolation %d of %s done after %v", i, h3.Name(), time.Since(t0).Round(time.Millisecond))
	}
	waitQuarantine(t, ctx, e, h2, h3, true)
	q := quarantineOf(ctx, e, h1, h3)
	t.Logf("%s quarantined %v after the first cut: %+v", h3.Name(), time.Since(t0).Round(time.Millisecond), q)
	if q == nil || q.By != "wingman" || !strings.Contains(q.Why, "3 flaps within 10m") {
		t.Errorf("quarantine %+v, want by wingman for 3 flaps within 10m", q)
	}
	placedOn(t, e, guests, h1.Name())

	// The coordinator's host fails: its guests go to h2 only.
	t1 := time.Now()
	if err := e.PowerOff(h1); err != nil {
		t.Fatal(err)
	}
	p, err := e.WaitRunningOnce(ctx, 90*time.Second, guests, h1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover with %s quarantined: every guest running again after %v: %v", h3.Name(), time.Since(t1).Round(time.Millisecond), p)
	observe(2 * time.Second)
	checkWatch(t, w)
	placedOn(t, e, guests, h2.Name())
	evs := eventsSince(t, ctx, e, h2, t0)
	if n := countKind(evs, "host-quarantined", false); n != 1 {
		t.Errorf("%d host-quarantined events, want 1", n)
	}
	if n := countKind(evs, "host-flapped", false); n != 2 {
		t.Errorf("%d host-flapped events, want 2 (the first two isolations)", n)
	}

	// The operator ends it.
	r, err := api.Quarantine(ctx, e.Client(h2), h3.Name(), api.QuarantineRequest{})
	if err != nil || r.Quarantine != nil {
		t.Fatalf("unquarantine: %+v, %v", r, err)
	}
	waitQuarantine(t, ctx, e, h2, h3, false)
	if _, err := api.Quarantine(ctx, e.Client(h2), h3.Name(), api.QuarantineRequest{}); err == nil || !strings.Contains(err.Error(), "not quarantined") {
		t.Errorf("second unquarantine: %v, want refused: not quarantined", err)
	}
	evs = eventsSince(t, ctx, e, h2, t1)
	found := false
	for _, ev := range evs {
		found = found || ev.Kind == "host-unquarantined" && strings.Contains(ev.Message, "cleared by")
	}
	if !found {
		t.Error("no host-unquarantined event saying who cleared it")
	}
}

// TestQuarantineMigratesAway: with quarantine.migrate_away on, the guests of a host put in
// quarantine leave it by live migration only: libvirt records each arrival as a migration, the
// checker sees no guest stop and none run twice, and no start or restart event names them.
func TestQuarantineMigratesAway(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 3, Policy{Priority: "medium"}, "qm")
	h1, h2 := e.Hosts()[0], e.Hosts()[1]
	setQuarantine(t, ctx, e, h2, "quarantine.migrate_away", "true")
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	t0 := time.Now()
	r, err := api.Quarantine(ctx, e.Client(h2), h1.Name(), api.QuarantineRequest{Quarantine: true})
	if err != nil || r.Quarantine == nil {
		t.Fatalf("quarantine: %+v, %v", r, err)
	}
	p, err := e.WaitRunningOnce(ctx, 90*time.Second, guests, h1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quarantine-to-empty: every guest left %s by live migration after %v: %v", h1.Name(), time.Since(t0).Round(time.Millisecond), p)
	observe(2 * time.Second)
	checkWatch(t, w)
	arrivedByMigration(t, ctx, e, guests)
	noRestartEvents(t, eventsSince(t, ctx, e, h2, t0), guests)
}

// TestQuarantineNotForDaemonRestarts: wingmand of one host is stopped and started again three
// times (as `systemctl restart` does), and killed and started once more: no verdict, so no flap;
// the host is never quarantined and its guests keep their QEMU processes (DESIGN.md promise 6).
func TestQuarantineNotForDaemonRestarts(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 2, Policy{Priority: "high"}, "qr")
	h1, h2 := e.Hosts()[0], e.Hosts()[1]
	setQuarantine(t, ctx, e, h2, "quarantine.threshold", "2", "quarantine.window", "10m")
	pids := qemuOf(t, h1, guests)
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	t0 := time.Now()
	for i := 0; i < 4; i++ {
		var err error
		if i < 3 {
			err = e.C.StopWingmand(h1, time.Minute)
		} else {
			err = e.C.KillWingmand(h1)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := e.C.StartWingmand(ctx, h1, e.WingmandOptions()); err != nil {
			t.Fatal(err)
		}
		if err := e.WaitHealthy(ctx, e.Hosts()...); err != nil {
			t.Fatal(err)
		}
	}
	observe(fastD + 12*time.Second) // past D, and past a round of the quarantine service
	checkWatch(t, w)
	placedOn(t, e, guests, h1.Name())
	if after := qemuOf(t, h1, guests); !maps.Equal(after, pids) {
		t.Errorf("QEMU processes on %s were %v before the restarts, %v after", h1.Name(), pids, after)
	}
	if q := quarantineOf(ctx, e, h2, h1); q != nil {
		t.Errorf("%s quarantined after restarts of wingmand: %+v", h1.Name(), q)
	}
	evs := eventsSince(t, ctx, e, h2, t0)
	for _, kind := range []string{"declared-dead", "host-flapped", "host-quarantined"} {
		if n := countKind(evs, kind, false); n > 0 {
			t.Errorf("%d %s events after restarts of wingmand", n, kind)
		}
	}
}

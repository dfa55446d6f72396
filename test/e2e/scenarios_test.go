package e2e

import (
	"maps"
	"os"
	"strings"
	"testing"
	"time"
)

// TestPowerLoss: a host loses power; each of its protected VMs runs again on a survivor, exactly
// once, within the bound (D plus the restart), and no sample ever shows two copies.
func TestPowerLoss(t *testing.T) {
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 2, Policy{Priority: "high"}, "pl")
	h1 := e.Hosts()[0]
	w := e.StartWatch(guests, WatchOptions{})
	t0 := time.Now()
	if err := e.PowerOff(h1); err != nil {
		t.Fatal(err)
	}
	p, err := e.WaitRunningOnce(ctx, 90*time.Second, guests, h1)
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("power loss of %s: every protected VM running again after %v: %v", h1.Name(), took.Round(time.Millisecond), p)
	if bound := 7500*time.Millisecond + 10*time.Second; took > bound {
		t.Errorf("failover took %v, over D + 10 s = %v", took, bound)
	}
	observe(2 * time.Second) // exactly one copy stays
	checkWatch(t, w)
	evs, err := e.Client(e.Hosts()[1]).Events(ctx, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		t.Log(FormatEvent(ev))
	}
}

// placedOn fails the test unless every guest runs exactly on h.
func placedOn(t *testing.T, e *Env, guests []Guest, h string) {
	t.Helper()
	p, err := e.Running(ctxFor(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range guests {
		if hs := p[g.UUID]; len(hs) != 1 || hs[0] != h {
			t.Errorf("%s runs on %v, want only %s", g.Name, hs, h)
		}
	}
}

// TestDaemonCrash: wingmand is killed on a host and started again before D: its guests are not
// touched (never stopped, never restarted elsewhere) and the host rejoins.
func TestDaemonCrash(t *testing.T) {
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 2, Policy{Priority: "high"}, "dc")
	h1 := e.Hosts()[0]
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	if err := e.C.KillWingmand(h1); err != nil {
		t.Fatal(err)
	}
	if err := e.C.StartWingmand(ctx, h1, e.WingmandOptions()); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitHealthy(ctx, e.Hosts()...); err != nil {
		t.Fatal(err)
	}
	observe(8 * time.Second) // past D (7.5 s) after the crash: nothing moves
	checkWatch(t, w)
	placedOn(t, e, guests, h1.Name())
}

// TestDaemonRestart: wingmand is stopped cleanly (SIGTERM, as `systemctl restart` and a package
// upgrade do) and started again. The host is not going down, so shutdown.policy (migrate here)
// does not apply: each guest keeps its QEMU process, stays protected and owned by its host under
// the same lease, the host resumes its generation, and nothing fails over.
func TestDaemonRestart(t *testing.T) {
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 2, Policy{Priority: "high"}, "dr")
	h1, h2 := e.Hosts()[0], e.Hosts()[1]
	pids := qemuOf(t, h1, guests)
	if len(pids) != len(guests) {
		t.Fatalf("QEMU runs on %s for %v, want all %d guests", h1.Name(), pids, len(guests))
	}
	before := map[string]VM{}
	for _, g := range guests {
		v, err := e.Client(h2).VM(ctx, g.Name)
		if err != nil {
			t.Fatal(err)
		}
		before[g.Name] = v
	}
	host, err := e.Client(h2).Host(ctx, h1.Name())
	if err != nil {
		t.Fatal(err)
	}
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	t0 := time.Now()
	if err := e.C.StopWingmand(h1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := e.C.StartWingmand(ctx, h1, e.WingmandOptions()); err != nil {
		t.Fatal(err)
	}
	t.Logf("wingmand of %s stopped and started again in %v", h1.Name(), time.Since(t0).Round(time.Millisecond))
	if err := e.WaitHealthy(ctx, e.Hosts()...); err != nil {
		t.Fatal(err)
	}
	observe(fastD + time.Second) // past D after the stop: nothing moves
	checkWatch(t, w)
	placedOn(t, e, guests, h1.Name())
	if after := qemuOf(t, h1, guests); !maps.Equal(after, pids) {
		t.Errorf("QEMU processes on %s were %v before the restart, %v after", h1.Name(), pids, after)
	}
	for _, g := range guests {
		v, err := e.Client(h2).VM(ctx, g.Name)
		if err != nil || !v.Protected || v.OwnerName != h1.Name() || v.LeaseEpoch != before[g.Name].LeaseEpoch {
			t.Errorf("%s after the restart: %+v (%v), want protected, owned by %s at lease epoch %d", g.Name, v, err, h1.Name(), before[g.Name].LeaseEpoch)
		}
	}
	if h, err := e.Client(h2).Host(ctx, h1.Name()); err != nil || h.Generation != host.Generation {
		t.Errorf("%s after the restart: generation %d (%v), want %d resumed", h1.Name(), h.Generation, err, host.Generation)
	}
	evs := eventsSince(t, ctx, e, h2, t0)
	for _, kind := range []string{"declared-dead", "left", "released", "migration-started", "evacuated", "destroyed-stale-copy", "self-fenced"} {
		if n := countKind(evs, kind, false); n > 0 {
			t.Errorf("%d %s events after a restart of wingmand", n, kind)
		}
	}
	if b, _ := os.ReadFile(h1.WingmandLog()); !strings.Contains(string(b), "wingmand stopping, guests stay; restart within 2.5s or host "+h1.Name()+" is declared dead") {
		t.Errorf("%s's log does not bound the restart: %s", h1.Name(), h1.WingmandLog())
	}
}

// TestLiveMigration: a live migration requested through another host's API (forwarded to the
// owner) moves the guest with a short pause, and it never stops nor runs twice.
func TestLiveMigration(t *testing.T) {
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 1, Policy{}, "lm")
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	res, err := e.Client(h3).Migrate(ctx, guests[0].Name, MigrateRequest{Target: h2.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("migrated %s %s -> %s in %v, downtime %v, %d bytes", res.VM, res.From, res.To, res.Duration, res.Downtime, res.Bytes)
	if res.Downtime <= 0 || res.Downtime > time.Second {
		t.Errorf("downtime %v: want a measured pause under 1 s", res.Downtime)
	}
	observe(time.Second)
	checkWatch(t, w)
	placedOn(t, e, guests, h2.Name())
	if err := Poll(ctx, 10*time.Second, 100*time.Millisecond, func() (bool, error) {
		v, err := e.Client(h1).VM(ctx, guests[0].Name)
		return err == nil && v.OwnerName == h2.Name(), nil
	}); err != nil {
		t.Errorf("the LUN does not name %s the owner: %v", h2.Name(), err)
	}
}

// TestPowerFence: with a fence agent that confirms at once and the fast profile, the coordinator
// fences the lost host and restarts its VMs before D.
func TestPowerFence(t *testing.T) {
	full(t)
	_, took, evs := powerLossFailover(t, Options{Profile: "fast", Fence: true}, "pf")
	t.Logf("failover with power fencing: %v", took.Round(time.Millisecond))
	for _, ev := range evs {
		t.Log(FormatEvent(ev))
	}
	if d := 7500 * time.Millisecond; took >= d {
		t.Errorf("failover took %v: with a confirming fence agent it must beat D = %v", took, d)
	}
}

// powerLossFailover starts a cluster with o and 2 guests on its first host, cuts that host's
// power, and waits until the guests run again, once, elsewhere, with no sample showing two
// copies. It returns when the power was cut, how long the guests took, and the events since.
func powerLossFailover(t *testing.T, o Options, prefix string) (time.Time, time.Duration, []Event) {
	t.Helper()
	e, ctx, guests := startWithGuests(t, o, 2, Policy{Priority: "high"}, prefix)
	h1 := e.Hosts()[0]
	w := e.StartWatch(guests, WatchOptions{})
	t0 := time.Now()
	if err := e.PowerOff(h1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitRunningOnce(ctx, 60*time.Second, guests, h1); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	observe(2 * time.Second) // exactly one copy stays
	checkWatch(t, w)
	evs, err := e.Client(e.Hosts()[1]).Events(ctx, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return t0, took, evs
}

// TestFrozenHost: every process of a host is stopped for longer than D, then resumed. The others
// restart its VMs; when it wakes up it must destroy its stale copies before they do anything:
// at no sample do two hosts run one guest.
//
// Each host has the emulated hardware watchdog: on a real host the watchdog
// timer runs in hardware while the kernel is frozen and resets the host W
// after the last pet, long before the others declare it dead at D. (With the
// software watchdog a whole-host freeze cannot be caught: its guests resume
// with it and run for a few hundred milliseconds beside their restarted
// copies before wingmand destroys them.)
func TestFrozenHost(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast", HardwareWatchdog: true}, 2, Policy{Priority: "high"}, "fz")
	h1 := e.Hosts()[0]
	w := e.StartWatch(guests, WatchOptions{})
	t0 := time.Now()
	if err := e.Freeze(h1); err != nil {
		t.Fatal(err)
	}
	thawed := false
	defer func() {
		if !thawed {
			e.Thaw(h1)
		}
	}()
	if _, err := e.WaitRunningOnce(ctx, 60*time.Second, guests, h1); err != nil {
		t.Fatal(err)
	}
	t.Logf("guests of the frozen %s run elsewhere after %v", h1.Name(), time.Since(t0).Round(time.Millisecond))
	observe(3 * time.Second)
	thawed = true
	if h1.On() {
		t.Errorf("%s is still on after %v frozen: its watchdog did not reset it", h1.Name(), time.Since(t0).Round(time.Millisecond))
		if err := e.Thaw(h1); err != nil {
			t.Fatal(err)
		}
	} else if err := e.C.PowerOn(ctx, h1); err != nil { // the reset host boots again
		t.Fatal(err)
	}
	observe(5 * time.Second)
	checkWatch(t, w)
	if _, err := e.WaitRunningOnce(ctx, 10*time.Second, guests, h1); err != nil {
		t.Fatal(err)
	}
	// The software watchdog may end wingmand (exit 70) after it destroyed the stale copies.
	running := Poll(ctx, 3*time.Second, 100*time.Millisecond, func() (bool, error) { return !h1.WingmandRunning(), nil }) != nil
	t.Logf("%s's wingmand still running after the thaw: %v", h1.Name(), running)
	rejoinAfterFault(t, ctx, e, h1)
}

// TestMaintenanceAbortAndFailback: an evacuation aborted half way leaves every guest running on
// exactly one host and the host in maintenance; exit --failback brings the guests that left back.
func TestMaintenanceAbortAndFailback(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 4, Policy{Priority: "medium"}, "ab")
	h1, h2 := e.Hosts()[0], e.Hosts()[1]
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	if _, err := e.Client(h2).Maintenance(ctx, h1.Name(), MaintenanceRequest{Enter: true, NoWait: true}); err != nil {
		t.Fatal(err)
	}
	// Abort once the first guest has left.
	if err := Poll(ctx, 60*time.Second, 50*time.Millisecond, func() (bool, error) {
		h, err := e.Client(h2).Host(ctx, h1.Name())
		return err == nil && h.VMs < len(guests), nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client(h2).Maintenance(ctx, h1.Name(), MaintenanceRequest{Enter: true, Abort: true}); err != nil {
		t.Logf("abort: %v (the evacuation may have finished first)", err)
	}
	p, err := e.WaitRunningOnce(ctx, 30*time.Second, guests)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the abort: %v", p)
	if st, _ := e.HostState(ctx, h2, h1); st != "maintenance" {
		t.Errorf("%s is %q after the abort, want maintenance", h1.Name(), st)
	}
	if _, err := e.Client(h2).Maintenance(ctx, h1.Name(), MaintenanceRequest{Enter: false, Failback: true}); err != nil {
		t.Fatal(err)
	}
	if err := Poll(ctx, 60*time.Second, 100*time.Millisecond, func() (bool, error) {
		p, err := e.Running(ctx)
		if err != nil {
			return false, nil
		}
		for _, g := range guests {
			if hs := p[g.UUID]; len(hs) != 1 || hs[0] != h1.Name() {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		p, _ := e.Running(ctx)
		t.Fatalf("after exit --failback the guests are not all back on %s: %v", h1.Name(), p)
	}
	checkWatch(t, w)
}

// TestStartOrder: a host with a database (start order 0, later orders wait for its guest agent)
// and an application (start order 1, start delay 3 s) loses power. The test guests run no guest
// agent, so the application waits failover.guest_agent_wait (10 s here) after the database was
// taken, then its own delay, and only then starts; both run again, once.
func TestStartOrder(t *testing.T) {
	full(t)
	const agentWait, delay = 10 * time.Second, 3 * time.Second
	e := startEnv(t, Options{Profile: "fast", GuestAgentWait: agentWait})
	ctx := ctxFor(t, 5*time.Minute)
	h1 := e.Hosts()[0]
	db, err := e.NewGuestsWithPolicy(ctx, h1, "so-db", 1, Policy{WaitGuestAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	app, err := e.NewGuestsWithPolicy(ctx, h1, "so-app", 1, Policy{StartOrder: 1, StartDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	guests := append(db, app...)
	if _, err := e.WaitRunningOnce(ctx, 30*time.Second, guests); err != nil {
		t.Fatal(err)
	}
	w := e.StartWatch(guests, WatchOptions{})
	t0 := time.Now()
	if err := e.PowerOff(h1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitRunningOnce(ctx, 2*time.Minute, guests, h1); err != nil {
		t.Fatal(err)
	}
	t.Logf("both running again after %v", time.Since(t0).Round(time.Millisecond))
	checkWatch(t, w)
	evs, err := e.Client(e.Hosts()[1]).Events(ctx, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var dbTaken, appStarted time.Time
	waited := false
	for _, ev := range evs {
		t.Log(FormatEvent(ev))
		switch {
		case ev.VM == db[0].Name && ev.Kind == "lease-acquired" && dbTaken.IsZero():
			dbTaken = ev.Time
		case ev.VM == app[0].Name && ev.Kind == "waiting":
			waited = true
		case ev.VM == app[0].Name && (ev.Kind == "started" || ev.Kind == "restarted"):
			appStarted = ev.Time
		}
	}
	if dbTaken.IsZero() || appStarted.IsZero() || !waited {
		t.Fatalf("events: database taken at %v, application started at %v, application waited: %v", dbTaken, appStarted, waited)
	}
	if gap := appStarted.Sub(dbTaken); gap < agentWait+delay {
		t.Errorf("the application started %v after the database was taken; want at least the agent wait and its delay, %v", gap, agentWait+delay)
	} else {
		t.Logf("the application started %v after the database was taken (agent wait %v + delay %v)", gap.Round(time.Millisecond), agentWait, delay)
	}
}

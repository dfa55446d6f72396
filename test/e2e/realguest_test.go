package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/test/cluster"
	"github.com/wingmanha/wingman/test/realguest"
)

// rounds is n under make e2e and fast otherwise (make test runs the fast variant).
func rounds(fast, n int) int {
	if os.Getenv(fullEnv) == "" {
		return fast
	}
	return n
}

// startRealGuest starts a cluster with o and one real guest on its first host, protected with p.
func startRealGuest(t *testing.T, o Options, name string, p Policy) (*Env, context.Context, RealGuest) {
	t.Helper()
	e := startEnv(t, o)
	ctx := ctxFor(t, 50*time.Minute)
	g, err := e.NewRealGuest(ctx, e.Hosts()[0], name, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console of %s (last lines): %s", g.Name, tail(g.Console, 30))
		}
	})
	return e, ctx, g
}

// runsOn is the one host that runs g.
func runsOn(t *testing.T, e *Env, ctx context.Context, g Guest) *cluster.Host {
	t.Helper()
	p, err := e.WaitRunningOnce(ctx, 30*time.Second, []Guest{g})
	if err != nil {
		t.Fatal(err)
	}
	return e.Host(p[g.UUID][0])
}

// waitAcks waits until the writer has n more acknowledgements than it had.
func waitAcks(t *testing.T, w *realguest.Writer, n int, timeout time.Duration) {
	t.Helper()
	want := len(w.Log().Acks) + n
	deadline := time.Now().Add(timeout)
	for len(w.Log().Acks) < want {
		if time.Now().After(deadline) {
			l := w.Log()
			t.Fatalf("the service acknowledged %d records in %v, want %d (last failures: %v)", len(l.Acks)-want+n, timeout, n, lastFailures(l, 3))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastFailures(l realguest.Log, n int) []realguest.Failure {
	if len(l.Failures) > n {
		return l.Failures[len(l.Failures)-n:]
	}
	return l.Failures
}

// stopAndCheckDisk stops g through Wingman (a clean shutdown: the guest unmounts its data) and
// checks its file system with e2fsck -fn.
func stopAndCheckDisk(t *testing.T, e *Env, ctx context.Context, g RealGuest) {
	t.Helper()
	if err := e.Client(e.Hosts()[len(e.Hosts())-1]).Stop(ctx, g.Name); err != nil {
		t.Fatalf("stop %s: %v", g.Name, err)
	}
	err := Poll(ctx, time.Minute, 100*time.Millisecond, func() (bool, error) {
		p, err := e.Running(ctx)
		return err == nil && len(p[g.UUID]) == 0, nil
	})
	if err != nil {
		t.Fatalf("%s still running after stop: %v", g.Name, err)
	}
	if err := realguest.CheckFilesystem(ctx, g.Disk); err != nil {
		t.Errorf("after a clean shutdown: %v", err)
	} else {
		t.Logf("e2fsck -fn %s: clean", g.Disk)
	}
	if !strings.Contains(tail(g.Console, 200), "power off") {
		t.Errorf("the guest's console does not show a clean power off: %s", tail(g.Console, 5))
	}
}

// checkNoTaint fails the test if libvirt tainted a domain for a QMP or agent passthrough.
func checkNoTaint(t *testing.T, e *Env) {
	t.Helper()
	lines, err := e.Tainted()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if strings.Contains(l, "custom-monitor") || strings.Contains(l, "custom-ga-command") {
			t.Errorf("libvirt tainted a domain: %s", l)
		}
	}
}

func summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("min %v, median %v, max %v over %d", s[0].Round(time.Millisecond),
		s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), len(s))
}

// TestRealGuestPowerLoss: the host of a real guest loses power, again and again across the hosts
// (20 times under make e2e, once in make test). Every time, its client, writing continuously
// from the LAN, is answered again from another host; no record it saw acknowledged is lost or
// damaged; after the guest's last clean shutdown its file system is clean; no domain is tainted.
func TestRealGuestPowerLoss(t *testing.T) {
	n := rounds(1, 20)
	profile := "fast"
	if p := os.Getenv("WINGMAN_E2E_PROFILE"); p != "" {
		profile = p
	}
	e, ctx, g := startRealGuest(t, Options{Profile: profile}, "rg-pl", Policy{Priority: "high"})
	watch := e.StartWatch([]Guest{g.Guest}, WatchOptions{})
	w := e.Writer(ctx, g, 2*time.Second)
	var back []time.Duration
	for i := 1; i <= n; i++ {
		waitAcks(t, w, 20, time.Minute)
		h := runsOn(t, e, ctx, g.Guest)
		t0 := time.Now()
		if err := e.PowerOff(h); err != nil {
			t.Fatal(err)
		}
		err := Poll(ctx, 3*time.Minute, 50*time.Millisecond, func() (bool, error) {
			_, ok := w.Log().AnsweredAgain(t0)
			return ok, nil
		})
		if err != nil {
			t.Fatalf("round %d: the service did not answer again after %s lost power: %v (last failures: %v)", i, h.Name(), err, lastFailures(w.Log(), 3))
		}
		d, _ := w.Log().AnsweredAgain(t0)
		back = append(back, d)
		now := runsOn(t, e, ctx, g.Guest)
		t.Logf("round %d: %s lost power; the service answered again from %s after %v", i, h.Name(), now.Name(), d.Round(time.Millisecond))
		if os.Getenv("WINGMAN_DEBUG_CLIENT") != "" {
			l := w.Log()
			for _, f := range l.FailuresIn(t0, t0.Add(d)) {
				t.Logf("  +%v %s", f.At.Sub(t0).Round(time.Millisecond), f.What)
			}
			for _, c := range l.Connects {
				if c.After(t0) {
					t.Logf("  +%v connected", c.Sub(t0).Round(time.Millisecond))
				}
			}
			t.Logf("  console: %s", tail(g.Console, 8))
		}
		if err := e.PowerOnAndRejoin(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	waitAcks(t, w, 20, time.Minute)
	log := w.Stop()
	checkWatch(t, watch)
	v, err := e.CheckLedger(ctx, g, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client view: service back after power loss: %s; %v; %d failed requests or connections while the host was down",
		summary(back), v, len(log.Failures))
	if !v.OK() {
		t.Errorf("ledger: %v (lost %v, damaged %v)", v, v.Lost, v.Damaged)
	}
	stopAndCheckDisk(t, e, ctx, g)
	checkNoTaint(t, e)
}

// TestRealGuestMigration: 20 live migrations through the API, round the hosts, then a
// maintenance evacuation of the guest's host, while the client writes continuously over one TCP
// connection: the connection is never reset, no request fails, and the longest time without an
// acknowledgement is reported. (make e2e only: make test runs the fastest real-guest scenario,
// the power loss.)
func TestRealGuestMigration(t *testing.T) {
	full(t)
	n := 20
	e, ctx, g := startRealGuest(t, Options{Profile: "fast"}, "rg-lm", Policy{})
	watch := e.StartWatch([]Guest{g.Guest}, WatchOptions{MustNotStop: true})
	w := e.Writer(ctx, g, 30*time.Second)
	waitAcks(t, w, 20, time.Minute)
	hosts := e.Hosts()
	var gaps []time.Duration
	for i := 1; i <= n; i++ {
		from := runsOn(t, e, ctx, g.Guest)
		to := hosts[from.Index()%len(hosts)]
		t0 := time.Now()
		if _, err := e.Client(hosts[i%len(hosts)]).Migrate(ctx, g.Name, MigrateRequest{Target: to.Name()}); err != nil {
			t.Fatalf("migration %d, %s to %s: %v", i, from.Name(), to.Name(), err)
		}
		waitAcks(t, w, 5, time.Minute)
		gap, _ := w.Log().LongestGap(t0, time.Now())
		gaps = append(gaps, gap)
		t.Logf("migration %d: %s -> %s, longest gap between acknowledgements %v", i, from.Name(), to.Name(), gap.Round(time.Millisecond))
	}
	h := runsOn(t, e, ctx, g.Guest)
	t0 := time.Now()
	if _, err := e.Client(hosts[0]).Maintenance(ctx, h.Name(), MaintenanceRequest{Enter: true}); err != nil {
		t.Fatalf("maintenance enter %s: %v", h.Name(), err)
	}
	waitAcks(t, w, 5, time.Minute)
	evacGap, _ := w.Log().LongestGap(t0, time.Now())
	now := runsOn(t, e, ctx, g.Guest)
	t.Logf("maintenance evacuation of %s: the guest went to %s, longest gap %v", h.Name(), now.Name(), evacGap.Round(time.Millisecond))
	if now == h {
		t.Errorf("the guest is still on %s, which is in maintenance", h.Name())
	}
	if _, err := e.Client(hosts[0]).Maintenance(ctx, h.Name(), MaintenanceRequest{Enter: false}); err != nil {
		t.Fatalf("maintenance exit %s: %v", h.Name(), err)
	}
	log := w.Stop()
	checkWatch(t, watch)
	t.Logf("client view: longest gap per live migration: %s; maintenance evacuation: %v; %d connections, %d failures",
		summary(gaps), evacGap.Round(time.Millisecond), len(log.Connects), len(log.Failures))
	if len(log.Connects) != 1 || len(log.Failures) != 0 {
		t.Errorf("the client's connection was not kept: %d connections, failures %v", len(log.Connects), log.Failures)
	}
	v, err := e.CheckLedger(ctx, g, log)
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK() {
		t.Errorf("ledger: %v", v)
	}
	checkNoTaint(t, e)
}

// waitEvent polls h's events since t0 until one matches, and returns it.
func waitEvent(t *testing.T, e *Env, ctx context.Context, h *cluster.Host, t0 time.Time, timeout time.Duration, what string, match func(Event) bool) Event {
	t.Helper()
	var got Event
	err := Poll(ctx, timeout, 200*time.Millisecond, func() (bool, error) {
		evs, err := e.Client(h).Events(ctx, t0, 0)
		if err != nil {
			return false, nil
		}
		for _, ev := range evs {
			if match(ev) {
				got = ev
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no event %s: %v", what, err)
	}
	return got
}

// TestRealGuestStartOrder: a "database" guest (start order 0, --wait-agent) and an
// "application" guest (order 1) on a host that loses power: the application starts after the
// database's guest agent answered on its new host (the guest-up event) and long before
// failover.guest_agent_wait would have let it start anyway.
func TestRealGuestStartOrder(t *testing.T) {
	full(t)
	const agentWait = 2 * time.Minute
	e := startEnv(t, Options{Profile: "fast", GuestAgentWait: agentWait})
	ctx := ctxFor(t, 10*time.Minute)
	h1, h2 := e.Hosts()[0], e.Hosts()[1]
	db, err := e.NewRealGuest(ctx, h1, "rg-db", Policy{WaitGuestAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	app, err := e.NewRealGuest(ctx, h1, "rg-app", Policy{StartOrder: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, e, ctx, h2, time.Time{}, time.Minute, "guest-up of the database before the power loss",
		func(ev Event) bool { return ev.VM == db.Name && ev.Kind == "guest-up" })
	watch := e.StartWatch([]Guest{db.Guest, app.Guest}, WatchOptions{})
	t0 := time.Now()
	if err := e.PowerOff(h1); err != nil {
		t.Fatal(err)
	}
	for _, g := range []RealGuest{db, app} {
		if _, err := realguest.WaitAnswering(ctx, e.Dial, g.Addr, 3*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("both services answer again %v after the power loss", time.Since(t0).Round(time.Millisecond))
	checkWatch(t, watch)
	evs, err := e.Client(h2).Events(ctx, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var dbTaken, dbUp, appStarted time.Time
	for _, ev := range evs {
		t.Log(FormatEvent(ev))
		switch {
		case ev.VM == db.Name && ev.Kind == "lease-acquired" && dbTaken.IsZero():
			dbTaken = ev.Time
		case ev.VM == db.Name && ev.Kind == "guest-up" && dbUp.IsZero():
			dbUp = ev.Time
		case ev.VM == app.Name && (ev.Kind == "started" || ev.Kind == "restarted") && appStarted.IsZero():
			appStarted = ev.Time
		}
	}
	if dbTaken.IsZero() || dbUp.IsZero() || appStarted.IsZero() {
		t.Fatalf("events: database taken at %v, its agent up at %v, application started at %v", dbTaken, dbUp, appStarted)
	}
	t.Logf("database taken -> its guest agent up: %v; agent up -> application started: %v (guest_agent_wait %v)",
		dbUp.Sub(dbTaken).Round(time.Millisecond), appStarted.Sub(dbUp).Round(time.Millisecond), agentWait)
	if appStarted.Before(dbUp) {
		t.Errorf("the application started at %v, before the database's agent answered at %v", appStarted, dbUp)
	}
	if appStarted.Sub(dbTaken) > agentWait/2 {
		t.Errorf("the application started %v after the database was taken: the agent's answer did not release it (guest_agent_wait %v)", appStarted.Sub(dbTaken), agentWait)
	}
	checkNoTaint(t, e)
}

// TestRealGuestAgentHangAndPanic: a real guest protected with --wait-agent (the owner then
// watches its agent). Its guest agent hangs (the test's own service stops qemu-ga): Wingman
// reports guest-agent-lost and, as its policy says (report only), leaves the guest running. Then
// its kernel panics (sysrq c, through the same service): pvpanic reports it and Wingman restarts
// the guest as its restart policy says; the event names the panic; the service answers again with
// a new boot, the agent is up again, and the ledger is intact. Neither is done through a libvirt
// agent or monitor passthrough, and no domain is tainted.
func TestRealGuestAgentHangAndPanic(t *testing.T) {
	full(t)
	e, ctx, g := startRealGuest(t, Options{Profile: "fast"}, "rg-hang", Policy{WaitGuestAgent: true})
	h := runsOn(t, e, ctx, g.Guest)
	waitEvent(t, e, ctx, h, time.Time{}, time.Minute, "guest-up", func(ev Event) bool { return ev.VM == g.Name && ev.Kind == "guest-up" })
	w := e.Writer(ctx, g, 2*time.Second)
	waitAcks(t, w, 20, time.Minute)
	boot1, err := realguest.WaitAnswering(ctx, e.Dial, g.Addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	if err := e.GuestCommand(ctx, g, "HANG-AGENT"); err != nil {
		t.Fatal(err)
	}
	lost := waitEvent(t, e, ctx, h, t0, 3*time.Minute, "guest-agent-lost",
		func(ev Event) bool { return ev.VM == g.Name && ev.Kind == "guest-agent-lost" })
	t.Logf("%v after the agent hung: %s", lost.Time.Sub(t0).Round(time.Millisecond), FormatEvent(lost))
	if boot, err := realguest.WaitAnswering(ctx, e.Dial, g.Addr, time.Minute); err != nil || boot != boot1 {
		t.Errorf("after the agent hung, the service answers with boot %q (%v), want the same boot %q: the guest must keep running", boot, err, boot1)
	}
	if l := w.Log(); len(l.FailuresIn(t0, time.Now())) > 0 {
		t.Errorf("the client saw failures while only the agent hung: %v", l.FailuresIn(t0, time.Now()))
	}

	t1 := time.Now()
	if err := e.GuestCommand(ctx, g, "PANIC"); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, e, ctx, h, t1, time.Minute, "naming the panic",
		func(ev Event) bool { return ev.VM == g.Name && strings.Contains(ev.Message, "panicked") })
	t.Logf("event: %s", FormatEvent(ev))
	err = Poll(ctx, 2*time.Minute, 50*time.Millisecond, func() (bool, error) {
		_, ok := w.Log().AnsweredAgain(t1)
		return ok, nil
	})
	if err != nil {
		t.Fatalf("the service did not answer again after the panic: %v", err)
	}
	back, _ := w.Log().AnsweredAgain(t1)
	boot2, err := realguest.WaitAnswering(ctx, e.Dial, g.Addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if boot2 == boot1 {
		t.Errorf("the guest did not reboot after the panic (boot id %s)", boot1)
	}
	t.Logf("the service answered again %v after the panic, on %s", back.Round(time.Millisecond), runsOn(t, e, ctx, g.Guest).Name())
	waitEvent(t, e, ctx, h, t1, time.Minute, "guest-up after the restart",
		func(ev Event) bool {
			return ev.VM == g.Name && (ev.Kind == "guest-up" || ev.Kind == "guest-agent-back")
		})
	log := w.Stop()
	v, err := e.CheckLedger(ctx, g, log)
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK() {
		t.Errorf("ledger: %v", v)
	}
	evs, _ := e.Client(h).Events(ctx, t0, 0)
	for _, ev := range evs {
		if ev.VM == g.Name {
			t.Log(FormatEvent(ev))
		}
	}
	checkNoTaint(t, e)
}

// TestRealGuestRollingUpdate: `wingman rolling-update` patches the three hosts, each holding a
// real guest whose client writes continuously: every guest is live-migrated off each host and
// back, and no client sees a failed request or a reset connection.
func TestRealGuestRollingUpdate(t *testing.T) {
	full(t)
	e := startEnv(t, Options{Profile: "fast"})
	ctx := ctxFor(t, 20*time.Minute)
	hosts := e.Hosts()
	var guests []RealGuest
	var plain []Guest
	for i, h := range hosts {
		g, err := e.NewRealGuest(ctx, h, fmt.Sprintf("rg-ru%d", i+1), Policy{})
		if err != nil {
			t.Fatal(err)
		}
		guests = append(guests, g)
		plain = append(plain, g.Guest)
	}
	cli, err := cluster.BuildBinary(ctx, "./cmd/wingman", true)
	if err != nil {
		t.Fatal(err)
	}
	watch := e.StartWatch(plain, WatchOptions{MustNotStop: true})
	var writers []*realguest.Writer
	for _, g := range guests {
		writers = append(writers, e.Writer(ctx, g, 30*time.Second))
	}
	for _, w := range writers {
		waitAcks(t, w, 20, time.Minute)
	}
	args := []string{"-c", hosts[0].APISocket(), "rolling-update", "--exec", "true", "--timeout", "1m"}
	start := time.Now()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	took := time.Since(start)
	t.Logf("wingman %s (%v):\n%s", strings.Join(args[2:], " "), took.Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("rolling-update: %v", err)
	}
	for _, w := range writers {
		waitAcks(t, w, 5, time.Minute)
	}
	checkWatch(t, watch)
	for i, w := range writers {
		log := w.Stop()
		gap, _ := log.LongestGap(start, time.Now())
		v, err := e.CheckLedger(ctx, guests[i], log)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: client saw %d connections, %d failures, longest gap %v during the update; %v",
			guests[i].Name, len(log.Connects), len(log.Failures), gap.Round(time.Millisecond), v)
		if len(log.Connects) != 1 || len(log.Failures) != 0 {
			t.Errorf("%s: the client's requests failed: %v", guests[i].Name, log.Failures)
		}
		if !v.OK() {
			t.Errorf("%s: ledger: %v", guests[i].Name, v)
		}
	}
	checkNoTaint(t, e)
}

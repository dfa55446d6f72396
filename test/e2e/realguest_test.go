package e2e

import (
	"context"
	"fmt"
	"os"
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
	e, ctx, g := startRealGuest(t, Options{Profile: "fast"}, "rg-pl", Policy{Priority: "high"})
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

// TestRealGuestMigration: live migrations (20 under make e2e, 3 in make test) through the API,
// round the hosts, then a maintenance evacuation of the guest's host, while the client writes
// continuously over one TCP connection: the connection is never reset, no request fails, and
// the longest time without an acknowledgement is reported.
func TestRealGuestMigration(t *testing.T) {
	n := rounds(3, 20)
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

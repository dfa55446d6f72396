package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/test/cluster"
)

// e2eCeiling is the network-lease ceiling of TestTwoHostsAtOnceRestartAfterCeiling's LUN: the
// shortest the fast profile allows (F + 10 s is 13 s), so that the scenario takes seconds, not
// minutes.
const e2eCeiling = 15 * time.Second

// powerOffTogether powers hosts off at the same moment, as one rack's UPS would.
func powerOffTogether(t *testing.T, e *Env, hosts ...*cluster.Host) time.Time {
	t.Helper()
	t0 := time.Now()
	errs := make(chan error, len(hosts))
	for _, h := range hosts {
		go func() { errs <- e.PowerOff(h) }()
	}
	for range hosts {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return t0
}

// noneRestarted fails the test if any of guests runs anywhere now; why says why none may.
func noneRestarted(t *testing.T, ctx context.Context, e *Env, guests []Guest, why string) {
	t.Helper()
	p, err := e.Running(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range guests {
		if hs := p[g.UUID]; len(hs) > 0 {
			t.Errorf("%s restarted on %v %s", g.Name, hs, why)
		}
	}
}

// TestTwoHostsAtOnceRestartAfterCeiling: two hosts of three lose power at the same moment. The
// last host cannot tell them from a rack cut off from the LUN whose hosts lease each other, so
// it restarts nothing at D (TestTwoPowerLossesAtOnce); but a host lives on network leases only
// up to the ceiling C, so once both have been silent for C + D (+1% for the clock rates), it
// declares them dead and restarts every VM, exactly once.
func TestTwoHostsAtOnceRestartAfterCeiling(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast", LeaseCeiling: e2eCeiling}, 1, Policy{Priority: "high"}, "ca", "cb")
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	if st, err := e.Client(h3).Status(ctx); err != nil || st.Timings.LeaseCeiling != e2eCeiling {
		t.Fatalf("status of %s: lease ceiling %v (%v), want %v from the LUN header", h3.Name(), st.Timings.LeaseCeiling, err, e2eCeiling)
	}
	w := e.StartWatch(guests, WatchOptions{})
	t0 := powerOffTogether(t, e, h1, h2)
	wait := e2eCeiling + fastD
	wait += wait / 100
	// The last heartbeat of a lost host was seen up to R + one read before the power-off.
	early := wait - fastTimings.Renew - time.Second
	observe(early - time.Since(t0))
	noneRestarted(t, ctx, e, guests, fmt.Sprintf("after %v, before C + D = %v", time.Since(t0).Round(time.Millisecond), wait))
	var declared time.Duration
	p, err := e.WaitRunningOnce(ctx, wait+30*time.Second, guests, h1, h2)
	back := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []*cluster.Host{h1, h2} {
		st, _ := e.HostState(ctx, h3, h)
		if st != "dead" {
			t.Errorf("%s sees %s %q after its VMs restarted", h3.Name(), h.Name(), st)
		}
	}
	evs := eventsSince(t, ctx, e, h3, t0)
	for _, ev := range evs {
		if ev.Kind == "declared-dead" && declared == 0 {
			declared = ev.Time.Sub(t0)
		}
	}
	t.Logf("two hosts powered off at once: declared dead after %v, every VM running on %s after %v (C %v + D %v + 1%% = %v): %v",
		declared.Round(time.Millisecond), h3.Name(), back.Round(time.Millisecond), e2eCeiling, fastD, wait, p)
	if bound := wait + 15*time.Second; back > bound {
		t.Errorf("VMs back after %v, more than C + D + 15 s = %v", back.Round(time.Millisecond), bound)
	}
	observe(2 * time.Second)
	checkWatch(t, w)
}

// TestTwoHostsAtOnceConfirmOff: two hosts of three lose power at once; the operator, who has
// checked, confirms both off on the last host (wingman host confirm-off): every VM restarts at
// once, not after the ceiling (60 s here). A confirm-off of a live host, and of a host whose
// heartbeat stopped less than D ago, is refused.
func TestTwoHostsAtOnceConfirmOff(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 1, Policy{Priority: "high"}, "oa", "ob")
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	c := e.Client(h3)
	if _, err := c.ConfirmOff(ctx, h1.Name()); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "may be running") {
		t.Fatalf("confirm-off of a live host: %v, want a conflict saying it may be running", err)
	}
	w := e.StartWatch(guests, WatchOptions{})
	t0 := powerOffTogether(t, e, h1, h2)
	if _, err := c.ConfirmOff(ctx, h1.Name()); !errors.Is(err, api.ErrConflict) {
		t.Errorf("confirm-off of %s %v after its power-off (within D): %v, want refused", h1.Name(), time.Since(t0).Round(time.Millisecond), err)
	}
	observe(fastD + time.Second)
	noneRestarted(t, ctx, e, guests, "before any confirm-off")
	t1 := time.Now()
	for _, h := range []*cluster.Host{h1, h2} {
		r, err := c.ConfirmOff(ctx, h.Name())
		if err != nil {
			t.Fatalf("confirm-off of %s: %v", h.Name(), err)
		}
		t.Logf("confirm-off of %s: generation %d, by %q, declared on %s", r.Host, r.Generation, r.By, r.DeclaredOn)
		if !strings.HasPrefix(r.By, "user ") {
			t.Errorf("confirm-off recorded as by %q, want the unix user of the API socket", r.By)
		}
	}
	p, err := e.WaitRunningOnce(ctx, 40*time.Second, guests, h1, h2)
	back := time.Since(t1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("every VM running on %s %v after the confirm-off (%v after the power-off; the ceiling would have waited %v): %v",
		h3.Name(), back.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond), 60*time.Second+fastD, p)
	if back > 20*time.Second {
		t.Errorf("VMs back %v after the confirm-off: not at once", back.Round(time.Millisecond))
	}
	evs := eventsSince(t, ctx, e, h3, t0)
	if n := countKind(evs, "confirmed-off", false); n != 2 {
		t.Errorf("%d confirmed-off events, want 2 (who and when)", n)
	}
	observe(2 * time.Second)
	checkWatch(t, w)
}

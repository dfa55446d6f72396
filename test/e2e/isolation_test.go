package e2e

import (
	"testing"
	"time"

	"github.com/wingmanha/wingman/test/cluster"
)

// TestIsolationAddressUplinkLost: a two-host cluster whose hosts both have the switch's address
// (their gateway) as isolation address. kvm1, the lowest id, loses its uplink: its peer and its
// gateway. kvm2 still reaches its gateway, so it wins the tie: only kvm1's guests (isolation
// response stop) move, to kvm2, never on two hosts at once, while kvm2's guests never stop. By
// the lowest-id rule alone, kvm2, the healthy host, would have stopped its guests.
func TestIsolationAddressUplinkLost(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Hosts: 2, Profile: "fast", IsolationGateway: true}, 2,
		Policy{Priority: "high", Isolation: "stop"}, "ua", "ub")
	h1, h2 := e.Hosts()[0], e.Hosts()[1]
	cut, kept := guests[:2], guests[2:]
	w := e.StartWatch(guests, WatchOptions{})
	wKept := e.StartWatch(kept, WatchOptions{MustNotStop: true})
	t0 := time.Now()
	if err := e.C.Partition(h1); err != nil {
		t.Fatal(err)
	}
	p, err := e.WaitRunningOnce(ctx, 60*time.Second, cut, h1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("uplink-lost-to-restart: the guests of %s running on %s after %v: %v", h1.Name(), h2.Name(), time.Since(t0).Round(time.Millisecond), p)
	placedOn(t, e, kept, h2.Name())
	observe(2 * time.Second)
	heal(t, ctx, e, h1)
	observe(2 * time.Second)
	checkWatch(t, w)
	checkWatch(t, wKept)
	placedOn(t, e, guests, h2.Name())
	evs := eventsSince(t, ctx, e, h2, t0)
	if n := countKind(evs, "pill-sent", false); n < 1 {
		t.Errorf("%d pill-sent events, want one (from %s to %s)", n, h2.Name(), h1.Name())
	}
}

// TestIsolationAddressBothReach: the link between the two hosts is cut (nftables in the switch)
// while both still write the LUN and both reach their gateway: neither is isolated, nobody is
// pilled, nothing moves, and after the link is back all is as before.
func TestIsolationAddressBothReach(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Hosts: 2, Profile: "fast", IsolationGateway: true}, 2,
		Policy{Priority: "high", Isolation: "stop"}, "ba", "bb")
	h1, h2 := e.Hosts()[0], e.Hosts()[1]
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	t0 := time.Now()
	if err := cluster.CutLink(e.C, h1, h2); err != nil {
		t.Fatal(err)
	}
	if err := Poll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
		s1, _ := e.HostState(ctx, h1, h2)
		s2, _ := e.HostState(ctx, h2, h1)
		return s1 == "isolated" && s2 == "isolated", nil
	}); err != nil {
		t.Fatalf("the hosts do not see each other isolated: %v", err)
	}
	// Past the pill's grace, the flags' settling and D: a pill would have come by then.
	observe(fastD + 5*time.Second)
	placedOn(t, e, guests[:2], h1.Name())
	placedOn(t, e, guests[2:], h2.Name())
	if err := cluster.JoinLinks(e.C); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitHealthy(ctx, e.Hosts()...); err != nil {
		t.Fatal(err)
	}
	observe(2 * time.Second)
	checkWatch(t, w)
	evs := eventsSince(t, ctx, e, h1, t0)
	if n := countKind(evs, "pill-sent", false) + countKind(evs, "isolated", false); n != 0 {
		t.Errorf("%d pill-sent or isolated events, want none: both hosts reach their gateway", n)
	}
	noRestartEvents(t, evs, guests)
}

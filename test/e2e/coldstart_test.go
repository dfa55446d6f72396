package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wingmanha/wingman/test/cluster"
)

// coldStartSeedEnv replays a cold-start scenario's random power-on order and times.
const coldStartSeedEnv = "WINGMAN_COLDSTART_SEED"

// ceilingWait is C + D with the 1 % clock-rate margin: how long a lone observer waits, from its
// own start, before it counts hosts it has never seen write as off (quorum's CeilingWait).
func ceilingWait(c time.Duration) time.Duration {
	w := c + fastD
	return w + w/100
}

// coldVM is a protected guest of a whole-site outage: its host before the outage and its start
// order.
type coldVM struct {
	Guest
	owner *cluster.Host
	tier  int
}

// startColdSite starts a 3-host cluster with o and, on every host, one protected guest of each
// start order 0, 1 and 2, and waits until each runs once.
func startColdSite(t *testing.T, o Options) (*Env, context.Context, []coldVM) {
	t.Helper()
	e := startEnv(t, o)
	ctx := ctxFor(t, 10*time.Minute)
	var vms []coldVM
	for _, h := range e.Hosts() {
		for tier := range 3 {
			gs, err := e.newGuests(ctx, h, []string{fmt.Sprintf("cs-%s-t%d", h.Name(), tier)}, Policy{StartOrder: tier})
			if err != nil {
				t.Fatal(err)
			}
			vms = append(vms, coldVM{gs[0], h, tier})
		}
	}
	if _, err := e.WaitRunningOnce(ctx, time.Minute, guestsOf(vms)); err != nil {
		t.Fatal(err)
	}
	return e, ctx, vms
}

func guestsOf(vms []coldVM) []Guest {
	var gs []Guest
	for _, v := range vms {
		gs = append(gs, v.Guest)
	}
	return gs
}

// coldStartRand is the scenario's random source, seeded from coldStartSeedEnv or the clock; the
// seed is logged so that a failure can be replayed.
func coldStartRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(coldStartSeedEnv); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned integer seed: %v", coldStartSeedEnv, s, err)
		}
		seed = n
	}
	t.Logf("random power-on order and times from seed %d (replay with %s=%d)", seed, coldStartSeedEnv, seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// comeBack is a host's return: when its wingmand was launched, and when its API answered.
type comeBack struct {
	launched, back time.Time
}

// powerOnAt powers each of hosts on at its offset after t0 and starts its wingmand, in the
// background; wait returns when each has, with each host's times.
func powerOnAt(t *testing.T, ctx context.Context, e *Env, t0 time.Time, hosts []*cluster.Host, at []time.Duration) (wait func() map[string]comeBack) {
	var mu sync.Mutex
	out := map[string]comeBack{}
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			time.Sleep(time.Until(t0.Add(at[i])))
			if err := e.C.PowerOn(ctx, h); err != nil {
				t.Errorf("power on %s: %v", h.Name(), err)
				return
			}
			launched := time.Now()
			if err := e.C.StartWingmand(ctx, h, e.WingmandOptions()); err != nil {
				t.Errorf("start wingmand on %s: %v", h.Name(), err)
				return
			}
			mu.Lock()
			out[h.Name()] = comeBack{launched, time.Now()}
			mu.Unlock()
			t.Logf("%s powered on %v after the outage, its wingmand answers %v after it", h.Name(),
				launched.Sub(t0).Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
		})
	}
	return func() map[string]comeBack {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

// firstRunning samples every host's libvirt until every one of guests has been seen running, and
// returns when each was first seen (after t0). A host that does not answer yet (booting) is
// left out of a sample, not counted as running nothing.
func firstRunning(ctx context.Context, e *Env, guests []Guest, timeout time.Duration) (map[string]time.Time, error) {
	seen := map[string]time.Time{}
	var missing []string
	err := Poll(ctx, timeout, SampleInterval, func() (bool, error) {
		p, _ := e.running(ctx, time.Second)
		now := time.Now()
		missing = missing[:0]
		for _, g := range guests {
			if len(p[g.UUID]) > 0 && seen[g.Name].IsZero() {
				seen[g.Name] = now
			}
			if seen[g.Name].IsZero() {
				missing = append(missing, g.Name)
			}
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		return seen, fmt.Errorf("wait for every guest running: %w (never seen: %v)", err, missing)
	}
	return seen, nil
}

// takenAt is when each VM's lease was first acquired at or after t0, by the event log.
func takenAt(evs []Event, t0 time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	for _, ev := range evs {
		if ev.Kind == "lease-acquired" && ev.VM != "" && !ev.Time.Before(t0) && out[ev.VM].IsZero() {
			out[ev.VM] = ev.Time
		}
	}
	return out
}

// checkColdStart checks each VM against the moment the rules first allow it to start (allowed)
// and the earliest moment they could (notBefore: counted from when the daemons were launched,
// before their APIs answer): none ran before notBefore; none ran more than slack after allowed;
// and no VM of a later start order was taken before one of an earlier order that the rules allowed
// as early or earlier (race, when set for a pair, excuses it: see the callers).
func checkColdStart(t *testing.T, vms []coldVM, ran, taken map[string]time.Time, t0 time.Time,
	allowed, notBefore func(coldVM) time.Time, slack time.Duration, race func(x, y coldVM) bool) {
	t.Helper()
	var gaps []time.Duration
	for _, v := range vms {
		a, nb, r := allowed(v), notBefore(v), ran[v.Name]
		gap := r.Sub(a)
		gaps = append(gaps, gap)
		t.Logf("%-14s (of %s, order %d): rules allow it at %8v, taken at %8v, running at %8v: %v after the rules allow it",
			v.Name, v.owner.Name(), v.tier, a.Sub(t0).Round(time.Millisecond), taken[v.Name].Sub(t0).Round(time.Millisecond),
			r.Sub(t0).Round(time.Millisecond), gap.Round(time.Millisecond))
		if r.Before(nb) {
			t.Errorf("%s ran %v after the outage, before the rules could allow it (%v)", v.Name, r.Sub(t0).Round(time.Millisecond), nb.Sub(t0).Round(time.Millisecond))
		}
		if gap > slack {
			t.Errorf("%s ran %v after the rules allow it: more than %v", v.Name, gap.Round(time.Millisecond), slack)
		}
	}
	slices.Sort(gaps)
	t.Logf("running after the moment the rules allow: min %v, median %v, max %v",
		gaps[0].Round(time.Millisecond), gaps[len(gaps)/2].Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond))
	// An event is written just after its lease is taken: allow for a slow write.
	const eventSlack = time.Second
	for _, x := range vms {
		for _, y := range vms {
			if x.tier >= y.tier || allowed(x).After(allowed(y)) || taken[x.Name].IsZero() || taken[y.Name].IsZero() {
				continue
			}
			if taken[y.Name].Add(eventSlack).Before(taken[x.Name]) {
				msg := fmt.Sprintf("%s (order %d) taken %v before %s (order %d), which the rules allowed as early",
					y.Name, y.tier, taken[x.Name].Sub(taken[y.Name]).Round(time.Millisecond), x.Name, x.tier)
				if race != nil && race(x, y) {
					t.Logf("%s (a host that has just joined may not yet see the verdict on %s)", msg, x.owner.Name())
					continue
				}
				t.Error(msg)
			}
		}
	}
}

// TestColdStartTwoOfThree: the whole site loses power; two of three hosts come back, in a random
// order and at random times over up to 2 minutes; the third never does. Every protected VM runs
// again exactly once (the checker), in start order, none before the rules allow it and none
// much later (DESIGN.md, whole-site outage):
//   - a VM of a returning host, once a quorate set of hosts is back (the second host, or the first
//     alone once it has seen the other two silent for C + D);
//   - a VM of the host that never returns, also not before its slot has been silent for D on an
//     observer that is up (the first host back counts from its own start).
//
// When the second host comes back after the first one declared it dead, its VMs already run on
// the first host: it destroys nothing and starts none of them again.
func TestColdStartTwoOfThree(t *testing.T) {
	full(t)
	e, ctx, vms := startColdSite(t, Options{Profile: "fast", LeaseCeiling: e2eCeiling})
	guests := guestsOf(vms)
	rng := coldStartRand(t)
	hosts := e.Hosts()
	order := rng.Perm(len(hosts))
	first, second, never := hosts[order[0]], hosts[order[1]], hosts[order[2]]
	at1 := time.Duration(rng.Int64N(int64(time.Minute)))
	at2 := at1 + time.Duration(rng.Int64N(int64(time.Minute)))
	t.Logf("power on %s after %v, %s after %v, %s never (C %v + D %v + 1%% = %v)", first.Name(), at1.Round(time.Millisecond),
		second.Name(), at2.Round(time.Millisecond), never.Name(), e2eCeiling, fastD, ceilingWait(e2eCeiling))
	w := e.StartWatch(guests, WatchOptions{})
	t0 := powerOffTogether(t, e, hosts...)
	wait := powerOnAt(t, ctx, e, t0, []*cluster.Host{first, second}, []time.Duration{at1, at2})
	ran, err := firstRunning(ctx, e, guests, at2+ceilingWait(e2eCeiling)+2*time.Minute)
	backs := wait()
	if err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		return
	}
	p, err := e.WaitRunningOnce(ctx, time.Minute, guests, never)
	if err != nil {
		t.Fatal(err)
	}
	observe(5 * time.Second)
	checkWatch(t, w)
	if p2, err := e.WaitRunningOnce(ctx, time.Second, guests, never); err != nil || fmt.Sprint(p2) != fmt.Sprint(p) {
		t.Errorf("placement changed after every VM ran: %v, then %v (%v)", p, p2, err)
	}
	a, b := backs[first.Name()], backs[second.Name()]
	cw := ceilingWait(e2eCeiling)
	// A quorate set: the second host, or the first alone once it proved the others off.
	quorate := func(t func(comeBack) time.Time) time.Time {
		if q := t(a).Add(cw); q.Before(t(b)) {
			return q
		}
		return t(b)
	}
	rule := func(t func(comeBack) time.Time) func(coldVM) time.Time {
		return func(v coldVM) time.Time {
			q := quorate(t)
			if silent := t(a).Add(fastD); v.owner == never && silent.After(q) {
				return silent
			}
			return q
		}
	}
	back := func(c comeBack) time.Time { return c.back }
	launched := func(c comeBack) time.Time { return c.launched }
	evs := eventsSince(t, ctx, e, first, t0)
	secondLate := b.launched.After(a.launched.Add(cw))
	checkColdStart(t, vms, ran, takenAt(evs, t0), t0, rule(back), rule(launched), 30*time.Second, func(x, y coldVM) bool {
		return x.owner == never && y.owner == second && !secondLate
	})
	if secondLate {
		t.Logf("%s came back %v after %s, past C + D: its VMs ran on %s before it was back: %v", second.Name(),
			b.launched.Sub(a.launched).Round(time.Millisecond), first.Name(), first.Name(), p)
	}
	if n := countKind(Since(evs, b.back), "destroyed-stale-copy", true); n > 0 {
		t.Errorf("%d stale copies destroyed after %s came back: none should have started there", n, second.Name())
	}
}

// coldStartAlone powers the whole site off and one random host on again, and returns it, the
// others, when its wingmand was launched and when it answered.
func coldStartAlone(t *testing.T, ctx context.Context, e *Env, guests []Guest) (*cluster.Host, []*cluster.Host, time.Time, comeBack, *Watch) {
	t.Helper()
	rng := coldStartRand(t)
	hosts := e.Hosts()
	i := rng.IntN(len(hosts))
	alone, others := hosts[i], slices.Delete(slices.Clone(hosts), i, i+1)
	at := time.Duration(rng.Int64N(int64(10 * time.Second)))
	t.Logf("power on %s alone after %v", alone.Name(), at.Round(time.Millisecond))
	w := e.StartWatch(guests, WatchOptions{})
	t0 := powerOffTogether(t, e, hosts...)
	backs := powerOnAt(t, ctx, e, t0, []*cluster.Host{alone}, []time.Duration{at})()
	if t.Failed() {
		t.FailNow()
	}
	return alone, others, t0, backs[alone.Name()], w
}

// TestColdStartOneOfThree: the whole site loses power and only one host comes back. It cannot
// tell the other two from a pair cut off from the LUN that lease each other (TestTwoPowerLossesAtOnce),
// so nothing starts, its own VMs neither, until it has seen them silent for C + D (+1 %) from
// its own start; then every VM runs there, once, in start order.
func TestColdStartOneOfThree(t *testing.T) {
	full(t)
	e, ctx, vms := startColdSite(t, Options{Profile: "fast", LeaseCeiling: e2eCeiling})
	guests := guestsOf(vms)
	alone, others, t0, a, w := coldStartAlone(t, ctx, e, guests)
	cw := ceilingWait(e2eCeiling)
	observe(time.Until(a.launched.Add(cw - time.Second)))
	noneRestarted(t, ctx, e, guests, fmt.Sprintf("%v after %s's wingmand started, before C + D = %v", time.Since(a.launched).Round(time.Millisecond), alone.Name(), cw))
	ran, err := firstRunning(ctx, e, guests, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitRunningOnce(ctx, 10*time.Second, guests, others...); err != nil {
		t.Fatal(err)
	}
	observe(3 * time.Second)
	checkWatch(t, w)
	evs := eventsSince(t, ctx, e, alone, t0)
	checkColdStart(t, vms, ran, takenAt(evs, t0), t0,
		func(coldVM) time.Time { return a.back.Add(cw) }, func(coldVM) time.Time { return a.launched.Add(cw) }, 30*time.Second, nil)
}

// TestColdStartOneOfThreeConfirmOff: as TestColdStartOneOfThree, with the production ceiling
// (60 s); once D has passed on the lone host, the operator, who has checked, confirms the two
// others off (wingman host confirm-off): every VM starts at once, in start order, not after
// C + D.
func TestColdStartOneOfThreeConfirmOff(t *testing.T) {
	full(t)
	e, ctx, vms := startColdSite(t, Options{Profile: "fast"})
	guests := guestsOf(vms)
	alone, others, t0, a, w := coldStartAlone(t, ctx, e, guests)
	// The lone host judges others' silence only once its own view has been fresh for D.
	observe(time.Until(a.back.Add(fastD + 2*time.Second)))
	noneRestarted(t, ctx, e, guests, "before any confirm-off")
	c := e.Client(alone)
	confirmed := time.Now()
	for _, h := range others {
		r, err := c.ConfirmOff(ctx, h.Name())
		if err != nil {
			t.Fatalf("confirm-off of %s on %s: %v", h.Name(), alone.Name(), err)
		}
		t.Logf("confirm-off of %s: generation %d, by %q", r.Host, r.Generation, r.By)
	}
	ran, err := firstRunning(ctx, e, guests, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitRunningOnce(ctx, 10*time.Second, guests, others...); err != nil {
		t.Fatal(err)
	}
	observe(3 * time.Second)
	checkWatch(t, w)
	evs := eventsSince(t, ctx, e, alone, t0)
	if n := countKind(evs, "confirmed-off", false); n != 2 {
		t.Errorf("%d confirmed-off events, want 2", n)
	}
	checkColdStart(t, vms, ran, takenAt(evs, t0), t0,
		func(coldVM) time.Time { return confirmed }, func(coldVM) time.Time { return confirmed }, 20*time.Second, nil)
}

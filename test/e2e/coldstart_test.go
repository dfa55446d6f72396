package e2e

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wingmanha/wingman/test/cluster"
)

// coldStartSeedEnv replays a cold-start scenario's random power-on order and times.
const coldStartSeedEnv = "WINGMAN_COLDSTART_SEED"

// coldSlack bounds how long after the rules allow it a VM may run: generous, for a functional
// test on a loaded machine. The later start orders wait for the earlier ones' leases, and the
// starts of 9 guests share the machine's cores (a start took up to 13 s here), and the coordinator,
// if it is the host that came back last, counts a lost host's silence from its own start.
const coldSlack = time.Minute

// startColdSite starts a 3-host cluster with o and a cold site's guests (Env.NewColdSite). All
// 9 may have to run on one host: the hosts of this machine's few cores allow more vCPUs per CPU
// than the default 4.
func startColdSite(t *testing.T, o Options) (*Env, context.Context, []ColdVM) {
	t.Helper()
	o.CPUOvercommit = 16
	e := startEnv(t, o)
	ctx := ctxFor(t, 10*time.Minute)
	vms, err := e.NewColdSite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return e, ctx, vms
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

// logReturns logs when each host came back after the outage at t0.
func logReturns(t *testing.T, t0 time.Time, backs map[string]Return) {
	for _, h := range slices.Sorted(maps.Keys(backs)) {
		r := backs[h]
		t.Logf("%s: wingmand launched %v after the outage, answering %v after it", h, r.Launched.Sub(t0).Round(time.Millisecond), r.Back.Sub(t0).Round(time.Millisecond))
	}
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
func checkColdStart(t *testing.T, vms []ColdVM, ran, taken map[string]time.Time, t0 time.Time,
	allowed, notBefore func(ColdVM) time.Time, slack time.Duration, race func(x, y ColdVM) bool) {
	t.Helper()
	var gaps []time.Duration
	for _, v := range vms {
		a, nb, r := allowed(v), notBefore(v), ran[v.Name]
		gap := r.Sub(a)
		gaps = append(gaps, gap)
		t.Logf("%-14s (of %s, order %d): rules allow it at %8v, taken at %8v, running at %8v: %v after the rules allow it",
			v.Name, v.Owner.Name(), v.Tier, a.Sub(t0).Round(time.Millisecond), taken[v.Name].Sub(t0).Round(time.Millisecond),
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
			if x.Tier >= y.Tier || allowed(x).After(allowed(y)) || taken[x.Name].IsZero() || taken[y.Name].IsZero() {
				continue
			}
			if taken[y.Name].Add(eventSlack).Before(taken[x.Name]) {
				msg := fmt.Sprintf("%s (order %d) taken %v before %s (order %d), which the rules allowed as early",
					y.Name, y.Tier, taken[x.Name].Sub(taken[y.Name]).Round(time.Millisecond), x.Name, x.Tier)
				if race != nil && race(x, y) {
					t.Logf("%s: the coordinator, back last, counts %s's silence from its own start", msg, x.Owner.Name())
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
	guests := GuestsOf(vms)
	rng := coldStartRand(t)
	hosts := e.Hosts()
	order := rng.Perm(len(hosts))
	first, second, never := hosts[order[0]], hosts[order[1]], hosts[order[2]]
	at1 := time.Duration(rng.Int64N(int64(time.Minute)))
	at2 := at1 + time.Duration(rng.Int64N(int64(time.Minute)))
	t.Logf("power on %s after %v, %s after %v, %s never (C %v + D %v + 1%% = %v)", first.Name(), at1.Round(time.Millisecond),
		second.Name(), at2.Round(time.Millisecond), never.Name(), e2eCeiling, fastD, CeilingWait(e2eCeiling, fastD))
	w := e.StartWatch(guests, WatchOptions{})
	t0 := powerOffTogether(t, e, hosts...)
	wait := e.PowerOnAt(ctx, t0, []*cluster.Host{first, second}, []time.Duration{at1, at2})
	ran, err := e.FirstRunning(ctx, guests, at2+CeilingWait(e2eCeiling, fastD)+2*time.Minute)
	backs, werr := wait()
	if werr != nil {
		t.Fatal(werr)
	}
	logReturns(t, t0, backs)
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
	cw := CeilingWait(e2eCeiling, fastD)
	back := func(r Return) time.Time { return r.Back }
	launched := func(r Return) time.Time { return r.Launched }
	evs := eventsSince(t, ctx, e, first, t0)
	secondLate := b.Launched.After(a.Launched.Add(cw))
	checkColdStart(t, vms, ran, takenAt(evs, t0), t0, TwoOfThreeRule(a, b, never, e2eCeiling, fastD, back), TwoOfThreeRule(a, b, never, e2eCeiling, fastD, launched), coldSlack, func(x, y ColdVM) bool {
		// The coordinator is the lowest-numbered host back: if that is the second one, it counts
		// the lost host's silence from its own start, and may declare it up to D after the
		// first host back could have; the VMs of the returning hosts do not wait for that.
		return x.Owner == never && !secondLate && second.Index() < first.Index()
	})
	if secondLate {
		t.Logf("%s came back %v after %s, past C + D: its VMs ran on %s before it was back: %v", second.Name(),
			b.Launched.Sub(a.Launched).Round(time.Millisecond), first.Name(), first.Name(), p)
	}
	if n := countKind(Since(evs, b.Back), "destroyed-stale-copy", true); n > 0 {
		t.Errorf("%d stale copies destroyed after %s came back: none should have started there", n, second.Name())
	}
}

// coldStartAlone powers the whole site off and one random host on again, and returns it, the
// others, when its wingmand was launched and when it answered.
func coldStartAlone(t *testing.T, ctx context.Context, e *Env, guests []Guest) (*cluster.Host, []*cluster.Host, time.Time, Return, *Watch) {
	t.Helper()
	rng := coldStartRand(t)
	hosts := e.Hosts()
	i := rng.IntN(len(hosts))
	alone, others := hosts[i], slices.Delete(slices.Clone(hosts), i, i+1)
	at := time.Duration(rng.Int64N(int64(10 * time.Second)))
	t.Logf("power on %s alone after %v", alone.Name(), at.Round(time.Millisecond))
	w := e.StartWatch(guests, WatchOptions{})
	t0 := powerOffTogether(t, e, hosts...)
	backs, err := e.PowerOnAt(ctx, t0, []*cluster.Host{alone}, []time.Duration{at})()
	if err != nil {
		t.Fatal(err)
	}
	logReturns(t, t0, backs)
	return alone, others, t0, backs[alone.Name()], w
}

// runAlone waits until every guest runs once on alone, lets the checker sample a little longer
// and checks it, and returns when each guest was first seen running and the events since t0.
func runAlone(t *testing.T, ctx context.Context, e *Env, guests []Guest, alone *cluster.Host, others []*cluster.Host, t0 time.Time, w *Watch) (map[string]time.Time, []Event) {
	t.Helper()
	ran, err := e.FirstRunning(ctx, guests, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitRunningOnce(ctx, 10*time.Second, guests, others...); err != nil {
		t.Fatal(err)
	}
	observe(3 * time.Second)
	checkWatch(t, w)
	return ran, eventsSince(t, ctx, e, alone, t0)
}

// TestColdStartOneOfThree: the whole site loses power and only one host comes back. It cannot
// tell the other two from a pair cut off from the LUN that lease each other (TestTwoPowerLossesAtOnce),
// so nothing starts, its own VMs neither, until it has seen them silent for C + D (+1 %) from
// its own start; then every VM runs there, once, in start order.
func TestColdStartOneOfThree(t *testing.T) {
	full(t)
	e, ctx, vms := startColdSite(t, Options{Profile: "fast", LeaseCeiling: e2eCeiling})
	guests := GuestsOf(vms)
	alone, others, t0, a, w := coldStartAlone(t, ctx, e, guests)
	cw := CeilingWait(e2eCeiling, fastD)
	observe(time.Until(a.Launched.Add(cw - time.Second)))
	noneRestarted(t, ctx, e, guests, fmt.Sprintf("%v after %s's wingmand started, before C + D = %v", time.Since(a.Launched).Round(time.Millisecond), alone.Name(), cw))
	ran, evs := runAlone(t, ctx, e, guests, alone, others, t0, w)
	checkColdStart(t, vms, ran, takenAt(evs, t0), t0,
		func(ColdVM) time.Time { return a.Back.Add(cw) }, func(ColdVM) time.Time { return a.Launched.Add(cw) }, coldSlack, nil)
}

// TestColdStartOneOfThreeConfirmOff: as TestColdStartOneOfThree, with the production ceiling
// (60 s); once D has passed on the lone host, the operator, who has checked, confirms the two
// others off (wingman host confirm-off): every VM starts at once, in start order, not after
// C + D.
func TestColdStartOneOfThreeConfirmOff(t *testing.T) {
	full(t)
	e, ctx, vms := startColdSite(t, Options{Profile: "fast"})
	guests := GuestsOf(vms)
	alone, others, t0, a, w := coldStartAlone(t, ctx, e, guests)
	// The lone host judges others' silence only once its own view has been fresh for D.
	observe(time.Until(a.Back.Add(fastD + 2*time.Second)))
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
	ran, evs := runAlone(t, ctx, e, guests, alone, others, t0, w)
	if n := countKind(evs, "confirmed-off", false); n != 2 {
		t.Errorf("%d confirmed-off events, want 2", n)
	}
	checkColdStart(t, vms, ran, takenAt(evs, t0), t0,
		func(ColdVM) time.Time { return confirmed }, func(ColdVM) time.Time { return confirmed }, coldSlack, nil)
}

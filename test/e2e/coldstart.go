package e2e

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wingmanha/wingman/test/cluster"
)

// A whole-site outage (DESIGN.md): every host loses power at once and comes back in any order,
// some never. The scenarios (coldstart_test.go) and test/bench share what follows.

// CeilingWait is C + D with the 1 % clock-rate margin, for the ceiling c and D d: how long a
// lone observer waits, from its own start, before it counts hosts it has never seen write as
// off (quorum's CeilingWait).
func CeilingWait(c, d time.Duration) time.Duration {
	w := c + d
	return w + w/100
}

// ColdVM is a protected guest of a whole-site outage: its host before the outage and its start
// order.
type ColdVM struct {
	Guest
	Owner *cluster.Host
	Tier  int
}

// NewColdSite creates, on every host, one protected guest of each start order 0, 1 and 2 (those
// of order 2 with restart policy on-failure: they were running when the power went, so they run
// again too), and waits until each runs once.
func (e *Env) NewColdSite(ctx context.Context) ([]ColdVM, error) {
	var vms []ColdVM
	for _, h := range e.Hosts() {
		for tier := range 3 {
			p := Policy{StartOrder: tier}
			if tier == 2 {
				p.Restart = "on-failure"
			}
			gs, err := e.newGuests(ctx, h, []string{fmt.Sprintf("cs-%s-t%d", h.Name(), tier)}, p)
			if err != nil {
				return nil, err
			}
			vms = append(vms, ColdVM{gs[0], h, tier})
		}
	}
	_, err := e.WaitRunningOnce(ctx, time.Minute, GuestsOf(vms))
	return vms, err
}

// GuestsOf are the guests of vms.
func GuestsOf(vms []ColdVM) []Guest {
	var gs []Guest
	for _, v := range vms {
		gs = append(gs, v.Guest)
	}
	return gs
}

// Return is a host's return after an outage: when its wingmand was launched (its daemon can
// have counted nothing before) and when its API answered (it is back).
type Return struct {
	Launched, Back time.Time
}

// PowerOnAt powers each of hosts on at its offset after t0 and starts its wingmand, in the
// background; wait returns, once each has, when each came back, and the errors.
func (e *Env) PowerOnAt(ctx context.Context, t0 time.Time, hosts []*cluster.Host, at []time.Duration) (wait func() (map[string]Return, error)) {
	var mu sync.Mutex
	out := map[string]Return{}
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			time.Sleep(time.Until(t0.Add(at[i])))
			if err := e.C.PowerOn(ctx, h); err != nil {
				errs[i] = err
				return
			}
			launched := time.Now()
			if err := e.C.StartWingmand(ctx, h, e.WingmandOptions()); err != nil {
				errs[i] = err
				return
			}
			mu.Lock()
			out[h.Name()] = Return{launched, time.Now()}
			mu.Unlock()
		})
	}
	return func() (map[string]Return, error) {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, err := range errs {
			if err != nil {
				return out, err
			}
		}
		return out, nil
	}
}

// FirstRunning samples every host's libvirt until every one of guests has been seen running, and
// returns when each was first seen. A host that does not answer yet (booting) is left out of a
// sample, not counted as running nothing.
func (e *Env) FirstRunning(ctx context.Context, guests []Guest, timeout time.Duration) (map[string]time.Time, error) {
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

// TwoOfThreeRule is the moment DESIGN.md's rules first allow a VM to start when two hosts of
// three come back after a whole-site outage (first, then second) and the third, never, does not,
// on a LUN of lease ceiling c and D d, with each host's return time taken by at (Return.Back:
// when the rules allow it; Return.Launched: the earliest they could):
//   - a quorate set of hosts is back at the second's return, or once the first alone has seen the
//     other two silent for C + D from its own start;
//   - a VM of a returning host may start then (its host back, or proven off);
//   - a VM of the host that never returns, then too, but not before its slot has been silent for
//     D on an observer that is up (the first host back, from its own start).
func TwoOfThreeRule(first, second Return, never *cluster.Host, c, d time.Duration, at func(Return) time.Time) func(ColdVM) time.Time {
	quorate := at(second)
	if alone := at(first).Add(CeilingWait(c, d)); alone.Before(quorate) {
		quorate = alone
	}
	return func(v ColdVM) time.Time {
		if silent := at(first).Add(d); v.Owner == never && silent.After(quorate) {
			return silent
		}
		return quorate
	}
}

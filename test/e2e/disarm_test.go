package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
)

// TestDisarmEarlyArmWithCutHost: HA is disarmed for a short while, then one host loses both its
// heartbeat LUN path and the network for longer than D. Nothing fails over and its guests keep
// running there. An operator arms early from a good host, which the cut host cannot hear: its
// guests are restarted elsewhere only after it re-armed by itself (its own timer) and fenced
// itself, D after the others' estimate of that. The never-two checker samples throughout.
func TestDisarmEarlyArmWithCutHost(t *testing.T) {
	e, ctx, h1, guests := lunFaultEnv(t, "da")
	h2 := e.Hosts()[1]
	w := e.StartWatch(guests, WatchOptions{})
	const length = 20 * time.Second // well over D (7.5 s), short for the test

	disarmed := time.Now()
	st, err := e.Client(h2).Disarm(ctx, api.DisarmRequest{For: length, Reason: "e2e: SAN work"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("disarmed from %s: %+v", h2.Name(), st)
	// The cut must come after h1's "disarmed" reached the LUN: until then it is armed.
	if err := Poll(ctx, 10*time.Second, 50*time.Millisecond, func() (bool, error) {
		s, err := e.Client(h2).Status(ctx)
		return err == nil && slices.Contains(s.HA.DisarmedHosts, h1.Name()), nil
	}); err != nil {
		t.Fatalf("%s never acknowledged the disarm: %v", h1.Name(), err)
	}
	heal := cutOff(t, ctx, e, h1, "eio")
	cut := time.Now()
	observe(2 * time.Second)
	armed, err := e.Client(h2).Arm(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if armed.Disarmed || !slices.Contains(armed.DisarmedHosts, h1.Name()) {
		t.Errorf("after the early arm: %+v, want armed with %s still disarmed", armed, h1.Name())
	}

	// Past D after the cut and after the arm, until just before h1's own timer runs out:
	// its guests run there, once, and nothing was declared.
	for time.Since(disarmed) < length-time.Second {
		p, err := e.Running(ctx)
		if err == nil {
			for _, g := range guests {
				if hs := p[g.UUID]; len(hs) != 1 || hs[0] != h1.Name() {
					t.Fatalf("%v after the cut (disarmed): %s runs on %v, want only %s", time.Since(cut).Round(time.Millisecond), g.Name, hs, h1.Name())
				}
			}
		}
		observe(200 * time.Millisecond)
	}
	if since := time.Since(cut); since < fastTimings.Dead {
		t.Fatalf("held only %v after the cut, not past D", since)
	}

	p, err := e.WaitRunningOnce(ctx, 60*time.Second, guests, h1)
	back := time.Since(disarmed)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guests of %s running again after %v from the disarm (length %v, D %v): %v", h1.Name(), back.Round(time.Millisecond), length, fastTimings.Dead, p)
	if early := length + fastTimings.Dead - fastTimings.Renew; back < early {
		t.Errorf("failover %v after the disarm: before its length + D - R = %v, while the cut host could still be disarmed", back.Round(time.Millisecond), early)
	}
	if bound := length + length/100 + fastTimings.Dead + 10*time.Second; back > bound {
		t.Errorf("failover %v after the disarm: over length + 1%% + D + 10 s = %v", back.Round(time.Millisecond), bound)
	}
	evs := eventsSince(t, ctx, e, h2, disarmed)
	for _, k := range []string{"ha-disarmed", "ha-armed", "declared-dead"} {
		if countKind(evs, k, false) == 0 {
			t.Errorf("no %s event", k)
		}
	}
	heal(w, guests)
}

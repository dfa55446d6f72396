package e2e

import (
	"testing"
	"time"
)

// TestPowerLoss: a host loses power; each of its protected VMs runs again on a survivor, exactly
// once, within the bound (D plus the restart), and no sample ever shows two copies.
func TestPowerLoss(t *testing.T) {
	e := startEnv(t, Options{Profile: "fast"})
	ctx := ctxFor(t, 5*time.Minute)
	h1 := e.Hosts()[0]
	guests, err := e.NewGuests(ctx, h1, "pl", 2, "high")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitRunningOnce(ctx, 30*time.Second, guests); err != nil {
		t.Fatal(err)
	}
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

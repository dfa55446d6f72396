package watchdog

import (
	"slices"
	"testing"
	"time"
)

func TestGuardHealthy(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	const maxAge = 3 * time.Second
	type tick struct {
		loop string
		at   time.Duration // after t0
	}
	tests := []struct {
		name    string
		loops   []string
		ticks   []tick
		now     time.Duration
		maxAge  time.Duration
		healthy bool
		stale   []string
	}{
		{name: "no loops proves nothing", now: 0, maxAge: maxAge, healthy: false},
		{name: "registered, never ticked", loops: []string{"heartbeat"}, now: 0, maxAge: maxAge, stale: []string{"heartbeat"}},
		{name: "one fresh loop", loops: []string{"heartbeat"}, ticks: []tick{{"heartbeat", 0}}, now: time.Second, maxAge: maxAge, healthy: true},
		{name: "tick exactly maxAge ago counts", loops: []string{"heartbeat"}, ticks: []tick{{"heartbeat", 0}}, now: maxAge, maxAge: maxAge, healthy: true},
		{name: "tick just over maxAge ago", loops: []string{"heartbeat"}, ticks: []tick{{"heartbeat", 0}}, now: maxAge + time.Nanosecond, maxAge: maxAge, stale: []string{"heartbeat"}},
		{name: "one of two stuck", loops: []string{"heartbeat", "decide"},
			ticks: []tick{{"heartbeat", 0}, {"decide", 5 * time.Second}}, now: 5 * time.Second, maxAge: maxAge, stale: []string{"heartbeat"}},
		{name: "both fresh", loops: []string{"heartbeat", "decide"},
			ticks: []tick{{"heartbeat", 4 * time.Second}, {"decide", 5 * time.Second}}, now: 5 * time.Second, maxAge: maxAge, healthy: true},
		{name: "latest tick counts", loops: []string{"heartbeat"},
			ticks: []tick{{"heartbeat", 0}, {"heartbeat", 9 * time.Second}}, now: 10 * time.Second, maxAge: maxAge, healthy: true},
		{name: "tick after now is fresh", loops: []string{"heartbeat"}, ticks: []tick{{"heartbeat", 2 * time.Second}}, now: time.Second, maxAge: maxAge, healthy: true},
		{name: "same name twice: both must tick", loops: []string{"reader", "reader"},
			ticks: []tick{{"reader", time.Second}}, now: time.Second, maxAge: maxAge, stale: []string{"reader"}},
		{name: "zero maxAge is never healthy", loops: []string{"heartbeat"}, ticks: []tick{{"heartbeat", time.Second}}, now: time.Second, maxAge: 0, stale: []string{"heartbeat"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clock time.Time
			g := NewGuard(func() time.Time { return clock })
			// A name's first loop is ticked as "name", a second one as "name#1".
			loops := map[string]*Loop{}
			for _, name := range tt.loops {
				key := name
				if loops[key] != nil {
					key += "#1"
				}
				loops[key] = g.Loop(name)
			}
			for _, tk := range tt.ticks {
				clock = t0.Add(tk.at)
				loops[tk.loop].Tick()
			}
			now := t0.Add(tt.now)
			if got := g.Healthy(now, tt.maxAge); got != tt.healthy {
				t.Errorf("Healthy = %v, want %v", got, tt.healthy)
			}
			var stale []string
			for _, s := range g.Stale(now, tt.maxAge) {
				stale = append(stale, s.Name)
			}
			if !slices.Equal(stale, tt.stale) {
				t.Errorf("Stale = %v, want %v", stale, tt.stale)
			}
		})
	}
}

func TestGuardDoneAndStaleDetails(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	clock := t0
	g := NewGuard(func() time.Time { return clock })
	hb, mig := g.Loop("heartbeat"), g.Loop("migration")
	hb.Tick()
	if got := g.Stale(t0, time.Second); len(got) != 1 || got[0] != (Stale{Name: "migration", Never: true}) {
		t.Errorf("Stale = %+v, want migration never ticked", got)
	}
	mig.Done() // ended on purpose: no longer counts
	if !g.Healthy(t0, time.Second) {
		t.Errorf("not healthy after the only stale loop ended")
	}
	clock = t0.Add(10 * time.Second)
	if got := g.Stale(clock, time.Second); len(got) != 1 || got[0] != (Stale{Name: "heartbeat", Age: 10 * time.Second}) {
		t.Errorf("Stale = %+v, want heartbeat 10s old", got)
	}
	hb.Done()
	if g.Healthy(clock, time.Second) {
		t.Errorf("healthy with no loop left")
	}
}

func TestGuardLoopWithin(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	now := t0
	g := NewGuard(func() time.Time { return now })
	hb, vm := g.Loop("heartbeat"), g.LoopWithin("vm-manager", 2*time.Minute)
	hb.Tick()
	vm.Tick()
	check := func(at time.Duration, want []string) {
		t.Helper()
		now = t0.Add(at)
		hb.Tick() // the heartbeat loop asks, and so is fresh
		var got []string
		for _, s := range g.Stale(now, 3*time.Second) {
			got = append(got, s.Name)
		}
		if !slices.Equal(got, want) || g.Healthy(now, 3*time.Second) != (len(want) == 0) {
			t.Errorf("at %v: stale %v, want %v", at, got, want)
		}
	}
	check(10*time.Second, nil) // slow, within its own bound
	check(2*time.Minute, nil)  // exactly its bound counts
	check(2*time.Minute+time.Second, []string{"vm-manager"})
	if g.Healthy(now, 0) {
		t.Error("zero maxAge is never healthy, whatever a loop's own bound")
	}
}

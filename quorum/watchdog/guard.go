package watchdog

import (
	"slices"
	"sync"
	"time"
)

// Guard tracks the progress of the daemon's loops (heartbeat writer, LUN
// reader, decision loop, ...), so that the watchdog is petted only while all
// of them move: a stuck loop must let the watchdog fire, even if the
// goroutine that pets is fine.
//
// Each loop registers once with Loop and calls Tick every iteration; the
// petting code asks Healthy.
type Guard struct {
	now   func() time.Time
	mu    sync.Mutex
	loops []*Loop
}

// NewGuard returns a Guard whose loops read the time from now when they
// Tick; nil means time.Now (monotonic, as staleness must be).
func NewGuard(now func() time.Time) *Guard {
	if now == nil {
		now = time.Now
	}
	return &Guard{now: now}
}

// Loop is one registered loop.
type Loop struct {
	g      *Guard
	name   string
	last   time.Time
	ticked bool
	maxAge time.Duration // its own bound; 0: the one Healthy is given
}

// Loop registers a loop called name. Until its first Tick it counts as
// stale. Every call registers a new loop, even with a name already used:
// two goroutines sharing a name must both make progress.
func (g *Guard) Loop(name string) *Loop {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := &Loop{g: g, name: name}
	g.loops = append(g.loops, l)
	return l
}

// LoopWithin registers a loop that counts as stale only when it has not
// ticked within its own maxAge, whatever bound Healthy is given: a loop
// with no fencing duty (the VM manager) may be slow on a loaded host
// without the watchdog resetting it, yet a hung one still stops petting.
func (g *Guard) LoopWithin(name string, maxAge time.Duration) *Loop {
	l := g.Loop(name)
	g.mu.Lock()
	defer g.mu.Unlock()
	l.maxAge = maxAge
	return l
}

// Tick records that the loop made progress now.
func (l *Loop) Tick() {
	now := l.g.now()
	l.g.mu.Lock()
	defer l.g.mu.Unlock()
	l.last, l.ticked = now, true
}

// Done unregisters the loop, when it ends on purpose (shutdown). A loop
// that ends by mistake must not call it: its silence is what Healthy sees.
func (l *Loop) Done() {
	l.g.mu.Lock()
	defer l.g.mu.Unlock()
	l.g.loops = slices.DeleteFunc(l.g.loops, func(x *Loop) bool { return x == l })
}

// Name is the name the loop was registered with.
func (l *Loop) Name() string { return l.name }

// Stale describes a loop that has not ticked within maxAge.
type Stale struct {
	Name  string
	Age   time.Duration // since its last tick; 0 when Never
	Never bool          // registered but never ticked
}

// Healthy reports whether at least one loop is registered and every loop
// ticked within maxAge before now (a tick at exactly now-maxAge counts).
// With no loop, or maxAge <= 0, nothing proves progress: false.
func (g *Guard) Healthy(now time.Time, maxAge time.Duration) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.loops) > 0 && maxAge > 0 && len(g.staleLocked(now, maxAge)) == 0
}

// Stale lists the loops that make Healthy false, for the event that says
// why the watchdog was not petted.
func (g *Guard) Stale(now time.Time, maxAge time.Duration) []Stale {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.staleLocked(now, maxAge)
}

func (g *Guard) staleLocked(now time.Time, maxAge time.Duration) []Stale {
	var out []Stale
	for _, l := range g.loops {
		age := maxAge
		if l.maxAge > 0 && maxAge > 0 {
			age = l.maxAge
		}
		switch {
		case !l.ticked:
			out = append(out, Stale{Name: l.name, Never: true})
		case now.Sub(l.last) > age || age <= 0:
			// A tick later than now (age < 0) is fresh.
			out = append(out, Stale{Name: l.name, Age: now.Sub(l.last)})
		}
	}
	return out
}

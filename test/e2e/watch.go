package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// SampleInterval is how often Watch samples every host's libvirt.
const SampleInterval = 100 * time.Millisecond

// Watch samples, every SampleInterval until Stop, which hosts run each guest, and records:
//   - a violation of "never two" whenever two hosts list one guest running at once;
//   - with MustNotStop, a violation when a guest ran nowhere for more than MaxGap (a live
//     migration's switch-over is tens of milliseconds) or came up freshly booted (not migrated)
//     on another host than where it was first seen.
type Watch struct {
	e      *Env
	guests []Guest
	// MustNotStop makes any stop of a guest a violation (planned work: maintenance, rolling update).
	mustNotStop bool
	maxGap      time.Duration

	mu         sync.Mutex
	violations []string
	samples    int
	errors     int
	firstHost  map[string]string
	downSince  map[string]time.Time
	cancel     context.CancelFunc
	done       chan struct{}
}

// WatchOptions configure a Watch.
type WatchOptions struct {
	MustNotStop bool
	// MaxGap is the longest time a guest may run nowhere with MustNotStop; default 1 s.
	MaxGap time.Duration
}

// StartWatch starts sampling.
func (e *Env) StartWatch(guests []Guest, o WatchOptions) *Watch {
	if o.MaxGap == 0 {
		o.MaxGap = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watch{e: e, guests: guests, mustNotStop: o.MustNotStop, maxGap: o.MaxGap,
		firstHost: map[string]string{}, downSince: map[string]time.Time{}, cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	return w
}

func (w *Watch) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(SampleInterval)
	defer t.Stop()
	for {
		w.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *Watch) sample(ctx context.Context) {
	now := time.Now()
	r, err := w.e.reasons(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	if err != nil {
		// A host whose libvirtd did not answer is unknown, not empty: still check what the
		// others say about two copies, but not gaps.
		w.errors++
	}
	stamp := now.Format("15:04:05.000")
	for _, g := range w.guests {
		hosts := r[g.UUID]
		if len(hosts) > 1 {
			var hs []string
			for h, why := range hosts {
				hs = append(hs, h+"("+why+")")
			}
			sort.Strings(hs)
			w.violations = append(w.violations, fmt.Sprintf("%s: %s runs on %s at once", stamp, g.Name, strings.Join(hs, ", ")))
		}
		if !w.mustNotStop {
			continue
		}
		if len(hosts) == 0 {
			if err != nil {
				continue
			}
			if w.downSince[g.UUID].IsZero() {
				w.downSince[g.UUID] = now
			} else if d := now.Sub(w.downSince[g.UUID]); d > w.maxGap {
				w.violations = append(w.violations, fmt.Sprintf("%s: %s has run nowhere for %v", stamp, g.Name, d.Round(time.Millisecond)))
				w.downSince[g.UUID] = now
			}
			continue
		}
		w.downSince[g.UUID] = time.Time{}
		for h, why := range hosts {
			if w.firstHost[g.UUID] == "" {
				w.firstHost[g.UUID] = h
			}
			if why != "migrated" && h != w.firstHost[g.UUID] {
				w.violations = append(w.violations, fmt.Sprintf("%s: %s runs on %s after a fresh start (reason %s), not a migration", stamp, g.Name, h, why))
			}
		}
	}
}

// Stop ends the sampling and returns the violations, the number of samples taken and how many
// of them missed a host that should have answered.
func (w *Watch) Stop() (violations []string, samples, errs int) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.violations...), w.samples, w.errors
}

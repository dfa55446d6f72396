package heartbeat

import (
	"fmt"
	"sync"
	"time"
)

// RenewLatency keeps how long heartbeat renewals took (one read of the
// slots, one write of this host's): the last one and the worst of the last
// minute, for status, metrics and warnings. It is safe for concurrent use.
type RenewLatency struct {
	mu      sync.Mutex
	last    time.Duration
	samples []latencySample
}

type latencySample struct {
	at time.Time
	d  time.Duration
}

// Record notes a renewal that took d, completed at now.
func (r *RenewLatency) Record(now time.Time, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = d
	keep := r.samples[:0]
	for _, s := range r.samples {
		if now.Sub(s.at) < time.Minute {
			keep = append(keep, s)
		}
	}
	r.samples = append(keep, latencySample{now, d})
}

// Get returns the last renewal's duration and the worst of the last minute.
func (r *RenewLatency) Get() (last, worst time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.samples {
		worst = max(worst, s.d)
	}
	return r.last, worst
}

// LatencyWarning is the status warning for a slow heartbeat LUN, or "".
// worst is the slowest renewal of the last minute. It warns above half of
// io_timeout: a write slower than io_timeout counts as failed, so this is
// the last point at which a warning comes before anything fails (half of F
// would only warn once writes already time out: F/2 >= io_timeout in every
// valid profile).
func LatencyWarning(worst, ioTimeout, selfFence time.Duration) string {
	if worst <= ioTimeout/2 {
		return ""
	}
	return fmt.Sprintf("heartbeat LUN latency reached %v in the last minute, over half of io_timeout (%v): "+
		"a write slower than that counts as failed and F (%v) later this host self-fences unless the others grant it a network lease; check the storage path",
		worst.Round(time.Millisecond), ioTimeout, selfFence)
}

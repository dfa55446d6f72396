package heartbeat

import (
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
)

func TestLatencyWarningBeforeWritesFail(t *testing.T) {
	for _, tm := range []storage.Timings{storage.DefaultTimings(), storage.FastTimings()} {
		io := tm.IOTimeout
		if w := LatencyWarning(io/2, tm.IOTimeout, tm.SelfFence); w != "" {
			t.Errorf("io_timeout %v: renewal at half of it warns: %s", io, w)
		}
		if w := LatencyWarning(5*time.Millisecond, tm.IOTimeout, tm.SelfFence); w != "" {
			t.Errorf("io_timeout %v: a healthy 5 ms renewal warns: %s", io, w)
		}
		// Writes at 0.8 x io_timeout still succeed: the warning must come now, not after they fail.
		w := LatencyWarning(io*8/10, tm.IOTimeout, tm.SelfFence)
		if !strings.Contains(w, "heartbeat LUN latency reached") || !strings.Contains(w, io.String()) {
			t.Errorf("io_timeout %v: renewal at 0.8 x io_timeout: warning %q", io, w)
		}
	}
}

func TestRenewLatencyKeepsTheWorstOfTheLastMinute(t *testing.T) {
	var r RenewLatency
	t0 := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	r.Record(t0, 900*time.Millisecond)
	r.Record(t0.Add(30*time.Second), 20*time.Millisecond)
	if last, worst := r.Get(); last != 20*time.Millisecond || worst != 900*time.Millisecond {
		t.Errorf("after 30 s: last %v worst %v, want 20ms and 900ms", last, worst)
	}
	r.Record(t0.Add(61*time.Second), 30*time.Millisecond)
	if last, worst := r.Get(); last != 30*time.Millisecond || worst != 30*time.Millisecond {
		t.Errorf("after 61 s: last %v worst %v, want the 900 ms renewal forgotten", last, worst)
	}
}

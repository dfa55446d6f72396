package main

import (
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
)

func TestLatencyWarningBeforeWritesFail(t *testing.T) {
	for _, tm := range []storage.Timings{storage.DefaultTimings(), storage.FastTimings()} {
		io := tm.IOTimeout
		if w := latencyWarning(io/2, tm.IOTimeout, tm.SelfFence); w != "" {
			t.Errorf("io_timeout %v: renewal at half of it warns: %s", io, w)
		}
		if w := latencyWarning(5*time.Millisecond, tm.IOTimeout, tm.SelfFence); w != "" {
			t.Errorf("io_timeout %v: a healthy 5 ms renewal warns: %s", io, w)
		}
		// Writes at 0.8 x io_timeout still succeed: the warning must come now, not after they fail.
		w := latencyWarning(io*8/10, tm.IOTimeout, tm.SelfFence)
		if !strings.Contains(w, "heartbeat LUN latency reached") || !strings.Contains(w, io.String()) {
			t.Errorf("io_timeout %v: renewal at 0.8 x io_timeout: warning %q", io, w)
		}
	}
}

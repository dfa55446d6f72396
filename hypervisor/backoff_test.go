package hypervisor

import (
	"math"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		n        int
		min, max time.Duration
		want     time.Duration
	}{
		{0, 250 * ms, 5 * time.Second, 250 * ms},
		{1, 250 * ms, 5 * time.Second, 500 * ms},
		{2, 250 * ms, 5 * time.Second, time.Second},
		{4, 250 * ms, 5 * time.Second, 4 * time.Second},
		{5, 250 * ms, 5 * time.Second, 5 * time.Second},
		{1000, 250 * ms, 5 * time.Second, 5 * time.Second},
		{-1, 250 * ms, 5 * time.Second, 250 * ms},
		{3, time.Second, time.Second, time.Second},
		// Doubling must not overflow into a zero or negative wait, which
		// would turn the reconnect loop into a busy loop.
		{62, 1, math.MaxInt64, 1 << 62},
		{63, 1, math.MaxInt64, math.MaxInt64},
		{200, 3, math.MaxInt64, math.MaxInt64},
	} {
		if got := backoff(tc.n, tc.min, tc.max); got != tc.want {
			t.Errorf("backoff(%d, %v, %v) = %v, want %v", tc.n, tc.min, tc.max, got, tc.want)
		}
	}
}

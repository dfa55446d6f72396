package main

import (
	"testing"
	"time"
)

func TestStatsNearestRankP95(t *testing.T) {
	s := func(xs ...int) []time.Duration {
		var out []time.Duration
		for _, x := range xs {
			out = append(out, time.Duration(x)*time.Second)
		}
		return out
	}
	for _, c := range []struct {
		in               []time.Duration
		lo, med, p95, hi time.Duration
	}{
		{s(3), 3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second},
		{s(5, 1, 3), time.Second, 3 * time.Second, 5 * time.Second, 5 * time.Second},
		// 20 runs: the 19th value is the p95, not the slowest.
		{s(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), time.Second, 11 * time.Second, 19 * time.Second, 20 * time.Second},
	} {
		lo, med, p95, hi := stats(c.in)
		if lo != c.lo || med != c.med || p95 != c.p95 || hi != c.hi {
			t.Errorf("stats(%v) = %v %v %v %v, want %v %v %v %v", c.in, lo, med, p95, hi, c.lo, c.med, c.p95, c.hi)
		}
	}
	if lo, med, p95, hi := stats(nil); lo != 0 || med != 0 || p95 != 0 || hi != 0 {
		t.Error("stats(nil) is not all zero")
	}
}

func TestMedianOfSkipsUnknown(t *testing.T) {
	tls := []timeline{{dead: -1}, {dead: 2 * time.Second}, {dead: 4 * time.Second}, {dead: 3 * time.Second}}
	if d, ok := medianOf(tls, func(t timeline) time.Duration { return t.dead }); !ok || d != 3*time.Second {
		t.Errorf("medianOf = %v %v, want 3s", d, ok)
	}
	if _, ok := medianOf([]timeline{{dead: -1}}, func(t timeline) time.Duration { return t.dead }); ok {
		t.Error("medianOf of unknowns only reports a value")
	}
}

package main

import (
	"errors"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum/fence"
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

// TestAttemptTimes: the bench reads each fence level's agent time from the event text that
// package fence writes; a change of that text must fail here, not silently empty the report.
func TestAttemptTimes(t *testing.T) {
	for _, c := range []struct {
		a    fence.Attempt
		want time.Duration
	}{
		{fence.Attempt{Host: "kvm1", Level: 1, Levels: 2, Device: "kvm1-1", Agent: "fenceagent", Outcome: fence.TimedOut,
			Duration: 1002 * time.Millisecond, Err: errors.New("fence kvm1: action=off: still running after 1s")}, 1002 * time.Millisecond},
		{fence.Attempt{Host: "kvm1", Level: 2, Levels: 2, Device: "kvm1-2", Agent: "fenceagent", Outcome: fence.Confirmed,
			Duration: 47 * time.Millisecond, Final: true, ConfirmedBy: 2}, 47 * time.Millisecond},
		{fence.Attempt{Host: "kvm1", Level: 1, Levels: 1, Agent: "fence_ipmilan", Outcome: fence.StillOn, Duration: 62500 * time.Millisecond, Final: true}, 62500 * time.Millisecond},
	} {
		var tl timeline
		m := attemptRE.FindStringSubmatch(c.a.String())
		if m == nil {
			t.Fatalf("no agent time found in %q", c.a.String())
		}
		d, err := time.ParseDuration(m[1])
		if err != nil || d != c.want {
			t.Errorf("%q: agent time %q (%v), want %v", c.a.String(), m[1], err, c.want)
		}
		tl.agents = append(tl.agents, d, d)
		if got, ok := levelsTarget(tl); !ok || got != fastS+fenceStart+2*d {
			t.Errorf("levelsTarget = %v, %v", got, ok)
		}
	}
}

package gossip

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSuspicion measures the time from killing an agent (Shutdown
// without Leave) until the first survivor and then every survivor mark it
// failed, with DefaultTiming (production) and FastTiming (tests), on
// loopback. Each iteration builds a fresh cluster; only detection is timed.
//
//	go test -run '^$' -bench Suspicion ./quorum/gossip/
func BenchmarkSuspicion(b *testing.B) {
	profiles := []struct {
		name   string
		timing Timing
	}{
		{"default", DefaultTiming()},
		{"fast", FastTiming()},
	}
	for _, p := range profiles {
		for _, n := range []int{3, 5} {
			b.Run(fmt.Sprintf("%s/%d-hosts", p.name, n), func(b *testing.B) {
				var first, all time.Duration
				for i := 0; i < b.N; i++ {
					f, a := measureSuspicion(b, n, p.timing)
					first += f
					all += a
				}
				b.ReportMetric(first.Seconds()/float64(b.N), "s-first-failed")
				b.ReportMetric(all.Seconds()/float64(b.N), "s-all-failed")
				lo, hi := p.timing.SuspicionTimeout(n)
				b.Logf("suspicion timeout for %d hosts: %v..%v", n, lo, hi)
			})
		}
	}
}

func measureSuspicion(b *testing.B, n int, timing Timing) (first, all time.Duration) {
	b.StopTimer()
	agents := startCluster(b, n, newKey(b), func(c *Config) { c.Timing = timing })
	waitConverged(b, agents)
	victim, survivors := agents[n-1], agents[:n-1]
	b.StartTimer()
	killed := time.Now()
	if err := victim.Shutdown(); err != nil {
		b.Fatal(err)
	}
	seen := map[string]bool{}
	deadline := killed.Add(waitDeadline * 2)
	for len(seen) < len(survivors) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d survivors marked %s failed", len(seen), len(survivors), victim.Name())
		}
		for _, s := range survivors {
			if !seen[s.Name()] && statusOf(s, victim.Name()) == StatusFailed {
				seen[s.Name()] = true
				if len(seen) == 1 {
					first = time.Since(killed)
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	all = time.Since(killed)
	b.StopTimer()
	for _, a := range survivors {
		_ = a.Shutdown()
	}
	return first, all
}

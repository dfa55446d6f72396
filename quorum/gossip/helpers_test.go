package gossip

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

// Conditions are polled, never slept on: a test passes as soon as the
// condition holds and fails only at the deadline.
const (
	waitDeadline = 20 * time.Second
	pollEvery    = 25 * time.Millisecond
)

func newKey(tb testing.TB) string {
	tb.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// testLogger is silent unless WINGMAN_TEST_LOG is set (serf is chatty).
func testLogger() *slog.Logger {
	if os.Getenv("WINGMAN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testConfig(name string, id int, key string) Config {
	cfg := TestConfig(name, id, key)
	cfg.Logger = testLogger()
	return cfg
}

// startAgent starts an agent that is shut down when the test ends.
func startAgent(tb testing.TB, cfg Config) *Agent {
	tb.Helper()
	a, err := Start(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("start %s: %v", cfg.NodeName, err)
	}
	tb.Cleanup(func() { _ = a.Shutdown() })
	return a
}

// startCluster starts n agents sharing key, hosts 1..n, each joining the first.
func startCluster(tb testing.TB, n int, key string, tune func(*Config)) []*Agent {
	tb.Helper()
	agents := make([]*Agent, 0, n)
	for i := 1; i <= n; i++ {
		cfg := testConfig(fmt.Sprintf("host%d", i), i, key)
		if i > 1 {
			cfg.Join = []string{agents[0].Addr().String()}
		}
		if tune != nil {
			tune(&cfg)
		}
		agents = append(agents, startAgent(tb, cfg))
	}
	return agents
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: still not %s", waitDeadline, what)
		}
		time.Sleep(pollEvery)
	}
}

// statusOf returns what a says about the member named name.
func statusOf(a *Agent, name string) Status {
	for _, m := range a.Members() {
		if m.Name == name {
			return m.Status
		}
	}
	return StatusUnknown
}

// converged reports whether every agent sees every agent alive.
func converged(agents []*Agent) bool {
	for _, a := range agents {
		alive := a.AliveSet()
		if len(alive) != len(agents) {
			return false
		}
		for _, b := range agents {
			if !alive[b.cfg.HostID] {
				return false
			}
		}
	}
	return true
}

func waitConverged(tb testing.TB, agents []*Agent) {
	tb.Helper()
	waitFor(tb, fmt.Sprintf("converged: %d agents seeing each other alive", len(agents)), func() bool {
		return converged(agents)
	})
}

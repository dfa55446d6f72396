package e2e

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/test/cluster"
)

// fullEnv is set by `make e2e`: run every scenario. Without it only the fast subset runs (make
// test): power loss, daemon crash, daemon restart, live migration.
const fullEnv = "WINGMAN_E2E_ALL"

func full(t *testing.T) {
	t.Helper()
	if os.Getenv(fullEnv) == "" {
		t.Skipf("slow scenario: runs with %s=1 (make e2e)", fullEnv)
	}
}

// startEnv starts a cluster with wingmand for a test and closes it at the end. Like cluster.New,
// it skips in -short mode or without root, except with CI set.
func startEnv(t *testing.T, o Options) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode (starts real libvirtd, wingmand and QEMU)")
	}
	if err := cluster.Prerequisites(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("e2e: %v", err)
		}
		t.Fatalf("e2e: %v", err)
	}
	o.KeepDir = os.Getenv("WINGMAN_CLUSTER_DEBUG") != ""
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := Start(ctx, o)
	if err != nil {
		if errors.Is(err, cluster.ErrPrerequisite) && os.Getenv("CI") == "" {
			t.Skipf("e2e: %v", err)
		}
		t.Fatalf("e2e: start: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			e.C.LogTails(t)
			logEvents(t, e)
		}
		if err := e.Close(); err != nil {
			t.Errorf("e2e: close: %v", err)
		}
	})
	return e
}

// logEvents writes the cluster's event log, as a surviving host sees it, to the test log.
func logEvents(t *testing.T, e *Env) {
	for _, h := range e.Hosts() {
		if !h.WingmandRunning() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		evs, err := e.Client(h).Events(ctx, time.Time{}, 0)
		cancel()
		if err != nil {
			continue
		}
		var b strings.Builder
		for _, ev := range evs {
			b.WriteString(FormatEvent(ev))
			b.WriteByte('\n')
		}
		t.Logf("events seen from %s:\n%s", h.Name(), b.String())
		return
	}
}

// checkWatch stops w and fails the test on any violation.
func checkWatch(t *testing.T, w *Watch) {
	t.Helper()
	v, n, errs := w.Stop()
	t.Logf("checker: %d samples (%d with a host not answering), %d violations", n, errs, len(v))
	for _, s := range v {
		t.Errorf("violation: %s", s)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// observe lets the checker sample for d more: an observation window, not a wait for a condition.
func observe(d time.Duration) { time.Sleep(d) }

// startWithGuests starts an environment with o and, for each of prefixes on the next host (the
// first on the first host), n guests named prefix1..prefixN protected with policy p. It waits
// until each runs exactly once.
func startWithGuests(t *testing.T, o Options, n int, p Policy, prefixes ...string) (*Env, context.Context, []Guest) {
	t.Helper()
	e := startEnv(t, o)
	ctx := ctxFor(t, 5*time.Minute)
	var guests []Guest
	for i, prefix := range prefixes {
		gs, err := e.NewGuestsWithPolicy(ctx, e.Hosts()[i], prefix, n, p)
		if err != nil {
			t.Fatal(err)
		}
		guests = append(guests, gs...)
	}
	if _, err := e.WaitRunningOnce(ctx, 30*time.Second, guests); err != nil {
		t.Fatal(err)
	}
	return e, ctx, guests
}

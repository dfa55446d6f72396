package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/test/cluster"
)

// waitTimeout bounds every wait for a condition or an event. Things happen here in well under a
// second; the margin is for a loaded 2-core CI machine.
const waitTimeout = 30 * time.Second

// pollInterval is how often a polled condition is checked again.
const pollInterval = 50 * time.Millisecond

// fixture is the one cluster shared by the package's tests, started by the first test that
// needs it and closed by TestMain, which then checks that nothing of it is left.
var fixture struct {
	once      sync.Once
	c         *cluster.Cluster
	footprint footprint
	err       error
}

func TestMain(m *testing.M) {
	base, baseErr := takeBaseline()
	code := m.Run()
	if fixture.c != nil {
		if err := fixture.c.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: close the shared test cluster: %v\n", err)
			code = 1
		}
		switch {
		case baseErr != nil:
			fmt.Fprintf(os.Stderr, "FAIL: cannot check for leftovers of the shared cluster: %v\n", baseErr)
			code = 1
		default:
			fixture.footprint.markClosed()
			if left := fixture.footprint.leftovers(base); len(left) > 0 {
				fmt.Fprintf(os.Stderr, "FAIL: the shared test cluster left behind:\n  %s\n", strings.Join(left, "\n  "))
				code = 1
			}
		}
	}
	os.Exit(code)
}

// sharedCluster returns the package's two-host cluster, starting it on first use. Like
// cluster.New, it skips in -short mode and when the machine lacks a prerequisite, unless CI is
// set.
func sharedCluster(t testing.TB) *cluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("integration: skipped in -short mode (starts real libvirtd and QEMU)")
	}
	fixture.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cfg := cluster.DefaultConfig()
		if os.Getenv("WINGMAN_CLUSTER_DEBUG") != "" {
			// Keep the cluster directory (libvirtd logs at debug level, QEMU logs) for a post-mortem.
			cfg.KeepDir, cfg.LibvirtdLogLevel = true, 1
		}
		c, err := cluster.Start(ctx, cfg)
		if err != nil {
			fixture.err = err
			return
		}
		fixture.c = c
		fixture.footprint, fixture.err = recordFootprint(c)
	})
	if fixture.err != nil {
		if errors.Is(fixture.err, cluster.ErrPrerequisite) && os.Getenv("CI") == "" {
			t.Skipf("integration: %v", fixture.err)
		}
		t.Fatalf("integration: shared test cluster: %v", fixture.err)
	}
	c := fixture.c
	t.Cleanup(func() {
		if t.Failed() {
			c.LogTails(t)
		}
		restoreHosts(t, c)
	})
	return c
}

// restoreHosts puts every host of the shared cluster back as the next test expects it: powered
// on, on the network, libvirtd running, whatever a failed test left behind.
func restoreHosts(t testing.TB, c *cluster.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	for _, h := range c.Hosts() {
		var err error
		switch {
		case !h.On():
			err = c.PowerOn(ctx, h)
		case !h.LibvirtdRunning():
			err = c.RestartLibvirtd(ctx, h)
		}
		if err == nil && c.Partitioned(h) {
			err = c.Heal(h)
		}
		if err != nil {
			t.Errorf("cleanup: restore %s for the next test: %v", h.Name(), err)
		}
	}
}

// testConfig is the adapter configuration of the tests: quick keepalive and reconnect, so that a
// libvirtd restart is noticed and healed in well under a second.
func testConfig(h *cluster.Host) hypervisor.Config {
	cfg := hypervisor.DefaultConfig()
	cfg.URI = h.URI()
	cfg.HostName = h.Name()
	cfg.KeepAliveInterval = time.Second
	cfg.KeepAliveCount = 2
	cfg.ReconnectMinBackoff = 20 * time.Millisecond
	cfg.ReconnectMaxBackoff = 200 * time.Millisecond
	cfg.PollInterval = pollInterval
	cfg.QMPTimeout = 2 * time.Second
	cfg.MigrationProgressInterval = 20 * time.Millisecond
	return cfg
}

// dial connects the adapter to h for the rest of the test.
func dial(t testing.TB, h *cluster.Host) *hypervisor.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	conn, err := hypervisor.Dial(ctx, testConfig(h))
	if err != nil {
		t.Fatalf("dial %s: %v", h.Name(), err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// testContext is a context that ends with the test or after waitTimeout*4.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// guestName makes a domain name unique to the test.
func guestName(t testing.TB, suffix string) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return strings.ToLower(name) + "-" + suffix
}

// newGuest creates a guest (disk in the shared directory) and defines it on conn's host. The
// guest is destroyed and undefined on every host when the test ends.
func newGuest(t testing.TB, ctx context.Context, c *cluster.Cluster, conn *hypervisor.Conn, name string) cluster.GuestSpec {
	t.Helper()
	spec, err := c.NewGuest(name)
	if err != nil {
		t.Fatal(err)
	}
	defineGuest(t, ctx, c, conn, spec)
	return spec
}

// defineGuest defines spec on conn's host and removes it from every host when the test ends.
func defineGuest(t testing.TB, ctx context.Context, c *cluster.Cluster, conn *hypervisor.Conn, spec cluster.GuestSpec) {
	t.Helper()
	xml, err := spec.XML()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeGuest(t, c, spec.Name) })
	if _, err := conn.Define(ctx, xml); err != nil {
		t.Fatal(err)
	}
}

// startGuest starts a defined guest and waits until libvirt lists it running.
func startGuest(t testing.TB, ctx context.Context, conn *hypervisor.Conn, name string) {
	t.Helper()
	if err := conn.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, conn, name, hypervisor.StateRunning)
}

// removeGuest destroys and undefines name wherever it exists, so that a failed test leaves no
// guest running for the next one. Hosts of the shared cluster are first restored; hosts that are
// off (of another cluster) are skipped: their guests are dead.
func removeGuest(t testing.TB, c *cluster.Cluster, name string) {
	if c == fixture.c {
		restoreHosts(t, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, h := range c.Hosts() {
		if !h.On() {
			continue
		}
		conn, err := hypervisor.Dial(ctx, testConfig(h))
		if err != nil {
			t.Errorf("cleanup: remove guest %q: %v", name, err)
			continue
		}
		if err := conn.Destroy(ctx, name); err != nil && !errors.Is(err, hypervisor.ErrNotFound) && !errors.Is(err, hypervisor.ErrNotRunning) {
			t.Errorf("cleanup: %v", err)
		}
		if err := conn.Undefine(ctx, name); err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
			t.Errorf("cleanup: %v", err)
		}
		_ = conn.Close()
	}
}

// waitFor polls cond every pollInterval until it holds, fails or waitTimeout passes.
func waitFor(t testing.TB, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not so after %v (last error: %v)", what, waitTimeout, last)
		case <-time.After(pollInterval):
		}
	}
}

// waitState waits until conn lists name in state want.
func waitState(t testing.TB, ctx context.Context, conn *hypervisor.Conn, name string, want hypervisor.State) hypervisor.Domain {
	t.Helper()
	var dom hypervisor.Domain
	waitFor(t, ctx, fmt.Sprintf("domain %q %s on %s", name, want, conn.Host()), func() (bool, error) {
		var err error
		dom, err = conn.Lookup(ctx, name)
		if err != nil {
			return false, err
		}
		return dom.State == want, fmt.Errorf("state %s (%s)", dom.State, dom.Reason)
	})
	return dom
}

// waitEvent reads events until one satisfies match, and returns it. It fails the test after
// waitTimeout or when the stream ends, listing what it saw.
func waitEvent(t testing.TB, ctx context.Context, events <-chan hypervisor.Event, what string, match func(hypervisor.Event) bool) hypervisor.Event {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("waiting for %s: event stream closed; seen: %v", what, seen)
			}
			if match(ev) {
				return ev
			}
			seen = append(seen, ev.String())
		case <-timer.C:
			t.Fatalf("waiting for %s: none within %v; seen: %v", what, waitTimeout, seen)
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; seen: %v", what, ctx.Err(), seen)
		}
	}
}

// subscribe subscribes to conn's events for the rest of the test and consumes the initial
// resync marker.
func subscribe(t testing.TB, ctx context.Context, conn *hypervisor.Conn) <-chan hypervisor.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	events := conn.Subscribe(ctx)
	waitEvent(t, ctx, events, "the subscription's resync marker", func(ev hypervisor.Event) bool {
		return ev.Kind == hypervisor.EventResync
	})
	return events
}

// guestProcess returns the QEMU process of guest name on h.
func guestProcess(h *cluster.Host, name string) (cluster.Process, bool, error) {
	procs, err := h.Processes()
	if err != nil {
		return cluster.Process{}, false, err
	}
	for _, p := range procs {
		if strings.HasPrefix(p.Comm, "qemu-system") && strings.Contains(p.Cmdline, "guest="+name+",") {
			return p, true, nil
		}
	}
	return cluster.Process{}, false, nil
}

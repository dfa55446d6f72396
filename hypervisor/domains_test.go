package hypervisor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirt"
)

func TestListDomainsStateAndReason(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)
	if err := c.Start(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	doms, err := c.ListDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Domain{
		// Sorted by name. Domains loaded from the host file have no reason.
		{Name: "batch1", UUID: "3f6b1c0e-9a51-4c1e-8d2a-000000000003", State: StatePaused, Reason: "unknown",
			Persistent: true, MemoryBytes: 256 << 20, MaxMemoryBytes: 256 << 20, VCPUs: 1},
		{Name: "db1", UUID: "3f6b1c0e-9a51-4c1e-8d2a-000000000002", State: StateShutoff, Reason: "destroyed",
			ReasonCode: int(libvirt.DOMAIN_SHUTOFF_DESTROYED), Persistent: true,
			MemoryBytes: 2 << 30, MaxMemoryBytes: 2 << 30, VCPUs: 1},
		{Name: "web1", UUID: "3f6b1c0e-9a51-4c1e-8d2a-000000000001", State: StateRunning, Reason: "unknown",
			Persistent: true, MemoryBytes: 512 << 20, MaxMemoryBytes: 1 << 30, VCPUs: 2},
	}
	if len(doms) != len(want) {
		t.Fatalf("ListDomains = %+v, want %+v", doms, want)
	}
	for i := range want {
		if doms[i] != want[i] {
			t.Errorf("domain %d = %+v\n            want %+v", i, doms[i], want[i])
		}
	}
	if !doms[0].Active() || doms[1].Active() || !doms[2].Active() {
		t.Errorf("Active() of batch1/db1/web1 = %v/%v/%v, want true/false/true",
			doms[0].Active(), doms[1].Active(), doms[2].Active())
	}
}

func TestListDomainsUnusualStates(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm2")
	doms, err := c.ListDomains(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Domain{}
	for _, d := range doms {
		got[d.Name] = d
	}
	for _, tc := range []struct {
		name       string
		state      State
		active     bool
		persistent bool
	}{
		// A crashed domain whose QEMU is kept may still write its disks.
		{"crash1", StateCrashed, true, true},
		{"sleep1", StatePMSuspended, true, true},
		{"temp1", StateRunning, true, false},
	} {
		d, ok := got[tc.name]
		if !ok {
			t.Errorf("%s missing from %+v", tc.name, doms)
			continue
		}
		if d.State != tc.state || d.Active() != tc.active || d.Persistent != tc.persistent {
			t.Errorf("%s: state %v active %v persistent %v, want %v %v %v",
				tc.name, d.State, d.Active(), d.Persistent, tc.state, tc.active, tc.persistent)
		}
	}
}

func TestDefaultTestDriver(t *testing.T) {
	t.Parallel()
	// test:///default is shared by every connection of the process: only
	// read it here.
	c := dialConfig(t, testConfig("test:///default", ""))
	if c.Host() == "" {
		t.Error("Host() is empty: Dial should ask libvirt for the hostname")
	}
	ctx := testCtx(t)
	d, err := c.Lookup(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if d.State != StateRunning || d.UUID != "6695eb01-f6a4-8304-79aa-97f2502e193f" || d.VCPUs != 2 ||
		d.MemoryBytes != 2<<30 || d.MaxMemoryBytes != 8<<30 {
		t.Errorf("Lookup(test) = %+v", d)
	}
	capa, err := c.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if capa.CPUs != 16 || capa.MemoryBytes == 0 || capa.RunningGuests < 1 {
		t.Errorf("Capacity = %+v, want 16 CPUs, some memory and at least the running domain \"test\"", capa)
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	d, err := c.Lookup(testCtx(t), "web1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "web1" || d.State != StateRunning || d.VCPUs != 2 {
		t.Errorf("Lookup(web1) = %+v", d)
	}
}

func TestUnknownDomainIsNotFound(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)
	ops := map[string]func() error{
		"Lookup":    func() error { _, err := c.Lookup(ctx, "nope"); return err },
		"DomainXML": func() error { _, err := c.DomainXML(ctx, "nope"); return err },
		"Undefine":  func() error { return c.Undefine(ctx, "nope") },
		"Start":     func() error { return c.Start(ctx, "nope") },
		"Destroy":   func() error { return c.Destroy(ctx, "nope") },
		"Shutdown":  func() error { _, err := c.Shutdown(ctx, "nope", ShutdownOptions{}); return err },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			err := op()
			wantErrIs(t, err, ErrNotFound)
			var lv libvirt.Error
			if !errors.As(err, &lv) || lv.Code != libvirt.ERR_NO_DOMAIN {
				t.Errorf("errors.As libvirt.Error: %v (code %v), want ERR_NO_DOMAIN", err, lv.Code)
			}
			for _, part := range []string{`"nope"`, "kvm1", "domain not found"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %s", err, part)
				}
			}
		})
	}
}

func TestDomainXMLDefineUndefine(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)

	doc, err := c.DomainXML(ctx, "web1")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ParseDomainXML(doc)
	if err != nil {
		t.Fatalf("ParseDomainXML(DomainXML(web1)): %v\n%s", err, doc)
	}
	if spec.Name != "web1" || spec.UUID != "3f6b1c0e-9a51-4c1e-8d2a-000000000001" || spec.VCPUs != 2 ||
		spec.MemoryBytes != 1<<30 || spec.CurrentMemoryBytes != 512<<20 ||
		len(spec.Disks) != 1 || spec.Disks[0].Source != "/shared/web1.img" || spec.Disks[0].Cache != "none" {
		t.Errorf("spec of web1 = %+v", spec)
	}

	// Move the definition to another name and UUID, as a failover would
	// redefine it on another host.
	moved := strings.Replace(doc, "<name>web1</name>", "<name>web2</name>", 1)
	moved = strings.Replace(moved, spec.UUID, "3f6b1c0e-9a51-4c1e-8d2a-0000000000aa", 1)
	d, err := c.Define(ctx, moved)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "web2" || d.State != StateShutoff || !d.Persistent || d.VCPUs != 2 {
		t.Errorf("Define(web2) = %+v, want a persistent shutoff domain", d)
	}
	// Defining the same XML again updates it.
	if _, err := c.Define(ctx, moved); err != nil {
		t.Errorf("redefine web2: %v", err)
	}
	if err := c.Undefine(ctx, "web2"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Lookup(ctx, "web2")
	wantErrIs(t, err, ErrNotFound)
}

func TestDefineRejectsBadXML(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)
	for _, tc := range []struct {
		name, doc string
	}{
		{"not XML", "<domain"},
		{"no name", "<domain type='test'><memory>1024</memory></domain>"},
		// Parses for us; libvirt refuses the clash with web1's UUID.
		{"UUID of another domain", domainXML("other", "3f6b1c0e-9a51-4c1e-8d2a-000000000001", 64, 1)},
		// Parses for us; libvirt refuses the clash with web1's name.
		{"name of another domain", domainXML("web1", "3f6b1c0e-9a51-4c1e-8d2a-0000000000bb", 64, 1)},
		{"unknown domain type", strings.Replace(domainXML("x", "3f6b1c0e-9a51-4c1e-8d2a-0000000000cc", 64, 1), "'test'", "'nonsense'", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Define(ctx, tc.doc)
			wantErrIs(t, err, ErrInvalidXML)
			if !strings.HasPrefix(err.Error(), "define domain") || !strings.Contains(err.Error(), "kvm1") {
				t.Errorf("error %q should say what was done on which host", err)
			}
		})
	}
}

func TestStartDestroy(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)

	if err := c.Start(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	d, err := c.Lookup(ctx, "db1")
	if err != nil {
		t.Fatal(err)
	}
	if d.State != StateRunning || d.Reason != "booted" {
		t.Errorf("after Start: %v (%s), want running (booted)", d.State, d.Reason)
	}

	err = c.Start(ctx, "db1")
	wantErrIs(t, err, ErrAlreadyRunning)

	if err := c.Destroy(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	d, err = c.Lookup(ctx, "db1")
	if err != nil {
		t.Fatal(err)
	}
	if d.State != StateShutoff || d.Reason != "destroyed" {
		t.Errorf("after Destroy: %v (%s), want shutoff (destroyed)", d.State, d.Reason)
	}

	err = c.Destroy(ctx, "db1")
	wantErrIs(t, err, ErrNotRunning)
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)

	// The test driver powers off at once, so the wait ends on the first
	// check; the timeout is only a bound.
	res, err := c.Shutdown(ctx, "web1", ShutdownOptions{Timeout: waitLimit})
	if err != nil {
		t.Fatal(err)
	}
	if res.Forced {
		t.Errorf("Shutdown result %+v: forced, want graceful", res)
	}
	d, err := c.Lookup(ctx, "web1")
	if err != nil {
		t.Fatal(err)
	}
	if d.State != StateShutoff || d.Reason != "shutdown" {
		t.Errorf("after Shutdown: %v (%s), want shutoff (shutdown)", d.State, d.Reason)
	}

	_, err = c.Shutdown(ctx, "web1", ShutdownOptions{})
	wantErrIs(t, err, ErrNotRunning)
}

func TestShutdownTransientDomainVanishes(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm2")
	ctx := testCtx(t)
	if _, err := c.Shutdown(ctx, "temp1", ShutdownOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Lookup(ctx, "temp1")
	wantErrIs(t, err, ErrNotFound)
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.ListDomains(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ListDomains: %v, want context.Canceled", err)
	}
	if err := c.Start(ctx, "db1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Start: %v, want context.Canceled", err)
	}
	if _, err := c.Capacity(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Capacity: %v, want context.Canceled", err)
	}
}

func TestClosedConn(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c.Connected() {
		t.Error("Connected() after Close")
	}
	ctx := testCtx(t)
	_, err := c.ListDomains(ctx)
	wantErrIs(t, err, ErrClosed)
	err = c.Start(ctx, "db1")
	wantErrIs(t, err, ErrClosed)
}

// TestShutdownWaitLeavesTimeToDestroy: a shutdown that destroys on timeout
// waits for the guest only as long as still lets the destroy end before
// the caller's deadline.
func TestShutdownWaitLeavesTimeToDestroy(t *testing.T) {
	for _, c := range []struct{ timeout, left, want time.Duration }{
		{2 * time.Minute, 10*time.Minute + 30*time.Second, 2 * time.Minute}, // the deadline is far
		{2 * time.Minute, 90 * time.Second, 75 * time.Second},               // shutdown.timeout 60s + 30s
		{2 * time.Minute, 20 * time.Second, 15 * time.Second},               // a quarter kept for the destroy
		{2 * time.Minute, 0, 0},                                             // no time left: destroy at once
		{2 * time.Minute, -time.Second, 0},
	} {
		if got := shutdownWait(c.timeout, c.left); got != c.want {
			t.Errorf("shutdownWait(%v, %v) = %v, want %v", c.timeout, c.left, got, c.want)
		}
	}
}

package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// These tests run against libvirt's test:/// driver, which lives inside
// libvirt.so: no libvirtd, no root. Each testdata/*.xml file is one simulated
// host; every connection to such a file gets its own fresh copy of it, so
// tests that use a file of their own can run in parallel.

// waitLimit bounds every wait for something libvirt does asynchronously
// (events). It is a safety net against a hang, never what makes a test pass.
const waitLimit = 30 * time.Second

// hostURI returns the test:/// URI of the simulated host testdata/<name>.xml.
func hostURI(t *testing.T, name string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", name+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	return "test://" + abs
}

func testConfig(uri, host string) Config {
	cfg := DefaultConfig()
	cfg.URI = uri
	cfg.HostName = host
	return cfg
}

// dialHost connects to the simulated host testdata/<name>.xml and closes the
// connection when the test ends.
func dialHost(t *testing.T, name string) *Conn {
	t.Helper()
	return dialConfig(t, testConfig(hostURI(t, name), name))
}

func dialConfig(t *testing.T, cfg Config) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dial(%s): %v", cfg.URI, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testCtx is a context that ends when the test does, with waitLimit as a
// safety net.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// domainXML is a minimal definition the test driver accepts.
func domainXML(name, uuid string, memMiB, vcpus int) string {
	return fmt.Sprintf(`<domain type='test'>
  <name>%s</name>
  <uuid>%s</uuid>
  <memory unit='MiB'>%d</memory>
  <vcpu>%d</vcpu>
  <os><type>hvm</type></os>
</domain>`, name, uuid, memMiB, vcpus)
}

// nextEvent returns the next event of the stream that is not a resync, or
// fails the test when the stream ends or waitLimit passes.
func nextEvent(t *testing.T, ctx context.Context, events <-chan Event) Event {
	t.Helper()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream closed while waiting for an event")
			}
			if ev.Kind == EventResync {
				continue
			}
			return ev
		case <-ctx.Done():
			t.Fatalf("no event within %v", waitLimit)
		}
	}
}

// expectEvent reads the stream until an event for domain arrives and checks
// its kind and detail.
func expectEvent(t *testing.T, ctx context.Context, events <-chan Event, domain string, kind EventKind, detail string) Event {
	t.Helper()
	for {
		ev := nextEvent(t, ctx, events)
		if ev.Domain != domain {
			continue
		}
		if ev.Kind != kind || ev.Detail != detail {
			t.Fatalf("event for %q = %v, want %v (%s)", domain, ev, kind, detail)
		}
		if ev.Received.IsZero() {
			t.Errorf("event %v has no Received time", ev)
		}
		return ev
	}
}

// firstResync waits for the "subscribed" marker every stream starts with.
func firstResync(t *testing.T, ctx context.Context, events <-chan Event) {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok || ev.Kind != EventResync || ev.Detail != "subscribed" {
			t.Fatalf("first event = %v (open %v), want resync (subscribed)", ev, ok)
		}
	case <-ctx.Done():
		t.Fatalf("no subscribed marker within %v", waitLimit)
	}
}

func wantErrIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want errors.Is %v", err, target)
	}
}

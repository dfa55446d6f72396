package hypervisor

import (
	"context"
	"fmt"
	"testing"
)

func TestEventStream(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "empty")
	ctx := testCtx(t)
	events := c.Subscribe(ctx)
	firstResync(t, ctx, events)

	const uuid = "5a5a5a5a-0000-4000-8000-000000000001"
	if _, err := c.Define(ctx, domainXML("ev1", uuid, 64, 1)); err != nil {
		t.Fatal(err)
	}
	ev := expectEvent(t, ctx, events, "ev1", EventDefined, "added")
	if ev.UUID != uuid {
		t.Errorf("event UUID %q, want %q", ev.UUID, uuid)
	}

	steps := []struct {
		do     func() error
		kind   EventKind
		detail string
	}{
		{func() error { return c.Start(ctx, "ev1") }, EventStarted, "booted"},
		{func() error { return c.Destroy(ctx, "ev1") }, EventStopped, "destroyed"},
		{func() error { return c.Start(ctx, "ev1") }, EventStarted, "booted"},
		{func() error { _, err := c.Shutdown(ctx, "ev1", ShutdownOptions{}); return err }, EventStopped, "shutdown"},
		{func() error { return c.Undefine(ctx, "ev1") }, EventUndefined, "removed"},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, ctx, events, "ev1", s.kind, s.detail)
	}
}

// A consumer that does not read must cost the producer (libvirt's event
// loop, shared by every connection of the process) nothing: its events are
// dropped and replaced by one resync marker.
func TestSlowConsumerNeverBlocksProducer(t *testing.T) {
	t.Parallel()
	cfg := testConfig(hostURI(t, "empty"), "spare1")
	cfg.EventBuffer = 4
	c := dialConfig(t, cfg)
	ctx := testCtx(t)

	slow := c.Subscribe(ctx)
	firstResync(t, ctx, slow) // from here on, nobody reads slow

	const burst = 20 // define+undefine = 2 events each: far more than 4
	var want []Event
	for i := range burst {
		name := fmt.Sprintf("burst%02d", i)
		if _, err := c.Define(ctx, domainXML(name, fmt.Sprintf("6b6b6b6b-0000-4000-8000-%012d", i), 32, 1)); err != nil {
			t.Fatal(err)
		}
		if err := c.Undefine(ctx, name); err != nil {
			t.Fatal(err)
		}
		want = append(want, Event{Kind: EventDefined, Domain: name}, Event{Kind: EventUndefined, Domain: name})
	}

	// The event loop still delivers: a new subscriber sees a new event.
	// libvirt dispatches events in order on one goroutine, so once it has,
	// every burst event has been offered to slow as well.
	fast := c.Subscribe(ctx)
	firstResync(t, ctx, fast)
	marker := awaitFreshEvent(t, ctx, c, fast)

	// slow holds the first EventBuffer events (plus the one its delivery
	// goroutine may have taken out before the buffer filled), in order, then
	// one overflow marker instead of the rest.
	var got []Event
	for {
		ev := recv(t, ctx, slow)
		if ev.Kind == EventResync {
			if ev.Detail != "overflow" {
				t.Fatalf("resync %q, want overflow", ev.Detail)
			}
			break
		}
		got = append(got, ev)
	}
	if n := len(got); n < cfg.EventBuffer || n > cfg.EventBuffer+1 {
		t.Fatalf("slow consumer got %d events before the overflow marker, want %d or %d: %v",
			n, cfg.EventBuffer, cfg.EventBuffer+1, got)
	}
	for i, ev := range got {
		if ev.Kind != want[i].Kind || ev.Domain != want[i].Domain {
			t.Errorf("slow event %d = %v, want %v %q", i, ev, want[i].Kind, want[i].Domain)
		}
	}

	// Having caught up, the slow consumer gets new events again.
	if err := c.Undefine(ctx, marker); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ctx, slow, marker, EventUndefined, "removed")
}

// awaitFreshEvent defines a marker domain and waits until events delivers
// its event, and returns its name. libvirt's test driver dispatches the
// events queued so far in one go, so a subscriber made just after a burst
// may overflow on its tail and drop the marker's event: then it tries again
// with a new marker.
func awaitFreshEvent(t *testing.T, ctx context.Context, c *Conn, events <-chan Event) string {
	t.Helper()
	for i := 0; ; i++ {
		name := fmt.Sprintf("marker%d", i)
		if _, err := c.Define(ctx, domainXML(name, fmt.Sprintf("6b6b6b6b-0000-4000-9000-%012d", i), 32, 1)); err != nil {
			t.Fatal(err)
		}
		for {
			ev := recv(t, ctx, events)
			if ev.Kind == EventDefined && ev.Domain == name {
				return name
			}
			if ev.Kind == EventResync && ev.Detail == "overflow" {
				break // the marker may be lost: make another
			}
		}
	}
}

func recv(t *testing.T, ctx context.Context, events <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("event stream closed")
		}
		return ev
	case <-ctx.Done():
		t.Fatalf("no event within %v", waitLimit)
	}
	panic("unreachable")
}

// Several connections in one process share libvirt's one event loop; each
// gets its own host's events only.
func TestSeveralConnections(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	a := dialHost(t, "empty")
	b := dialHost(t, "empty") // same file, its own fresh copy of the host
	c := dialHost(t, "kvm1")
	ea, eb, ec := a.Subscribe(ctx), b.Subscribe(ctx), c.Subscribe(ctx)
	for _, ev := range []<-chan Event{ea, eb, ec} {
		firstResync(t, ctx, ev)
	}

	if _, err := a.Define(ctx, domainXML("only-a", "7d7d7d7d-0000-4000-8000-00000000000a", 32, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Define(ctx, domainXML("only-b", "7d7d7d7d-0000-4000-8000-00000000000b", 32, 1)); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, ctx, ea); ev.Domain != "only-a" || ev.Kind != EventDefined {
		t.Errorf("a got %v, want defined only-a", ev)
	}
	if ev := nextEvent(t, ctx, eb); ev.Domain != "only-b" || ev.Kind != EventDefined {
		t.Errorf("b got %v, want defined only-b", ev)
	}
	if ev := nextEvent(t, ctx, ec); ev.Domain != "db1" || ev.Kind != EventStarted {
		t.Errorf("kvm1 got %v, want started db1", ev)
	}
	if _, err := b.Lookup(ctx, "only-a"); err == nil {
		t.Error("a domain defined through a is visible through b: the two hosts share state")
	}
}

func TestEventLoopRegisteredOnce(t *testing.T) {
	// libvirt refuses a second virEventRegisterDefaultImpl; Dial must not
	// try again, whether or not other tests have dialed already.
	for range 3 {
		if err := startEventLoop(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSubscriptionEnds(t *testing.T) {
	t.Parallel()
	t.Run("context", func(t *testing.T) {
		c := dialHost(t, "empty")
		ctx, cancel := context.WithCancel(testCtx(t))
		events := c.Subscribe(ctx)
		cancel()
		drainUntilClosed(t, events)
		c.subsMu.Lock()
		n := len(c.subs)
		c.subsMu.Unlock()
		if n != 0 {
			t.Errorf("%d subscriptions left after their context ended", n)
		}
	})
	t.Run("close", func(t *testing.T) {
		c := dialHost(t, "empty")
		events := c.Subscribe(testCtx(t))
		c.Close()
		drainUntilClosed(t, events)
	})
}

// drainUntilClosed reads until the stream is closed; it may still hold the
// subscribed marker.
func drainUntilClosed(t *testing.T, events <-chan Event) {
	t.Helper()
	ctx := testCtx(t)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-ctx.Done():
			t.Fatalf("stream not closed within %v", waitLimit)
		}
	}
}

package hypervisor

import (
	"errors"
	"testing"
	"time"
)

// test:/// connections cannot break, so these tests report a loss the way
// the close callback or a failed operation does, and watch the Conn recover.

func TestReconnectAfterLoss(t *testing.T) {
	t.Parallel()
	cfg := testConfig(hostURI(t, "kvm1"), "kvm1")
	cfg.ReconnectMinBackoff = time.Millisecond
	c := dialConfig(t, cfg)
	ctx := testCtx(t)
	events := c.Subscribe(ctx)
	firstResync(t, ctx, events)

	c.mu.RLock()
	gen := c.gen
	c.mu.RUnlock()
	c.lost(gen, errors.New("libvirt closed the connection: end of file (libvirtd stopped?)"))

	ev := recv(t, ctx, events)
	if ev.Kind != EventDisconnected || ev.Detail != "libvirt closed the connection: end of file (libvirtd stopped?)" {
		t.Fatalf("first event after the loss = %v, want disconnected with the cause", ev)
	}
	ev = recv(t, ctx, events)
	if ev.Kind != EventResync || ev.Detail != "reconnected" {
		t.Fatalf("event after disconnected = %v, want resync (reconnected)", ev)
	}
	if !c.Connected() {
		t.Error("not Connected() after the reconnected marker")
	}
	c.mu.RLock()
	newGen := c.gen
	c.mu.RUnlock()
	if newGen != gen+1 {
		t.Errorf("generation %d after reconnect, want %d", newGen, gen+1)
	}
	// A late report about the old connection changes nothing.
	c.lost(gen, errors.New("stale"))
	if !c.Connected() {
		t.Error("a loss reported for an old generation broke the new connection")
	}

	// Operations and events work on the new connection.
	if _, err := c.ListDomains(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ctx, events, "db1", EventStarted, "booted")
}

func TestOperationsFailFastWhileDisconnected(t *testing.T) {
	t.Parallel()
	cfg := testConfig(hostURI(t, "kvm1"), "kvm1")
	// Long enough that the test runs inside the first backoff; Close ends
	// the wait early.
	cfg.ReconnectMinBackoff = time.Hour
	cfg.ReconnectMaxBackoff = time.Hour
	c := dialConfig(t, cfg)
	ctx := testCtx(t)

	c.mu.RLock()
	gen := c.gen
	c.mu.RUnlock()
	why := errors.New("keepalive timeout")
	c.lost(gen, why)
	if c.Connected() {
		t.Fatal("Connected() right after the loss")
	}
	_, err := c.ListDomains(ctx)
	wantErrIs(t, err, ErrConnection)
	wantErrIs(t, err, why)
	err = c.Start(ctx, "db1")
	wantErrIs(t, err, ErrConnection)

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Capacity(ctx)
	wantErrIs(t, err, ErrClosed)
}

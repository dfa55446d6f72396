package storage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// A poison pill goes from host 1 to host 2's mailbox, host 2 reads it and
// acknowledges it in its own slot, and host 1 reads the ack. A pill for an
// earlier generation of host 2's slot is stale.
func TestMailboxFenceAndAck(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	sender, target := openLUN(t, path), openLUN(t, path)
	hb1 := acquire(t, sender, 1, "kvm1")
	hb2 := acquire(t, target, 2, "kvm2")

	if m, err := target.ReadMailbox(ctx, 2); err != nil || m.Type != storage.MsgNone || m.For(hb2.Generation()) {
		t.Fatalf("empty mailbox: %+v %v", m, err)
	}
	sent, err := sender.SendMessage(ctx, storage.Message{Type: storage.MsgFence, From: 1, FromGen: hb1.Generation(),
		To: 2, ToGen: hb2.Generation(), Reason: "minority partition"})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Nonce == 0 || sent.Wall.IsZero() {
		t.Fatalf("sent %+v", sent)
	}
	got, err := target.ReadMailbox(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != storage.MsgFence || got.Nonce != sent.Nonce || got.From != 1 || got.FromGen != hb1.Generation() ||
		got.To != 2 || got.ToGen != hb2.Generation() || got.Reason != "minority partition" || !got.Wall.Equal(sent.Wall) {
		t.Fatalf("received %+v, sent %+v", got, sent)
	}
	if !got.For(hb2.Generation()) {
		t.Fatal("the pill is not for the current generation")
	}

	hb2.Ack(got, storage.AckDone)
	if _, err := hb2.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := sender.ReadSlot(ctx, 2)
	if err != nil || v.Err != nil {
		t.Fatal(err, v.Err)
	}
	if a := v.Record.Ack; a.Nonce != sent.Nonce || a.Type != storage.MsgFence || a.Result != storage.AckDone {
		t.Fatalf("ack %+v", a)
	}

	// Host 2 restarts: a new acquisition, a new generation; the old pill no longer applies.
	if err := hb2.Release(ctx, storage.SlotLeft); err != nil {
		t.Fatal(err)
	}
	hb2b := acquire(t, target, 2, "kvm2")
	if hb2b.Generation() != hb2.Generation()+1 {
		t.Fatalf("generation %d after %d", hb2b.Generation(), hb2.Generation())
	}
	old, err := target.ReadMailbox(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if old.Nonce != sent.Nonce || old.For(hb2b.Generation()) {
		t.Fatalf("stale pill %+v is for generation %d", old, hb2b.Generation())
	}

	// A test message replaces it and is acknowledged the same way.
	probe, err := sender.SendMessage(ctx, storage.Message{Type: storage.MsgTest, From: 1, To: 2, ToGen: hb2b.Generation(), Nonce: 42,
		Wall: time.Unix(1700000000, 0)})
	if err != nil || probe.Nonce != 42 {
		t.Fatalf("send test: %+v %v", probe, err)
	}
	got, err = target.ReadMailbox(ctx, 2)
	if err != nil || got.Type != storage.MsgTest || !got.For(hb2b.Generation()) {
		t.Fatalf("test message %+v %v", got, err)
	}
	hb2b.Ack(got, storage.AckDone)
	if _, err := hb2b.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := sender.ReadSlot(ctx, 2); v.Record.Ack.Nonce != 42 || v.Record.Ack.Type != storage.MsgTest {
		t.Fatalf("test ack %+v", v.Record.Ack)
	}
}

func TestMailboxRejects(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	l := openLUN(t, path)
	for _, m := range []storage.Message{
		{Type: storage.MsgNone, From: 1, To: 2},
		{Type: storage.MsgClear + 1, From: 1, To: 2},
		{Type: storage.MsgFence, From: 1, To: 0},
		{Type: storage.MsgFence, From: 0, To: 2},
		{Type: storage.MsgFence, From: 1, To: 9},
	} {
		if _, err := l.SendMessage(ctx, m); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%+v: %v", m, err)
		}
	}
	if _, err := l.SendMessage(ctx, storage.Message{Type: storage.MsgClear, From: 1, To: 3}); err != nil {
		t.Fatal(err)
	}
	flipBit(t, path, int64(smallGeometry().MaxHosts+3), 20)
	_, err := l.ReadMailbox(ctx, 3)
	wantBlockErr(t, err, storage.ErrCorrupt, path, int64(smallGeometry().MaxHosts+3))
}

package heartbeat

import (
	"context"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// Mailbox is the part of *storage.LUN a mailbox test uses.
type Mailbox interface {
	SendMessage(ctx context.Context, m storage.Message) (storage.Message, error)
	ReadSlot(ctx context.Context, host int) (storage.SlotView, error)
}

// TestMailbox proves the poison-pill path to host to at generation toGen
// without harm: it sends a test message through the host's LUN mailbox, as
// host from at generation fromGen, and reports whether that host's loop
// acknowledged it in its slot within 3 renewals and 2 I/O timeouts.
func TestMailbox(ctx context.Context, lun Mailbox, t storage.Timings, from int, fromGen uint64, to int, toGen uint64, reason string) (bool, error) {
	m, err := lun.SendMessage(ctx, storage.Message{Type: storage.MsgTest, From: from, FromGen: fromGen, To: to, ToGen: toGen, Reason: reason})
	if err != nil {
		return false, err
	}
	deadline := time.Now().Add(3*t.Renew + 2*t.IOTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		v, err := lun.ReadSlot(ctx, to)
		if err == nil && v.Record.Ack.Nonce == m.Nonce && v.Record.Ack.Result == storage.AckDone {
			return true, nil
		}
		time.Sleep(t.Renew / 4)
	}
	return false, nil
}

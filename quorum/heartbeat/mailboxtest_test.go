package heartbeat

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// ackingMailbox acknowledges the test message in the target's slot after
// ackAfter reads (0: never).
type ackingMailbox struct {
	sent     storage.Message
	reads    int
	ackAfter int
}

func (f *ackingMailbox) SendMessage(_ context.Context, m storage.Message) (storage.Message, error) {
	m.Nonce = 42
	f.sent = m
	return m, nil
}

func (f *ackingMailbox) ReadSlot(context.Context, int) (storage.SlotView, error) {
	f.reads++
	var v storage.SlotView
	if f.ackAfter > 0 && f.reads >= f.ackAfter {
		v.Record.Ack.Nonce, v.Record.Ack.Result = f.sent.Nonce, storage.AckDone
	}
	return v, nil
}

func TestMailboxTestWaitsForTheAcknowledgement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tm := storage.DefaultTimings()
		f := &ackingMailbox{ackAfter: 3}
		start := time.Now()
		acked, err := TestMailbox(t.Context(), f, tm, 1, 7, 2, 9, "wingman fence --test")
		if err != nil || !acked {
			t.Fatalf("acked %v, err %v", acked, err)
		}
		if m := f.sent; m.Type != storage.MsgTest || m.From != 1 || m.FromGen != 7 || m.To != 2 || m.ToGen != 9 {
			t.Errorf("sent %+v", m)
		}
		if waited := time.Since(start); waited != 2*tm.Renew/4 {
			t.Errorf("waited %v for an acknowledgement on the third read, want two pauses of Renew/4", waited)
		}

		f = &ackingMailbox{}
		start = time.Now()
		if acked, err := TestMailbox(t.Context(), f, tm, 1, 7, 2, 9, "x"); err != nil || acked {
			t.Fatalf("without an acknowledgement: acked %v, err %v", acked, err)
		}
		if waited := time.Since(start); waited < 3*tm.Renew+2*tm.IOTimeout {
			t.Errorf("gave up after %v, before 3 renewals and 2 I/O timeouts", waited)
		}
	})
}

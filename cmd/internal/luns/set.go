package luns

import (
	"context"
	"errors"
	"fmt"

	"github.com/wingmanha/wingman/storage"
)

// The calls of storage's LUN set are here, in one place.

// openSet opens the members as one LUN.
func openSet(ctx context.Context, devs []storage.Device, opts storage.OpenOptions) (*storage.LUN, error) {
	return storage.OpenSet(ctx, devs, opts)
}

// Format formats devs (1 or 3) as one set.
func Format(ctx context.Context, devs []storage.Device, opts storage.FormatOptions) ([]*storage.Header, error) {
	return storage.FormatSet(ctx, devs, opts)
}

// memberSeqs are the heartbeat sequences of slot v on each of n members
// (0: empty, damaged or unread there).
func memberSeqs(v storage.SlotView, n int) []uint64 {
	switch {
	case len(v.MemberSeq) == n:
		return v.MemberSeq
	case n == 1 && !v.Empty && v.Err == nil:
		return []uint64{v.Record.Sequence}
	}
	return make([]uint64, n)
}

// memberProblems says what is wrong with each failing member of l, by
// index: its header changed, or its latest I/O failed or timed out.
func memberProblems(l *storage.LUN) map[int]string {
	out := map[int]string{}
	for _, m := range l.Members() {
		if p := Problem(m); p != "" {
			out[m.Index] = p
		}
	}
	return out
}

// Problem says what is wrong with member m, or "" when it works.
func Problem(m storage.MemberStatus) string {
	switch {
	case m.Healthy():
		return ""
	case m.HeaderChanged != nil:
		why := m.HeaderChanged
		var be *storage.BlockError
		if errors.As(why, &be) {
			why = be.Err // without the hint for a single LUN: one of three changed stops nothing
		}
		return fmt.Sprintf("header changed (%v): its I/O is ignored until the header is back; `wingman lun restore-header` writes it", why)
	case errors.Is(m.LastErr, storage.ErrIOTimeout) || errors.Is(m.LastErr, storage.ErrIOPending) ||
		errors.Is(m.LastErr, context.DeadlineExceeded) || errors.Is(m.LastErr, context.Canceled):
		// Canceled: still running when the other two had answered.
		return fmt.Sprintf("I/O timeouts: slow or hung (%v)", m.LastErr)
	default:
		return fmt.Sprintf("I/O errors (%v)", m.LastErr)
	}
}

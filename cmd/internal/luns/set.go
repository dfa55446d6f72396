package luns

import (
	"context"
	"errors"

	"github.com/wingmanha/wingman/storage"
)

// The calls of storage's LUN set are here, in one place.

// openSet opens the members as one LUN.
func openSet(ctx context.Context, devs []storage.Device, opts storage.OpenOptions) (*storage.LUN, error) {
	if len(devs) != 1 {
		return nil, errors.New("three heartbeat LUNs need the LUN set of storage (storage.OpenSet)")
	}
	return storage.Open(ctx, devs[0], opts)
}

// memberSeqs are the heartbeat sequences of slot v on each of n members
// (0: unreadable there).
func memberSeqs(v storage.SlotView, n int) []uint64 {
	if v.Empty || v.Err != nil {
		return make([]uint64, n)
	}
	return []uint64{v.Record.Sequence}
}

// memberProblems says what is wrong with each failing member of l, by
// index.
func memberProblems(l *storage.LUN) map[int]string {
	return nil
}

// Format formats devs (1 or 3) as one set.
func Format(ctx context.Context, devs []storage.Device, opts storage.FormatOptions) ([]*storage.Header, error) {
	if len(devs) != 1 {
		return nil, errors.New("three heartbeat LUNs need the LUN set of storage (storage.FormatSet)")
	}
	h, err := storage.Format(ctx, devs[0], opts)
	if err != nil {
		return nil, err
	}
	return []*storage.Header{h}, nil
}

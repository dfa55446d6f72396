package storage_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
)

// Every completed LUN I/O of a WithProgress context reports progress, slow,
// failed or not; one that times out does not.
func TestProgressCountsCompletedIO(t *testing.T) {
	path := lunFile(t, storage.FormatOptions{})
	c := storagetest.NewController()
	l := faultLUN(t, path, c, "h1")
	var n atomic.Int64
	ctx := storage.WithProgress(testCtx(t), func() { n.Add(1) })

	c.Inject("h1", storagetest.Fault{Op: storagetest.Reads, Latency: 5 * time.Millisecond})
	reads := c.Stats("h1").Reads
	if _, errs := l.ReadVMs(ctx); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	done := int64(c.Stats("h1").Reads - reads)
	if got := n.Load(); got != done || got == 0 {
		t.Errorf("%d progress calls for %d completed slow reads", got, done)
	}

	c.Clear("h1")
	c.Inject("h1", storagetest.Fault{Op: storagetest.Reads, EIO: true, Count: 1})
	n.Store(0)
	if _, err := l.ReadSlot(ctx, 1); err == nil {
		t.Fatal("read with EIO succeeded")
	}
	if got := n.Load(); got != 1 {
		t.Errorf("%d progress calls for one failed read, want 1", got)
	}

	c.Inject("h1", storagetest.Fault{Op: storagetest.Reads, Hang: true, Count: 1})
	n.Store(0)
	if _, err := l.ReadSlot(ctx, 1); !errors.Is(err, storage.ErrIOTimeout) {
		t.Fatalf("hung read: %v", err)
	}
	if got := n.Load(); got != 0 {
		t.Errorf("%d progress calls for a read that timed out, want 0", got)
	}
	c.Clear("h1")

	// Without WithProgress nothing is called, and nothing breaks.
	if _, err := l.ReadSlot(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
}

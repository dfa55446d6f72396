package storage_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/storage"
)

// TestHeaderChangedUnderARunningHost: the header is checked with every read
// of the slots, at no extra I/O; a zeroed header is noticed by the next
// renewal, the heartbeat goes on, and RestoreHeader writes it back.
func TestHeaderChangedUnderARunningHost(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	l := openLUN(t, path)
	hb := acquire(t, l, 1, "kvm1")
	if _, err := hb.Renew(ctx); err != nil || l.Integrity().HeaderChanged() != nil {
		t.Fatalf("renew on a sound LUN: %v, header %v", err, l.Integrity().HeaderChanged())
	}
	before := l.IOStats().Reads
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if n := l.IOStats().Reads - before; n != 1 {
		t.Errorf("a renewal made %d reads, want 1 (the header comes with the slots)", n)
	}

	old := patchBlock(t, path, 0, make([]byte, storage.BlockSize))
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatalf("renew with a zeroed header: %v, want the heartbeat to go on", err)
	}
	err := l.Integrity().HeaderChanged()
	if !errors.Is(err, storage.ErrHeaderChanged) || !strings.Contains(err.Error(), "zeros") || !strings.Contains(err.Error(), "restore-header") {
		t.Fatalf("HeaderChanged after zeroing: %v", err)
	}
	res, err := l.Integrity().RestoreHeader(ctx, false)
	if err != nil || res.Found != "zeros" || !res.Wrote {
		t.Fatalf("restore: %+v, %v", res, err)
	}
	if err := l.Integrity().HeaderChanged(); err != nil {
		t.Errorf("HeaderChanged after restore: %v", err)
	}
	if _, err := hb.Renew(ctx); err != nil || l.Integrity().HeaderChanged() != nil {
		t.Errorf("renew after restore: %v, header %v", err, l.Integrity().HeaderChanged())
	}
	if _, err := storage.OpenPath(ctx, path, storage.OpenOptions{}); err != nil {
		t.Errorf("a host that starts after the restore: %v", err)
	}
	patchBlock(t, path, 0, old)

	// Another cluster's valid header: refused without force, and said what it is.
	other := lunFile(t, storage.FormatOptions{ClusterName: "other"})
	foreign := readBlock0(t, other)
	patchBlock(t, path, 0, foreign)
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Integrity().HeaderChanged(); !errors.Is(err, storage.ErrHeaderChanged) || !strings.Contains(err.Error(), `"other"`) {
		t.Errorf("HeaderChanged with another cluster's header: %v", err)
	}
	res, err = l.Integrity().RestoreHeader(ctx, false)
	if !errors.Is(err, storage.ErrConflict) || !strings.Contains(res.Found, `cluster "other"`) || !strings.Contains(err.Error(), "--force") || res.Wrote {
		t.Errorf("restore over another cluster's header: %+v, %v", res, err)
	}
	if got := readBlock0(t, path); string(got) != string(foreign) {
		t.Error("a refused restore wrote the header")
	}
	if _, err := l.Integrity().RestoreHeader(ctx, true); err != nil || l.Integrity().HeaderChanged() != nil {
		t.Errorf("forced restore: %v, header %v", err, l.Integrity().HeaderChanged())
	}
	if res, err := l.Integrity().RestoreHeader(ctx, false); err != nil || !strings.Contains(res.Found, "intact") || res.Wrote {
		t.Errorf("restore of an intact header: %+v, %v", res, err)
	}
}

func readBlock0(t *testing.T, path string) []byte {
	t.Helper()
	b := patchBlock(t, path, 0, nil)
	return b
}

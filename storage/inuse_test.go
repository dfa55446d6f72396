package storage_test

import (
	"testing"

	"github.com/wingmanha/wingman/storage"
)

// Between full scans InUse reads only the records in use at the last one:
// it sees changes to those, misses a VM stored in a blank record until the
// next full scan, and scans in full again after a failed read.
func TestInUseReadsTheRecordsInUse(t *testing.T) {
	ctx := testCtx(t)
	l, dev := countingLUN(t)
	me := storage.Owner{Host: 1, Gen: 1, Nonce: 1}
	protect := func(name string) int {
		idx, _, err := l.ProtectVM(ctx, me, storage.VMConfig{UUID: storage.NewUUID(), Name: name, XML: []byte("<domain/>")})
		if err != nil {
			t.Fatal(err)
		}
		return idx
	}
	names := func(recs []storage.VMRecord) (out []string) {
		for _, r := range recs {
			if r.Protected() {
				out = append(out, r.Config.Name)
			}
		}
		return out
	}
	protect("vm0")

	var u storage.InUse
	if u.Scanned() {
		t.Fatal("a zero InUse claims a scan")
	}
	recs, errs := u.Read(ctx, l, false) // nothing known yet: a full scan
	if len(errs) > 0 || len(recs) != smallGeometry().MaxVMs || !u.Scanned() {
		t.Fatalf("first read: %d records, %v", len(recs), errs)
	}

	protect("vm1")
	dev.reads = 0
	recs, errs = u.Read(ctx, l, false)
	if len(errs) > 0 || len(recs) != 1 || names(recs)[0] != "vm0" {
		t.Fatalf("read between full scans: %v %v, want vm0 only", names(recs), errs)
	}
	if dev.reads != 3 { // two config copies and the lease
		t.Errorf("read between full scans: %d I/Os, want 3", dev.reads)
	}

	recs, errs = u.Read(ctx, l, true)
	if got := names(recs); len(errs) > 0 || len(got) != 2 {
		t.Fatalf("full scan: %v %v, want vm0 and vm1", got, errs)
	}
	recs, _ = u.Read(ctx, l, false)
	if got := names(recs); len(got) != 2 {
		t.Fatalf("read after the full scan: %v, want vm0 and vm1", got)
	}

	// A failed read forgets what was in use: the next one scans in full.
	dev.setFail(true)
	if _, errs := u.Read(ctx, l, false); len(errs) == 0 || u.Scanned() {
		t.Fatalf("read of a failing LUN: %v, scanned %v", errs, u.Scanned())
	}
	dev.setFail(false)
	dev.reads = 0
	if recs, errs := u.Read(ctx, l, false); len(errs) > 0 || len(recs) != smallGeometry().MaxVMs {
		t.Fatalf("read after a failure: %d records %v, want a full scan", len(recs), errs)
	}
}

package storage_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/storage"
)

// writtenRecordBlocks returns the numbers of the non-blank blocks of the VM-record
// region of the LUN file at path that belong to VM records (config copies
// and lease blocks, found by their magic): the blocks that were written.
func writtenRecordBlocks(t *testing.T, path string) (cfg, lease []int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for blk := int64(0); blk*storage.BlockSize < int64(len(b)); blk++ {
		switch string(b[blk*storage.BlockSize : blk*storage.BlockSize+4]) {
		case "WGVC":
			cfg = append(cfg, blk)
		case "WGVL":
			lease = append(lease, blk)
		}
	}
	return cfg, lease
}

// leaseBlockOf finds the lease block host wrote for VM record idx.
func leaseBlockOf(t *testing.T, path string, idx, host int) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for blk := int64(0); blk*storage.BlockSize < int64(len(b)); blk++ {
		r := b[blk*storage.BlockSize:]
		if string(r[0:4]) == "WGVL" && int(binary.LittleEndian.Uint32(r[8:])) == idx && int(binary.LittleEndian.Uint16(r[12:])) == host {
			return blk
		}
	}
	t.Fatalf("no lease block of host %d for VM record %d", host, idx)
	return 0
}

// patchBlock overwrites block blk of the file at path with p (a full block
// or a prefix) and returns what it held, to put back.
func patchBlock(t *testing.T, path string, blk int64, p []byte) []byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := make([]byte, storage.BlockSize)
	if _, err := f.ReadAt(old, blk*storage.BlockSize); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(p, blk*storage.BlockSize); err != nil {
		t.Fatal(err)
	}
	return old
}

// damagedHistoryLUN builds a LUN whose four VM records have each been
// written in a different way, and returns its path and, per record, the
// lease as it was read before any damage.
//
//	0: protected by host 1 (epoch 1, config 1)
//	1: protected by host 1, failed over to host 2 (epoch 2), config rewritten by host 2
//	2: protected by host 3, guest up, policy changed (config 2)
//	3: protected by host 1, failed over to host 2 without a config write
func damagedHistoryLUN(t *testing.T) (string, map[int]storage.LeaseState) {
	t.Helper()
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	w := openLUN(t, path)
	own := func(h int) storage.Owner { return storage.Owner{Host: h, Gen: 1, Nonce: uint64(h)*7 + 1} }
	protect := func(h int, name string) (int, storage.LeaseState) {
		idx, lease, err := w.ProtectVM(ctx, own(h), storage.VMConfig{UUID: storage.NewUUID(), Name: name, XML: domainXML(name, 600)})
		if err != nil {
			t.Fatal(err)
		}
		return idx, lease
	}
	protect(1, "a")
	b, _ := protect(1, "b")
	lease, err := w.AcquireLease(ctx, b, 1, own(2))
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := w.ReadVM(ctx, b)
	if _, err := w.WriteVMConfig(ctx, b, lease, *rb.Config); err != nil {
		t.Fatal(err)
	}
	c, lc := protect(3, "c")
	if lc, err = w.SetGuestUp(ctx, c, lc); err != nil {
		t.Fatal(err)
	}
	rc, _ := w.ReadVM(ctx, c)
	if _, err := w.WriteVMConfig(ctx, c, lc, *rc.Config); err != nil {
		t.Fatal(err)
	}
	d, _ := protect(1, "d")
	if _, err := w.AcquireLease(ctx, d, 1, own(2)); err != nil {
		t.Fatal(err)
	}
	before := map[int]storage.LeaseState{}
	recs, errs := openLUN(t, path).ReadVMs(ctx)
	if len(errs) > 0 || len(recs) != 4 {
		t.Fatalf("before damage: %d records, errors %v", len(recs), errs)
	}
	for _, r := range recs {
		if !r.Lease.Held() {
			t.Fatalf("record %d not held before damage: %+v", r.Index, r.Lease)
		}
		before[r.Index] = r.Lease
	}
	return path, before
}

// TestDamagedRecordNeverReadsFree damages the written blocks of VM records
// (zeroed, random bytes, torn: a prefix zeroed, and a whole lease region or
// record zeroed) a thousand times, and reads the LUN each time with a
// handle that read it before the damage (a running daemon) and one opened
// after it (a daemon that just started). A record whose lease was held
// must never read as free: either an error, or a held lease; the running
// daemon's handle must read it exactly as before, or fail.
func TestDamagedRecordNeverReadsFree(t *testing.T) {
	ctx := testCtx(t)
	path, before := damagedHistoryLUN(t)
	cfgBlocks, leaseBlocks := writtenRecordBlocks(t, path)
	written := append(append([]int64(nil), cfgBlocks...), leaseBlocks...)
	warm := openLUN(t, path)
	if _, errs := warm.ReadVMs(ctx); len(errs) > 0 {
		t.Fatal(errs)
	}
	rng := rand.New(rand.NewPCG(17, 4))
	const trials = 1000
	var errored, heldFresh int
	for trial := range trials {
		kind := rng.IntN(5)
		var patches map[int64][]byte
		whole := false
		switch kind {
		case 0, 1, 2: // one written block: zeroed, random, torn
			blk := written[rng.IntN(len(written))]
			p := make([]byte, storage.BlockSize)
			switch kind {
			case 1:
				for i := range p {
					p[i] = byte(rng.UintN(256))
				}
			case 2:
				p = make([]byte, 64*(1+rng.IntN(4))) // the first sector's head lost
			}
			patches = map[int64][]byte{blk: p}
		case 3: // every lease block of one record
			patches = map[int64][]byte{}
			idx := rng.IntN(4)
			for h := 1; h <= 3; h++ {
				if blk, ok := findLeaseBlock(path, idx, h); ok {
					patches[blk] = make([]byte, storage.BlockSize)
				}
			}
		case 4: // the whole record: configs and leases
			whole = true
			patches = map[int64][]byte{}
			for _, blk := range written {
				if rng.IntN(2) == 0 {
					patches[blk] = make([]byte, storage.BlockSize)
				}
			}
		}
		saved := map[int64][]byte{}
		for blk, p := range patches {
			saved[blk] = patchBlock(t, path, blk, p)
		}

		fresh, err := storage.OpenPath(ctx, path, storage.OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		for idx, was := range before {
			r, err := warm.ReadVM(ctx, idx)
			if err == nil && (r.Lease != was || !r.Protected()) {
				t.Fatalf("trial %d (kind %d, blocks %v): the running host's handle reads record %d as %+v (protected %v), was %+v",
					trial, kind, keys(patches), idx, r.Lease, r.Protected(), was)
			}
			if err != nil {
				errored++
				if !errors.Is(err, storage.ErrCorrupt) && !errors.Is(err, storage.ErrVersion) {
					t.Fatalf("trial %d: record %d: %v, want a damaged-record error", trial, idx, err)
				}
			}
			r, err = fresh.ReadVM(ctx, idx)
			switch {
			case err != nil:
			case whole && r.Config == nil:
				// Every block of the record blank: a host that starts now
				// cannot tell it from a record never used; it does not
				// know the VM either, so it starts nothing.
			case !r.Lease.Held() && !r.Lease.InProgress:
				t.Fatalf("trial %d (kind %d, blocks %v): a host that starts now reads record %d as free: %+v (was %+v)",
					trial, kind, keys(patches), idx, r.Lease, was)
			default:
				heldFresh++
			}
		}
		fresh.Close()
		for blk, p := range saved {
			patchBlock(t, path, blk, p)
		}
	}
	t.Logf("%d damaged images: %d reads of the running host failed as damaged, %d fresh reads found the lease held", trials, errored, heldFresh)
	// Undamaged again, the running host reads everything as before.
	for idx, was := range before {
		if r, err := warm.ReadVM(ctx, idx); err != nil || r.Lease != was {
			t.Fatalf("record %d after repair: %+v, %v", idx, r.Lease, err)
		}
	}
	if d := warm.Integrity().Damaged(); len(d) != 0 {
		t.Errorf("Damaged after every record read clean: %v", d)
	}
}

func findLeaseBlock(path string, idx, host int) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for blk := int64(0); blk*storage.BlockSize < int64(len(b)); blk++ {
		r := b[blk*storage.BlockSize:]
		if string(r[0:4]) == "WGVL" && int(binary.LittleEndian.Uint32(r[8:])) == idx && int(binary.LittleEndian.Uint16(r[12:])) == host {
			return blk, true
		}
	}
	return 0, false
}

func keys(m map[int64][]byte) []int64 {
	var out []int64
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestZeroedOwnerLeaseBlock is the reported case: the owner's lease block
// zeroed. Every reader fails on the record (a host that read it before by
// the epoch it saw, one that starts now by the config's epoch) and says
// what to do; the owner's own handle writes its block back from its copy,
// after which the record reads as before everywhere.
func TestZeroedOwnerLeaseBlock(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	owner, other := openLUN(t, path), openLUN(t, path)
	me := storage.Owner{Host: 3, Gen: 2, Nonce: 9}
	idx, lease, err := owner.ProtectVM(ctx, me, storage.VMConfig{UUID: storage.NewUUID(), Name: "db", XML: domainXML("db", 500)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.ReadVM(ctx, idx); err != nil {
		t.Fatal(err)
	}
	patchBlock(t, path, leaseBlockOf(t, path, idx, 3), make([]byte, storage.BlockSize))

	for name, l := range map[string]*storage.LUN{"a running host": other, "a host that starts now": openLUN(t, path)} {
		_, err := l.ReadVM(ctx, idx)
		if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "zeroed or lost") || !strings.Contains(err.Error(), "started nowhere else") {
			t.Errorf("%s reads the record: %v, want a damaged lease that says what to do", name, err)
		}
		recs, errs := l.ReadVMs(ctx)
		if len(errs) != 1 || len(recs) != storage.DefaultVMs-1 && len(recs) != 3 {
			t.Errorf("%s scans: %d records, errors %v", name, len(recs), errs)
		}
		if _, _, err := l.ProtectVM(ctx, storage.Owner{Host: 1, Gen: 1, Nonce: 1}, storage.VMConfig{UUID: storage.NewUUID(), Name: "x"}); err == nil {
			t.Errorf("%s protects a VM beside a damaged record", name)
		}
		if len(l.Integrity().Damaged()) != 1 {
			t.Errorf("%s: Damaged() = %v", name, l.Integrity().Damaged())
		}
	}
	// A host that acquires over it is refused before it writes anything.
	if _, err := other.AcquireLease(ctx, idx, 0, storage.Owner{Host: 1, Gen: 1, Nonce: 5}); !errors.Is(err, storage.ErrCorrupt) {
		t.Errorf("acquire over the damaged lease: %v", err)
	}

	// The owner's handle heals its own block on its next read.
	_, err = owner.ReadLease(ctx, idx)
	if err == nil || !strings.Contains(err.Error(), "written back") {
		t.Fatalf("owner's read of its zeroed block: %v, want it written back", err)
	}
	for name, l := range map[string]*storage.LUN{"owner": owner, "other": other, "new": openLUN(t, path)} {
		r, err := l.ReadVM(ctx, idx)
		if err != nil || r.Lease.Owner != me || r.Lease.Epoch != lease.Epoch || !r.Lease.Held() {
			t.Errorf("%s after the heal: %+v, %v", name, r.Lease, err)
		}
		if d := l.Integrity().Damaged(); len(d) != 0 {
			t.Errorf("%s: Damaged() after the heal = %v", name, d)
		}
	}
}

// TestBlankConfigCopyOfAWrittenRecord: the copies alternate, so a blank
// copy beside a copy of sequence 2 was written and lost (it may have been
// the newer one, or a tombstone), even for a host that starts now.
func TestBlankConfigCopyOfAWrittenRecord(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	l := openLUN(t, path)
	idx, lease, err := l.ProtectVM(ctx, storage.Owner{Host: 1, Gen: 1, Nonce: 1}, storage.VMConfig{UUID: storage.NewUUID(), Name: "a", XML: domainXML("a", 100)})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := l.ReadVM(ctx, idx)
	if _, err := l.WriteVMConfig(ctx, idx, lease, *r.Config); err != nil {
		t.Fatal(err)
	}
	cfgs, _ := writtenRecordBlocks(t, path)
	if len(cfgs) != 2 {
		t.Fatalf("config blocks %v", cfgs)
	}
	for _, blk := range cfgs {
		old := patchBlock(t, path, blk, make([]byte, storage.BlockSize))
		if _, err := openLUN(t, path).ReadVM(ctx, idx); blk == cfgs[0] && !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("copy A (sequence 1) blank beside sequence 2: %v", err)
		}
		if _, err := l.ReadVM(ctx, idx); !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("block %d blank, read by the host that wrote sequence 2: %v", blk, err)
		}
		patchBlock(t, path, blk, old)
	}
}

// TestZeroedRegisterReadsDamaged: the settings record, once written, does
// not read as never written when its ballots are zeroed.
func TestZeroedRegisterReadsDamaged(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	l := openLUN(t, path)
	recs := storage.NewClusterRecords(l)
	if _, err := recs.WriteSettings(ctx, 1, storage.ClusterSettings{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for blk := int64(0); blk*storage.BlockSize < int64(len(b)); blk++ {
		if bytes.Equal(b[blk*storage.BlockSize:blk*storage.BlockSize+4], []byte("WGRG")) {
			patchBlock(t, path, blk, make([]byte, storage.BlockSize))
		}
	}
	if _, err := recs.Settings(ctx); !errors.Is(err, storage.ErrCorrupt) {
		t.Errorf("zeroed settings ballots read by the host that wrote them: %v", err)
	}
}

// TestReclaimLease: the owner's lease block zeroed and its wingmand
// restarted (no copy of its block left): the host that runs the VM
// reclaims the lease at a new epoch, after which every host reads it held
// by that host. Refused where the VM does not run, and on a clean record.
func TestReclaimLease(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	first := openLUN(t, path)
	idx, _, err := first.ProtectVM(ctx, storage.Owner{Host: 2, Gen: 1, Nonce: 4}, storage.VMConfig{UUID: storage.NewUUID(), Name: "db", XML: domainXML("db", 300)})
	if err != nil {
		t.Fatal(err)
	}
	other := openLUN(t, path)
	if _, err := other.ReadVM(ctx, idx); err != nil {
		t.Fatal(err)
	}
	restarted := openLUN(t, path)
	if _, err := restarted.Integrity().ReclaimLease(ctx, idx, storage.Owner{Host: 2, Gen: 2, Nonce: 5}, func(storage.UUID) (bool, error) { return true, nil }); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("reclaim of a clean record: %v", err)
	}
	patchBlock(t, path, leaseBlockOf(t, path, idx, 2), make([]byte, storage.BlockSize))
	if _, err := restarted.ReadVM(ctx, idx); !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "reclaim-lease") {
		t.Fatalf("damaged record: %v, want the reclaim command named", err)
	}
	me := storage.Owner{Host: 2, Gen: 2, Nonce: 6}
	if _, err := restarted.Integrity().ReclaimLease(ctx, idx, me, func(storage.UUID) (bool, error) { return false, nil }); !errors.Is(err, storage.ErrInvalid) || !strings.Contains(err.Error(), "does not run on this host") {
		t.Errorf("reclaim where the VM does not run: %v", err)
	}
	lease, err := restarted.Integrity().ReclaimLease(ctx, idx, me, func(storage.UUID) (bool, error) { return true, nil })
	if err != nil || lease.Owner != me || lease.Epoch != 2 || !lease.Held() {
		t.Fatalf("reclaim: %+v, %v", lease, err)
	}
	for name, l := range map[string]*storage.LUN{"restarted": restarted, "other": other, "new": openLUN(t, path)} {
		if r, err := l.ReadVM(ctx, idx); err != nil || r.Lease.Owner != me || r.Lease.Epoch != 2 {
			t.Errorf("%s after the reclaim: %+v, %v", name, r.Lease, err)
		}
	}
}

// TestZeroedOwnSlotIsRewritten: a zeroed heartbeat slot is damage, not a
// takeover (an acquirer writes a whole record): its owner's next renewal
// rewrites it instead of giving the slot up and fencing itself.
func TestZeroedOwnSlotIsRewritten(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	l := openLUN(t, path)
	hb := acquire(t, l, 3, "kvm3")
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	seq := hb.Record().Sequence
	patchBlock(t, path, 3, make([]byte, storage.BlockSize))
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatalf("renew over a zeroed own slot: %v", err)
	}
	v, err := openLUN(t, path).ReadSlot(ctx, 3)
	if err != nil || v.Empty || v.Record.HostName != "kvm3" || v.Record.Sequence != seq+1 {
		t.Fatalf("slot after the renewal: %+v, %v", v, err)
	}
}

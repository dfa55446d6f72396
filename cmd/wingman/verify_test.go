package main

import (
	"context"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/storage"
)

// findBlock returns the first block of the file at path for which match holds.
func findBlock(t *testing.T, path string, match func(b []byte) bool) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for blk := int64(0); (blk+1)*storage.BlockSize <= int64(len(b)); blk++ {
		if match(b[blk*storage.BlockSize : (blk+1)*storage.BlockSize]) {
			return blk
		}
	}
	t.Fatal("no such block")
	return 0
}

// damage writes p at byte off of the file at path and returns a func that
// puts back what was there.
func damage(t *testing.T, path string, off int64, p []byte) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := make([]byte, len(p))
	if _, err := f.ReadAt(old, off); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
	return func() {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_SYNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(old, off); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVerifyFindsDamagedRecords: every kind of damage the issue found
// reported as sound or as a failure is damage, exit 3, and dump shows a
// damaged event entry instead of dropping it.
func TestVerifyFindsDamagedRecords(t *testing.T) {
	p := lunPath(t)
	if code, _, e := wingman(t, "lun", "format", "--cluster", "v", "--hosts", "4", "--vms", "2", p); code != exitOK {
		t.Fatalf("format: %d %s", code, e)
	}
	ctx := context.Background()
	l, err := storage.OpenPath(ctx, p, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := l.AcquireSlot(ctx, storage.AcquireOptions{HostName: "kvm2", HostID: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.ProtectVM(ctx, storage.Owner{Host: 2, Gen: 1, Nonce: 3}, storage.VMConfig{UUID: storage.NewUUID(), Name: "db"}); err != nil {
		t.Fatal(err)
	}
	el, err := l.EventLog(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := el.Append(ctx, storage.Event{Kind: "test", Message: "hello"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if code, out, e := wingman(t, "lun", "verify", p); code != exitOK {
		t.Fatalf("verify of a sound LUN: %d %q %q", code, out, e)
	}
	le := binary.LittleEndian
	ownerLease := findBlock(t, p, func(b []byte) bool { return string(b[0:4]) == "WGVL" && le.Uint16(b[12:]) == 2 })
	ring := findBlock(t, p, func(b []byte) bool { return string(b[0:4]) == "WGEV" })
	unusedLease := ownerLease + 2*16 + 4 // record 1's lease block of host 1: config blocks A and B, 4 lease blocks each
	cases := []struct {
		name string
		off  int64
		p    []byte
		want string
	}{
		{"zeroed owner lease block", ownerLease * storage.BlockSize, make([]byte, storage.BlockSize), "lease of VM record 0"},
		{"torn event", ring*storage.BlockSize + 2*256 + 100, []byte("torn"), "event ring of host 2, entry 2"},
		{"zeroed event among the last", ring*storage.BlockSize + 3*256, make([]byte, 256), "event 4 was written here and lost"},
		{"garbage in an unused record's lease block", unusedLease * storage.BlockSize, []byte("WGVLgarbage"), "for VM record 1"},
		{"zeroed header", 0, make([]byte, storage.BlockSize), "restore-header"},
	}
	for _, c := range cases {
		undo := damage(t, p, c.off, c.p)
		code, out, errOut := wingman(t, "lun", "verify", p)
		if code != exitDamaged || !strings.Contains(out+errOut, c.want) {
			t.Errorf("%s: verify exit %d, want 3 and %q in\n%s%s", c.name, code, c.want, out, errOut)
		}
		if strings.Contains(c.name, "event") {
			if _, out, _ := wingman(t, "lun", "dump", p); !strings.Contains(out, "(damaged entry)") {
				t.Errorf("%s: dump does not show the damaged entry:\n%s", c.name, out)
			}
		}
		undo()
	}
	if code, out, e := wingman(t, "lun", "verify", p); code != exitOK {
		t.Fatalf("verify after the repairs: %d %q %q", code, out, e)
	}
}

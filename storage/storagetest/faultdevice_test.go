package storagetest_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
)

const bs = storage.BlockSize

// fileDevice returns a 16-block file opened with O_DIRECT, filled with 0xAA.
func fileDevice(t *testing.T) *storage.FileDevice {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dev.img")
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xAA}, 16*bs), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := storage.OpenFile(path)
	if err != nil {
		t.Skipf("skipping: no O_DIRECT on %s: %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// buf returns a BlockSize-aligned buffer of n blocks filled with c.
func buf(n int, c byte) []byte {
	b := make([]byte, n*bs+bs)
	off := 0
	for (uintptrOf(b)+uintptr(off))%bs != 0 {
		off++
	}
	b = b[off : off+n*bs]
	for i := range b {
		b[i] = c
	}
	return b
}

func readBlock(t *testing.T, d storage.Device, block int64) []byte {
	t.Helper()
	b := buf(1, 0)
	if _, err := d.ReadAt(b, block*bs); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNoFaultPassesThrough(t *testing.T) {
	fd := fileDevice(t)
	c := storagetest.NewController()
	d := c.Device("h", fd)
	if _, err := d.WriteAt(buf(1, 1), 2*bs); err != nil {
		t.Fatal(err)
	}
	if got := readBlock(t, d, 2); !bytes.Equal(got, buf(1, 1)) {
		t.Fatal("write did not land")
	}
	if d.Size() != 16*bs || d.Path() != fd.Path() || d.SectorSize() != fd.SectorSize() {
		t.Errorf("device %d %s %d", d.Size(), d.Path(), d.SectorSize())
	}
	if s := c.Stats("h"); s != (storagetest.Stats{Reads: 1, Writes: 1}) {
		t.Errorf("stats %+v", s)
	}
	if s := c.Stats("nobody"); s != (storagetest.Stats{}) {
		t.Errorf("stats of an unknown host %+v", s)
	}
}

// A file LUN behind the test cluster's fault file still grows for the
// cluster-records area (its wingmand stores notification targets there);
// a bare fault device stands for a block device and does not.
func TestGrowPassesThroughTheFaultFile(t *testing.T) {
	fd := fileDevice(t)
	fc := storagetest.ControlFromFile(fd, filepath.Join(t.TempDir(), "lun-fault"), time.Hour, nil)
	defer fc.Close()
	if err := fc.Grow(32 * bs); err != nil || fc.Size() != 32*bs || fd.Size() != 32*bs {
		t.Fatalf("grow: %v, size %d", err, fc.Size())
	}
	if _, ok := any(storagetest.NewController().Device("h", fd)).(interface{ Grow(int64) error }); ok {
		t.Error("a bare fault device can grow; the storage tests need it to stand for a block device")
	}
}

func TestEIOByBlockAndCount(t *testing.T) {
	fd := fileDevice(t)
	c := storagetest.NewController()
	d := c.Device("h", fd)
	c.Inject("h", storagetest.Fault{Op: storagetest.Writes, From: 4, To: 6, EIO: true, Count: 2})
	for _, tc := range []struct {
		block, n int64
		fail     bool
	}{
		{3, 1, false}, // before the range
		{6, 1, false}, // To is exclusive
		{3, 2, true},  // overlaps block 4
		{5, 1, true},
		{4, 1, false}, // Count used up
	} {
		_, err := d.WriteAt(buf(int(tc.n), 7), tc.block*bs)
		if got := errors.Is(err, syscall.EIO); got != tc.fail {
			t.Errorf("write at %d+%d: %v, want failure %v", tc.block, tc.n, err, tc.fail)
		}
	}
	if _, err := d.ReadAt(buf(1, 0), 4*bs); err != nil {
		t.Errorf("a write fault failed a read: %v", err)
	}
	if got := readBlock(t, fd, 5); got[0] != 0xAA {
		t.Error("a failed write changed the device")
	}
	if s := c.Stats("h"); s.Failed != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestLatency(t *testing.T) {
	c := storagetest.NewController()
	d := c.Device("h", fileDevice(t))
	c.Inject("h", storagetest.Fault{Op: storagetest.Reads, Latency: 20 * time.Millisecond, Count: 1})
	start := time.Now()
	if _, err := d.ReadAt(buf(1, 0), 0); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("read took %v", took)
	}
}

func TestHangUntilRelease(t *testing.T) {
	fd := fileDevice(t)
	c := storagetest.NewController()
	d := c.Device("h", fd)
	c.Inject("h", storagetest.Fault{Op: storagetest.Writes, Hang: true, Count: 1})
	done := make(chan error, 1)
	go func() {
		_, err := d.WriteAt(buf(1, 3), bs)
		done <- err
	}()
	// The write hangs until released: wait for the device to say so.
	for c.Stats("h").Hung == 0 {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("hung write returned %v before release", err)
	default:
	}
	if got := readBlock(t, fd, 1); got[0] != 0xAA {
		t.Fatal("hung write landed before release")
	}
	c.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := readBlock(t, fd, 1); got[0] != 3 {
		t.Fatal("released write did not land")
	}
}

func TestCloseEndsHang(t *testing.T) {
	c := storagetest.NewController()
	d := c.Device("h", fileDevice(t))
	other := c.Device("h2", fileDevice(t))
	c.Inject("", storagetest.Fault{Op: storagetest.Reads, Hang: true})
	done := make(chan error, 1)
	go func() {
		_, err := d.ReadAt(buf(1, 0), 0)
		done <- err
	}()
	for c.Stats("h").Hung == 0 {
		time.Sleep(time.Millisecond)
	}
	d.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("hung read after close: %v", err)
	}
	c.Clear("") // lifts the fault for the other host too
	if _, err := other.ReadAt(buf(1, 0), 0); err != nil {
		t.Fatal(err)
	}
}

func TestTornWrite(t *testing.T) {
	fd := fileDevice(t)
	c := storagetest.NewController()
	d := c.Device("h", fd)
	c.Inject("h", storagetest.Fault{Op: storagetest.Writes, TornAfter: 100, Count: 1})
	_, err := d.WriteAt(buf(2, 5), 3*bs)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("torn write: %v", err)
	}
	got := readBlock(t, fd, 3)
	if !bytes.Equal(got[:100], bytes.Repeat([]byte{5}, 100)) || !bytes.Equal(got[100:], bytes.Repeat([]byte{0xAA}, bs-100)) {
		t.Fatal("torn write did not leave the first 100 new bytes over the old ones")
	}
	if got := readBlock(t, fd, 4); got[0] != 0xAA {
		t.Fatal("torn write reached the second block")
	}
	if s := c.Stats("h"); s.Torn != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestDroppedWrite(t *testing.T) {
	fd := fileDevice(t)
	c := storagetest.NewController()
	d := c.Device("h", fd)
	c.Inject("h", storagetest.Fault{Op: storagetest.Writes, Drop: true, Count: 1})
	if n, err := d.WriteAt(buf(1, 9), 0); err != nil || n != bs {
		t.Fatalf("dropped write: %d %v", n, err)
	}
	if got := readBlock(t, fd, 0); got[0] != 0xAA {
		t.Fatal("dropped write landed")
	}
	if _, err := d.WriteAt(buf(1, 9), 0); err != nil {
		t.Fatal(err)
	}
	if got := readBlock(t, fd, 0); got[0] != 9 {
		t.Fatal("write after the dropped one did not land")
	}
}

func TestPerHostFaults(t *testing.T) {
	fd := fileDevice(t)
	c := storagetest.NewController()
	a, b := c.Device("a", fd), c.Device("b", fd)
	c.Inject("a", storagetest.Fault{Op: storagetest.AllIO, EIO: true})
	if _, err := a.ReadAt(buf(1, 0), 0); !errors.Is(err, syscall.EIO) {
		t.Errorf("host a: %v", err)
	}
	if _, err := b.ReadAt(buf(1, 0), 0); err != nil {
		t.Errorf("host b: %v", err)
	}
	c.Clear("a")
	if _, err := a.ReadAt(buf(1, 0), 0); err != nil {
		t.Errorf("host a after clear: %v", err)
	}
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

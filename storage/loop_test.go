package storage_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/storage"
)

// loopDevice attaches a file of size bytes as a direct-I/O loop device with
// the given logical sector size and detaches it when the test ends.
func loopDevice(t *testing.T, size int64, sector string) string {
	t.Helper()
	requireRoot(t)
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("skipping: losetup not installed (apt-get install util-linux)")
	}
	dir := t.TempDir()
	requireDirectIO(t, dir)
	file := filepath.Join(dir, "backing.img")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", "--direct-io=on", "--sector-size", sector, file).CombinedOutput()
	if err != nil {
		t.Skipf("skipping: losetup failed (no loop devices in this container?): %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("detach %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// A 4Kn device: the detected sector size is 4096 and the LUN works on it.
func TestLoopDevice4K(t *testing.T) {
	ctx := testCtx(t)
	geo := smallGeometry()
	path := loopDevice(t, geo.Size()+1<<20, "4096")
	dev, err := storage.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !dev.IsBlockDevice() || dev.SectorSize() != 4096 {
		t.Fatalf("%s: block device %v, sector size %d, want 4096", path, dev.IsBlockDevice(), dev.SectorSize())
	}
	if err := dev.Grow(geo.Size() * 2); err != nil || dev.Size() != geo.Size()+1<<20 {
		t.Errorf("grow of a block device: size %d, %v", dev.Size(), err)
	}
	h, err := storage.Format(ctx, dev, storage.FormatOptions{ClusterName: "4kn", Geometry: geo, Timings: raceTimings()})
	dev.Close()
	if err != nil {
		t.Fatal(err)
	}
	if h.SectorSize != 4096 {
		t.Errorf("header sector size %d", h.SectorSize)
	}
	l := openLUN(t, path)
	if l.Header().SectorSize != 4096 || l.Header().ClusterUUID != h.ClusterUUID {
		t.Errorf("header read back %+v", l.Header())
	}
	hb := acquire(t, l, 1, "kvm1")
	seq := hb.Record().Sequence
	views, err := hb.Renew(ctx)
	if err != nil || views[0].Record.Sequence != seq+1 {
		t.Fatalf("renew: %+v %v", views[0], err)
	}
	if _, _, err := l.ProtectVM(ctx, storage.Owner{Host: 1, Gen: hb.Generation(), Nonce: 5},
		storage.VMConfig{UUID: storage.NewUUID(), Name: "vm", XML: domainXML("vm", 33<<10)}); err != nil {
		t.Fatal(err)
	}
}

// A block device cannot grow: one that is too small is refused with a hint.
func TestLoopDeviceTooSmall(t *testing.T) {
	path := loopDevice(t, 1<<20, "512")
	dev, err := storage.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	_, err = storage.Format(testCtx(t), dev, storage.FormatOptions{ClusterName: "c"})
	wantBlockErr(t, err, storage.ErrTooSmall, path, 0)
	var be *storage.BlockError
	if errors.As(err, &be); !strings.Contains(be.Hint, "MiB") {
		t.Errorf("hint %q does not say how much is needed", be.Hint)
	}
}

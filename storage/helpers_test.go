package storage_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
)

// testTimings are small timings that pass Validate, with an io_timeout
// generous enough for O_DIRECT|O_SYNC on a 2-core machine that other test
// suites load too (a write takes about 0.2 ms on an idle test disk).
// acquireDelay = 2*io_timeout + R = 410 ms.
func testTimings() storage.Timings {
	t := storage.Timings{Renew: 10 * time.Millisecond, IOTimeout: 200 * time.Millisecond,
		SelfFence: 210 * time.Millisecond, Watchdog: 10 * time.Millisecond}
	t.Dead = t.MinDead()
	return t
}

// raceTimings shorten acquireDelay to 210 ms for the 100-round slot race.
func raceTimings() storage.Timings {
	t := storage.Timings{Renew: 10 * time.Millisecond, IOTimeout: 100 * time.Millisecond,
		SelfFence: 110 * time.Millisecond, Watchdog: 10 * time.Millisecond}
	t.Dead = t.MinDead()
	return t
}

// smallGeometry keeps formatting and full scans cheap.
func smallGeometry() storage.Geometry {
	return storage.Geometry{MaxHosts: 8, MaxVMs: 4, EventBlocks: 2, ConfigBlks: 16}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// requireDirectIO skips unless dir is on a filesystem that supports O_DIRECT.
func requireDirectIO(t testing.TB, dir string) {
	t.Helper()
	p := filepath.Join(dir, "probe")
	if err := os.WriteFile(p, make([]byte, storage.BlockSize), 0o600); err != nil {
		t.Fatal(err)
	}
	dev, err := storage.OpenFile(p)
	if err != nil {
		t.Skipf("skipping: %s does not support O_DIRECT (tmpfs?): %v", dir, err)
	}
	dev.Close()
	os.Remove(p)
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (loop devices)")
	}
}

// lunFile formats a new LUN file in a fresh temporary directory and returns its path.
func lunFile(t testing.TB, opts storage.FormatOptions) string {
	t.Helper()
	dir := t.TempDir()
	requireDirectIO(t, dir)
	path := filepath.Join(dir, "lun.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if opts.ClusterName == "" {
		opts.ClusterName = "test"
	}
	if opts.Geometry == (storage.Geometry{}) {
		opts.Geometry = smallGeometry()
	}
	if opts.Timings == (storage.Timings{}) {
		opts.Timings = testTimings()
	}
	dev, err := storage.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := storage.Format(testCtx(t), dev, opts); err != nil {
		t.Fatalf("format: %v", err)
	}
	return path
}

// openLUN opens path with its own FileDevice (as another host would) and
// closes it at the end of the test.
func openLUN(t testing.TB, path string) *storage.LUN {
	t.Helper()
	l, err := storage.OpenPath(testCtx(t), path, storage.OpenOptions{})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// faultLUN opens path through a fault device of host on c.
func faultLUN(t testing.TB, path string, c *storagetest.Controller, host string) *storage.LUN {
	t.Helper()
	fd, err := storage.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := storage.Open(testCtx(t), c.Device(host, fd), storage.OpenOptions{})
	if err != nil {
		fd.Close()
		t.Fatalf("open %s through fault device: %v", path, err)
	}
	t.Cleanup(func() {
		c.Release()
		l.Close()
	})
	return l
}

// acquire takes slot id for name and fails the test otherwise.
func acquire(t testing.TB, l *storage.LUN, id int, name string) *storage.Heartbeat {
	t.Helper()
	hb, err := l.AcquireSlot(testCtx(t), storage.AcquireOptions{HostName: name, HostID: id})
	if err != nil {
		t.Fatalf("acquire slot %d as %s: %v", id, name, err)
	}
	return hb
}

// flipBit flips one bit of the file at block*BlockSize+off, bypassing the LUN.
func flipBit(t testing.TB, path string, block int64, off int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	at := block*storage.BlockSize + int64(off)
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// wantBlockErr checks that err is of class want and names path and block.
func wantBlockErr(t testing.TB, err, want error, path string, block int64) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
	var be *storage.BlockError
	if !errors.As(err, &be) {
		t.Fatalf("%v is not a *storage.BlockError", err)
	}
	if be.Block != block {
		t.Errorf("error names block %d, want %d: %v", be.Block, block, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) || !strings.Contains(msg, "block ") {
		t.Errorf("error %q does not name the path %s and the block", msg, path)
	}
}

// Block numbers of format v1 (see doc.go), recomputed here so that the tests
// check the documented layout rather than the code's own arithmetic.
func slotBlock(host int) int64 { return int64(host) }
func vmConfigBlock(g storage.Geometry, idx, copyNo int) int64 {
	base := int64(2*g.MaxHosts+1) + int64(g.MaxHosts*g.EventBlocks)
	return base + int64(idx)*int64(2*g.ConfigBlks+g.MaxHosts) + int64(copyNo*g.ConfigBlks)
}

// helperCmd re-executes the test binary as a helper process running mode.
func helperCmd(t testing.TB, mode string, args ...string) *exec.Cmd {
	t.Helper()
	// The test's deadline kills a helper that stops making progress, so a
	// failure is reported instead of hanging the suite.
	cmd := exec.CommandContext(testCtx(t), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "--")
	cmd.Args = append(cmd.Args, args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	return cmd
}

const helperEnv = "WINGMAN_STORAGE_HELPER"

// sleep paces helper loops (never a test's pass/fail condition).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

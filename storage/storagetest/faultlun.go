package storagetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/wingmanha/wingman/storage"
)

// LUNFile formats a LUN file in a temporary directory with opts and
// returns its path. It skips the test where the directory has no O_DIRECT.
func LUNFile(t testing.TB, opts storage.FormatOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lun.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dev, err := storage.OpenFile(path)
	if err != nil {
		t.Skipf("skipping: no O_DIRECT in %s: %v", filepath.Dir(path), err)
	}
	defer dev.Close()
	if _, err := storage.Format(context.Background(), dev, opts); err != nil {
		t.Fatal(err)
	}
	return path
}

// FaultLUN formats a LUN file (LUNFile) and opens it for host through a
// fault device of a new Controller. At the test's end the hung I/Os are
// released and the LUN closed.
func FaultLUN(t testing.TB, host string, opts storage.FormatOptions) (*storage.LUN, *Controller) {
	t.Helper()
	dev, err := storage.OpenFile(LUNFile(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	c := NewController()
	lun, err := storage.Open(context.Background(), c.Device(host, dev), storage.OpenOptions{})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Release()
		lun.Close()
	})
	return lun, c
}

// LUNSetFiles formats n LUN files (1 or 3) in a temporary directory as one
// LUN set (storage.FormatSet) and returns their paths in member order. The
// files are grown to hold the cluster-records area too, which a fault
// device cannot grow. It skips the test where the directory has no O_DIRECT.
func LUNSetFiles(t testing.TB, n int, opts storage.FormatOptions) []string {
	t.Helper()
	dir := t.TempDir()
	paths := make([]string, n)
	devs := make([]storage.Device, n)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprintf("lun%d.img", i+1))
		if err := os.WriteFile(paths[i], nil, 0o600); err != nil {
			t.Fatal(err)
		}
		dev, err := storage.OpenFile(paths[i])
		if err != nil {
			t.Skipf("skipping: no O_DIRECT in %s: %v", dir, err)
		}
		defer dev.Close()
		devs[i] = dev
	}
	hdrs, err := storage.FormatSet(context.Background(), devs, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if err := os.Truncate(p, hdrs[0].Geometry.SizeWithRecords()); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// MemberName is the name under which OpenFaultSet puts member i (1-based)
// of host's set on its Controller: faults injected for it hit only that
// member's I/O of that host.
func MemberName(host string, i int) string { return fmt.Sprintf("%s/lun%d", host, i) }

// OpenFaultSet opens the LUN set at paths for host, each member through a
// fault device of c named MemberName(host, i). At the test's end the hung
// I/Os are released and the set closed.
func OpenFaultSet(t testing.TB, c *Controller, host string, paths []string) *storage.LUN {
	t.Helper()
	devs := make([]storage.Device, len(paths))
	for i, p := range paths {
		fd, err := storage.OpenFile(p)
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = c.Device(MemberName(host, i+1), fd)
	}
	lun, err := storage.OpenSet(context.Background(), devs, storage.OpenOptions{})
	if err != nil {
		for _, d := range devs {
			d.Close()
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Release()
		lun.Close()
	})
	return lun
}

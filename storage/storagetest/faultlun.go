package storagetest

import (
	"context"
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

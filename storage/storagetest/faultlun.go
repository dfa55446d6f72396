package storagetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/wingmanha/wingman/storage"
)

// FaultLUN formats a LUN file in a temporary directory with opts and opens
// it for host through a fault device of a new Controller. It skips the
// test where the directory has no O_DIRECT. At the test's end the hung
// I/Os are released and the LUN closed.
func FaultLUN(t testing.TB, host string, opts storage.FormatOptions) (*storage.LUN, *Controller) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lun.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dev, err := storage.OpenFile(path)
	if err != nil {
		t.Skipf("skipping: no O_DIRECT here: %v", err)
	}
	ctx := context.Background()
	if _, err := storage.Format(ctx, dev, opts); err != nil {
		dev.Close()
		t.Fatal(err)
	}
	c := NewController()
	lun, err := storage.Open(ctx, c.Device(host, dev), storage.OpenOptions{})
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

package cluster

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/wingmanha/wingman/storage"
)

// formatLUNs creates the heartbeat LUN files at paths and formats them as one set.
func formatLUNs(ctx context.Context, paths []string, opts storage.FormatOptions) error {
	devs := make([]storage.Device, 0, len(paths))
	defer func() {
		for _, d := range devs {
			d.Close()
		}
	}()
	for _, p := range paths {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			return fmt.Errorf("create LUN file: %w", err)
		}
		dev, err := storage.OpenFile(p)
		if err != nil {
			return fmt.Errorf("open LUN file %s (O_DIRECT: keep BaseDir on ext4 or xfs, not tmpfs): %w", p, err)
		}
		devs = append(devs, dev)
	}
	if _, err := storage.FormatSet(ctx, devs, opts); err != nil {
		return fmt.Errorf("format LUN: %w", err)
	}
	return nil
}

// openLUNs opens the heartbeat LUN files at paths as one LUN.
func openLUNs(ctx context.Context, paths []string, opts storage.OpenOptions) (*storage.LUN, error) {
	devs := make([]storage.Device, 0, len(paths))
	for _, p := range paths {
		dev, err := storage.OpenFile(p)
		if err != nil {
			for _, d := range devs {
				d.Close()
			}
			return nil, err
		}
		devs = append(devs, dev)
	}
	l, err := storage.OpenSet(ctx, devs, opts)
	if err != nil {
		for _, d := range devs {
			d.Close()
		}
	}
	return l, err
}

// quoteAll is paths as the items of a TOML list.
func quoteAll(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = strconv.Quote(p)
	}
	return strings.Join(q, ", ")
}

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/wingmanha/wingman/cmd/internal/luns"
	"github.com/wingmanha/wingman/storage"
)

// formatPaths formats the LUNs at paths (1 or 3) as one set, creating the
// regular files that do not exist yet; on failure it removes those again.
func formatPaths(ctx context.Context, paths []string, opts storage.FormatOptions) ([]*storage.Header, error) {
	var devs []storage.Device
	var created []string
	defer func() {
		for _, d := range devs {
			d.Close()
		}
	}()
	fail := func(err error) ([]*storage.Header, error) {
		for _, p := range created {
			os.Remove(p) // it holds no LUN: leave nothing behind
		}
		return nil, err
	}
	for _, p := range paths {
		dev, isNew, err := openOrCreate(p)
		if err != nil {
			return fail(err)
		}
		devs = append(devs, dev)
		if isNew {
			created = append(created, p)
		}
	}
	hs, err := luns.Format(ctx, devs, opts)
	if err != nil {
		return fail(err)
	}
	return hs, nil
}

// openPaths opens the LUNs at paths (1 or 3) read-only, as one set.
func openPaths(ctx context.Context, paths []string) (*storage.LUN, error) {
	return luns.Open(ctx, paths, func(_ int, dev storage.Device) storage.Device { return dev }, storage.OpenOptions{ReadOnly: true})
}

// openMember opens the one LUN at path read-only, whether alone or a member
// of a set.
func openMember(ctx context.Context, path string) (*storage.LUN, error) {
	return storage.OpenPath(ctx, path, storage.OpenOptions{ReadOnly: true})
}

// checkSet fails when the LUNs at paths are not one set (of one cluster, in
// this order); one LUN is always a set.
func checkSet(ctx context.Context, paths []string) error {
	if len(paths) == 1 {
		return nil
	}
	l, err := openPaths(ctx, paths)
	if err != nil {
		return fmt.Errorf("%s are not one set of heartbeat LUNs: %w", luns.Paths(paths), err)
	}
	return l.Close()
}

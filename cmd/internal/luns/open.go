package luns

import (
	"context"
	"fmt"

	"github.com/wingmanha/wingman/storage"
)

// Wrap is what the caller puts around member's device (1..3) before the
// set opens it: the device as it is, or the test build's fault device.
type Wrap func(member int, dev storage.Device) storage.Device

// Open opens every heartbeat LUN at paths, each through wrap, as one LUN:
// a set of one behaves as a single LUN; a set of three writes and reads a
// majority. It refuses members of different clusters or sets.
func Open(ctx context.Context, paths Paths, wrap Wrap, opts storage.OpenOptions) (*storage.LUN, error) {
	if err := CheckCount(len(paths)); err != nil {
		return nil, err
	}
	devs := make([]storage.Device, 0, len(paths))
	closeAll := func() {
		for _, d := range devs {
			d.Close()
		}
	}
	open := storage.OpenFile
	if opts.ReadOnly {
		open = storage.OpenFileReadOnly
	}
	for i, p := range paths {
		dev, err := open(p)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("heartbeat LUN %d of %d: %w", i+1, len(paths), err)
		}
		devs = append(devs, wrap(i+1, dev))
	}
	lun, err := openSet(ctx, devs, opts)
	if err != nil {
		closeAll()
		return nil, err
	}
	return lun, nil
}

package cluster

import (
	"context"
	"errors"

	"github.com/wingmanha/wingman/storage"
)

func formatSet(ctx context.Context, devs []storage.Device, opts storage.FormatOptions) error {
	if len(devs) != 1 {
		return errors.New("three heartbeat LUNs need storage.FormatSet")
	}
	_, err := storage.Format(ctx, devs[0], opts)
	return err
}

func openSet(ctx context.Context, devs []storage.Device, opts storage.OpenOptions) (*storage.LUN, error) {
	if len(devs) != 1 {
		return nil, errors.New("three heartbeat LUNs need storage.OpenSet")
	}
	return storage.Open(ctx, devs[0], opts)
}

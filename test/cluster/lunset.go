package cluster

import (
	"context"

	"github.com/wingmanha/wingman/storage"
)

func formatSet(ctx context.Context, devs []storage.Device, opts storage.FormatOptions) error {
	_, err := storage.FormatSet(ctx, devs, opts)
	return err
}

func openSet(ctx context.Context, devs []storage.Device, opts storage.OpenOptions) (*storage.LUN, error) {
	return storage.OpenSet(ctx, devs, opts)
}

package hypervisor

import (
	"context"
	"errors"
	"testing"
)

func TestResumePausedDomain(t *testing.T) {
	c := dialHost(t, "kvm1")
	ctx := context.Background()
	if err := c.Resume(ctx, "batch1"); err != nil {
		t.Fatalf("resume a paused domain: %v", err)
	}
	d, err := c.Lookup(ctx, "batch1")
	if err != nil || d.State != StateRunning {
		t.Fatalf("after resume: %+v %v", d, err)
	}
	if err := c.Resume(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("resume of an unknown domain: %v", err)
	}
}

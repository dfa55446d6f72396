package maintenance

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wingmanha/wingman/vm"
)

// An operator's migration goes where named, or where the evacuation plan
// puts the VM, never to this host, and waits for the lease no longer than
// 4 R + 2 io_timeout.
func TestMigrateGoesWhereNamedOrPlanned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, vms, _, _ := newHost(t, func(c *Config) { c.Renew, c.IOTimeout = time.Second, 2*time.Second })
		vms.plan = []vm.Move{{Name: "web1", UUID: "u1", To: 2}}
		ctx := context.Background()
		start := time.Now()
		res, to, err := h.Migrate(ctx, "web1", "")
		if err != nil || to.Name != "kvm2" || res.Wall != time.Second || res.DataTransferred != 1<<20 {
			t.Errorf("migrate web1 = %+v to %+v, %v", res, to, err)
		}
		if took := time.Since(start); took != 8*time.Second {
			t.Errorf("waited %v for the lease, want 4 R + 2 io_timeout", took)
		}
		if _, _, err := h.Migrate(ctx, "db1", ""); !errors.Is(err, vm.ErrInvalid) || !strings.Contains(err.Error(), `no host has room for "db1"`) {
			t.Errorf("migrate db1 without a plan = %v", err)
		}
		if _, _, err := h.Migrate(ctx, "web1", "1"); !errors.Is(err, vm.ErrInvalid) || !strings.Contains(err.Error(), "already runs on kvm1") {
			t.Errorf("migrate web1 to itself = %v", err)
		}
		if _, _, err := h.Migrate(ctx, "web1", "kvm9"); err == nil || !strings.Contains(err.Error(), `no host named "kvm9"`) {
			t.Errorf("migrate web1 to kvm9 = %v", err)
		}
		if want := []string{"web1->2"}; !slices.Equal(vms.migrated, want) {
			t.Errorf("migrations %v, want %v", vms.migrated, want)
		}
	})
}

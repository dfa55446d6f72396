package maintenance

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm"
)

// Migrate live-migrates VM name, which this host owns, to target (a host's
// name or id; "": where the evacuation plan puts it). It returns once the
// target holds the lease (its next step claims it), so that the next
// command about the VM goes to its new owner, or after 4 R + 2 io_timeout,
// with the migration's result and the host it went to.
func (h *Host) Migrate(ctx context.Context, name, target string) (hypervisor.MigrationResult, quorum.Host, error) {
	var to quorum.Host
	if target == "" {
		moves, _, err := h.vms.EvacuationPlan(ctx, h.cluster.Decision())
		if err != nil {
			return hypervisor.MigrationResult{}, quorum.Host{}, err
		}
		for _, m := range moves {
			if m.Name == name || strings.EqualFold(m.UUID, name) {
				to, _ = h.cluster.ResolveHost(strconv.Itoa(m.To))
			}
		}
		if to.ID == 0 {
			return hypervisor.MigrationResult{}, quorum.Host{}, vm.Refuse(vm.ErrInvalid, "name a target host", "no host has room for %q", name)
		}
	} else {
		t, err := h.cluster.ResolveHost(target)
		if err != nil {
			return hypervisor.MigrationResult{}, quorum.Host{}, err
		}
		to = t
	}
	if to.ID == h.cfg.HostID {
		return hypervisor.MigrationResult{}, quorum.Host{}, vm.Refuse(vm.ErrInvalid, "name another host", "%q already runs on %s", name, to.Name)
	}
	res, err := h.vms.Migrate(ctx, name, to.ID)
	if err != nil {
		return res, to, err
	}
	deadline := time.Now().Add(4*h.cfg.Renew + 2*h.cfg.IOTimeout)
	for time.Now().Before(deadline) {
		if r, _, err := h.vms.Find(ctx, name); err == nil && r.Lease.Held() && r.Lease.Owner.Host == to.ID {
			break
		}
		time.Sleep(h.cfg.Renew / 5)
	}
	return res, to, nil
}

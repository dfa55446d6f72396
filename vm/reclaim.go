package vm

import (
	"context"
	"fmt"
	"strings"

	"github.com/wingmanha/wingman/storage"
)

// ReclaimLease re-establishes the lease of VM record idx, which reads
// damaged (a zeroed owner block, say), for this host: the operator's repair
// when the owner's wingmand no longer holds a copy of its block. Only the
// host whose libvirt runs the VM's guest may do it (storage's
// Integrity.ReclaimLease checks it against the record's UUID): while the
// record reads damaged no other host starts the VM, so the one copy that
// runs is the owner's. It runs between steps and writes an event.
func ReclaimLease(ctx context.Context, m *Manager, idx int) (storage.LeaseState, error) {
	lun, ok := m.lun.(interface{ Integrity() storage.Integrity })
	if !ok {
		return storage.LeaseState{}, fmt.Errorf("reclaim the lease of VM record %d: %w: this LUN handle cannot", idx, storage.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	running := func(id storage.UUID) (bool, error) {
		doms, err := m.hv.ListDomains(ctx)
		if err != nil {
			return false, err
		}
		for _, d := range doms {
			if strings.EqualFold(d.UUID, id.String()) && d.Active() {
				return true, nil
			}
		}
		return false, nil
	}
	lease, err := lun.Integrity().ReclaimLease(ctx, idx, newOwner(m.cfg), running)
	if err != nil {
		return lease, err
	}
	m.rescan.Store(true)
	m.cfg.recordsChanged()
	writeEvent(ctx, m.events, storage.SevWarning, "lease-reclaimed", storage.UUID{}, m.cfg.Host,
		"the damaged lease of VM record %d was reclaimed at epoch %d by the host that runs the VM", idx, lease.Epoch)
	return lease, nil
}

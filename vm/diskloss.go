package vm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/reconcile"
)

// The disk-loss response on the owner (reconcile decides when; see
// reconcile.DiskLossPolicy): destroy the paused copy, see in libvirt that
// it is gone, ask the other hosts whether they reach the VM's disks (the
// drill's disk check), mark on the record the hosts that do not (this one
// first), and release the lease. Another host then takes the lease as for
// any released VM (rule a), so the VM never runs twice: the release is
// written only once libvirt shows the copy here inactive.

// diskLoss carries out the disk-loss response for a Manager (whose method
// count is at its limit).
type diskLoss struct{ *Manager }

// policy is the disk-loss policy of this step: the cluster's (vm/settings)
// with its grace raised to the LUN's D, so that a storage loss that also
// takes the heartbeat LUN is left to the self-fence and the dead rule.
func (m diskLoss) policy(base reconcile.DiskLossPolicy) reconcile.DiskLossPolicy {
	p := base
	if m.cfg.DiskLoss != nil {
		p = m.cfg.DiskLoss()
	}
	p.Grace = max(p.Grace, m.cfg.DeadAfter)
	return p
}

// avoid fills rec's AvoidHosts and AvoidSince from the record's disk-loss
// mark, with when this host first saw the mark (kept in seen by epoch).
func (m diskLoss) avoid(rec *reconcile.Record, mark *DiskLostMark, seen, next map[string]heldSeen, now time.Time) {
	if mark == nil || len(mark.Hosts) == 0 {
		return
	}
	hs, ok := seen[rec.UUID]
	if !ok || hs.epoch != mark.Epoch {
		hs = heldSeen{mark.Epoch, now}
	}
	next[rec.UUID] = hs
	rec.AvoidHosts, rec.AvoidSince = mark.Hosts, hs.since
}

// release destroys the paused copy of r (named local here), checks that
// libvirt shows it gone, marks the hosts that cannot reach its disks and
// releases the lease, with an event for each step.
func (m diskLoss) release(ctx context.Context, r storage.VMRecord, a reconcile.Action, local string, fail func(string, error) error) error {
	id := r.Config.UUID
	lease, err := m.currentLease(ctx, r.Index, a.Expect, false)
	if err != nil {
		return fail("failed", err)
	}
	// The guest may have resumed since the snapshot (its path came back):
	// then it runs on, untouched.
	if d, ok, err := m.find(ctx, id.String()); err != nil {
		return fail("failed", err)
	} else if ok && d.Active() && !d.PausedOnIOError() {
		writeEvent(ctx, m.events, storage.SevInfo, "notice", id, 0, "%s is %s again: not destroyed", d.Name, d.State)
		return nil
	}
	writeEvent(ctx, m.events, storage.SevWarning, "disk-loss-grace-expired", id, 0, "%s", a.Reason)
	if local != "" {
		if err := m.hv.Destroy(ctx, local); err != nil && !errors.Is(err, hypervisor.ErrNotRunning) && !errors.Is(err, hypervisor.ErrNotFound) {
			return fail("failed", fmt.Errorf("destroy the paused copy: %w", err))
		}
	}
	if d, ok, err := m.find(ctx, id.String()); err != nil {
		return fail("failed", fmt.Errorf("check that the paused copy is gone: %w", err))
	} else if ok && d.Active() {
		return fail("failed", fmt.Errorf("the paused copy %s is still %s after its destroy: lease kept", d.Name, d.State))
	}
	writeEvent(ctx, m.events, storage.SevWarning, "destroyed-paused-copy", id, 0, "%s destroyed on host %d; libvirt shows it inactive", r.Config.Name, m.cfg.Host)
	lost := m.unreachableFrom(ctx, r)
	rp, err := UnmarshalRecordPolicy(r.Config.Policy)
	if err != nil {
		return fail("failed", err)
	}
	rp.DiskLost = &DiskLostMark{Hosts: lost, Epoch: lease.Epoch}
	pol, err := rp.Marshal()
	if err != nil {
		return fail("failed", err)
	}
	cfg := *r.Config
	cfg.Policy = pol
	if _, err := m.lun.WriteVMConfig(ctx, r.Index, lease, cfg); err != nil {
		return fail("failed", fmt.Errorf("mark the hosts that cannot reach its disks: %w", err))
	}
	if err := m.lun.ReleaseLease(ctx, r.Index, lease); err != nil {
		return fail("failed", err)
	}
	m.cfg.recordsChanged()
	m.histMu.Lock()
	delete(m.history, a.VM)
	m.histMu.Unlock()
	writeEvent(ctx, m.events, storage.SevWarning, "released", id, 0, "disk loss: released at epoch %d for a host that reaches its disks; not on host %s",
		lease.Epoch, joinInts(lost))
	return nil
}

// find returns the local domain with uuid, as libvirt shows it now.
func (m diskLoss) find(ctx context.Context, uuid string) (hypervisor.Domain, bool, error) {
	doms, err := m.hv.ListDomains(ctx)
	if err != nil {
		return hypervisor.Domain{}, false, err
	}
	for _, d := range doms {
		if strings.EqualFold(d.UUID, uuid) {
			return d, true, nil
		}
	}
	return hypervisor.Domain{}, false, nil
}

// unreachableFrom returns this host and every alive host whose disk check
// says it cannot reach one of r's disks. A host that does not answer is not
// marked: if it cannot start the VM, its start fails and the VM moves on.
func (m diskLoss) unreachableFrom(ctx context.Context, r storage.VMRecord) []int {
	lost := []int{m.cfg.Host}
	spec, err := hypervisor.ParseDomainXML(string(r.Config.XML))
	if err != nil {
		return lost
	}
	disks := disksToReach(spec)
	if len(disks) == 0 {
		return lost
	}
	// The others answer within DiskCheckTimeout; meanwhile the step shows
	// progress to the watchdog guard, as during failover starts.
	var done atomic.Int64
	done.Store(time.Now().UnixNano())
	stop := m.aliveWhileStarting(ctx, &done)
	answers := m.askDisks(ctx, m.lastDec, disks)
	stop()
	for _, ans := range answers {
		if ans.asked && ans.err == nil && slices.ContainsFunc(ans.problems, func(p string) bool { return p != "" }) {
			lost = append(lost, ans.host.ID)
		}
	}
	return lost
}

// joinInts is "1,3".
func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

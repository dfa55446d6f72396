package reconcile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm/plan"
)

// A host that loses the paths to its guests' disks (a SAN port, a
// multipath group, an HBA) while its heartbeat LUN and network are fine
// sees its guests paused by QEMU on I/O errors, and they stay paused. The
// cluster's disk-loss policy (failover.disk_loss) answers as vSphere's VM
// Component Protection does: once a protected VM has been paused on an I/O
// error for the grace period, its owner destroys the paused copy, makes
// sure it is gone, marks on the VM's record the hosts that cannot reach its
// disks (itself first), and releases the lease; every host's plan then
// restarts the VM on a host not so marked (AvoidHosts), through the lease
// protocol like any released VM.

// DiskLossPolicy is the cluster-wide response to a protected VM paused on
// an I/O error (failover.disk_loss and failover.disk_loss_grace).
type DiskLossPolicy struct {
	// Restart: destroy the paused copy after Grace and restart the VM on
	// another host. Off: VMs stay paused unless their own io-error policy
	// says resume or restart.
	Restart bool
	// Grace is how long a VM may stay paused on an I/O error, with its
	// host otherwise healthy, before it is restarted elsewhere. A guest
	// that resumes within it (the path came back) is left alone.
	Grace time.Duration
}

// Bounds of DiskLossPolicy.Grace. The floor is above the default timing
// profile's D (12 s), so above F and hence above the SAN's path-failover
// time (the timing rule keeps F above it): a path switch resumes the guest
// long before, and a storage loss that takes the heartbeat LUN too is the
// self-fence's (F) and the dead rule's (D) to handle, not this policy's.
// The VM manager also raises the grace to the LUN's D when D is longer.
const (
	MinDiskLossGrace     = 15 * time.Second
	MaxDiskLossGrace     = 24 * time.Hour
	DefaultDiskLossGrace = time.Minute
)

// AvoidAfterDiskLoss is how long a host that could not reach a VM's disks
// stays out of that VM's placement, counted from when the observing host
// first saw the mark (Record.AvoidSince, its own clock).
const AvoidAfterDiskLoss = 10 * time.Minute

// DefaultDiskLossPolicy is on, with a grace of a minute.
func DefaultDiskLossPolicy() DiskLossPolicy {
	return DiskLossPolicy{Restart: true, Grace: DefaultDiskLossGrace}
}

// Validate rejects a grace outside its bounds, saying what to use.
func (p DiskLossPolicy) Validate() error {
	if p.Grace < MinDiskLossGrace || p.Grace > MaxDiskLossGrace {
		return fmt.Errorf("disk loss grace %v: use %v to %v (default %v): below %v a SAN path failover could restart guests",
			p.Grace, MinDiskLossGrace, MaxDiskLossGrace, DefaultDiskLossGrace, MinDiskLossGrace)
	}
	return nil
}

// diskLoss decides an owned VM that QEMU paused on an I/O error (d) under
// the disk-loss policy. It reports false when the policy does not apply:
// it is off, the VM's own io-error policy says resume or restart, or this
// host is not healthy (not alive, not quorate, may not run VMs): a host
// whose heartbeat or network is gone is the self-fence's and the poison
// pill's, and must not release leases on its own.
func (v *view) diskLoss(r *Record, d *Domain) (Action, bool) {
	in := v.in
	p := in.Config.DiskLoss
	if !p.Restart || r.Policy.IOError.Response != plan.IOErrorWait || !v.healthy() {
		return Action{}, false
	}
	a := Action{VM: r.UUID, Name: r.Name, Index: r.Index, Expect: r.Lease.Epoch}
	paused := in.Now.Sub(d.Since)
	if paused < p.Grace {
		a.Kind, a.Event = Notice, "paused-io-error"
		a.Reason = fmt.Sprintf("paused on an I/O error since %s: this host may have lost the paths to its disks; restarted on another host if still paused after %v (failover.disk_loss_grace)",
			d.Since.UTC().Format("15:04:05"), p.Grace)
		return a, true
	}
	a.Kind, a.Destroy, a.DiskLost = Release, true, true
	a.Reason = fmt.Sprintf("paused on an I/O error for %v, over the disk-loss grace of %v: destroy it here and restart it on a host that reaches its disks",
		paused.Round(time.Second), p.Grace)
	return a, true
}

// healthy reports whether this host's heartbeat and network are fine: it
// is alive in its own quorate decision and may run VMs.
func (v *view) healthy() bool {
	h := v.hosts[v.in.Self]
	return v.in.MayRunVMs && v.in.Quorate && h != nil && h.State == quorum.StateAlive
}

// Avoided returns the hosts that r's placement leaves out now: those marked
// on its record as unable to reach its disks, for AvoidAfterDiskLoss after
// this host first saw the mark. Sorted, no repeats.
func Avoided(r Record, now time.Time) []int {
	if len(r.AvoidHosts) == 0 || r.AvoidSince.IsZero() || now.Sub(r.AvoidSince) >= AvoidAfterDiskLoss {
		return nil
	}
	out := slices.Clone(r.AvoidHosts)
	slices.Sort(out)
	return slices.Compact(out)
}

// avoidKey is a set of avoided hosts as a map key ("" for none).
func avoidKey(hosts []int) string {
	s := make([]string, len(hosts))
	for i, h := range hosts {
		s[i] = strconv.Itoa(h)
	}
	return strings.Join(s, ",")
}

// parseAvoidKey is avoidKey's inverse.
func parseAvoidKey(k string) []int {
	if k == "" {
		return nil
	}
	var out []int
	for _, f := range strings.Split(k, ",") {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

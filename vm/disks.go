package vm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
)

// A protected VM's disks must keep what the guest was told is written, and
// must be reachable from every host that may restart it. Protect refuses a
// VM that fails either; a drill reports both:
//
//   - DiskDefinitionProblems reads the definition alone (pure): cache modes
//     that drop the guest's flushes, disks that cannot follow the VM at all;
//   - every other alive host checks, on its own filesystem and libvirt,
//     that it reaches each disk (DiskChecker, the drill's disk check); the
//     daemon carries the question (Config.CheckDisksOn).

// DiskChecker is implemented by hypervisors that can tell whether disks are
// reachable from their host (*hypervisor.Conn): one problem per disk, ""
// where the disk is reachable.
type DiskChecker interface {
	CheckDisks(ctx context.Context, disks []hypervisor.DiskSpec) ([]string, error)
}

// DefaultDiskCheckTimeout is Config.DiskCheckTimeout's default.
const DefaultDiskCheckTimeout = 10 * time.Second

// DiskDefinitionProblems says what, in spec's disks, would lose writes the
// guest was told are on disk, or could never follow the VM to another host
// (nil: nothing). Each problem names the disk and what to change in the
// definition.
//
// Cache modes (<driver cache=...>), judged by what a guest that was told a
// write is done gets back after its host loses power, which is what a
// failover restarts it from:
//
//   - writethrough and directsync: a write is acknowledged once it is on
//     stable storage. Safe even for a guest that never flushes.
//   - none (O_DIRECT) and writeback (the host's page cache), and no cache
//     attribute (QEMU's default, writeback): the guest sees a volatile
//     write cache, as on a physical disk, and its flushes reach stable
//     storage before they are acknowledged. Safe for a guest that flushes,
//     which every journaling filesystem and database does; a guest told
//     its disk has no write cache (an old kernel, a tuned-down database)
//     loses what it did not flush. Accepted: this is the contract of a
//     physical disk too, and none is the usual choice on shared storage.
//   - unsafe: QEMU ignores the guest's flushes, so even flushed writes may
//     sit in the host's page cache when the host dies. Refused.
//
// CD-ROMs and read-only disks take no writes: any cache mode is fine.
// Their media must still be reachable from every host (the reachability
// check), unless startupPolicy='optional' lets libvirt start without them.
func DiskDefinitionProblems(spec hypervisor.DomainSpec) []string {
	var out []string
	for _, d := range spec.Disks {
		writable := !d.ReadOnly && d.Device != "cdrom"
		switch {
		case d.Type == "nvme":
			out = append(out, fmt.Sprintf("disk %s is an NVMe namespace of a PCI controller of this host, which no other host has; "+
				"move its data to storage every host reaches (a shared LUN, a file on a cluster or network filesystem, a network disk)", d.Target))
		case d.Empty && (d.Device == "disk" || d.Device == "lun"):
			out = append(out, fmt.Sprintf("disk %s has no source, so a host restarting the VM has nothing to attach; "+
				"give it a source on storage every host reaches, or remove the disk", d.Target))
		case writable && d.Cache == "unsafe":
			out = append(out, fmt.Sprintf("disk %s has cache='unsafe', which ignores the guest's flushes: writes the guest was told are on disk "+
				"are lost when its host loses power, and a failover restarts the VM from what reached the disk; "+
				"set cache='none' (or writethrough or directsync) on disk %s", d.Target, d.Target))
		}
	}
	return out
}

// disksToReach are the disks of spec another host must reach to start the
// VM: those with a file, block device or storage volume as source. Network
// disks are reached over the network (the drill's start check covers the
// rest of the host), empty drives hold nothing, and a missing medium whose
// startupPolicy is optional does not stop libvirt.
func disksToReach(spec hypervisor.DomainSpec) []hypervisor.DiskSpec {
	var out []hypervisor.DiskSpec
	for _, d := range spec.Disks {
		if !d.Empty && d.StartupPolicy != "optional" && (d.Path != "" || d.Pool != "") {
			out = append(out, d)
		}
	}
	return out
}

// ProtectOptions are the choices of one Protect.
type ProtectOptions struct {
	// Force protects the VM even when an alive host answers that it cannot
	// reach one of its disks: that host then cannot start it after a
	// failure, and every drill says so. It never overrides
	// DiskDefinitionProblems, whose fix is one attribute of the definition.
	Force bool
}

// HostNote is a host and something about it.
type HostNote struct {
	Host   string
	Reason string
}

// ProtectReport is what Protect learnt from the other hosts about the VM's
// disks.
type ProtectReport struct {
	// Reached are the hosts that answered that they reach every disk.
	Reached []string
	// Unchecked are the other hosts that were not asked (not alive: in
	// maintenance, suspect, dead, ...) or did not answer in time, with why.
	// Protect does not wait for them: a host that is down cannot answer,
	// and refusing would leave the VM unprotected until it is back; a drill
	// checks them once they are.
	Unchecked []HostNote
	// Unreachable are the problems Force let Protect accept, one per host
	// and disk ("kvm2: disk vda: /srv/vm/a.img: no such file or directory").
	Unreachable []string
}

// hostDisks is one host's answer about the disks: a problem per disk, or
// why it gave none.
type hostDisks struct {
	host     quorum.Host
	asked    bool
	problems []string
	err      error
}

// askDisks asks every host of dec but this one, in parallel and within
// cfg.DiskCheckTimeout, whether it reaches disks. Only alive hosts are
// asked; the others are returned unasked.
func (m *Manager) askDisks(ctx context.Context, dec quorum.Decision, disks []hypervisor.DiskSpec) []hostDisks {
	var out []hostDisks
	for _, h := range dec.Hosts {
		if h.ID != m.cfg.Host {
			out = append(out, hostDisks{host: h, asked: h.State == quorum.StateAlive && len(disks) > 0})
		}
	}
	if m.cfg.CheckDisksOn == nil {
		for i := range out {
			if out[i].asked {
				out[i].err = errors.New("this host has no way to ask the others")
			}
		}
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DiskCheckTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i := range out {
		if !out[i].asked {
			continue
		}
		wg.Go(func() {
			p, err := m.cfg.CheckDisksOn(ctx, out[i].host.ID, disks)
			if err == nil && len(p) != len(disks) {
				err = fmt.Errorf("answered about %d disks instead of %d", len(p), len(disks))
			}
			if err != nil && ctx.Err() != nil {
				err = fmt.Errorf("did not answer within %v", m.cfg.DiskCheckTimeout)
			}
			out[i].problems, out[i].err = p, err
		})
	}
	wg.Wait()
	return out
}

// diskReachVerdict turns the hosts' answers about disks into a report, and
// into an ErrDiskUnreachable error saying what to change when a host
// cannot reach a disk. Pure.
func diskReachVerdict(disks []hypervisor.DiskSpec, answers []hostDisks) (ProtectReport, error) {
	var rep ProtectReport
	media, data := map[string]bool{}, map[string]bool{}
	for _, a := range answers {
		switch {
		case !a.asked && len(disks) == 0:
			// Nothing to reach: nobody needed asking.
		case !a.asked:
			rep.Unchecked = append(rep.Unchecked, HostNote{Host: a.host.Name, Reason: notAsked(a.host.State)})
		case a.err != nil:
			rep.Unchecked = append(rep.Unchecked, HostNote{Host: a.host.Name, Reason: a.err.Error()})
		default:
			ok := true
			for i, p := range a.problems {
				if p == "" {
					continue
				}
				ok = false
				rep.Unreachable = append(rep.Unreachable, fmt.Sprintf("%s: disk %s: %s", a.host.Name, disks[i].Target, p))
				if d := disks[i]; d.Device == "cdrom" || d.Device == "floppy" {
					media[d.Target] = true
				} else {
					data[d.Target] = true
				}
			}
			if ok {
				rep.Reached = append(rep.Reached, a.host.Name)
			}
		}
	}
	if len(rep.Unreachable) == 0 {
		return rep, nil
	}
	var todo []string
	if len(data) > 0 {
		todo = append(todo, fmt.Sprintf("put %s on shared storage that every host mounts at the same path, "+
			"or in a libvirt storage pool that is defined and active on every host", diskList(data)))
	}
	if len(media) > 0 {
		todo = append(todo, fmt.Sprintf("eject the medium of %s, copy it to the same path on every host, or give it startupPolicy='optional'", diskList(media)))
	}
	return rep, fmt.Errorf("%w: %s; %s", ErrDiskUnreachable, strings.Join(rep.Unreachable, "; "), strings.Join(todo, "; "))
}

// notAsked says why a host in state s is not asked.
func notAsked(s quorum.HostState) string {
	switch s {
	case quorum.StateMaintenance:
		return "it is in maintenance"
	case quorum.StateLeft:
		return "it has left the cluster"
	}
	return "it is " + s.String()
}

// diskList is "disk vda" or "disks vda and vdb".
func diskList(set map[string]bool) string {
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 1 {
		return "disk " + names[0]
	}
	return "disks " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// CheckDisks answers, on this host, whether it reaches each of disks (one
// problem per disk, "" where it does): the question another host's Protect
// asks through Config.CheckDisksOn.
func (m *Manager) CheckDisks(ctx context.Context, disks []hypervisor.DiskSpec) ([]string, error) {
	ck, ok := m.hv.(DiskChecker)
	if !ok {
		return nil, fmt.Errorf("disk check: %w", ErrUnsupported)
	}
	return ck.CheckDisks(ctx, disks)
}

package apiview

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/quorum/gossip"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/drill"
	"github.com/wingmanha/wingman/vm/maintenance"
	"github.com/wingmanha/wingman/vm/plan"
)

// Hosts are the hosts of dec with what serf's members advertise, the
// protected VMs each owns (from the LUN's records) and whether a fence
// agent can power it off.
func Hosts(dec quorum.Decision, members []gossip.Member, recs []storage.VMRecord, fenceable quorum.Set) []api.Host {
	serfStatus := map[int]string{}
	tags := map[int]api.Host{}
	for _, m := range members {
		if m.HostID == 0 {
			continue
		}
		serfStatus[m.HostID] = m.Status.String()
		tags[m.HostID] = api.Host{MemoryMiB: m.Tags.MemoryTotalMiB, FreeMiB: m.Tags.MemoryFreeMiB, CPUs: m.Tags.CPUs, Maintenance: m.Tags.Maintenance,
			LockManager: m.Tags.LockManager}
	}
	owned := map[int]int{}
	for _, r := range recs {
		if r.Protected() && r.Lease.Held() {
			owned[r.Lease.Owner.Host]++
		}
	}
	var out []api.Host
	for _, h := range dec.Hosts {
		t := tags[h.ID]
		s := serfStatus[h.ID]
		if s == "" {
			s = "unknown"
		}
		out = append(out, api.Host{ID: h.ID, Name: h.Name, State: h.State.String(), Reason: h.Reason, Generation: h.Gen,
			Serf: s, Maintenance: t.Maintenance || h.State == quorum.StateMaintenance, Coordinator: h.ID == dec.Coordinator,
			MemoryMiB: t.MemoryMiB, FreeMiB: t.FreeMiB, CPUs: t.CPUs, VMs: owned[h.ID], Fenceable: fenceable.Has(h.ID), LockManager: t.LockManager})
	}
	return out
}

// Capacity is admission control's verdict (can every protected VM be
// restarted after losing any k hosts?), or err when it could not be told.
func Capacity(k int, res plan.Survivability, err error, names map[int]string) api.CapacityVerdict {
	v := api.CapacityVerdict{K: k, Survivable: true}
	if err != nil {
		v.Survivable = false
		v.Problems = append(v.Problems, err.Error())
		return v
	}
	v.Survivable = res.OK
	for _, f := range res.Failures {
		var lost, down []string
		for _, id := range f.Lost {
			lost = append(lost, names[id])
		}
		for _, u := range f.Unplaced {
			down = append(down, fmt.Sprintf("%s (%s)", u.Name, u.Reason))
		}
		v.Problems = append(v.Problems, fmt.Sprintf("if %s fails, %s stay down", strings.Join(lost, "+"), strings.Join(down, ", ")))
	}
	return v
}

// VMs are the protected VMs and the unprotected domains of host self
// (named selfName), as host self sees them.
func VMs(vms []vm.Listed, dec quorum.Decision, names map[int]string, self int, selfName string) []api.VM {
	out := make([]api.VM, 0, len(vms))
	for _, l := range vms {
		v := api.VM{Name: l.Name, UUID: l.UUID, Protected: l.Protected, LeaseEpoch: l.LeaseEpoch, Owner: l.Owner, OwnerName: names[l.Owner],
			Migration: l.Migration, MemoryMiB: l.MemoryBytes >> 20, VCPUs: l.VCPUs, State: "unknown"}
		switch {
		case !l.Protected: // a domain of this host
			v.Owner, v.OwnerName = self, selfName
		case l.Owner == 0:
			v.OwnerName = ""
		}
		if l.Protected {
			v.Priority, v.Policy, v.Stopped = int(l.Policy.Policy.Priority), Policy(l.Policy.Policy), l.Policy.Stopped
		}
		if dm := l.Local; dm != nil && (v.Owner == self || dm.Active()) {
			v.State, v.Reason = dm.State.String(), dm.Reason
		} else if v.Owner != 0 && v.Owner != self {
			// Not visible here: a protected VM runs where its lease is,
			// unless its owner is gone.
			v.State = "running on " + names[v.Owner]
			if h, ok := dec.Host(v.Owner); ok && h.State.Gone() {
				v.State = "lost with " + h.Name
			}
		} else if l.Policy.Stopped {
			v.State = "shutoff"
		}
		out = append(out, v)
	}
	return out
}

// Events are the LUN's events with host and VM names (from the VM
// records; a VM without a record keeps its UUID).
func Events(evs []storage.Event, names map[int]string, recs []storage.VMRecord) []api.Event {
	vmNames := map[string]string{} // by UUID
	for _, rec := range recs {
		if rec.Config != nil {
			vmNames[rec.Config.UUID.String()] = rec.Config.Name
		}
	}
	out := make([]api.Event, 0, len(evs))
	for _, e := range evs {
		ae := api.Event{Time: e.Time, Host: e.Host, HostName: names[e.Host], Seq: e.Seq, Severity: e.Severity.String(),
			Kind: e.Kind, Subject: e.Subject, Message: e.Message}
		if !e.VM.IsZero() {
			ae.VM = vmNames[e.VM.String()]
			if ae.VM == "" {
				ae.VM = e.VM.String()
			}
		}
		out = append(out, ae)
	}
	return out
}

// ProtectResult is the protected VM v and what Protect learnt from the
// other hosts about its disks.
func ProtectResult(v api.VM, rep vm.ProtectReport) api.ProtectResult {
	res := api.ProtectResult{VM: v, DisksReached: rep.Reached, DisksUnreachable: rep.Unreachable}
	for _, u := range rep.Unchecked {
		res.DisksUnchecked = append(res.DisksUnchecked, api.HostNote{Host: u.Host, Reason: u.Reason})
	}
	return res
}

// QMP is QEMU's view of a domain of host, or why it could not be read.
func QMP(host string, q hypervisor.QMPDiagnostics, err error) api.QMPDiagnostics {
	out := api.QMPDiagnostics{Host: host}
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Status, out.Condition, out.QEMUVersion, out.Errors = q.Status, q.Condition.String(), q.QEMUVersion, q.Errors
	for _, k := range q.Disks {
		dev := k.Device
		if dev == "" {
			dev = k.Node
		}
		out.Disks = append(out.Disks, api.QMPDisk{Device: dev, File: k.File, IOStatus: k.IOStatus, ReadOnly: k.ReadOnly})
	}
	return out
}

// Evacuation is e as the API shows it.
func Evacuation(e maintenance.Evacuation) api.Evacuation {
	out := api.Evacuation{Host: e.Host, Running: e.Running, Started: e.Started, Ended: e.Ended, Planned: e.Planned,
		Done: e.Done, Failed: e.Failed, Hidden: e.Hidden, Parallel: e.Parallel, Errors: e.Errors, Error: e.Error}
	for _, p := range e.Active {
		out.Active = append(out.Active, api.MigrationProgress(p))
	}
	return out
}

// LockManagers are, by host id, the lock managers the members say their
// libvirt uses (gossip.Tags.LockManager).
func LockManagers(members []gossip.Member) map[int]string {
	out := map[int]string{}
	for _, m := range members {
		if m.HostID != 0 && m.TagsErr == nil {
			out[m.HostID] = m.Tags.LockManager
		}
	}
	return out
}

// MarkLockManagers sets each protected VM's LockManager to its owner's
// (LockManagers).
func MarkLockManagers(vms []api.VM, byHost map[int]string) {
	for i, v := range vms {
		if v.Protected && v.Owner != 0 {
			vms[i].LockManager = byHost[v.Owner]
		}
	}
}

// DrillReport is rep as the API shows it; lockManagers (LockManagers) say
// whether libvirt's lock manager also guards each VM on its owner.
func DrillReport(rep drill.Report, lockManagers map[int]string) api.DrillReport {
	out := api.DrillReport{Pass: rep.Pass, Lost: rep.Lost, VMs: []api.DrillVM{}, Hosts: []api.DrillHost{}, Duration: rep.Duration}
	for _, x := range rep.Verdict.VMs {
		av := api.DrillVM{Name: x.Name, UUID: x.UUID, Owner: x.OwnerName, LockManager: lockManagers[x.Owner], Target: x.TargetName, Unplaced: x.Unplaced,
			Skipped: x.Skipped, Problems: x.Definition, Pass: x.Pass, Checks: []api.DrillCheck{}}
		for _, c := range x.Cells {
			av.Checks = append(av.Checks, api.DrillCheck{Host: c.HostName, Planned: c.Planned, Problem: c.Problem})
		}
		out.VMs = append(out.VMs, av)
	}
	for _, h := range rep.Verdict.Hosts {
		out.Hosts = append(out.Hosts, api.DrillHost{Name: h.Name, State: string(h.State), Drilled: h.Drilled,
			VMs: h.VMs, Placed: h.Placed, Unplaced: h.Unplaced, Target: h.Target, Checked: h.Checked,
			CheckFailures: h.CheckFailures, Problem: h.Problem, Pass: h.Pass})
	}
	for _, h := range rep.Hops {
		out.Hops = append(out.Hops, api.DrillHop(h))
	}
	return out
}

// Health is what a host's proactive warnings are made of.
type Health struct {
	Latency          string // heartbeat.LatencyWarning's, "" when fine
	Watchdog         string // the watchdog's kind: "software" or "device"
	WatchdogNote     string // what opening the watchdog device said
	LibvirtConnected bool
	Quorate          bool
	Members          []gossip.Member
	ClusterUUID      string // this host's LUN's
	Version          string // this host's wingmand's
	Disks            []string
	// LUNHeader is why the LUN's header no longer matches the one read at
	// start (nil: it does); LUNDamaged the records read damaged.
	LUNHeader  error
	LUNDamaged []string
}

// Warnings are a host's proactive health warnings (before anything fails).
func Warnings(h Health) []string {
	var w []string
	if h.LUNHeader != nil {
		w = append(w, h.LUNHeader.Error())
	}
	for _, d := range h.LUNDamaged {
		w = append(w, "damaged LUN record: "+d)
	}
	if h.Latency != "" {
		w = append(w, h.Latency)
	}
	if h.Watchdog == "software" {
		w = append(w, "no hardware watchdog: a frozen host cannot be reset (load a watchdog driver, e.g. iTCO_wdt or ipmi_watchdog)")
	}
	if !h.LibvirtConnected {
		w = append(w, "libvirt is unreachable: local VMs cannot be watched or started")
	}
	if !h.Quorate {
		w = append(w, "this host's partition is not quorate: it takes no failover action")
	}
	for _, m := range h.Members {
		if m.TagsErr != nil {
			w = append(w, fmt.Sprintf("serf member %s: %v", m.Name, m.TagsErr))
		} else if m.Tags.ClusterUUID != "" && m.Tags.ClusterUUID != h.ClusterUUID {
			w = append(w, fmt.Sprintf("serf member %s uses another heartbeat LUN (cluster %s): configuration drift", m.Name, m.Tags.ClusterUUID))
		} else if m.Tags.Version != "" && m.Tags.Version != h.Version {
			w = append(w, fmt.Sprintf("serf member %s runs wingmand %s, this host %s", m.Name, m.Tags.Version, h.Version))
		}
	}
	w = append(w, h.Disks...)
	if h.WatchdogNote != "" && h.Watchdog == "device" {
		w = append(w, h.WatchdogNote)
	}
	return w
}

// ResolveHost finds a host of dec by name or id; an api.ErrNotFound that
// lists the hosts otherwise.
func ResolveHost(dec quorum.Decision, s string) (quorum.Host, error) {
	var names []string
	for _, h := range dec.Hosts {
		if h.Name == s || strconv.Itoa(h.ID) == s {
			return h, nil
		}
		names = append(names, h.Name)
	}
	return quorum.Host{}, api.Fail(api.ErrNotFound, "", "no host named %q: hosts are %s", s, strings.Join(names, ", "))
}

// DomainHere is whether a host's libvirt defines a domain, and runs it.
type DomainHere struct {
	Defined bool `json:"defined"`
	Running bool `json:"running"`
}

// DomainHost is the host to protect the unprotected domain name on, from
// what the peers answered (found[i] is peers[i]'s): the one host that runs
// it or, if none runs it, the one that defines it; self if none has it.
// Several are a conflict.
func DomainHost(name string, self int, peers []quorum.Host, found []DomainHere) (int, error) {
	var running, defined []string
	host := self
	for i, f := range found {
		switch {
		case f.Running:
			running, host = append(running, peers[i].Name), peers[i].ID
		case f.Defined && len(running) == 0:
			defined, host = append(defined, peers[i].Name), peers[i].ID
		}
	}
	if len(running) > 1 || (len(running) == 0 && len(defined) > 1) {
		return 0, api.Fail(api.ErrConflict, "protect it through the API of the host that must run it",
			"domain %q is on several hosts (running on %s; defined on %s)", name, strings.Join(running, ", "), strings.Join(defined, ", "))
	}
	return host, nil
}

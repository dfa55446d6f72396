package vm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm/plan"
)

// A failover drill answers "what if this host were lost now?" without
// stopping anything: the planner's failover plan for each drilled host,
// whether each VM's stored definition keeps its data through a failover
// (DiskDefinitionProblems), and, on every host that could receive a VM,
// whether that host could start it (its disks, emulator, CPU, networks).
// The planning and the verdict are pure (PlanDrill, DrillPlan.Verdict); the
// checks run on each target host (Manager.CheckVMs), wherever the caller
// sends them.

// DomainChecker is implemented by hypervisors that can tell whether a
// domain definition would start on their host (*hypervisor.Conn).
type DomainChecker interface {
	CheckDomainXML(ctx context.Context, domainXML string) ([]string, error)
}

// DrillPlan is the planned part of a drill.
type DrillPlan struct {
	Input plan.Input
	// Definitions are, by VM UUID, the problems of its stored definition
	// (DiskDefinitionProblems); VMs without any are absent.
	Definitions map[string][]string
	// Lost are the drilled hosts, in order; each is lost alone.
	Lost  []int
	Plans map[int]plan.Plan // by lost host
}

// DrillChecks is the work of one target host: the protected VMs (UUIDs)
// it must check it could start.
type DrillChecks struct {
	Host     int
	HostName string
	VMs      []string
}

// DrillResult is what a target host answered: a problem per failing VM
// (absent: it could start it), or Err when it could not check at all.
type DrillResult struct {
	Problems map[string]string
	Err      string
}

// DrillCell is one VM on one target host.
type DrillCell struct {
	Host     int
	HostName string
	// Planned: the failover plan of the VM's owner sends it here.
	Planned bool
	Problem string // "" passes
}

// DrillVM is the verdict on one protected VM of a drilled host.
type DrillVM struct {
	UUID, Name string
	Owner      int
	OwnerName  string
	Target     int // planned host, 0 if none
	TargetName string
	Unplaced   string // why the plan has no host for it
	Skipped    string // why the plan does not restart it (not a failure)
	// Definition: what is wrong with its stored definition on any host
	// (DiskDefinitionProblems), one problem each.
	Definition     []string
	Cells          []DrillCell
	Pass           bool
	FailureCount   int
	FailureSummary string // the first failure, for one-line reports
}

// DrillHost is the verdict on one host: as a lost host (do its VMs fit
// elsewhere?) and as a target (can it start the others' VMs?).
type DrillHost struct {
	ID    int
	Name  string
	State plan.HostState
	// Drilled: this host was the lost host of one scenario; VMs, Placed
	// and Unplaced count its protected VMs in that scenario.
	Drilled                bool
	VMs, Placed, Unplaced  int
	Target                 bool // alive: it takes failed-over VMs
	Checked, CheckFailures int
	Problem                string // the host could not be checked
	Pass                   bool
}

// Drill is a drill's whole verdict.
type Drill struct {
	VMs   []DrillVM
	Hosts []DrillHost
	Pass  bool
}

// DrillInput is the planner's input for a drill: the cluster as dec shows
// it, with every protected VM and host capacity (as for evacuation); and,
// by VM UUID, the problems of the VMs' stored definitions
// (DiskDefinitionProblems).
func (m *Manager) DrillInput(ctx context.Context, dec quorum.Decision) (plan.Input, map[string][]string, error) {
	in, defs, err := m.planInputAndDefinitions(ctx, dec)
	if err != nil {
		return plan.Input{}, nil, fmt.Errorf("drill: %w", err)
	}
	return in, defs, nil
}

// PlanDrill plans the failover of each host of lost alone (nil: every host
// that is not already dead or left), with plan.WhatIf. defs are the
// definition problems by VM UUID, as DrillInput returns them (nil: none).
func PlanDrill(in plan.Input, defs map[string][]string, lost []int) (DrillPlan, error) {
	if len(lost) == 0 {
		for _, h := range in.Hosts {
			if h.State != plan.HostDead && h.State != plan.HostLeft {
				lost = append(lost, h.ID)
			}
		}
	}
	dp := DrillPlan{Input: in, Definitions: defs, Lost: lost, Plans: map[int]plan.Plan{}}
	for _, id := range lost {
		i := slices.IndexFunc(in.Hosts, func(h plan.Host) bool { return h.ID == id })
		if i < 0 {
			return DrillPlan{}, fmt.Errorf("drill: host %d: %w", id, plan.ErrUnknownHost)
		}
		if s := in.Hosts[i].State; s == plan.HostDead || s == plan.HostLeft {
			return DrillPlan{}, fmt.Errorf("drill: host %s is already %s: its failover is real, not a drill", in.Hosts[i].Name, s)
		}
		p, err := plan.WhatIf(in, id)
		if err != nil {
			return DrillPlan{}, fmt.Errorf("drill: %w", err)
		}
		dp.Plans[id] = p
	}
	return dp, nil
}

// drilledVMs are the protected VMs owned by drilled hosts.
func (p DrillPlan) drilledVMs() []plan.VM {
	var out []plan.VM
	for _, v := range p.Input.VMs {
		if slices.Contains(p.Lost, v.Owner) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b plan.VM) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Checks lists, per alive host, the VMs of drilled hosts it must check:
// every such VM it does not own. A VM is checked on every host that could
// receive it, not only on its planned target, because the plan at the
// time of a real failure depends on the load then.
func (p DrillPlan) Checks() []DrillChecks {
	var out []DrillChecks
	vms := p.drilledVMs()
	for _, h := range p.Input.Hosts {
		if h.State != plan.HostAlive {
			continue
		}
		c := DrillChecks{Host: h.ID, HostName: h.Name}
		for _, v := range vms {
			if v.Owner != h.ID {
				c.VMs = append(c.VMs, v.UUID)
			}
		}
		if len(c.VMs) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// Verdict combines the plans with the targets' answers (by host id; a
// target missing from results failed to answer): a VM passes when its
// owner's failover plan places it (or deliberately skips it), its
// definition has no problem, and every target host can start it; a host passes when its VMs all fit elsewhere
// and it can start every other drilled VM.
func (p DrillPlan) Verdict(results map[int]DrillResult) Drill {
	d := Drill{Pass: true}
	hostIdx := map[int]int{}
	for _, h := range p.Input.Hosts {
		hostIdx[h.ID] = len(d.Hosts)
		d.Hosts = append(d.Hosts, DrillHost{ID: h.ID, Name: h.Name, State: h.State, Pass: true,
			Drilled: slices.Contains(p.Lost, h.ID), Target: h.State == plan.HostAlive})
	}
	checks := map[int][]string{}
	for _, c := range p.Checks() {
		checks[c.Host] = c.VMs
		dh := &d.Hosts[hostIdx[c.Host]]
		dh.Checked = len(c.VMs)
		r, ok := results[c.Host]
		switch {
		case !ok:
			dh.Problem = "did not answer the drill's checks"
		case r.Err != "":
			dh.Problem = r.Err
		}
	}
	for _, v := range p.drilledVMs() {
		dv := DrillVM{UUID: v.UUID, Name: v.Name, Owner: v.Owner, Pass: true}
		owner := &d.Hosts[hostIdx[v.Owner]]
		dv.OwnerName = owner.Name
		owner.VMs++
		pl := p.Plans[v.Owner]
		for _, s := range pl.Steps() {
			if s.VM == v.UUID {
				dv.Target, dv.TargetName = s.To, s.ToName
			}
		}
		for _, u := range pl.Unplaced {
			if u.VM == v.UUID {
				dv.Unplaced = fmt.Sprintf("%s (%s)", u.Reason, u.Detail)
			}
		}
		for _, s := range pl.Skipped {
			if s.VM == v.UUID {
				dv.Skipped = s.Reason
			}
		}
		fail := func(why string) {
			if dv.FailureCount == 0 {
				dv.FailureSummary = why
			}
			dv.FailureCount++
			dv.Pass = false
		}
		switch {
		case dv.Unplaced != "":
			owner.Unplaced++
			fail("no host for it: " + dv.Unplaced)
		case dv.Target != 0:
			owner.Placed++
		}
		for _, prob := range p.Definitions[v.UUID] {
			dv.Definition = append(dv.Definition, prob)
			fail(prob)
		}
		for _, h := range p.Input.Hosts {
			if !slices.Contains(checks[h.ID], v.UUID) {
				continue
			}
			dh := &d.Hosts[hostIdx[h.ID]]
			cell := DrillCell{Host: h.ID, HostName: h.Name, Planned: h.ID == dv.Target}
			switch {
			case dh.Problem != "":
				cell.Problem = "not checked: " + dh.Problem
			default:
				cell.Problem = results[h.ID].Problems[v.UUID]
				if cell.Problem != "" {
					dh.CheckFailures++
				}
			}
			if cell.Problem != "" {
				fail(h.Name + ": " + cell.Problem)
			}
			dv.Cells = append(dv.Cells, cell)
		}
		d.VMs = append(d.VMs, dv)
	}
	for i := range d.Hosts {
		h := &d.Hosts[i]
		h.Pass = h.Unplaced == 0 && h.CheckFailures == 0 && h.Problem == ""
		d.Pass = d.Pass && h.Pass
	}
	for _, v := range d.VMs {
		d.Pass = d.Pass && v.Pass
	}
	return d
}

// CheckVMs checks, on this host, whether it could start each protected VM
// of uuids from the definition stored on the LUN. It returns a problem per
// VM that fails (short sentences joined with "; "); VMs that pass are
// absent.
func (m *Manager) CheckVMs(ctx context.Context, uuids []string) (map[string]string, error) {
	ck, ok := m.hv.(DomainChecker)
	if !ok {
		return nil, fmt.Errorf("drill check: %w", ErrUnsupported)
	}
	recs, errs := m.lun.ReadVMs(ctx)
	byID := map[string]int{}
	for i, r := range recs {
		if r.Protected() {
			byID[strings.ToLower(r.Config.UUID.String())] = i
		}
	}
	out := map[string]string{}
	for _, id := range uuids {
		i, ok := byID[strings.ToLower(id)]
		if !ok {
			out[id] = "no protected VM record with this UUID on the LUN"
			if len(errs) > 0 {
				out[id] += fmt.Sprintf(" (%d records unreadable: %v)", len(errs), errors.Join(errs...))
			}
			continue
		}
		problems, err := ck.CheckDomainXML(ctx, string(recs[i].Config.XML))
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("drill check: %w", err)
			}
			problems = []string{err.Error()}
		}
		if len(problems) > 0 {
			out[id] = strings.Join(problems, "; ")
		}
	}
	return out, nil
}

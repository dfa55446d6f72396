package vm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/plan"
	"github.com/wingmanha/wingman/vm/reconcile"
)

// Move is one live migration of an evacuation.
type Move struct {
	Name   string
	UUID   string
	To     int
	ToName string
	// Cold is set when the live migration failed and the VM was shut down
	// here and released instead, so that another host starts it
	// (EvacuateOptions.ColdMove).
	Cold bool
}

// planInput is the cluster as the planner sees it: every host of dec with
// its capacity, and every protected VM with an owner, with its size and
// policy. A VM counts as running unless it is this host's and not running
// here, or it was stopped through Wingman.
func (m *Manager) planInput(ctx context.Context, dec quorum.Decision) (plan.Input, error) {
	in, _, err := m.planInputAndDefinitions(ctx, dec)
	return in, err
}

// planInputAndDefinitions is planInput and, by VM UUID, the problems of
// the VMs' stored definitions (DiskDefinitionProblems), from one read of
// the records.
func (m *Manager) planInputAndDefinitions(ctx context.Context, dec quorum.Decision) (plan.Input, map[string][]string, error) {
	recs, errs := m.lun.ReadVMs(ctx)
	if len(errs) > 0 {
		return plan.Input{}, nil, fmt.Errorf("%d VM records unreadable: %w", len(errs), errors.Join(errs...))
	}
	doms, err := m.hv.ListDomains(ctx)
	if err != nil {
		return plan.Input{}, nil, err
	}
	running := map[string]bool{}
	for _, d := range doms {
		if d.Active() {
			running[strings.ToLower(d.UUID)] = true
		}
	}
	var caps map[int]Capacity
	if m.cfg.Capacity != nil {
		caps = m.cfg.Capacity()
	}
	in, defs := plan.Input{Config: m.cfg.Reconcile.Plan}, map[string][]string{}
	for _, h := range dec.Hosts {
		c, ok := caps[h.ID]
		if !ok {
			c = Capacity{Memory: 1 << 40, CPUs: 1024}
		}
		in.Hosts = append(in.Hosts, plan.Host{ID: h.ID, Name: h.Name, State: reconcile.PlanStateOf(h.State, quarantinedIn(m.cfg).Has(h.ID)),
			Memory: c.Memory, CPUs: c.CPUs, OtherMemory: c.OtherMemory, OtherCPUs: c.OtherCPUs, Limits: c.Limits})
	}
	for _, r := range recs {
		if !r.Protected() || !r.Lease.Held() {
			continue
		}
		rp, err := UnmarshalRecordPolicy(r.Config.Policy)
		if err != nil {
			rp = RecordPolicy{Policy: plan.DefaultPolicy()}
		}
		spec, perr := hypervisor.ParseDomainXML(string(r.Config.XML))
		id := strings.ToLower(r.Config.UUID.String())
		in.VMs = append(in.VMs, plan.VM{UUID: id, Name: r.Config.Name, Owner: r.Lease.Owner.Host,
			Memory: spec.MemoryBytes, VCPUs: spec.VCPUs, Running: !rp.Stopped && (!owns(m.cfg, r.Lease) || running[id]),
			Policy: rp.Policy})
		if perr != nil {
			defs[id] = []string{perr.Error()}
		} else if p := DiskDefinitionProblems(spec); len(p) > 0 {
			defs[id] = p
		}
	}
	return in, defs, nil
}

// EvacuationPlan plans moving every protected VM this host owns and runs
// to other hosts, by priority, with vm/plan.Evacuate over the whole
// cluster's load. Unplaced lists VMs no host has room for, with the reason.
func (m *Manager) EvacuationPlan(ctx context.Context, dec quorum.Decision) (moves []Move, unplaced []string, err error) {
	return m.EvacuationPlanOf(ctx, dec, m.cfg.Host)
}

// EvacuationPlanOf is EvacuationPlan for any host of dec: what entering
// maintenance there would move where (a what-if: it changes nothing).
func (m *Manager) EvacuationPlanOf(ctx context.Context, dec quorum.Decision, host int) (moves []Move, unplaced []string, err error) {
	in, err := m.planInput(ctx, dec)
	if err != nil {
		return nil, nil, fmt.Errorf("evacuate: %w", err)
	}
	for i, h := range in.Hosts {
		if h.ID == host && h.State != plan.HostAlive {
			in.Hosts[i].State = plan.HostMaintenance // the host being emptied
		}
	}
	p, err := plan.Evacuate(in, host)
	if err != nil {
		return nil, nil, fmt.Errorf("evacuate: %w", err)
	}
	for _, s := range p.Steps() {
		moves = append(moves, Move{Name: s.Name, UUID: s.VM, To: s.To, ToName: s.ToName})
	}
	for _, u := range p.Unplaced {
		unplaced = append(unplaced, fmt.Sprintf("%s: %s", u.Name, u.Reason))
	}
	return moves, unplaced, nil
}

// Survivable is admission control over the cluster as dec shows it: can
// every protected VM be restarted after losing any k hosts?
func (m *Manager) Survivable(ctx context.Context, dec quorum.Decision, k int) (plan.Survivability, error) {
	in, err := m.planInput(ctx, dec)
	if err != nil {
		return plan.Survivability{}, fmt.Errorf("admission control: %w", err)
	}
	return plan.Survivable(in, k)
}

// EvacuateOptions tune Evacuate.
type EvacuateOptions struct {
	// Parallel is how many migrations run at once (at least 1).
	Parallel int
	// Planned, if set, is told the moves once they are planned, before the
	// first starts.
	Planned func([]Move)
	// Progress, if set, is told about samples of each running migration.
	// It must return quickly.
	Progress func(Move, hypervisor.MigrationProgress)
	// Done, if set, is told about each move as it ends (after its retry).
	Done func(Move, hypervisor.MigrationResult, error)
	// ColdMove: a VM whose live migration failed twice, and that still runs
	// here, is shut down (gracefully, bounded by the shutdown timeout) and
	// its lease released, so another host starts it: a short outage instead
	// of a VM left on a host being patched. Without it, it stays and is
	// reported.
	ColdMove bool
	// Unprotected: once the protected VMs are away, also live-migrate this
	// host's running unprotected domains, round-robin over the other alive
	// hosts (maintenance enter --all). Nothing records where they went.
	Unprotected bool
	// Current, if set, is the cluster view at the time the unprotected
	// domains move (the protected VMs' migrations may take minutes); nil:
	// the decision Evacuate was given.
	Current func() quorum.Decision
}

// Evacuate live-migrates every protected VM this host owns away,
// opts.Parallel at a time, in the plan's order (by priority). A failed
// migration is retried once, to another planned host.
func (m *Manager) Evacuate(ctx context.Context, dec quorum.Decision, opts EvacuateOptions) error {
	moves, unplaced, err := m.EvacuationPlan(ctx, dec)
	if err != nil {
		if opts.Unprotected {
			err = errors.Join(err, evacuateUnprotected(ctx, m.cfg, m.lun, m.hv, opts.current(dec)))
		}
		return err
	}
	if opts.Planned != nil {
		opts.Planned(moves)
	}
	parallel := max(opts.Parallel, 1)
	sem := make(chan struct{}, parallel)
	var mu sync.Mutex
	var failed []error
	var wg sync.WaitGroup
	targets := map[int]string{} // planned target hosts, by id
	for _, mv := range moves {
		targets[mv.To] = mv.ToName
	}
	for _, mv := range moves {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			migrate := func(mv Move) (hypervisor.MigrationResult, error) {
				var report func(hypervisor.MigrationProgress)
				if opts.Progress != nil {
					report = func(p hypervisor.MigrationProgress) { opts.Progress(mv, p) }
				}
				return m.MigrateWithProgress(ctx, mv.UUID, mv.To, report)
			}
			res, err := migrate(mv)
			if err != nil {
				for alt, altName := range targets { // retry once elsewhere
					if alt != mv.To && ctx.Err() == nil {
						mv.To, mv.ToName = alt, altName
						res, err = migrate(mv)
						break
					}
				}
			}
			if err != nil && opts.ColdMove && ctx.Err() == nil {
				if cerr := m.ColdMove(ctx, mv.UUID, "its live migration failed: "+err.Error()); cerr != nil {
					err = fmt.Errorf("%w; cold move: %w", err, cerr)
				} else {
					mv.Cold, err = true, nil
				}
			}
			if opts.Done != nil {
				opts.Done(mv, res, err)
			}
			if err != nil {
				mu.Lock()
				failed = append(failed, fmt.Errorf("%s: %w", mv.Name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, u := range unplaced {
		failed = append(failed, fmt.Errorf("%s (no host can take it)", u))
	}
	if len(failed) > 0 {
		err = fmt.Errorf("evacuate host %d: %w", m.cfg.Host, errors.Join(failed...))
	}
	if !opts.Unprotected {
		return err
	}
	return errors.Join(err, evacuateUnprotected(ctx, m.cfg, m.lun, m.hv, opts.current(dec)))
}

func (o EvacuateOptions) current(dec quorum.Decision) quorum.Decision {
	if o.Current != nil {
		return o.Current()
	}
	return dec
}

// evacuateUnprotected live-migrates the running domains of this host that
// have no protected-VM record, round-robin over the other alive hosts of
// dec. They hold no lease, so the migration is libvirt's alone.
func evacuateUnprotected(ctx context.Context, cfg Config, lun LUN, hv Hypervisor, dec quorum.Decision) error {
	doms, err := hv.ListDomains(ctx)
	if err != nil {
		return err
	}
	protected := map[string]bool{}
	recs, _ := lun.ReadVMs(ctx)
	for _, r := range recs {
		if r.Protected() {
			protected[strings.ToLower(r.Config.UUID.String())] = true
		}
	}
	var targets []int
	for _, h := range dec.Hosts {
		if h.State == quorum.StateAlive && h.ID != cfg.Host && !quarantinedIn(cfg).Has(h.ID) {
			targets = append(targets, h.ID)
		}
	}
	var errs []error
	for i, dm := range doms {
		if !dm.Active() || protected[strings.ToLower(dm.UUID)] || len(targets) == 0 {
			continue
		}
		uri, uerr := migrationURI(cfg, targets[i%len(targets)])
		if uerr == nil {
			_, uerr = hv.Migrate(ctx, dm.Name, hypervisor.MigrateOptions{DestURI: uri, Unsafe: cfg.UnsafeMigration})
		}
		if uerr != nil {
			errs = append(errs, fmt.Errorf("unprotected %s: %w", dm.Name, uerr))
		}
	}
	return errors.Join(errs...)
}

// ColdMove shuts down an owned VM that runs here (gracefully, bounded by
// the shutdown timeout, then destroyed) and releases its lease, so that
// another host starts it. It refuses while a migration's outcome is in
// doubt: the guest may already run on the target.
func (m *Manager) ColdMove(ctx context.Context, nameOrUUID, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, _, err := m.ownedRecord(ctx, "cold move", nameOrUUID)
	if err != nil {
		return err
	}
	if p := r.Lease.Migration.Phase; p == storage.MigrationStarted || p == storage.MigrationCompleted {
		return fmt.Errorf("cold move %q: a migration to host %d is %s; leaving it to the reconciler", r.Config.Name, r.Lease.Migration.Target, p)
	}
	if err := m.shutdown(ctx, r.Config.Name); err != nil {
		return fmt.Errorf("cold move: %w", err) // never release a VM that may still run
	}
	if err := m.lun.ReleaseLease(ctx, r.Index, r.Lease); err != nil {
		return fmt.Errorf("cold move %q: %w", r.Config.Name, err)
	}
	m.cfg.recordsChanged()
	writeEvent(ctx, m.events, storage.SevWarning, "cold-moved", r.Config.UUID, m.cfg.Host, "%s shut down and released for another host to start: %s", r.Config.Name, reason)
	return nil
}

// ReleaseAll shuts down every protected VM this host owns (gracefully,
// bounded by the shutdown timeout, then destroyed) and releases its lease,
// so other hosts start it: the "failover" shutdown policy.
func (m *Manager) ReleaseAll(ctx context.Context, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	recs, errs := m.lun.ReadVMs(ctx)
	if len(errs) > 0 {
		return fmt.Errorf("release all: %d VM records unreadable: %w", len(errs), errors.Join(errs...))
	}
	doms, err := m.hv.ListDomains(ctx)
	if err != nil {
		return fmt.Errorf("release all: %w", err)
	}
	names := map[string]string{}
	for _, d := range doms {
		if d.Active() {
			names[strings.ToLower(d.UUID)] = d.Name
		}
	}
	var failed []error
	for _, r := range recs {
		if !r.Protected() || !owns(m.cfg, r.Lease) {
			continue
		}
		if name, ok := names[strings.ToLower(r.Config.UUID.String())]; ok {
			if err := m.shutdown(ctx, name); err != nil {
				failed = append(failed, fmt.Errorf("stop %q: %w", name, err))
				continue // never release a VM that may still run
			}
		}
		if err := m.lun.ReleaseLease(ctx, r.Index, r.Lease); err != nil {
			failed = append(failed, fmt.Errorf("release %q: %w", r.Config.Name, err))
			continue
		}
		m.cfg.recordsChanged()
		writeEvent(ctx, m.events, storage.SevInfo, "released", r.Config.UUID, m.cfg.Host, "%s stopped and released: %s", r.Config.Name, reason)
	}
	if len(failed) > 0 {
		return fmt.Errorf("release all: %w", errors.Join(failed...))
	}
	return nil
}

// migrationURI is host's libvirt URI, from cfg.MigrationURI.
func migrationURI(cfg Config, host int) (string, error) {
	if cfg.MigrationURI == nil {
		return "", errors.New("no MigrationURI resolver configured")
	}
	return cfg.MigrationURI(host)
}

package vm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/reconcile"
)

// domainState reduces a libvirt domain to what reconcile needs.
func domainState(d hypervisor.Domain) reconcile.DomainState {
	switch d.State {
	case hypervisor.StatePaused:
		switch {
		case d.PausedOnIOError():
			return reconcile.DomainIOError
		case d.Reason == "crashed":
			return reconcile.DomainPanicked
		}
		return reconcile.DomainPaused
	case hypervisor.StateCrashed:
		return reconcile.DomainPanicked
	case hypervisor.StateShutoff:
		switch d.Reason {
		case "crashed", "failed":
			return reconcile.DomainCrashed
		case "unknown":
			return reconcile.DomainLost // the host went down under it
		}
		return reconcile.DomainShutoff
	case hypervisor.StatePMSuspended:
		return reconcile.DomainPaused
	case hypervisor.StateNoState:
		return reconcile.DomainPaused // unknown: active, left alone
	}
	return reconcile.DomainRunning
}

func fromStorageLease(l storage.LeaseState) reconcile.Lease {
	return reconcile.Lease{
		Epoch:      l.Epoch,
		Owner:      reconcile.Owner{Host: l.Owner.Host, Gen: l.Owner.Gen},
		Released:   l.Released,
		InProgress: l.InProgress,
		GuestUp:    l.GuestUp,
		Migration: reconcile.Migration{Phase: reconcile.MigrationPhase(l.Migration.Phase),
			Target: l.Migration.Target, TargetGen: l.Migration.TargetGen},
	}
}

// snapshot is one Step's view, with what execution needs beyond the Input.
type snapshot struct {
	in    reconcile.Input
	recs  map[string]storage.VMRecord // uuid -> record
	names map[string]string           // uuid -> local domain name
}

// StepError collects the failures of one Step's actions.
type StepError struct {
	Errs []error
}

func (e *StepError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("%d actions failed: %s", len(e.Errs), strings.Join(msgs, "; "))
}

func (e *StepError) Unwrap() []error { return e.Errs }

// Step runs one reconcile round: snapshot the LUN and libvirt, decide, act.
// It returns the actions decided (executed or not) and the errors of those
// that failed, as a *StepError. It never acts on a partial snapshot.
func (m *Manager) Step(ctx context.Context, dec quorum.Decision, now time.Time) ([]reconcile.Action, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastDec = dec
	snap, err := m.snapshot(ctx, dec, now)
	if err != nil {
		return nil, err
	}
	acts := reconcile.Reconcile(snap.in)
	var errs []error
	destroyFailed := false
	// Failover starts run in parallel (each takes its own lease), after
	// everything else, in order.
	var starts []reconcile.Action
	for _, a := range acts {
		if a.Kind == reconcile.TakeAndStart {
			starts = append(starts, a)
			continue
		}
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("step: %w", ctx.Err()))
			break
		}
		if destroyFailed && a.Kind != reconcile.DestroyStale && a.Kind != reconcile.Notice && a.Kind != reconcile.Stop && a.Kind != reconcile.Release {
			errs = append(errs, fmt.Errorf("%s %s: skipped: a stale copy could not be destroyed this round", a.Kind, a.Name))
			continue
		}
		if err := m.exec(ctx, snap, a, now); err != nil {
			errs = append(errs, err)
			if a.Kind == reconcile.DestroyStale {
				destroyFailed = true
			}
		}
	}
	if destroyFailed && len(starts) > 0 {
		errs = append(errs, fmt.Errorf("%d failover starts skipped: a stale copy could not be destroyed this round", len(starts)))
		starts = nil
	}
	errs = append(errs, m.runStarts(ctx, snap, starts, now)...)
	if len(errs) > 0 {
		return acts, &StepError{Errs: errs}
	}
	return acts, nil
}

// runStarts runs the failover starts of a step: those of the first wave at
// once, then each later one (in wave order, as reconcile returned them) as
// soon as one before it is done, so that no more run at once than the first
// wave holds and a slow start holds back no other. It launches no more once
// ctx ends or this host has fenced itself.
func (m *Manager) runStarts(ctx context.Context, snap *snapshot, starts []reconcile.Action, now time.Time) []error {
	slices.SortStableFunc(starts, func(a, b reconcile.Action) int { return cmp.Compare(a.Wave, b.Wave) })
	window := 0
	for _, a := range starts {
		if a.Wave == 0 {
			window++
		}
	}
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	var lastDone atomic.Int64 // unix nanos: launch, then each start's end
	lastDone.Store(time.Now().UnixNano())
	stopAlive := m.aliveWhileStarting(ctx, &lastDone)
	defer stopAlive()
	slots := make(chan struct{}, max(window, 1))
	for i, a := range starts {
		if window == 0 {
			break // this host has nothing in the first wave: its turn comes later
		}
		slots <- struct{}{}
		if err := ctx.Err(); err != nil || m.fenced.Load() || m.isolating.Load() > 0 {
			<-slots
			switch {
			case err != nil:
			case m.fenced.Load():
				err = fmt.Errorf("%w: this host fenced itself", ErrNoQuorum)
			default:
				err = fmt.Errorf("%w: this host applies a poison pill (it is isolated)", ErrNoQuorum)
			}
			mu.Lock()
			errs = append(errs, fmt.Errorf("%d failover starts not launched: %w", len(starts)-i, err))
			mu.Unlock()
			break
		}
		wg.Add(1)
		go func() {
			defer func() { lastDone.Store(time.Now().UnixNano()); <-slots; wg.Done() }()
			if err := m.exec(ctx, snap, a, now); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// startStallLimit is how long the failover starts of a step may go without
// one of them finishing, while libvirtd still answers, before the VM manager
// counts as stalled. A loaded host starts guests slowly (on the 2-core test
// machine, 30 guests at once came back from libvirt in batches of 5, 5 to 7 s
// apart), which is no reason to fence it; a start that never returns is.
const startStallLimit = 2 * time.Minute

// connectedChecker is implemented by hypervisors that know whether their
// connection is up (*hypervisor.Conn: libvirt keepalives answered).
type connectedChecker interface{ Connected() bool }

// aliveWhileStarting reports progress (storage.Progressed) every 500 ms
// while failover starts wait in libvirt, as long as the connection to
// libvirtd is up and a start finished within startStallLimit: the watchdog
// guard of the VM manager then tells slow starts from hung ones. The VM
// manager holds no fencing duty (the heartbeat loop self-fences and applies
// isolation), so a slow one only delays failovers. It returns the stop func.
func (m *Manager) aliveWhileStarting(ctx context.Context, lastDone *atomic.Int64) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if c, ok := m.hv.(connectedChecker); ok && !c.Connected() {
				continue
			}
			if time.Since(time.Unix(0, lastDone.Load())) < startStallLimit {
				storage.Progressed(ctx)
			}
		}
	}()
	return func() { close(done) }
}

func (m *Manager) snapshot(ctx context.Context, dec quorum.Decision, now time.Time) (*snapshot, error) {
	// Domains first, records second: a guest that arrives by live migration
	// after the listing is simply not seen this round, whereas one listed
	// before its record was read would be judged without the migration
	// record that names this host, and destroyed as a stale copy.
	doms, err := m.hv.ListDomains(ctx)
	if err != nil {
		return nil, fmt.Errorf("step: list local domains: %w", err)
	}
	recs, errs := readRecords(ctx, m.lun, &m.scan, m.rescan.Swap(false), dec, doms, now)
	if len(errs) > 0 {
		reportDamage(ctx, m.events, m.noticed, errs)
		return nil, fmt.Errorf("step: %d VM records unreadable, not deciding on a partial view: %w", len(errs), errors.Join(errs...))
	}
	delete(m.noticed, "lun-damage") // read clean: the next damage is news
	in := reconcile.Input{
		Now: now, Self: m.cfg.Host, SelfGen: m.cfg.Gen,
		MayRunVMs: dec.MayRunVMs, Quorate: dec.Quorate,
		Verdicts: dec.Verdicts, Config: m.cfg.Reconcile,
		History: make(map[string]reconcile.History, len(m.history)), MigratingOut: make(map[string]bool, len(m.outgoing)),
	}
	if m.cfg.GuestAgentWait != nil {
		in.Config.GuestAgentWait = m.cfg.GuestAgentWait()
	}
	in.Config.DiskLoss = diskLoss{m}.policy(in.Config.DiskLoss)
	var caps map[int]Capacity
	if m.cfg.Capacity != nil {
		caps = m.cfg.Capacity()
	}
	quarantined := quarantinedIn(m.cfg)
	for _, h := range dec.Hosts {
		c, ok := caps[h.ID]
		if !ok {
			c = Capacity{Memory: 1 << 40, CPUs: 1024}
		}
		in.Hosts = append(in.Hosts, reconcile.Host{ID: h.ID, Name: h.Name, Gen: h.Gen, State: h.State, Quarantined: quarantined.Has(h.ID),
			Memory: c.Memory, CPUs: c.CPUs, OtherMemory: c.OtherMemory, OtherCPUs: c.OtherCPUs, Limits: c.Limits})
	}
	snap := &snapshot{recs: map[string]storage.VMRecord{}, names: map[string]string{}}
	held := make(map[string]heldSeen, len(recs))
	avoid := map[string]heldSeen{}
	decoded := make(map[string]decodedConfig, len(recs))
	for _, r := range recs {
		if !r.Protected() {
			continue
		}
		id := r.Config.UUID.String()
		dc := decodeConfig(m.decoded, r.Config)
		decoded[id] = dc
		rp := dc.rp
		if dc.rpErr != nil {
			m.notice(ctx, r.Config.UUID, fmt.Sprintf("record %d: unreadable policy, VM left alone: %v", r.Index, dc.rpErr))
			// Left out of planning, but its lease still keeps others off:
			// a record with a bad policy must not make a copy look stale.
			rp.Policy.Restart = "never"
		}
		snap.recs[id] = r
		rec := reconcile.Record{Index: r.Index, UUID: id, Name: r.Config.Name,
			Lease: fromStorageLease(r.Lease), Policy: rp.Policy, Stopped: rp.Stopped,
			Memory: dc.memory, VCPUs: dc.vcpus}
		if r.Lease.Held() {
			// When this host first saw the epoch held: after a restart of
			// the daemon that is now, so a tier waits rather than not.
			hs, ok := m.heldSeen[id]
			if !ok || hs.epoch != r.Lease.Epoch {
				hs = heldSeen{r.Lease.Epoch, now}
			}
			held[id] = hs
			rec.HeldSince = hs.since
		}
		diskLoss{m}.avoid(&rec, rp.DiskLost, m.avoidSeen, avoid, now)
		in.Records = append(in.Records, rec)
	}
	m.heldSeen = held
	m.avoidSeen = avoid
	m.decoded = decoded
	seen := make(map[string]seenState, len(doms))
	for _, d := range doms {
		id := strings.ToLower(d.UUID)
		st := domainState(d)
		since := now
		if prev, ok := m.seen[id]; ok && prev.state == st {
			since = prev.since
		}
		seen[id] = seenState{st, since}
		snap.names[id] = d.Name
		in.Local = append(in.Local, reconcile.Domain{UUID: id, Name: d.Name, State: st, Active: d.Active(), Since: since})
	}
	m.seen = seen
	for k, v := range m.history {
		in.History[k] = v
	}
	for k := range m.outgoing {
		in.MigratingOut[k] = true
	}
	snap.in = in
	agentWatcher{m}.watchAgents(snap, doms)
	agentWatcher{m}.checkAgents(snap, doms)
	return snap, nil
}

// reportDamage writes an error event for the first damaged record of errs
// (a record that was written and now reads damaged, lower or blank), once
// per distinct damage (noticed remembers it): a step that meets one decides
// nothing, so no VM is started over it, and the operator must hear why.
func reportDamage(ctx context.Context, events Events, noticed map[string]string, errs []error) {
	for _, err := range errs {
		var be *storage.BlockError
		if !errors.As(err, &be) || !errors.Is(err, storage.ErrCorrupt) {
			continue
		}
		text := fmt.Sprintf("%s: %v", be.What, be.Err)
		if noticed["lun-damage"] != text {
			noticed["lun-damage"] = text
			writeEvent(ctx, events, storage.SevError, "lun-damaged", storage.UUID{}, 0, "deciding nothing on a damaged LUN (wingman lun verify): %s", text)
		}
		return
	}
	delete(noticed, "lun-damage")
}

// notice records a Notice event once per distinct text per VM.
func (m *Manager) notice(ctx context.Context, id storage.UUID, text string) {
	k := id.String()
	if m.noticed[k] == text {
		return
	}
	m.noticed[k] = text
	writeEvent(ctx, m.events, storage.SevWarning, "notice", id, 0, "%s", text)
}

// currentLease re-reads the lease and checks this host holds it at epoch
// with no migration in flight: a snapshot may be older than a migration or
// a release, and starting on it could run the VM twice.
func (m *Manager) currentLease(ctx context.Context, idx int, epoch uint64, allowMigration bool) (storage.LeaseState, error) {
	l, err := m.lun.ReadLease(ctx, idx)
	if err != nil {
		return l, err
	}
	inFlight := l.Migration.Phase == storage.MigrationStarted || l.Migration.Phase == storage.MigrationCompleted
	if !owns(m.cfg, l) || l.Epoch != epoch || l.InProgress || (inFlight && !allowMigration) {
		return l, fmt.Errorf("%w: lease of record %d is now epoch %d owner host %d gen %d released=%v migration=%s",
			ErrNotOwner, idx, l.Epoch, l.Owner.Host, l.Owner.Gen, l.Released, l.Migration.Phase)
	}
	return l, nil
}

func (m *Manager) exec(ctx context.Context, snap *snapshot, a reconcile.Action, now time.Time) error {
	r, ok := snap.recs[a.VM]
	if !ok && a.Kind != reconcile.Notice {
		return fmt.Errorf("%s %s: no record in the snapshot", a.Kind, a.Name)
	}
	var id storage.UUID
	if r.Config != nil {
		id = r.Config.UUID
	}
	fail := func(kind string, err error) error {
		err = fmt.Errorf("%s %s: %w", a.Kind, a.Name, err)
		writeEvent(ctx, m.events, storage.SevError, kind, id, 0, "%v", err)
		return err
	}
	local := snap.names[a.VM]
	switch a.Kind {
	case reconcile.Notice:
		if r.Config != nil && a.Event != "" {
			if m.noticed[a.VM] != a.Reason {
				m.noticed[a.VM] = a.Reason
				writeEvent(ctx, m.events, storage.SevWarning, a.Event, id, 0, "%s", a.Reason)
			}
		} else if r.Config != nil {
			m.notice(ctx, id, a.Reason)
		}
		return nil

	case reconcile.Wait:
		if !a.Since.IsZero() {
			m.histMu.Lock()
			if h := m.history[a.VM]; h.DelaySince.IsZero() || h.DelayEpoch != a.Expect {
				h.DelaySince, h.DelayEpoch = a.Since, a.Expect
				m.history[a.VM] = h
			}
			m.histMu.Unlock()
		}
		if m.noticed[a.VM] != a.Reason {
			m.noticed[a.VM] = a.Reason
			writeEvent(ctx, m.events, storage.SevInfo, "waiting", id, 0, "%s", a.Reason)
		}
		return nil

	case reconcile.DestroyStale:
		if err := m.hv.Destroy(ctx, local); err != nil && !errors.Is(err, hypervisor.ErrNotRunning) {
			return fail("failed", err)
		}
		writeEvent(ctx, m.events, storage.SevWarning, "destroyed-stale-copy", id, 0, "%s", a.Reason)
		return nil

	case reconcile.Stop:
		if err := m.shutdown(ctx, local); err != nil {
			return fail("failed", err)
		}
		writeEvent(ctx, m.events, storage.SevInfo, "stopped", id, 0, "%s", a.Reason)
		return nil

	case reconcile.Adopt:
		if _, err := m.lun.AcquireLease(ctx, r.Index, a.Expect, newOwner(m.cfg)); err != nil {
			return fail("failed", err)
		}
		writeEvent(ctx, m.events, storage.SevInfo, "lease-acquired", id, 0, "adopted at epoch %d: %s", a.Expect+1, a.Reason)
		return nil

	case reconcile.TakeAndStart, reconcile.ClaimMigrated:
		if a.Kind == reconcile.TakeAndStart {
			writeEvent(ctx, m.events, storage.SevInfo, "planned", id, 0, "%s", a.Reason)
		}
		lease, err := m.lun.AcquireLease(ctx, r.Index, a.Expect, newOwner(m.cfg))
		if errors.Is(err, storage.ErrLeaseHeld) {
			// Another host won the epoch: it runs the VM; nothing to do.
			writeEvent(ctx, m.events, storage.SevInfo, "lease-lost", id, 0, "another host took epoch %d first", a.Expect+1)
			return nil
		}
		if err != nil {
			return fail("failed", err)
		}
		writeEvent(ctx, m.events, storage.SevInfo, "lease-acquired", id, 0, "epoch %d: %s", lease.Epoch, a.Reason)
		if a.Kind == reconcile.ClaimMigrated && !a.Start {
			return nil
		}
		if err := m.startVM(ctx, r, lease, a, now, local); err != nil {
			return err
		}
		if owner, ok := m.lastDec.Host(r.Lease.Owner.Host); ok && a.Kind == reconcile.TakeAndStart && m.cfg.Observe != nil && owner.ID != m.cfg.Host {
			m.cfg.Observe.FailedOver(owner.Stale)
		}
		return nil

	case reconcile.CompleteMigration, reconcile.ClearMigration:
		lease, err := m.currentLease(ctx, r.Index, a.Expect, true)
		if err != nil {
			return fail("failed", err)
		}
		mig := lease.Migration
		if a.Kind == reconcile.CompleteMigration {
			mig.Phase = storage.MigrationCompleted
		} else {
			mig = storage.Migration{}
		}
		lease, err = m.lun.SetMigration(ctx, r.Index, lease, mig)
		if err != nil {
			return fail("failed", err)
		}
		writeEvent(ctx, m.events, storage.SevInfo, "migration-"+map[bool]string{true: "completed", false: "cleared"}[a.Kind == reconcile.CompleteMigration], id, 0, "%s", a.Reason)
		if a.Kind == reconcile.ClearMigration && a.Start {
			return m.startVM(ctx, r, lease, a, now, local)
		}
		return nil

	case reconcile.Start, reconcile.RestartInPlace:
		lease, err := m.currentLease(ctx, r.Index, a.Expect, false)
		if err != nil {
			return fail("failed", err)
		}
		if a.Kind == reconcile.RestartInPlace && local != "" {
			if err := m.hv.Destroy(ctx, local); err != nil && !errors.Is(err, hypervisor.ErrNotRunning) {
				return fail("failed", err)
			}
		}
		return m.startVM(ctx, r, lease, a, now, local)

	case reconcile.Release:
		if a.DiskLost {
			return diskLoss{m}.release(ctx, r, a, local, fail)
		}
		lease, err := m.currentLease(ctx, r.Index, a.Expect, false)
		if err != nil {
			return fail("failed", err)
		}
		if a.Destroy && local != "" {
			if err := m.hv.Destroy(ctx, local); err != nil && !errors.Is(err, hypervisor.ErrNotRunning) {
				return fail("failed", err)
			}
		}
		if err := m.lun.ReleaseLease(ctx, r.Index, lease); err != nil {
			return fail("failed", err)
		}
		m.cfg.recordsChanged()
		delete(m.history, a.VM)
		writeEvent(ctx, m.events, storage.SevWarning, "released", id, 0, "%s", a.Reason)
		return nil

	case reconcile.Resume:
		res, ok := m.hv.(Resumer)
		if !ok {
			return fail("failed", fmt.Errorf("resume after an I/O error: %w (this hypervisor adapter cannot resume a guest)", ErrUnsupported))
		}
		if err := res.Resume(ctx, local); err != nil {
			return fail("failed", err)
		}
		writeEvent(ctx, m.events, storage.SevInfo, "resumed", id, 0, "%s", a.Reason)
		return nil
	}
	return fmt.Errorf("%s %s: unknown action", a.Kind, a.Name)
}

// startVM defines the record's XML here and starts it; a failure counts
// toward the start failures that make reconcile release the lease.
func (m *Manager) startVM(ctx context.Context, r storage.VMRecord, lease storage.LeaseState, a reconcile.Action, now time.Time, local string) error {
	id := r.Config.UUID
	key := id.String()
	m.histMu.Lock()
	h := m.history[key]
	m.histMu.Unlock()
	failed := func(err error) error {
		h.StartFailures++
		h.LastFailure = now
		m.histMu.Lock()
		m.history[key] = h
		m.histMu.Unlock()
		err = fmt.Errorf("start %q on host %d (attempt %d): %w", r.Config.Name, m.cfg.Host, h.StartFailures, err)
		writeEvent(ctx, m.events, storage.SevError, "failed", id, 0, "%v", err)
		return err
	}
	if m.fenced.Load() {
		// The lease was taken before this host fenced itself: the others
		// restart the VM once they declare this host dead.
		return fmt.Errorf("start %q on host %d: %w: this host fenced itself", r.Config.Name, m.cfg.Host, ErrNoQuorum)
	}
	name := local
	if d, err := m.hv.Define(ctx, string(r.Config.XML)); err != nil {
		if local == "" {
			return failed(err)
		}
		// Keep the local definition (e.g. one already defined here).
	} else {
		name = d.Name
	}
	if err := m.hv.Start(ctx, name); err != nil && !errors.Is(err, hypervisor.ErrAlreadyRunning) {
		return failed(err)
	}
	h.StartFailures = 0
	kind := "started"
	if a.Counts {
		h.Restarts = append(h.Restarts, now)
		kind = "restarted"
	}
	m.histMu.Lock()
	m.history[key] = h
	m.histMu.Unlock()
	writeEvent(ctx, m.events, storage.SevInfo, kind, id, 0, "on host %d at epoch %d: %s", m.cfg.Host, lease.Epoch, a.Reason)
	agentWatcher{m}.endAgentCheck(key) // the guest boots: the next step checks its agent afresh
	if rp, err := UnmarshalRecordPolicy(r.Config.Policy); err == nil && rp.Policy.WaitGuestAgent {
		agentWatcher{m}.watchAgent(r.Index, id, name, lease, time.Now())
	}
	return nil
}

// guestAgentTimeout is how long the owner pings a guest agent after a start
// before it reports that the agent did not answer.
const guestAgentTimeout = 5 * time.Minute

// agentPingTimeout bounds one ping of a guest agent.
const agentPingTimeout = 5 * time.Second

// watchAgents starts a guest agent watch for every VM this host owns and
// runs whose policy says WaitGuestAgent and whose lease is not marked
// guest-up at its epoch: after a live migration, an adoption or a restart of
// the daemon, not only after a start.
func (m agentWatcher) watchAgents(snap *snapshot, doms []hypervisor.Domain) {
	running := make(map[string]string, len(doms))
	for _, d := range doms {
		if d.State == hypervisor.StateRunning {
			running[strings.ToLower(d.UUID)] = d.Name
		}
	}
	for _, rec := range snap.in.Records {
		name, ok := running[rec.UUID]
		if !ok || !rec.Policy.WaitGuestAgent || rec.Stopped || rec.Lease.GuestUp {
			continue
		}
		if r := snap.recs[rec.UUID]; owns(m.cfg, r.Lease) && r.Lease.Migration.Phase == storage.MigrationNone {
			m.watchAgent(r.Index, r.Config.UUID, name, r.Lease, time.Time{})
		}
	}
}

// agentWait is the wait for one VM's guest agent (awaitGuest).
type agentWait struct {
	epoch uint64
	stop  context.CancelFunc
}

// watchAgent starts awaitGuest for the VM at lease's epoch unless one ran or
// runs for that epoch already. started is when this host started the VM
// (zero: it did not), for the timeline. A start always gets a wait of its
// own, ending the one before: a restart in place (after a panic, say) keeps
// the epoch, and its new boot's agent must be heard again.
func (m agentWatcher) watchAgent(idx int, id storage.UUID, name string, lease storage.LeaseState, started time.Time) {
	if _, ok := m.hv.(AgentPinger); !ok || m.life.Err() != nil {
		return
	}
	key := id.String()
	m.agentMu.Lock()
	defer m.agentMu.Unlock()
	if w, ok := m.agentWatch[key]; ok && w.epoch == lease.Epoch {
		if started.IsZero() {
			return
		}
		w.stop()
	}
	ctx, stop := context.WithCancel(m.life)
	m.agentWatch[key] = agentWait{epoch: lease.Epoch, stop: stop}
	m.background.Add(1)
	go func() {
		defer m.background.Done()
		defer stop()
		m.awaitGuest(ctx, idx, id, name, lease, started)
	}()
}

// awaitGuest pings the guest agent of a VM this host owns until it answers
// or guestAgentTimeout passes. When it answers, it marks the lease guest-up at
// its epoch (later start tiers wait for that mark) and writes the
// "guest-up" event. It never blocks a step, and ends with the manager.
func (m agentWatcher) awaitGuest(parent context.Context, idx int, id storage.UUID, name string, lease storage.LeaseState, started time.Time) {
	p := m.hv.(AgentPinger)
	ctx, cancel := context.WithTimeout(parent, guestAgentTimeout)
	defer cancel()
	since := started
	if since.IsZero() {
		since = time.Now()
	}
	markFailed := false
	for ctx.Err() == nil && !m.fenced.Load() {
		pctx, pcancel := context.WithTimeout(ctx, agentPingTimeout)
		err := p.PingAgent(pctx, name)
		pcancel()
		if errors.Is(err, hypervisor.ErrNotFound) || errors.Is(err, hypervisor.ErrNotRunning) {
			return // it left this host (migrated, stopped, destroyed): no longer ours to watch
		}
		if errors.Is(err, hypervisor.ErrUnsupported) {
			writeEvent(ctx, m.events, storage.SevWarning, "guest-not-up", id, 0, "%s: this libvirt driver cannot ping guest agents: %v", name, err)
			return
		}
		if err == nil {
			m.agentAnswered(id.String())
			_, merr := m.lun.SetGuestUp(ctx, idx, lease)
			switch {
			case errors.Is(merr, storage.ErrLeaseHeld):
				return // the lease moved on: a new epoch gets its own watch
			case merr != nil:
				if !markFailed { // tried again every second until it lands
					writeEvent(ctx, m.events, storage.SevWarning, "guest-up", id, 0, "%s: guest agent answers, but the mark on the LUN failed (retrying): %v", name, merr)
					markFailed = true
				}
			case started.IsZero():
				writeEvent(ctx, m.events, storage.SevInfo, "guest-up", id, 0, "%s: guest agent answers (epoch %d)", name, lease.Epoch)
				return
			default:
				writeEvent(ctx, m.events, storage.SevInfo, "guest-up", id, 0, "%s: guest agent answers %v after the start", name, time.Since(started).Round(time.Millisecond))
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if !m.fenced.Load() && m.life.Err() == nil && !errors.Is(context.Cause(ctx), context.Canceled) {
		writeEvent(context.Background(), m.events, storage.SevWarning, "guest-not-up", id, 0,
			"%s: guest agent did not answer within %v; later start tiers of a failover wait for it at most failover.guest_agent_wait after it was taken",
			name, time.Since(since).Round(time.Second))
	}
}

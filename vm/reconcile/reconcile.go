package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm/plan"
)

// view is one Reconcile call's indexes over the Input.
type view struct {
	in      *Input
	hosts   map[int]*Host
	dead    map[int]uint64 // host -> highest generation declared dead
	local   map[string]*Domain
	actions []Action
	// back are the VMs this host's earlier generation held that do not run
	// here (restartOwn); firstTier is the lowest start order of a failover
	// step this round, stepped whether there was one.
	back      []*Record
	firstTier int
	stepped   bool
}

// Reconcile returns what this host does now, in execution order: destroys
// of stale copies first, then releases and stops, lease bookkeeping, restarts
// in place, and failover starts by plan wave. See the package doc for the
// lease rule every action obeys.
func Reconcile(in Input) []Action {
	v := &view{
		in:    &in,
		hosts: make(map[int]*Host, len(in.Hosts)),
		dead:  make(map[int]uint64),
		local: make(map[string]*Domain, len(in.Local)),
	}
	if in.Config.Plan.MaxConcurrentStarts == 0 {
		in.Config = DefaultConfig()
	}
	for i := range in.Hosts {
		h := &in.Hosts[i]
		v.hosts[h.ID] = h
		if h.State.Gone() {
			v.markDead(h.ID, h.Gen)
		}
	}
	for _, d := range in.Verdicts {
		v.markDead(d.ID, d.Gen)
	}
	for i := range in.Local {
		v.local[in.Local[i].UUID] = &in.Local[i]
	}
	records := make([]*Record, 0, len(in.Records))
	protected := make(map[string]bool, len(in.Records))
	for i := range in.Records {
		r := &in.Records[i]
		if protected[r.UUID] {
			// Two records for one VM: storage prevents it; if it happens,
			// acting on either could start the VM twice.
			v.add(Action{Kind: Notice, VM: r.UUID, Name: r.Name, Index: r.Index, Reason: "VM is in two LUN records; not acted on"})
			continue
		}
		protected[r.UUID] = true
		records = append(records, r)
	}
	slices.SortFunc(records, func(a, b *Record) int { return cmp.Compare(a.Index, b.Index) })

	var planned []*Record // candidates for the failover plan
	for _, r := range records {
		if v.record(r) {
			planned = append(planned, r)
		}
	}
	v.failover(records, planned)
	v.restartOwn(records)

	slices.SortStableFunc(v.actions, func(a, b Action) int {
		if r := cmp.Compare(a.Kind.order(), b.Kind.order()); r != 0 {
			return r
		}
		return cmp.Compare(a.Wave, b.Wave)
	})
	return v.actions
}

func (v *view) markDead(id int, gen uint64) {
	if g, ok := v.dead[id]; !ok || gen > g {
		v.dead[id] = gen
	}
}

// gone reports whether o can run nothing: its host was declared dead or left
// at o's generation or a later one.
func (v *view) gone(o Owner) bool {
	g, ok := v.dead[o.Host]
	return ok && g >= o.Gen
}

func (v *view) add(a Action) { v.actions = append(v.actions, a) }

// mine classifies the lease from this host's point of view.
type mine int

const (
	notMine    mine = iota
	mineNow         // held by this host at its current generation
	mineOld         // held by this host at an older generation never declared dead
	mineStale       // held by this host at a generation declared dead
	mineFuture      // a generation above ours: a bug or a reused slot; never touch
)

func (v *view) mine(l Lease) mine {
	if !l.held() || l.Owner.Host != v.in.Self {
		return notMine
	}
	switch {
	case l.Owner.Gen == v.in.SelfGen:
		return mineNow
	case l.Owner.Gen > v.in.SelfGen:
		return mineFuture
	case v.gone(l.Owner):
		return mineStale
	}
	return mineOld
}

// targetIsMe reports whether a migration names this host (at its current
// generation, or an older one never declared dead) as its target.
func (v *view) targetIsMe(m Migration) bool {
	if m.Target != v.in.Self {
		return false
	}
	return m.TargetGen == v.in.SelfGen || m.TargetGen < v.in.SelfGen && !v.gone(Owner{m.Target, m.TargetGen})
}

// record decides one VM and reports whether it is a failover candidate.
func (v *view) record(r *Record) bool {
	in := v.in
	d := v.local[r.UUID]
	active := d != nil && d.Active
	l := r.Lease
	act := func(k Kind, why string, opts ...func(*Action)) {
		a := Action{Kind: k, VM: r.UUID, Name: r.Name, Index: r.Index, Expect: l.Epoch, Reason: why}
		for _, o := range opts {
			o(&a)
		}
		v.add(a)
	}
	withStart := func(ok bool) func(*Action) { return func(a *Action) { a.Start = ok } }
	m := v.mine(l)

	switch m {
	case mineNow:
		v.owned(r, d, act, withStart)
		return false
	case mineOld:
		if !active && !r.Stopped {
			v.back = append(v.back, r) // a start: restartOwn decides when
			return false
		}
		if in.MayRunVMs {
			act(Adopt, fmt.Sprintf("lease held by this host's earlier generation %d, never declared dead", l.Owner.Gen))
		}
		return false
	case mineFuture:
		act(Notice, fmt.Sprintf("lease names this host at generation %d, newer than ours (%d); not touched", l.Owner.Gen, in.SelfGen))
		return false
	}

	// Not ours (or ours at a generation declared dead).
	mig := l.Migration
	ownerGone := l.held() && v.gone(l.Owner)
	if l.held() && mig.inFlight() && v.targetIsMe(mig) {
		switch {
		case mig.Phase == MigrationCompleted || ownerGone:
			// Rule c, or rule b with the target's preference: only the
			// target knows whether the guest already runs here.
			rule := "rule c: migration completed to this host"
			if mig.Phase != MigrationCompleted {
				rule = fmt.Sprintf("rule b: owner %s is gone during a migration to this host", l.Owner)
			}
			if !in.MayRunVMs || (mig.Phase != MigrationCompleted && !in.Quorate) {
				return false
			}
			start := !active && !r.Stopped && r.Policy.Restart != plan.RestartNever
			why := rule + "; the guest runs here"
			if !active {
				why = rule + "; the guest is not here"
			}
			act(ClaimMigrated, why, withStart(start))
			return false
		default:
			// The owner is moving it here: the incoming copy is the
			// migration's, not a stale one.
			return false
		}
	}
	if active {
		why := "not owned by this host: " + leaseText(l)
		if m == mineStale {
			why = fmt.Sprintf("this host's generation %d was declared dead; the VM is not restarted here", l.Owner.Gen)
		}
		act(DestroyStale, why)
		return false
	}
	if r.Stopped {
		return false
	}
	if ownerGone && mig.inFlight() && !v.gone(Owner{mig.Target, mig.TargetGen}) {
		// The migration target decides (above); everyone else waits for it.
		return false
	}
	return ownerGone || !l.held() || m == mineStale
}

func leaseText(l Lease) string {
	switch {
	case l.Epoch == 0 && l.Owner.Host == 0:
		return "lease never taken"
	case l.Released:
		return fmt.Sprintf("lease released by %s at epoch %d", l.Owner, l.Epoch)
	}
	return fmt.Sprintf("lease held by %s at epoch %d", l.Owner, l.Epoch)
}

// owned decides a VM whose lease this host holds at its current generation.
func (v *view) owned(r *Record, d *Domain, act func(Kind, string, ...func(*Action)), withStart func(bool) func(*Action)) {
	in := v.in
	active := d != nil && d.Active
	mig := r.Lease.Migration
	if mig.inFlight() {
		targetGone := v.gone(Owner{mig.Target, mig.TargetGen})
		switch {
		case targetGone:
			restart := !active && !r.Stopped && r.Policy.Restart != plan.RestartNever && in.MayRunVMs
			act(ClearMigration, fmt.Sprintf("migration target host %d gen %d is gone", mig.Target, mig.TargetGen),
				withStart(restart), func(a *Action) { a.Counts = restart })
		case in.MigratingOut[r.UUID]:
		case mig.Phase == MigrationStarted && !active:
			act(CompleteMigration, fmt.Sprintf("the guest left this host during the migration to host %d", mig.Target))
		case mig.Phase == MigrationStarted:
			act(Notice, fmt.Sprintf("migration to host %d recorded as started but not in progress; the guest still runs here", mig.Target))
		}
		return // until the handover ends, the VM is the migration's
	}
	hist := in.History[r.UUID]
	if r.Stopped {
		if active {
			act(Stop, "stopped by the operator")
		}
		return
	}
	if d != nil && active && d.State == DomainIOError {
		if a, ok := v.diskLoss(r, d); ok {
			v.add(a)
			return
		}
		p := r.Policy.IOError
		if in.Now.Sub(d.Since) < p.After {
			return
		}
		switch p.Response {
		case plan.IOErrorResume:
			act(Resume, fmt.Sprintf("paused on an I/O error since %s (over %v)", d.Since.Format(time.RFC3339), p.After))
		case plan.IOErrorRestart:
			act(Release, fmt.Sprintf("paused on an I/O error for over %v: restart on another host", p.After), func(a *Action) { a.Destroy = true })
		default:
			act(Notice, fmt.Sprintf("paused on an I/O error for over %v; policy waits", p.After))
		}
		return
	}
	var why string
	counts := true
	switch {
	case d == nil:
		why, counts = "owned here and not defined here", false
	case d.State == DomainPanicked || d.State == DomainCrashed:
		if r.Policy.Restart == plan.RestartNever {
			if !active {
				return
			}
			act(Notice, fmt.Sprintf("guest %s; restart policy never", d.State))
			return
		}
		why = "guest " + string(d.State)
	case active:
		return // running or paused: fine
	case d.State == DomainShutoff:
		if r.Policy.Restart != plan.RestartAlways {
			return
		}
		why = "guest shut down; restart policy always"
	case d.State == DomainLost:
		// Its host went down under it (a power loss): it was running,
		// which on-failure restarts too, as a failover would.
		if r.Policy.Restart == plan.RestartNever {
			return
		}
		why, counts = "not running since this host went down (libvirt found it off at its start)", false
	default:
		why, counts = "owned here and not running", false
	}
	if !in.MayRunVMs {
		return
	}
	// Starts that keep failing: back off, then let another host try.
	if hist.StartFailures >= in.Config.MaxStartFailures {
		act(Release, fmt.Sprintf("%d starts failed in a row; let another host try", hist.StartFailures), func(a *Action) { a.Destroy = active })
		return
	}
	if hist.StartFailures > 0 && in.Now.Before(hist.LastFailure.Add(backoff(in.Config, hist.StartFailures))) {
		return
	}
	if counts {
		if lim := r.Policy.RestartLimit; lim.Max > 0 {
			n := 0
			for _, t := range hist.Restarts {
				if t.After(in.Now.Add(-lim.Window)) {
					n++
				}
			}
			if n >= lim.Max {
				act(Release, fmt.Sprintf("%s; restart limit reached (%d within %v): move it", why, n, lim.Window), func(a *Action) { a.Destroy = active })
				return
			}
		}
		act(RestartInPlace, why, func(a *Action) { a.Counts = true })
		return
	}
	act(Start, why)
}

func backoff(c Config, failures int) time.Duration {
	b := c.StartBackoff
	for i := 1; i < failures && b < c.MaxStartBackoff; i++ {
		b *= 2
	}
	return min(b, c.MaxStartBackoff)
}

// planState maps a quorum state to the planner's.
// PlanState is the planner's view of a host in state s: only alive hosts
// take VMs; joining, isolated and suspect hosts keep theirs and take none.
func PlanState(s quorum.HostState) plan.HostState {
	switch s {
	case quorum.StateAlive:
		return plan.HostAlive
	case quorum.StateMaintenance:
		return plan.HostMaintenance
	case quorum.StateDead:
		return plan.HostDead
	case quorum.StateLeft:
		return plan.HostLeft
	}
	return plan.HostSuspect // joining, isolated, suspect: keep their VMs, send none
}

// PlanStateOf is PlanState for a host that may be quarantined: a
// quarantined alive host keeps its VMs and takes none.
func PlanStateOf(s quorum.HostState, quarantined bool) plan.HostState {
	if quarantined && s == quorum.StateAlive {
		return plan.HostQuarantined
	}
	return PlanState(s)
}

// failover plans every candidate (VMs of gone owners, released VMs) with
// vm/plan and turns this host's steps into TakeAndStart: those of the first
// wave, then those of the following waves of the same tier (Action.Wave).
func (v *view) failover(all, candidates []*Record) {
	in := v.in
	if len(candidates) == 0 {
		return
	}
	if !in.Quorate || !in.MayRunVMs {
		return // a minority never takes over anything
	}
	var hosts []plan.Host
	maxID := 0
	for _, h := range in.Hosts {
		hosts = append(hosts, plan.Host{ID: h.ID, Name: h.Name, State: PlanStateOf(h.State, h.Quarantined),
			Memory: h.Memory, CPUs: h.CPUs, OtherMemory: h.OtherMemory, OtherCPUs: h.OtherCPUs, Limits: h.Limits})
		maxID = max(maxID, h.ID)
	}
	// Released VMs (and VMs of owners unknown to the decision) are given to
	// a pseudo host that is gone, so the planner moves them; one round per
	// releasing host, which must not get its VM back.
	pseudo := maxID + 1
	hosts = append(hosts, plan.Host{ID: pseudo, Name: "released", State: plan.HostLeft})
	isCand := make(map[string]bool, len(candidates))
	// One round per releasing host and set of hosts that cannot reach the
	// VMs' disks (Avoided): neither may get those VMs.
	type roundKey struct {
		from  int // releaser (0: none or gone)
		avoid string
	}
	rounds := map[roundKey][]*Record{}
	for _, r := range candidates {
		isCand[r.UUID] = true
		from := 0
		if !r.Lease.held() && r.Lease.Owner.Host != 0 && !v.gone(r.Lease.Owner) {
			from = r.Lease.Owner.Host
		}
		k := roundKey{from, avoidKey(Avoided(*r, in.Now))}
		rounds[k] = append(rounds[k], r)
	}
	// The base VM list: everything not a candidate, as load on its owner.
	var base []plan.VM
	for _, r := range all {
		if isCand[r.UUID] || !validPolicy(r) {
			continue
		}
		owner := 0
		if r.Lease.held() {
			owner = r.Lease.Owner.Host
			if _, ok := v.hosts[owner]; !ok {
				owner = 0
			}
			if mig := r.Lease.Migration; mig.inFlight() && v.gone(r.Lease.Owner) {
				if _, ok := v.hosts[mig.Target]; ok {
					owner = mig.Target // the target claims it
				}
			}
			if h := v.hosts[owner]; h != nil && h.State.Gone() {
				owner = 0 // not load anywhere, and not the planner's to move
			}
		}
		base = append(base, plan.VM{UUID: r.UUID, Name: r.Name, Owner: owner, Memory: r.Memory, VCPUs: r.VCPUs,
			Running: owner != 0 && !r.Stopped, Policy: r.Policy})
	}
	froms := make([]roundKey, 0, len(rounds))
	for f := range rounds {
		froms = append(froms, f)
	}
	slices.SortFunc(froms, func(a, b roundKey) int {
		return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.avoid, b.avoid))
	})
	byUUID := make(map[string]*Record, len(candidates))
	for _, r := range candidates {
		byUUID[r.UUID] = r
	}
	for _, key := range froms {
		from, avoid := key.from, parseAvoidKey(key.avoid)
		pin := plan.Input{Config: in.Config.Plan, Now: in.Now, Hosts: withoutTargets(hosts, from, avoid...)}
		pin.VMs = slices.Clone(base)
		for _, r := range rounds[key] {
			if !validPolicy(r) {
				v.add(Action{Kind: Notice, VM: r.UUID, Name: r.Name, Index: r.Index, Reason: "invalid policy on the LUN; fix it with set-policy"})
				continue
			}
			// Every candidate belongs to the pseudo host: its owner may be
			// alive again at a new generation, which the planner would not
			// move from.
			pin.VMs = append(pin.VMs, plan.VM{UUID: r.UUID, Name: r.Name, Owner: pseudo, Memory: r.Memory, VCPUs: r.VCPUs,
				Running: true, Policy: r.Policy})
		}
		p, err := plan.Failover(pin)
		if err == nil && from != 0 && len(p.Unplaced) > 0 && !slices.Contains(avoid, from) {
			// No other host can take what the releaser gave up: let the
			// releaser try again rather than leave the VMs down, unless
			// it gave them up because it cannot reach their disks.
			pin.Hosts = withoutTargets(hosts, 0, avoid...)
			p2, err2 := plan.Failover(pin)
			if err2 == nil {
				p = p2
			}
		}
		if err != nil {
			v.add(Action{Kind: Notice, Reason: fmt.Sprintf("failover plan failed: %v", err)})
			continue
		}
		// This host's steps of the first wave start now. Its steps of the
		// next waves of the same tier follow in plan order, each as soon as
		// one of its own starts is done (the caller keeps no more in flight
		// than the first wave gives it): a slow start no longer holds the
		// others back until the next round. A later tier, or a wave that
		// awaits guest agents, waits for a later round.
		tier, follow := 0, true
		for wi, w := range p.Waves {
			if wi == 0 && len(w.Steps) > 0 {
				tier = w.Steps[0].Tier
			} else if len(w.AwaitAgents) > 0 || len(w.Steps) == 0 || w.Steps[0].Tier != tier {
				follow = false
			}
			for _, st := range w.Steps {
				if !v.stepped || st.Tier < v.firstTier {
					v.firstTier, v.stepped = st.Tier, true
				}
				if (wi == 0 || follow) && st.To == in.Self {
					v.add(v.startOrWait(byUUID[st.VM], st, wi, all))
				}
				// Placed VMs are load on their target in later rounds.
				r := byUUID[st.VM]
				base = append(base, plan.VM{UUID: r.UUID, Name: r.Name, Owner: st.To, Memory: r.Memory, VCPUs: r.VCPUs, Running: true, Policy: r.Policy})
			}
		}
		for _, u := range p.Unplaced {
			r := byUUID[u.VM]
			v.add(Action{Kind: Notice, VM: u.VM, Name: u.Name, Index: r.Index, Reason: fmt.Sprintf("unplaced: %s (%s)", u.Reason, u.Detail)})
		}
		for _, s := range p.Skipped {
			if r := byUUID[s.VM]; r != nil {
				v.add(Action{Kind: Notice, VM: s.VM, Name: s.Name, Index: r.Index, Reason: "not restarted: " + s.Reason})
			}
		}
	}
}

// withoutTargets returns hosts with the alive ones among from and avoid
// (0: none) in maintenance for the planner: not a target for what they gave
// up, or for VMs whose disks they cannot reach.
func withoutTargets(hosts []plan.Host, from int, avoid ...int) []plan.Host {
	out := slices.Clone(hosts)
	for i := range out {
		if (out[i].ID == from || slices.Contains(avoid, out[i].ID)) && out[i].State == plan.HostAlive {
			out[i].State = plan.HostMaintenance
		}
	}
	return out
}

// startOrWait is this host's action for a failover step whose turn came:
// TakeAndStart, or Wait while the guest agents of an earlier tier have not
// answered or the VM's own start delay runs.
func (v *view) startOrWait(r *Record, st plan.Step, wave int, all []*Record) Action {
	in := v.in
	a := Action{Kind: TakeAndStart, VM: r.UUID, Name: r.Name, Index: r.Index, Expect: r.Lease.Epoch, Wave: wave,
		Reason: fmt.Sprintf("planned: %s (prio %s, tier %d)", takeRule(v, r.Lease), st.Priority, st.Tier)}
	if av := Avoided(*r, in.Now); len(av) > 0 {
		a.Reason += fmt.Sprintf("; disk loss: not on host %s, which cannot reach its disks", avoidKey(av))
	}
	if why := v.heldBack(all, st.Tier); why != "" {
		a.Kind, a.Wave, a.Reason = Wait, 0, why
		return a
	}
	if st.Delay <= 0 {
		return a
	}
	since := in.Now
	if h := in.History[r.UUID]; !h.DelaySince.IsZero() && h.DelayEpoch == r.Lease.Epoch && !h.DelaySince.After(in.Now) {
		since = h.DelaySince
	}
	if in.Now.Sub(since) >= st.Delay {
		a.Reason += fmt.Sprintf(", after its start delay of %v", st.Delay)
		return a
	}
	a.Kind, a.Wave, a.Since = Wait, 0, since
	a.Reason = fmt.Sprintf("start delay %v: tier %d's turn came at %s", st.Delay, st.Tier, since.UTC().Format("15:04:05"))
	return a
}

// heldBack says why a start of tier must wait for the earlier tiers ("": it
// need not): a VM of an earlier tier still to be restarted by its own host
// (held by a live host's earlier generation: after a whole-site power loss,
// that host restarts it once it is back, restartOwn), or the guest agent of
// one taken less than GuestAgentWait ago.
func (v *view) heldBack(all []*Record, tier int) string {
	if names := v.awaitingOwner(all, tier); len(names) > 0 {
		return fmt.Sprintf("tier %d waits for %s (earlier tier, to be restarted by its own host, back at a new generation)",
			tier, strings.Join(names, ", "))
	}
	if names := v.awaitedAgents(all, tier); len(names) > 0 {
		return fmt.Sprintf("tier %d waits for the guest agent of %s (earlier tier, taken less than %v ago)",
			tier, strings.Join(names, ", "), v.in.Config.GuestAgentWait)
	}
	return ""
}

// awaitingOwner names the VMs of tiers below tier that a live host holds at
// an earlier generation than its current one and that should run: that host
// adopts them (restartOwn, or at once if they run there), and nobody else
// may take them (the lease rule). One the host holds as it runs is adopted
// within a round; one to restart waits for the same order as the others.
func (v *view) awaitingOwner(all []*Record, tier int) []string {
	var names []string
	for _, r := range all {
		l := r.Lease
		if r.Policy.StartOrder >= tier || r.Stopped || !l.held() || v.gone(l.Owner) || !validPolicy(r) {
			continue
		}
		h := v.hosts[l.Owner.Host]
		if h == nil || h.State.Gone() {
			continue
		}
		gen := h.Gen
		if h.ID == v.in.Self {
			gen = v.in.SelfGen
		}
		if l.Owner.Gen < gen {
			names = append(names, r.Name)
		}
	}
	return names
}

// restartOwn decides the VMs this host's earlier generation held, never
// declared dead, that do not run here (v.back): the host rebooted, as after
// a whole-site power loss. Only this host may take them (rule d), but
// restarting them is a start like a failover's: it waits for a quorate
// partition (DESIGN.md, whole-site outage: every VM that should run starts
// once a quorate set of hosts is back, in start order) and for the earlier
// tiers, whether failed over or restarted by their own hosts. It adopts the
// lease; the next round starts the VM as one owned here and not running.
func (v *view) restartOwn(all []*Record) {
	in := v.in
	if !in.MayRunVMs {
		return
	}
	for _, r := range v.back {
		tier := r.Policy.StartOrder
		a := Action{Kind: Adopt, VM: r.UUID, Name: r.Name, Index: r.Index, Expect: r.Lease.Epoch,
			Reason: fmt.Sprintf("lease held by this host's earlier generation %d, never declared dead; not running here: restart it (tier %d)",
				r.Lease.Owner.Gen, tier)}
		switch {
		case !in.Quorate:
			a.Kind, a.Reason = Wait, fmt.Sprintf("held by this host's earlier generation %d, not running here: waits for a quorate set of hosts to restart it",
				r.Lease.Owner.Gen)
		case v.stepped && v.firstTier < tier:
			a.Kind, a.Reason = Wait, fmt.Sprintf("tier %d waits for the failover of tier %d", tier, v.firstTier)
		default:
			if why := v.heldBack(all, tier); why != "" {
				a.Kind, a.Reason = Wait, why
			}
		}
		v.add(a)
	}
}

// awaitedAgents names the VMs of tiers below tier whose guest agents a start
// of tier still waits for: their policy says WaitGuestAgent, a live host
// holds them at an epoch this host saw taken less than GuestAgentWait ago,
// and that owner has not yet marked the guest up. A VM of an earlier tier
// that is still to be taken needs no check: it is in the plan's earlier
// waves, which come first.
func (v *view) awaitedAgents(all []*Record, tier int) []string {
	var names []string
	for _, r := range all {
		if r.Policy.StartOrder >= tier || !r.Policy.WaitGuestAgent || r.Stopped || r.Lease.GuestUp ||
			!r.Lease.held() || v.gone(r.Lease.Owner) || r.HeldSince.IsZero() {
			continue
		}
		if h := v.hosts[r.Lease.Owner.Host]; h == nil || h.State.Gone() {
			continue
		}
		if v.in.Now.Sub(r.HeldSince) < v.in.Config.GuestAgentWait {
			names = append(names, r.Name)
		}
	}
	return names
}

func takeRule(v *view, l Lease) string {
	switch {
	case !l.held():
		return "rule a: " + leaseText(l)
	case l.Owner.Host == v.in.Self:
		return fmt.Sprintf("rule b: this host's generation %d was declared dead", l.Owner.Gen)
	}
	return fmt.Sprintf("rule b: owner %s is gone", l.Owner)
}

func validPolicy(r *Record) bool { return r.Policy.Validate() == nil }

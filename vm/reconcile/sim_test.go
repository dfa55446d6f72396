package reconcile

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm/plan"
)

// sim is a cluster of hosts that each run Reconcile on their own snapshot
// and execute the actions one by one, interleaved with the other hosts'
// actions, faults and migrations. The LUN lease model grants exactly one
// winner per epoch (as Disk Paxos does) and checks nothing else: the lease
// rule is the reconciler's to keep.
type sim struct {
	t     testing.TB
	rng   *rand.Rand
	now   time.Time
	hosts []*simHost
	vms   []*simVM
	// pending ops, executed one at a time in random order across hosts.
	ops []simOp
	// verdicts published by the (abstract) coordinator.
	verdicts []quorum.Verdict
	log      []string
	failRate float64 // probability that a start fails
	// agentRate is the probability that a started VM with WaitGuestAgent
	// gets its guest agent marked up (an op later); the others never answer.
	agentRate float64
}

type simHost struct {
	id       int
	gen      uint64
	powered  bool
	dead     bool // declared dead at gen
	domains  map[string]*Domain
	history  map[string]History
	outgoing map[string]bool
	starts   []string // VM names in start order, for the priority check
	heldSeen map[string]heldSeen
}

// heldSeen is when a host first saw a VM's lease held at an epoch.
type heldSeen struct {
	epoch uint64
	since time.Time
}

type simVM struct {
	idx     int
	uuid    string
	name    string
	policy  plan.Policy
	stopped bool
	lease   Lease
	mem     uint64
	// Times of the VM's latest take, start and guest-up, for the start
	// order checks.
	takenAt, startedAt, upAt time.Time
}

type simOp struct {
	host int
	gen  uint64
	desc string
	fn   func() // runs only if the host is still powered at gen
}

func newSim(t testing.TB, seed uint64, nHosts, nVMs int) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	for i := 1; i <= nHosts; i++ {
		s.hosts = append(s.hosts, &simHost{id: i, gen: 1, powered: true, domains: map[string]*Domain{},
			history: map[string]History{}, outgoing: map[string]bool{}, heldSeen: map[string]heldSeen{}})
	}
	for i := range nVMs {
		p := plan.DefaultPolicy()
		p.Priority = plan.Priority(s.rng.IntN(11) * 100)
		p.RestartLimit = plan.RestartLimit{}
		switch s.rng.IntN(10) {
		case 0:
			p.Restart = plan.RestartOnFailure
		case 1:
			p.Restart = plan.RestartNever
		}
		v := &simVM{idx: i, uuid: fmt.Sprintf("u%03d", i), name: fmt.Sprintf("vm%03d", i), policy: p, mem: 1 << 30}
		h := s.hosts[s.rng.IntN(nHosts)]
		v.lease = Lease{Epoch: 1, Owner: Owner{h.id, h.gen}}
		h.domains[v.uuid] = &Domain{UUID: v.uuid, Name: v.name, State: DomainRunning, Active: true, Since: s.now}
		s.vms = append(s.vms, v)
	}
	return s
}

func (s *sim) host(id int) *simHost { return s.hosts[id-1] }

func (s *sim) logf(format string, args ...any) {
	s.log = append(s.log, s.now.Format("15:04:05")+" "+fmt.Sprintf(format, args...))
}

func (s *sim) state(h *simHost) quorum.HostState {
	if h.dead {
		return quorum.StateDead
	}
	return quorum.StateAlive
}

// input is host h's snapshot now.
func (s *sim) input(h *simHost) Input {
	in := Input{Now: s.now, Self: h.id, SelfGen: h.gen, MayRunVMs: true, Quorate: true,
		Verdicts: slices.Clone(s.verdicts), History: map[string]History{}, MigratingOut: map[string]bool{},
		Config: DefaultConfig()}
	in.Config.Plan.ReservedMemory = 0
	for _, o := range s.hosts {
		in.Hosts = append(in.Hosts, Host{ID: o.id, Name: fmt.Sprintf("kvm%d", o.id), Gen: o.gen, State: s.state(o), Memory: 64 << 30, CPUs: 64})
	}
	for _, v := range s.vms {
		r := Record{Index: v.idx, UUID: v.uuid, Name: v.name, Lease: v.lease, Policy: v.policy,
			Stopped: v.stopped, Memory: v.mem, VCPUs: 1}
		if v.lease.held() {
			hs, ok := h.heldSeen[v.uuid]
			if !ok || hs.epoch != v.lease.Epoch {
				hs = heldSeen{v.lease.Epoch, s.now}
				h.heldSeen[v.uuid] = hs
			}
			r.HeldSince = hs.since
		}
		in.Records = append(in.Records, r)
	}
	for _, d := range h.domains {
		in.Local = append(in.Local, *d)
	}
	for k, hi := range h.history {
		in.History[k] = hi
	}
	for k := range h.outgoing {
		in.MigratingOut[k] = true
	}
	// Shuffle: order must not matter.
	s.rng.Shuffle(len(in.Records), func(i, j int) { in.Records[i], in.Records[j] = in.Records[j], in.Records[i] })
	s.rng.Shuffle(len(in.Hosts), func(i, j int) { in.Hosts[i], in.Hosts[j] = in.Hosts[j], in.Hosts[i] })
	return in
}

func (s *sim) vm(uuid string) *simVM {
	for _, v := range s.vms {
		if v.uuid == uuid {
			return v
		}
	}
	s.t.Fatalf("unknown vm %s", uuid)
	return nil
}

// acquire is the LUN: one winner per epoch.
func (s *sim) acquire(h *simHost, v *simVM, expect uint64) bool {
	if v.lease.Epoch != expect {
		return false
	}
	v.lease = Lease{Epoch: expect + 1, Owner: Owner{h.id, h.gen}}
	v.takenAt = s.now
	return true
}

func (s *sim) holds(h *simHost, v *simVM, epoch uint64) bool {
	return v.lease.Epoch == epoch && v.lease.Owner == Owner{h.id, h.gen} && !v.lease.Released
}

// step: host h snapshots, reconciles and queues its actions.
func (s *sim) step(h *simHost) {
	acts := Reconcile(s.input(h))
	// Destroys must come first.
	seenOther := false
	for _, a := range acts {
		if a.Kind == DestroyStale && seenOther {
			s.t.Fatalf("host %d: destroy after another action: %v", h.id, acts)
		}
		if a.Kind != DestroyStale && a.Kind != Notice {
			seenOther = true
		}
	}
	for _, a := range acts {
		if a.Kind == Notice {
			continue
		}
		s.ops = append(s.ops, simOp{host: h.id, gen: h.gen, desc: a.String(), fn: func() { s.exec(h, a) }})
	}
}

func (s *sim) startDomain(h *simHost, v *simVM, counts bool) {
	if s.rng.Float64() < s.failRate {
		hi := h.history[v.uuid]
		hi.StartFailures++
		hi.LastFailure = s.now
		h.history[v.uuid] = hi
		s.logf("host %d: start %s failed", h.id, v.name)
		return
	}
	hi := h.history[v.uuid]
	hi.StartFailures = 0
	if counts {
		hi.Restarts = append(hi.Restarts, s.now)
	}
	h.history[v.uuid] = hi
	h.domains[v.uuid] = &Domain{UUID: v.uuid, Name: v.name, State: DomainRunning, Active: true, Since: s.now}
	h.starts = append(h.starts, v.name)
	v.startedAt = s.now
	s.logf("host %d: started %s at epoch %d", h.id, v.name, v.lease.Epoch)
	s.check()
	if v.policy.WaitGuestAgent && s.rng.Float64() < s.agentRate {
		epoch, owner := v.lease.Epoch, v.lease.Owner
		s.ops = append(s.ops, simOp{host: h.id, gen: h.gen, desc: "guest agent up", fn: func() {
			if v.lease.Epoch == epoch && v.lease.Owner == owner && !v.lease.Released {
				v.lease.GuestUp, v.upAt = true, s.now
				s.logf("host %d: %s guest agent up", h.id, v.name)
			}
		}})
	}
}

// exec is the Manager's part: it re-checks the lease before every start.
func (s *sim) exec(h *simHost, a Action) {
	v := s.vm(a.VM)
	s.logf("host %d gen %d: %s", h.id, h.gen, a)
	switch a.Kind {
	case DestroyStale, Stop:
		delete(h.domains, v.uuid)
	case Adopt:
		s.acquire(h, v, a.Expect)
	case Wait:
		if hi := h.history[v.uuid]; !a.Since.IsZero() && (hi.DelaySince.IsZero() || hi.DelayEpoch != a.Expect) {
			hi.DelaySince, hi.DelayEpoch = a.Since, a.Expect
			h.history[v.uuid] = hi
		}
	case TakeAndStart:
		if s.acquire(h, v, a.Expect) {
			s.startDomain(h, v, false)
		}
	case ClaimMigrated:
		if s.acquire(h, v, a.Expect) && a.Start {
			s.startDomain(h, v, true)
		}
	case CompleteMigration:
		if s.holds(h, v, a.Expect) && v.lease.Migration.Phase == MigrationStarted {
			v.lease.Migration.Phase = MigrationCompleted
		}
	case ClearMigration:
		if s.holds(h, v, a.Expect) {
			v.lease.Migration = Migration{}
			if a.Start {
				s.startDomain(h, v, a.Counts)
			}
		}
	case Start, RestartInPlace:
		// The Manager's re-check: held at the epoch, and no migration in
		// flight (a stale snapshot may predate one).
		if s.holds(h, v, a.Expect) && !v.lease.Migration.inFlight() {
			delete(h.domains, v.uuid)
			s.startDomain(h, v, a.Counts)
		}
	case Release:
		if s.holds(h, v, a.Expect) && !v.lease.Migration.inFlight() {
			delete(h.domains, v.uuid)
			v.lease.Released = true
			v.lease.Migration = Migration{}
		}
	case Resume:
		if d := h.domains[v.uuid]; d != nil {
			d.State = DomainRunning
		}
	}
}

// check: never two.
func (s *sim) check() {
	s.t.Helper()
	for _, v := range s.vms {
		var on []int
		for _, h := range s.hosts {
			if d := h.domains[v.uuid]; h.powered && d != nil && d.Active {
				on = append(on, h.id)
			}
		}
		if len(on) > 1 {
			s.t.Fatalf("%s runs on hosts %v (lease %+v)\n%s", v.name, on, v.lease, s.tail())
		}
	}
}

func (s *sim) tail() string {
	n := max(0, len(s.log)-60)
	return strings.Join(s.log[n:], "\n")
}

// runOp executes one random pending op.
func (s *sim) runOp() bool {
	if len(s.ops) == 0 {
		return false
	}
	i := s.rng.IntN(len(s.ops))
	op := s.ops[i]
	s.ops = slices.Delete(s.ops, i, i+1)
	h := s.host(op.host)
	if h.powered && h.gen == op.gen {
		op.fn()
		s.check()
	}
	return true
}

func (s *sim) powerOff(h *simHost) {
	h.powered = false
	h.domains = map[string]*Domain{}
	h.outgoing = map[string]bool{}
	s.logf("host %d powered off", h.id)
}

// declareDead publishes the verdict for a powered-off host (the quorum
// layer's guarantee: a host is declared dead only when it runs nothing).
func (s *sim) declareDead(h *simHost) {
	if h.powered || h.dead {
		return
	}
	h.dead = true
	s.verdicts = append(s.verdicts, quorum.Verdict{ID: h.id, Gen: h.gen})
	s.logf("host %d declared dead at gen %d", h.id, h.gen)
}

func (s *sim) powerOn(h *simHost) {
	if h.powered || !h.dead {
		return
	}
	h.powered, h.dead = true, false
	h.gen++
	h.history = map[string]History{}
	h.heldSeen = map[string]heldSeen{}
	s.logf("host %d back at gen %d", h.id, h.gen)
}

// migrate queues the handover steps of the Manager's Migrate.
func (s *sim) migrate(src *simHost, v *simVM, dst *simHost) {
	if d := src.domains[v.uuid]; d == nil || !d.Active || !s.holds(src, v, v.lease.Epoch) || v.lease.Migration.Phase != MigrationNone || dst.dead || !dst.powered {
		return
	}
	epoch, gen, tgen := v.lease.Epoch, src.gen, dst.gen
	src.outgoing[v.uuid] = true
	s.logf("host %d: migrate %s to host %d: started", src.id, v.name, dst.id)
	v.lease.Migration = Migration{MigrationStarted, dst.id, tgen}
	var stepSwitch, stepDone func()
	stepSwitch = func() {
		if !dst.powered || dst.gen != tgen || src.domains[v.uuid] == nil {
			if s.holds(src, v, epoch) {
				v.lease.Migration.Phase = MigrationAborted
			}
			delete(src.outgoing, v.uuid)
			s.logf("host %d: migrate %s aborted", src.id, v.name)
			return
		}
		d := src.domains[v.uuid]
		delete(src.domains, v.uuid)
		dst.domains[v.uuid] = &Domain{UUID: v.uuid, Name: v.name, State: DomainRunning, Active: true, Since: s.now}
		s.logf("host %d: %s switched over to host %d", src.id, d.Name, dst.id)
		s.ops = append(s.ops, simOp{host: src.id, gen: gen, desc: "migrate completed", fn: stepDone})
	}
	stepDone = func() {
		if s.holds(src, v, epoch) && v.lease.Migration == (Migration{MigrationStarted, dst.id, tgen}) {
			v.lease.Migration.Phase = MigrationCompleted
		}
		delete(src.outgoing, v.uuid)
		s.logf("host %d: migrate %s completed", src.id, v.name)
	}
	s.ops = append(s.ops, simOp{host: src.id, gen: gen, desc: "migrate switch-over", fn: stepSwitch})
}

// chaos runs n random events.
func (s *sim) chaos(n int) {
	for range n {
		s.now = s.now.Add(time.Second)
		r := s.rng.IntN(100)
		h := s.hosts[s.rng.IntN(len(s.hosts))]
		switch {
		case r < 45:
			s.runOp()
		case r < 75:
			if h.powered && !h.dead {
				s.step(h)
			}
		case r < 78:
			// Keep at least one host powered.
			up := 0
			for _, o := range s.hosts {
				if o.powered {
					up++
				}
			}
			if h.powered && up > 1 {
				s.powerOff(h)
			}
		case r < 84:
			s.declareDead(h)
		case r < 86:
			s.powerOn(h)
		case r < 90:
			if h.powered && len(h.domains) > 0 {
				v := s.vms[s.rng.IntN(len(s.vms))]
				if d := h.domains[v.uuid]; d != nil && d.Active {
					st := []DomainState{DomainCrashed, DomainPanicked, DomainIOError, DomainShutoff}[s.rng.IntN(4)]
					d.State, d.Since = st, s.now
					d.Active = st == DomainPanicked || st == DomainIOError
					s.logf("host %d: %s %s", h.id, v.name, st)
				}
			}
		case r < 96:
			v := s.vms[s.rng.IntN(len(s.vms))]
			dst := s.hosts[s.rng.IntN(len(s.hosts))]
			if dst != h && h.powered && !h.dead {
				s.migrate(h, v, dst)
			}
		default:
			v := s.vms[s.rng.IntN(len(s.vms))]
			if s.rng.IntN(2) == 0 && v.policy.Restart == plan.RestartAlways {
				v.stopped = !v.stopped
			}
		}
	}
}

// settle: no more faults; dead hosts are declared dead, everyone steps
// until nothing is pending. Returns false if it did not converge.
func (s *sim) settle() bool {
	s.failRate = 0
	for _, h := range s.hosts {
		s.declareDead(h)
	}
	for round := 0; round < 400; round++ {
		s.now = s.now.Add(10 * time.Second)
		for len(s.ops) > 0 {
			s.runOp()
		}
		before := len(s.log)
		for _, h := range s.hosts {
			if h.powered && !h.dead {
				s.step(h)
			}
		}
		for len(s.ops) > 0 {
			s.runOp()
		}
		if len(s.log) == before {
			return true
		}
	}
	return false
}

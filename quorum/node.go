package quorum

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Event is something the heartbeat core decided or learned, for the event log.
type Event struct {
	Kind    string // "self-fence", "declared-dead", "pill-sent", "power-fence", ...
	Subject int    // the host concerned
	Message string
	Error   bool
}

// Verdict reports whether e records a verdict or an act of fencing: a host
// declared dead, a self-fence, a poison pill sent, applied or acknowledged, a
// power fence and its result. These say why VMs moved or stopped; an event
// log that must shed load drops the others (a network lease granted, a test
// message answered) first, and never these.
func (e Event) Verdict() bool {
	switch e.Kind {
	case "network-lease", "test-message":
		return false
	}
	return true // an unknown kind is kept: losing a verdict costs more
}

// Ack is the answer to a mailbox message that a host publishes in its slot.
type Ack struct {
	Kind  MessageKind // the message answered
	Nonce uint64
	Done  bool // it did what was asked (a test: it saw the message)
}

// SlotWrite is what this host's next heartbeat write says of it.
type SlotWrite struct {
	// Fenced: this host self-fenced; its slot says "fenced" from now on.
	Fenced bool
	// SerfView, Granted and Verdicts are the latest executed decision's
	// partition, network-lease grants and verdicts.
	SerfView Set
	Granted  Set
	Verdicts []Verdict
	// Ack is the latest mailbox message this host answered (zero: none).
	Ack Ack
	// Announce: the write carries a verdict this host has just declared;
	// once it has landed, wake the other hosts so that they read it now.
	Announce bool
	// Disarm is the newest disarm request this host has seen; Disarmed,
	// that it is disarmed by it (its acknowledgement).
	Disarm   Disarm
	Disarmed bool
	// Reach is what this host says of its isolation addresses.
	Reach Reach
}

// NodeConfig configures a Node.
type NodeConfig struct {
	Self    int    // this host's id (its slot)
	Gen     uint64 // the generation of this host's slot
	Timings Timings
}

// Node is the memory of one host's heartbeat loop: everything it keeps
// between cycles (what it observed of the slots, since when its reads are
// fresh, serf's change times, the network leases it holds and granted, the
// pills it sent and saw acknowledged, power fences under way, the verdicts it
// declared, whether it self-fenced) together with the decision rules that
// read it. The loop feeds it what its I/O returned and carries out what it
// says; see the package doc ("Driving a Node") for the caller's duties.
//
// A Node does no I/O, reads no clock and starts no goroutine; time is an
// argument. It is not safe for concurrent use: the caller serialises calls.
type Node struct {
	self int
	gen  uint64
	t    Timings

	obs        *Observer
	slots      []Slot // as the latest read showed them (Observer.Update)
	lastWrite  Mono
	lastRead   Mono
	freshSince Mono
	ioLateAt   Mono // the latest decision made while this host's own I/O was late
	leaseUntil Mono
	granted    map[int]Mono // hosts this host granted a network lease, when
	failedAt   map[int]Mono // hosts serf sees failed, since when
	aliveAt    map[int]Mono // hosts serf sees alive again after a failure, since when
	lastAlive  Set          // serf's latest view
	fenceable  Set
	mailbox    Message
	ack        Ack
	pillSent   map[int]sentPill
	pillAcked  map[int]uint64
	power      map[int]PowerResult
	powerBusy  map[int]bool
	declared   map[Verdict]bool
	isolated   map[uint64]bool // pills whose isolation response was started, by nonce
	leaseBusy  bool
	fenced     bool   // self-fenced: never run VMs again in this generation
	header     string // why the LUN header changed ("" while it is the one read at start)
	addresses  bool   // isolation addresses are configured
	reachedAt  Mono   // the latest probe round that reached one started then
	last       Decision
	haveLast   bool
	announce   bool // a new verdict awaits its write

	// Disarm (disarm.go): the newest request, when this host first saw it
	// (its timer), whether that timer was running at the last look, when
	// it last re-armed, until when an acknowledged disarm exempts this
	// host from self-fencing, and when the latest exemption ended.
	disarm      Disarm
	disarmAt    Mono
	running     bool
	armedAt     Mono
	exemptUntil Mono
	exemptEnded Mono

	// The latest executed decision (Executed): what the slot publishes,
	// and what Urgent compares a later decision with.
	executed     Decision
	haveExecuted bool

	events []Event
}

type sentPill struct {
	gen   uint64
	nonce uint64
}

// NewNode returns the core of a host that starts at now. Its slot was just
// acquired, which counts as a heartbeat write at now.
func NewNode(cfg NodeConfig, now Mono) *Node {
	return &Node{self: cfg.Self, gen: cfg.Gen, t: cfg.Timings, obs: NewObserver(),
		lastWrite: now, lastRead: Never, freshSince: Never, ioLateAt: Never, leaseUntil: Never,
		granted: map[int]Mono{}, failedAt: map[int]Mono{}, aliveAt: map[int]Mono{},
		pillSent: map[int]sentPill{}, pillAcked: map[int]uint64{}, power: map[int]PowerResult{},
		powerBusy: map[int]bool{}, declared: map[Verdict]bool{}, isolated: map[uint64]bool{},
		disarmAt: Never, armedAt: Never, exemptUntil: Never, exemptEnded: Never, reachedAt: Never}
}

// ProbedAddresses records in n whether its host has isolation addresses
// configured, and when the latest probe round that reached one of them
// started (Never: none did). (A function, not a method: Node is at the
// guard's limit of methods.)
func ProbedAddresses(n *Node, configured bool, reachedAt Mono) {
	n.addresses, n.reachedAt = configured, reachedAt
}

// Read records a read of every slot that completed at done. read holds the
// used slots.
func (n *Node) Read(done Mono, read []RawSlot) {
	for _, r := range read {
		// A pill this host sent is acknowledged in the target's slot.
		if p, ok := n.pillSent[r.ID]; ok && r.Ack.Nonce == p.nonce && r.Ack.Kind == MsgFence && r.Ack.Done {
			if n.pillAcked[r.ID] != p.gen {
				n.pillAcked[r.ID] = p.gen
				n.emit(Event{Kind: "pill-acknowledged", Subject: r.ID,
					Message: fmt.Sprintf("host %d generation %d stopped its VMs set to stop on isolation", r.ID, p.gen)})
			}
		}
	}
	n.slots = n.obs.Update(done, read)
	n.adoptNewest(done)
	if n.freshSince == Never || done-n.lastRead > n.t.SelfFence {
		n.freshSince = done
	}
	n.lastRead = done
}

// ReadFailed records a read of every slot that failed at done.
func (n *Node) ReadFailed(done Mono) {
	if done-n.lastRead > n.t.SelfFence {
		n.freshSince = Never
	}
}

// Wrote records that the heartbeat write issued at issued, carrying w
// (SlotWrite, taken before the write), completed within io_timeout.
func (n *Node) Wrote(issued Mono, w SlotWrite) {
	n.lastWrite = max(n.lastWrite, issued)
	n.disarmAcked(w)
	if w.Announce {
		n.announce = false
	}
}

// Mail records the message read from this host's mailbox.
func (n *Node) Mail(m Message) { n.mailbox = m }

// Serf records the hosts serf sees alive at now, and since when each has
// been alive or failed.
func (n *Node) Serf(now Mono, alive Set) {
	var changed Set
	for i := range changed {
		changed[i] = n.lastAlive[i] ^ alive[i]
	}
	for _, id := range changed.IDs() {
		if !alive.Has(id) {
			n.failedAt[id] = now
			continue
		}
		if _, ok := n.failedAt[id]; ok {
			n.aliveAt[id] = now // back after a failure
		}
		delete(n.failedAt, id)
		// A pill answers one isolation: the next one, even in the same
		// generation, gets its own.
		delete(n.pillSent, id)
		delete(n.pillAcked, id)
	}
	for _, s := range n.slots { // hosts serf has never seen alive
		if !alive.Has(s.ID) {
			if _, ok := n.failedAt[s.ID]; !ok {
				n.failedAt[s.ID] = now
			}
		}
	}
	n.lastAlive = alive
}

// SetFenceable records the hosts that have a fence agent configured.
func (n *Node) SetFenceable(s Set) { n.fenceable = s }

// Decide decides at now on what the node knows, and remembers the decision
// (Last). It acts on nothing: the caller starts the actions (Start).
func (n *Node) Decide(now Mono) Decision {
	d := Decide(n.input(now))
	n.last, n.haveLast = d, true
	if d.ioLate {
		n.ioLateAt = now
	}
	return d
}

// input is what Decide reads at now. Its maps are the node's own.
func (n *Node) input(now Mono) Input {
	in := Input{Now: now, Self: n.self, SelfGen: n.gen, Timings: n.t,
		LastWrite: n.lastWrite, LastRead: n.lastRead, ReadFreshSince: n.freshSince, IOLateAt: n.ioLateAt, ObserverStart: n.obs.Start(),
		Slots: n.slots, SerfAlive: n.lastAlive, SerfFailedSince: n.failedAt, SerfAliveSince: n.aliveAt,
		LeaseUntil: n.leaseUntil, GrantedAt: n.granted, Mailbox: n.mailbox, AckedNonce: n.ack.Nonce,
		PowerFenceable: n.fenceable, Power: n.power, PillAcked: n.pillAcked, KnownDead: n.obs.KnownDead(),
		Disarm: n.DisarmStatus(now), ArmedAt: n.armedAt,
		HeaderChanged: n.header, Addresses: n.addresses, AddressReached: n.reachedAt}
	in.SerfAlive.Add(n.self)
	return in
}

// Input returns what a decision at now would read, as a copy (for status pages).
func (n *Node) Input(now Mono) Input {
	in := n.input(now)
	in.SerfFailedSince, in.SerfAliveSince = copyMap(in.SerfFailedSince), copyMap(in.SerfAliveSince)
	in.GrantedAt, in.Power, in.PillAcked = copyMap(in.GrantedAt), copyMap(in.Power), copyMap(in.PillAcked)
	return in
}

// HeaderChanged records what the latest read found of the LUN's header:
// why it no longer matches the one read at start, or "" when it does.
// Each change is an event; it reports whether why is a change.
func (n *Node) HeaderChanged(why string) bool {
	switch {
	case why == n.header:
		return false
	case why == "":
		n.emit(Event{Kind: "lun-header-restored", Subject: n.self, Message: "the LUN header is the one read at start again; deciding as usual"})
	case n.header == "":
		n.emit(Event{Kind: "lun-header-changed", Subject: n.self, Error: true,
			Message: why + "; declaring nobody dead, starting nothing: run `wingman lun restore-header`"})
	}
	n.header = why
	return true
}

// Last returns the latest decision (false before the first).
func (n *Node) Last() (Decision, bool) { return n.last, n.haveLast }

// Fenced reports whether this host self-fenced: it must never pet the
// watchdog or run VMs again in this generation.
func (n *Node) Fenced() bool { return n.fenced }

// SlotsInUse is how many used slots the latest read showed.
func (n *Node) SlotsInUse() int { return len(n.slots) }

// Start reports whether the caller must carry out action a now, and records
// that it does. An action already done or under way is not started again: a
// self-fence, a pill for that host and generation already sent, a power
// fence running, a verdict already declared, an isolation response started
// for that pill, a lease request in flight. Starting a verdict or a test
// message's acknowledgement is all there is to do for it: the next
// SlotWrite publishes it.
func (n *Node) Start(a Action) bool {
	switch a.Kind {
	case ActSelfFence:
		if n.fenced {
			return false
		}
		n.fenced = true
	case ActApplyIsolation:
		if n.isolated[a.Nonce] {
			return false
		}
		n.isolated[a.Nonce] = true
	case AckTest:
		n.ack = Ack{Kind: MsgTest, Nonce: a.Nonce, Done: true}
		n.emit(Event{Kind: "test-message", Subject: n.mailbox.From, Message: "test message acknowledged: " + a.Reason})
	case ActSendPill:
		if p, ok := n.pillSent[a.Host]; ok && p.gen == a.Gen {
			return false
		}
	case ActPowerFence:
		if n.powerBusy[a.Host] {
			return false
		}
		n.powerBusy[a.Host] = true
		n.emit(Event{Kind: "power-fence", Subject: a.Host, Message: a.Reason})
	case ActDeclareDead:
		v := Verdict{ID: a.Host, Gen: a.Gen}
		if n.declared[v] {
			return false
		}
		n.declared[v] = true
		n.announce = true
		n.emit(Event{Kind: "declared-dead", Subject: a.Host, Message: a.Reason})
	case ActRequestLease:
		if n.leaseBusy {
			return false
		}
		n.leaseBusy = true
	}
	return true
}

// SelfFenced records the end of a self-fence started for reason: err is
// the VM manager's failure to destroy the VMs (the watchdog then resets the host).
func (n *Node) SelfFenced(reason string, err error) {
	n.emit(Event{Kind: "self-fence", Subject: n.self, Message: reason, Error: true})
	if err != nil {
		n.emit(Event{Kind: "self-fence-failed", Subject: n.self, Message: err.Error(), Error: true})
	}
}

// IsolationApplied records the end of the isolation response to pill a
// (ActApplyIsolation): err says it could not stop what it was asked to,
// and the caller must then self-fence. The pill is acknowledged either way.
func (n *Node) IsolationApplied(a Action, err error) {
	if err != nil {
		n.emit(Event{Kind: "isolation-failed", Subject: n.self, Message: err.Error(), Error: true})
	} else {
		n.emit(Event{Kind: "isolated", Subject: n.self, Message: a.Reason})
	}
	n.ack = Ack{Kind: MsgFence, Nonce: a.Nonce, Done: err == nil}
}

// PillSent records that pill a (ActSendPill) is in its target's mailbox
// with nonce.
func (n *Node) PillSent(a Action, nonce uint64) {
	n.pillSent[a.Host] = sentPill{gen: a.Gen, nonce: nonce}
	n.emit(Event{Kind: "pill-sent", Subject: a.Host, Message: a.Reason})
}

// PowerFenced records at now the end of power fence a (ActPowerFence): the
// agent confirmed the host off, or not (err: it failed).
func (n *Node) PowerFenced(now Mono, a Action, confirmed bool, err error) {
	res := PowerResult{Gen: a.Gen, Confirmed: confirmed && err == nil, Failed: !confirmed || err != nil, At: now}
	n.power[a.Host] = res
	n.powerBusy[a.Host] = false
	if res.Confirmed {
		n.emit(Event{Kind: "power-fence-confirmed", Subject: a.Host, Message: "fence agent confirmed power off"})
		return
	}
	msg := "fence agent did not confirm power off; falling back to D"
	if err != nil {
		msg += ": " + err.Error()
	}
	n.emit(Event{Kind: "power-fence-failed", Subject: a.Host, Message: msg, Error: true})
}

// ErrConfirmRefused is ConfirmOff's refusal, for errors.Is.
var ErrConfirmRefused = errors.New("confirm-off refused")

// ConfirmOff records at now an operator's word (by: who) that host is
// powered off, as a fence agent's confirmed power-off would be: the host,
// at the generation this host sees, is dead at once and its VMs may
// restart. It is refused for this host itself, for a host whose heartbeat
// changed less than D ago on this host's clock (it is running), and while
// this host does not read the LUN (it could not tell).
func (n *Node) ConfirmOff(now Mono, host int, by string) (Verdict, error) {
	i := slices.IndexFunc(n.slots, func(s Slot) bool { return s.ID == host })
	switch {
	case host == n.self:
		return Verdict{}, fmt.Errorf("%w: host %d is this host: run the command on another host", ErrConfirmRefused, host)
	case i < 0:
		return Verdict{}, fmt.Errorf("%w: no host %d uses a heartbeat slot", ErrConfirmRefused, host)
	case now-n.lastRead >= n.t.SelfFence:
		return Verdict{}, fmt.Errorf("%w: this host has not read the LUN for %v, so it cannot tell whether host %d still writes its heartbeat: run the command on a host that reads the LUN", ErrConfirmRefused, age(now-n.lastRead), host)
	}
	s := n.slots[i]
	if fresh := now - s.Changed; fresh < n.t.Dead {
		return Verdict{}, fmt.Errorf("%w: the heartbeat of %s (host %d) changed %v ago, within D = %v, so it may be running: check that it is off, and confirm once its heartbeat has stopped for D (%v from now)",
			ErrConfirmRefused, s.Name, host, age(fresh), n.t.Dead, age(n.t.Dead-fresh))
	}
	n.power[host] = PowerResult{Gen: s.Gen, Confirmed: true, At: now, By: by}
	n.emit(Event{Kind: "confirmed-off", Subject: host, Error: true,
		Message: fmt.Sprintf("%s confirmed %s (host %d, generation %d) powered off: it is dead now and its VMs restart elsewhere", by, s.Name, host, s.Gen)})
	return Verdict{ID: host, Gen: s.Gen}, nil
}

// LeaseAnswered records the answers to the lease request sent at sent
// (ActRequestLease): the hosts that granted it, or err. It reports whether
// this host now holds a network lease; the lease counts from sent, since
// every granter's promise started later.
func (n *Node) LeaseAnswered(sent Mono, granters Set, err error) bool {
	n.leaseBusy = false
	if err != nil || !n.haveLast || !LeaseHeld(n.last, n.self, granters) {
		return false
	}
	n.leaseUntil = max(n.leaseUntil, sent+n.t.SelfFence)
	n.emit(Event{Kind: "network-lease", Subject: n.self, Message: fmt.Sprintf("network lease granted by hosts %v", granters)})
	return true
}

// Grant answers at now another host's request for a network lease: it
// grants when the latest decision allows it, and then promises (by
// publishing the grant in its slot) not to declare that host dead while the
// lease may run.
func (n *Node) Grant(now Mono, host int, gen uint64) (bool, string) {
	if !n.haveLast {
		return false, "this host has not decided yet"
	}
	if h, ok := n.last.Host(host); ok && h.Gen != gen {
		return false, fmt.Sprintf("host %d is at generation %d, not %d", host, h.Gen, gen)
	}
	grant, why := GrantLease(n.last, host)
	if grant {
		n.granted[host] = now
	}
	return grant, why
}

// Executed records that the caller started d's actions (Start): the next
// SlotWrite publishes d's partition, grants and verdicts, and Urgent
// compares later decisions with d.
func (n *Node) Executed(d Decision) { n.executed, n.haveExecuted = d, true }

// SlotWrite is what this host's next heartbeat write must say.
func (n *Node) SlotWrite() SlotWrite {
	e := &n.executed
	return SlotWrite{Fenced: n.fenced, SerfView: e.Partition, Granted: e.GrantSet, Verdicts: e.Verdicts,
		Ack: n.ack, Announce: n.announce, Disarm: e.Disarm.Request, Disarmed: e.Disarm.Disarmed, Reach: e.Reach}
}

// Urgent reports whether decision d, reached on a read between two
// heartbeat writes, holds something the latest executed decision did not
// and that is carried out or published by a write: a self-fence, a verdict
// (new, or another host's that the VM manager must see), a pill, a power
// fence, or a change of a host's state or of the quorum. That must not wait
// for the next write. What the latest executed decision already tried (a
// pill it could not send) waits for the next write as before.
func (n *Node) Urgent(d Decision) bool {
	if !n.haveExecuted {
		return true
	}
	e := &n.executed
	for _, a := range d.Actions {
		switch a.Kind {
		case ActSelfFence, ActDeclareDead, ActSendPill, ActPowerFence:
			if !slices.ContainsFunc(e.Actions, func(b Action) bool { return sameAction(a, b) }) {
				return true
			}
		}
	}
	for _, v := range d.Verdicts {
		if !slices.Contains(e.Verdicts, v) {
			return true
		}
	}
	// A host changed state (joined, failed, isolated, came back) or the
	// quorum did: the VM manager and the API act on the decision that
	// follows a write, so that must not lag by up to R.
	return !sameView(d, *e)
}

// NextVerdict is how long after now some stalled peer's heartbeat will
// have been unchanged for D (or for S, if it can be power-fenced), if that
// is sooner than R: the caller decides again then rather than up to R later.
func (n *Node) NextVerdict(now Mono) (time.Duration, bool) {
	t := n.t
	best, ok := time.Duration(0), false
	for _, s := range n.slots {
		if s.ID == n.self || s.State == SlotLeft || s.State == SlotFenced {
			continue
		}
		if now-s.Changed >= t.Dead {
			continue // already due at the regular cycle
		}
		for _, after := range []time.Duration{t.PowerFence, t.Dead} {
			if after == t.PowerFence && !n.fenceable.Has(s.ID) {
				continue
			}
			due := s.Changed + after - now + time.Millisecond
			if due > 0 && due < t.Renew && (!ok || due < best) {
				best, ok = due, true
			}
		}
	}
	return best, ok
}

// PillAcked is the generation of host for which this host saw its pill
// acknowledged (0: none).
func (n *Node) PillAcked(host int) uint64 { return n.pillAcked[host] }

// Events returns the events since the last call, oldest first.
func (n *Node) Events() []Event {
	ev := n.events
	n.events = nil
	return ev
}

func (n *Node) emit(e Event) { n.events = append(n.events, e) }

// sameView reports whether two decisions say the same of the hosts (id,
// generation, state) and of the quorum (quorate, coordinator).
func sameView(a, b Decision) bool {
	return a.Quorate == b.Quorate && a.Coordinator == b.Coordinator &&
		slices.EqualFunc(a.Hosts, b.Hosts, func(x, y Host) bool { return x.ID == y.ID && x.Gen == y.Gen && x.State == y.State })
}

// sameAction is what tells two decisions' actions apart: not their reasons.
func sameAction(a, b Action) bool { return a.Kind == b.Kind && a.Host == b.Host && a.Gen == b.Gen }

func copyMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

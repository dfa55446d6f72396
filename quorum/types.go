package quorum

import (
	"fmt"
	"math/bits"
	"time"
)

// Mono is a reading of this host's monotonic clock, as a duration since an
// arbitrary origin (for example the daemon's start). Readings of different
// hosts are never compared.
type Mono = time.Duration

// Never is a Mono reading before any real one: "this has not happened".
const Never Mono = -1 << 62

// Set is a set of host ids 1..255.
type Set [4]uint64

// SetOf returns the set of ids.
func SetOf(ids ...int) Set {
	var s Set
	for _, id := range ids {
		s.Add(id)
	}
	return s
}

// Add puts id in the set; ids outside 1..255 are ignored.
func (s *Set) Add(id int) {
	if id > 0 && id < 256 {
		s[id/64] |= 1 << (id % 64)
	}
}

// Remove takes id out of the set.
func (s *Set) Remove(id int) {
	if id > 0 && id < 256 {
		s[id/64] &^= 1 << (id % 64)
	}
}

// Has reports whether id is in the set.
func (s Set) Has(id int) bool { return id > 0 && id < 256 && s[id/64]&(1<<(id%64)) != 0 }

// Len is the number of members.
func (s Set) Len() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// IDs lists the members in increasing order.
func (s Set) IDs() []int {
	var ids []int
	for i, w := range s {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			if id := i*64 + b; id > 0 {
				ids = append(ids, id)
			}
			w &^= 1 << b
		}
	}
	return ids
}

// Min is the lowest member, or 0 for an empty set.
func (s Set) Min() int {
	for i, w := range s {
		if w != 0 {
			return i*64 + bits.TrailingZeros64(w)
		}
	}
	return 0
}

// Union returns the members of either set.
func (s Set) Union(o Set) Set {
	for i := range s {
		s[i] |= o[i]
	}
	return s
}

// Intersect returns the members of both sets.
func (s Set) Intersect(o Set) Set {
	for i := range s {
		s[i] &= o[i]
	}
	return s
}

func (s Set) String() string { return fmt.Sprint(s.IDs()) }

// SlotState is what a host wrote of itself in its heartbeat slot.
type SlotState uint8

const (
	SlotFree        SlotState = iota // never used or released
	SlotJoining                      // acquired, daemon starting
	SlotAlive                        // running, may run VMs
	SlotMaintenance                  // running, not a placement target
	SlotLeft                         // left cleanly: runs no protected VM
	SlotFenced                       // destroyed its protected VMs (self-fence)
)

// Slot is one heartbeat slot as the heartbeat loop observed it.
type Slot struct {
	ID       int
	Name     string
	Gen      uint64    // slot generation (changes when the host rejoins)
	Seq      uint64    // heartbeat sequence
	State    SlotState // what the host says of itself
	SerfView Set       // hosts the slot's owner sees alive by serf
	Granted  Set       // hosts the slot's owner currently grants a network lease
	Dead     []Verdict // hosts the slot's owner knows were declared dead
	// Changed is when (Gen, Seq) was last seen to change, on the observer's
	// clock; the first sighting counts as a change.
	Changed Mono
	// GrantSeen is when a grant for this host was last seen in any slot, on
	// the observer's clock (Never if not seen).
	GrantSeen Mono
	// GenSince is when the current generation was first seen (Never for a
	// host already there when the observer started).
	GenSince Mono
	// Disarm is the newest disarm request the slot's owner has seen;
	// Disarmed, that it acknowledges being disarmed by it.
	Disarm   Disarm
	Disarmed bool
	// DisarmSeen is when the observer first saw the owner acknowledge
	// being disarmed by Disarm (Never while it is not).
	DisarmSeen Mono
	// Reach is what the owner says of its isolation addresses; ReachSince
	// is when the observer first saw that value (Never: unknown since the
	// first sighting).
	Reach      Reach
	ReachSince Mono
	// Records is the owner's VM-records change counter: it changes when
	// the owner changed a VM record (no rule reads it; vm rescans on it).
	Records uint32
	// Isolated is the nonce of the last poison pill the owner acknowledged
	// having applied (0: none); no rule reads it, the quarantine counts it.
	Isolated uint64
}

// Verdict says that host ID was declared dead at generation Gen.
type Verdict struct {
	ID  int
	Gen uint64
}

// Timings is the timing rule (DESIGN.md). The LUN header holds the values.
type Timings struct {
	Renew      time.Duration // R
	IOTimeout  time.Duration // io_timeout
	SelfFence  time.Duration // F
	Watchdog   time.Duration // W
	Dead       time.Duration // D >= F + W + IOTimeout + R
	PowerFence time.Duration // S: unresponsive this long before a power fence
	// PillGrace is how long serf must have seen a host failed, its heartbeat
	// fresh, before the coordinator sends it a poison pill: a network blip
	// shorter than this fences nobody. Zero means F.
	PillGrace time.Duration
	// SerfDetect is how long serf takes to see a failed host as failed. A
	// peer counts toward the quorum that pills and power-fences only once
	// serf has seen it alive for this long plus two heartbeat cycles: right
	// after the network changes, two sides may both still count the same
	// peers. Zero means 5 s.
	SerfDetect time.Duration
	// LeaseCeiling (C) bounds how long a host may run its VMs on network
	// leases alone: once its last completed heartbeat write (or its re-arm)
	// is C old, it self-fences even if it holds a lease. Hosts cut off from
	// the LUN together could otherwise lease each other for ever where no
	// other host can see it; with C, another host's silence for
	// CeilingWait proves it fenced. Zero means DefaultLeaseCeiling.
	LeaseCeiling time.Duration
}

// DefaultLeaseCeiling is the default network-lease ceiling: longer than a
// SAN controller or path failover (tens of seconds), short enough that the
// last host standing restarts the VMs of two hosts lost at once about a
// minute and a quarter later.
const DefaultLeaseCeiling = 60 * time.Second

// Ceiling is the network-lease ceiling C in effect.
func (t Timings) Ceiling() time.Duration {
	if t.LeaseCeiling > 0 {
		return t.LeaseCeiling
	}
	return DefaultLeaseCeiling
}

// CeilingWait is how long another host must have shown no sign of life (no
// heartbeat change, no network-lease grant for it in any slot) before its
// silence proves it runs nothing, whatever leases it might hold where this
// host cannot see them: C, then D as for any stalled heartbeat (its
// watchdog backs its self-fence at C), plus the clock-rate margin of a
// disarm (DisarmMargin): the two hosts' monotonic clocks each measure C
// and D at their own rate.
func (t Timings) CeilingWait() time.Duration {
	w := t.Ceiling() + t.Dead
	return w + DisarmMargin(w)
}

// DefaultTimings are DESIGN.md's defaults: R 1 s, io 2 s, F 4 s, W 5 s, D 12 s, S 3 s, C 60 s.
func DefaultTimings() Timings {
	return Timings{Renew: time.Second, IOTimeout: 2 * time.Second, SelfFence: 4 * time.Second,
		Watchdog: 5 * time.Second, Dead: 12 * time.Second, PowerFence: 3 * time.Second, LeaseCeiling: DefaultLeaseCeiling}
}

// FastTimings is the fast profile: R 0.5 s, io 1 s, F 3 s, W 3 s, D 7.5 s.
func FastTimings() Timings {
	return Timings{Renew: 500 * time.Millisecond, IOTimeout: time.Second, SelfFence: 3 * time.Second,
		Watchdog: 3 * time.Second, Dead: 7500 * time.Millisecond, PowerFence: 3 * time.Second, LeaseCeiling: DefaultLeaseCeiling}
}

// Validate rejects timings that would let a host be declared dead while it
// can still run VMs.
func (t Timings) Validate() error {
	if t.Renew <= 0 || t.IOTimeout <= 0 || t.SelfFence <= 0 || t.Watchdog <= 0 || t.Dead <= 0 {
		return fmt.Errorf("timings %+v: R, io_timeout, F, W and D must all be positive", t)
	}
	if t.SelfFence < t.Renew+t.IOTimeout {
		return fmt.Errorf("self_fence (F) %v is below renew + io_timeout = %v: one slow write would self-fence the host; raise F", t.SelfFence, t.Renew+t.IOTimeout)
	}
	if min := t.SelfFence + t.Watchdog + t.IOTimeout + t.Renew; t.Dead < min {
		return fmt.Errorf("dead (D) %v is below F + W + io_timeout + R = %v: a host could be declared dead while it still runs VMs; raise D", t.Dead, min)
	}
	if t.LeaseCeiling < 0 || t.LeaseCeiling > 0 && t.LeaseCeiling <= t.SelfFence {
		return fmt.Errorf("lease_ceiling %v is not above F = %v: a host without the LUN could never live on a network lease; raise it", t.LeaseCeiling, t.SelfFence)
	}
	return nil
}

func (t Timings) serfDetect() time.Duration {
	if t.SerfDetect > 0 {
		return t.SerfDetect
	}
	return 5 * time.Second
}

func (t Timings) pillGrace() time.Duration {
	if t.PillGrace > 0 {
		return t.PillGrace
	}
	return t.SelfFence
}

// Message is a mailbox message addressed to this host.
type Message struct {
	Kind  MessageKind
	From  int
	ToGen uint64
	Nonce uint64
}

// MessageKind is the type of a mailbox message.
type MessageKind uint8

const (
	MsgNone  MessageKind = iota
	MsgFence             // poison pill
	MsgTest              // prove the path; do nothing else
	MsgClear             // withdraw an earlier request
)

// PowerResult is what a power fence agent reported for a host.
type PowerResult struct {
	Gen       uint64 // the generation the host had when it was fenced
	Confirmed bool   // the agent confirmed the power is off
	// By is the operator who confirmed the host off by command
	// (Node.ConfirmOff); "" for a fence agent's result.
	By     string
	Failed bool // the agent failed or timed out: fall back to D
	At     Mono // when the result came
}

// Input is everything Decide reads. A Node fills it in from what it remembers.
type Input struct {
	Now     Mono
	Self    int
	SelfGen uint64
	Timings Timings

	// LastWrite is when this host issued its last heartbeat write that then
	// completed (issue time, the conservative end). Never if none.
	LastWrite Mono
	// LastRead is when the last read of all slots completed.
	LastRead Mono
	// ReadFreshSince is since when reads have succeeded without a gap longer
	// than F (Never if they are not fresh now).
	ReadFreshSince Mono
	// ObserverStart is when the Observer made its first read: what happened
	// before it is unknown to this host (Observer.Start).
	ObserverStart Mono

	// Slots are the used heartbeat slots, this host's included.
	Slots []Slot
	// SerfAlive are the hosts this host's serf sees alive (this host included or not).
	SerfAlive Set
	// SerfFailedSince is, per host serf sees failed, since when (this clock).
	SerfFailedSince map[int]Mono
	// SerfAliveSince is, per host serf sees alive, since when (this clock).
	// A host missing here counts as alive since Never (long settled).
	SerfAliveSince map[int]Mono

	// LeaseUntil is when this host's network lease (granted by a majority)
	// runs out; Never if it holds none.
	LeaseUntil Mono
	// GrantedAt is, per host this host granted a network lease to, when.
	GrantedAt map[int]Mono

	// Mailbox is the newest message in this host's mailbox; AckedNonce the
	// nonce this host last acknowledged.
	Mailbox    Message
	AckedNonce uint64

	// Fencing configuration and results, for the coordinator.
	PowerFenceable Set                 // hosts with a fence agent configured
	Power          map[int]PowerResult // results of power fences
	// PillAcked is, per host, the generation for which it acknowledged a pill.
	PillAcked map[int]uint64
	// KnownDead is, per host, the generation a coordinator declared dead
	// (published on the LUN, see Observer.KnownDead). Such a host stays dead
	// until it rejoins with another generation, and no longer votes.
	KnownDead map[int]uint64

	// Disarm is this host's disarm state (see disarm.go); ArmedAt is when
	// it last re-armed (Never: it did not): its peers' silence counts from
	// then.
	Disarm  DisarmStatus
	ArmedAt Mono

	// Addresses says this host has isolation addresses configured;
	// AddressReached is when the latest probe round that reached one of
	// them started (Never: none did).
	Addresses      bool
	AddressReached Mono

	// HeaderChanged says why the LUN's header no longer matches the one this
	// host read at start ("" while it does). The host keeps its heartbeat
	// and its VMs, but its partition is not quorate: it declares nobody
	// dead and starts nothing until the header is back.
	HeaderChanged string
}

// HostState is a host's state as this host computes it.
type HostState uint8

const (
	StateJoining     HostState = iota + 1 // slot acquired, not yet alive
	StateAlive                            // heartbeat fresh, serf agrees (or has not yet noticed)
	StateMaintenance                      // alive, not a placement target
	StateIsolated                         // serf says failed, heartbeat fresh: alive, cut off
	StateSuspect                          // heartbeat stalled, not yet for D
	StateDead                             // proven unable to run VMs: D elapsed, power off confirmed, or self-fenced
	StateLeft                             // left cleanly
)

var stateNames = [...]string{"", "joining", "alive", "maintenance", "isolated", "suspect", "dead", "left"}

func (s HostState) String() string {
	if int(s) < len(stateNames) && s > 0 {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// Gone reports whether a host in this state runs no VM: its VMs may be
// restarted elsewhere.
func (s HostState) Gone() bool { return s == StateDead || s == StateLeft }

// Host is one host's computed state with the reason.
type Host struct {
	ID     int
	Name   string
	Gen    uint64
	State  HostState
	Reason string
	// Stale is how long its heartbeat has not changed, on this clock.
	Stale time.Duration
	// Records is its slot's VM-records change counter (Slot.Records).
	Records uint32
	// Isolated is the nonce of the last poison pill it applied (Slot.Isolated).
	Isolated uint64

	leased      bool // a network lease for it was seen within D
	byStaleness bool // dead only because its heartbeat stalled for D
	changed     Mono // Slot.Changed
	genSince    Mono // Slot.GenSince
	goneAt      Mono // when it became gone by other proof than staleness (Never: long ago)
	signSince   Mono // its last sign of life: heartbeat change, lease grant seen, or the end of a disarm
	disarmed    bool // its slot says it is disarmed, or it may still be: no pill, no power fence
}

// ActionKind says what an Action asks the adapters to do.
type ActionKind uint8

const (
	// SelfFence: destroy every protected VM on this host now, write the slot
	// state fenced if the LUN allows, and stop petting the watchdog.
	ActSelfFence ActionKind = iota + 1
	// SendPill: write a fence message for Host at Gen into its mailbox.
	ActSendPill
	// PowerFence: run Host's fence agent (off, then status).
	ActPowerFence
	// DeclareDead: Host (at Gen) is dead; its VMs may be restarted.
	ActDeclareDead
	// ApplyIsolation: a valid poison pill arrived: apply the isolation
	// response of every local protected VM, release the leases of those
	// destroyed, then acknowledge Nonce.
	ActApplyIsolation
	// AckTest: acknowledge a test message with Nonce; nothing else.
	AckTest
	// RequestLease: this host cannot write the LUN; ask the others for a
	// network lease over serf.
	ActRequestLease
)

var actionNames = [...]string{"", "self-fence", "send-pill", "power-fence", "declare-dead", "apply-isolation", "ack-test", "request-lease"}

func (k ActionKind) String() string {
	if int(k) < len(actionNames) && k > 0 {
		return actionNames[k]
	}
	return fmt.Sprintf("action(%d)", k)
}

// Action is one thing the adapters must do.
type Action struct {
	Kind   ActionKind
	Host   int
	Gen    uint64
	Nonce  uint64
	Reason string
}

func (a Action) String() string {
	s := a.Kind.String()
	if a.Host != 0 {
		s += fmt.Sprintf(" host=%d gen=%d", a.Host, a.Gen)
	}
	if a.Nonce != 0 {
		s += fmt.Sprintf(" nonce=%d", a.Nonce)
	}
	if a.Reason != "" {
		s += ": " + a.Reason
	}
	return s
}

// Decision is what Decide returns.
type Decision struct {
	Hosts     []Host // every used slot, by id
	Voters    Set    // hosts whose vote counts
	Partition Set    // this host and the voters its serf sees alive
	Quorate   bool
	// Settled: the partition is quorate counting only peers serf has seen
	// alive for SerfDetect; required for poison pills and power fences.
	Settled     bool
	settled     Set
	serfAlive   Set
	Coordinator int // 0: none in this partition
	// MayRunVMs: this host may run protected VMs (fresh write or lease).
	// Pet the watchdog only while this holds and every loop progresses.
	MayRunVMs bool
	// GrantSet is the set of hosts this host currently grants a network
	// lease; publish it in this host's slot.
	GrantSet Set
	// Verdicts are the hosts, with their generations, that this host knows
	// were declared dead (and, as coordinator, declares now); publish them
	// in this host's slot so that a verdict outlives any one host.
	Verdicts []Verdict
	Actions  []Action
	// Disarm is this host's disarm state; publish its request and whether
	// it is disarmed in this host's slot.
	Disarm DisarmStatus
	// Reach is what this host publishes of its isolation addresses.
	Reach Reach
	reach addressReach // the slots' flags, for the tie
}

// Host returns the computed state of host id.
func (d Decision) Host(id int) (Host, bool) {
	for _, h := range d.Hosts {
		if h.ID == id {
			return h, true
		}
	}
	return Host{}, false
}

package quorum

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// sim is a cluster of hosts running the real decision code on virtual time:
// the heartbeat LUN, serf's failure detection, network leases, poison pills,
// power fencing and hardware watchdogs are modelled; every host drives its
// own Node, the heartbeat loop's core, at each heartbeat cycle, and the
// adapters' duties (the package doc's "Driving a Node") are carried out here.
// It checks the invariants at every step (see check).
type sim struct {
	t         Timings
	now       time.Duration // global virtual time
	step      time.Duration
	hosts     []*simHost // index id-1
	lun       []*lunSlot // index id; nil: never used
	mail      map[int]Message
	serfDelay time.Duration // time for serf to see a host failed
	fenceOK   bool          // power fence agents confirm
	header    string        // why the LUN header changed ("": it is the one formatted)
	log       []string
	logged    map[string]bool
	takeover  map[int]uint64 // host -> generation whose VMs were taken over
	// declaredAt is when each host was last declared dead (global time).
	declaredAt map[int]time.Duration
	violation  string
	rng        *rand.Rand
	actors     map[int]time.Duration // coordinator actions: host -> last global time
	nonce      uint64
	names      []string // index id: the slot's host name

	// Serf reachability as of the last tick (see reachability): pairs
	// connected then were reachable at reachTick; the others at
	// lastReach[(a-1)*n+b-1], recorded when they were last connected.
	net       []netState // index id-1: each host's network state at reachTick
	reachTick time.Duration
	lastReach []time.Duration

	raws []RawSlot // the LUN as read, reused by every cycle

	// Three heartbeat LUNs (simluns_test.go): lun is the first, extra the
	// second and third (nil: one LUN). lunLost and lunLatency are each
	// LUN's loss and added latency for every host.
	extra      [][]*lunSlot
	counted    []*lunSlot // by host id: when its writes landed on two LUNs within io_timeout
	lunLost    [3]bool
	lunLatency [3]time.Duration

	// quarantine is the cluster's quarantine record on the LUN (nil: the
	// scenario does not run the quarantine); every host runs QuarantineStep
	// after its decision and writes what it returns.
	quarantine *QuarantineRecord
	qcfg       QuarantineConfig
	// flapped counts each host's verdicts and acknowledged pills: a host
	// quarantined with fewer than the threshold is a false quarantine.
	flapped map[int]int
	acked   map[int]uint64 // the last applied pill's nonce each host wrote
}

// wallEpoch is the wall clock at the simulation's start (every host's: the
// quarantine's times are the coordinator's wall clock, for display and the
// hour-long window only).
var wallEpoch = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

// quarantineStep runs the quarantine's step on h after its decision d,
// and writes the record if it changed (h reads and writes the LUN).
func (s *sim) quarantineStep(h *simHost, d Decision) {
	if s.quarantine == nil {
		return
	}
	rec, events, changed := QuarantineStep(QuarantineInput{Self: h.id, Now: wallEpoch.Add(s.now), Config: s.qcfg, Record: *s.quarantine, Decision: d})
	if !changed {
		return
	}
	for _, e := range events {
		s.logf("host %d: %s host=%d: %s", h.id, e.Kind, e.Subject, e.Message)
		if e.Kind == "host-quarantined" && s.flapped[e.Subject] < s.qcfg.Threshold && s.violation == "" {
			s.violation = fmt.Sprintf("host %d quarantined after %d flaps, threshold %d", e.Subject, s.flapped[e.Subject], s.qcfg.Threshold)
		}
	}
	*s.quarantine = rec
}

// placeVMs checks where the VMs of a host declared dead go: the lowest
// placeable host of the coordinator's decision, never a quarantined one.
func (s *sim) placeVMs(coordinator *simHost, from int) {
	if s.quarantine == nil {
		return
	}
	d, _ := coordinator.node.Last()
	to := s.quarantine.Placeable(d).Min()
	s.logf("host %d: the VMs of host %d go to host %d (placeable %v, quarantined %v)", coordinator.id, from, to, s.quarantine.Placeable(d), s.quarantine.Set())
	if to != 0 && s.quarantine.Set().Has(to) && s.violation == "" {
		s.violation = fmt.Sprintf("the VMs of host %d were given to quarantined host %d", from, to)
	}
}

// netState is what decides whether serf connects a host to another.
type netState struct {
	ok    bool // up, neither frozen nor stalled
	group int
}

func (a netState) connected(b netState) bool { return a.ok && b.ok && a.group == b.group }

type lunSlot struct {
	raw        RawSlot       // with the owner's acknowledgement
	write      SlotWrite     // what the owner's node asked this write to say
	lands      time.Duration // a late write lands at this global time
	issued     time.Duration // global time the write was issued
	issuedMono Mono          // the writer's clock then
	// freshSince: since when writes have landed no more than R + io_timeout apart.
	landed, freshSince time.Duration
	next               *lunSlot // the write in flight
	// acks counts, with three LUNs, the members on which this write
	// landed within io_timeout; the writer learns of it at two.
	acks *int
	// beat is, with three LUNs, the record's SlotRecord.Beat: the
	// writer's last write that two LUNs took within io_timeout.
	beat uint64
}

type simHost struct {
	id      int
	gen     uint64
	acked   uint64 // with three LUNs: the sequence of its last write two LUNs took (storage's Heartbeat.acked)
	up      bool
	frozen  bool // the whole machine stalls, its watchdog timer too
	stalled bool // only the daemon is stopped (SIGSTOP): VMs and watchdog run on
	// libvirtHung: destroying a VM hangs. A self-fence or a poison pill then
	// gets the heartbeat loop stuck (stuck): no more cycles, no petting;
	// the VMs run on until the watchdog resets the host. Serf runs on.
	libvirtHung, stuck bool
	lunOK              bool
	latency            time.Duration // LUN I/O latency
	pathLost           [3]bool       // with three LUNs: this host's path to each is lost
	group              int           // network partition group
	offset             time.Duration // its monotonic clock at boot
	// The host's monotonic clock reads base at global time anchor and runs
	// ppm parts per million fast (slow if negative) from there; while the
	// machine is suspended it stands still.
	anchor    time.Duration
	base      Mono
	ppm       int64
	suspended bool
	fenceable bool
	// addresses: isolation addresses are configured; addrOK: the host
	// reaches one now; reachedAt: when its last probe round reached one.
	addresses, addrOK bool
	reachedAt         Mono

	nextBeat time.Duration
	node     *Node // its heartbeat loop's memory: a new one at every boot
	seq      uint64
	// hung is the self-fence or isolation response stuck in libvirt (stuck).
	hung    Action
	vms     bool // its protected VMs run
	lastPet time.Duration
}

// newSim returns a cluster of n hosts; serf sees a host failed serfDelay
// after it is cut off.
func newSim(n int, t Timings, seed uint64, serfDelay time.Duration) *sim {
	t.SerfDetect = serfDelay
	s := &sim{t: t, step: 50 * time.Millisecond, lun: make([]*lunSlot, n+1), mail: map[int]Message{},
		serfDelay: serfDelay, fenceOK: true, logged: map[string]bool{}, takeover: map[int]uint64{}, declaredAt: map[int]time.Duration{},
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), actors: map[int]time.Duration{}, flapped: map[int]int{}, acked: map[int]uint64{},
		names: make([]string, n+1), net: make([]netState, n), lastReach: make([]time.Duration, n*n)}
	for i := 1; i <= n; i++ {
		s.names[i] = fmt.Sprintf("kvm%d", i)
	}
	for i := 1; i <= n; i++ {
		h := &simHost{id: i, lunOK: true, latency: 5 * time.Millisecond, offset: time.Duration(s.rng.IntN(1000)) * time.Hour}
		s.hosts = append(s.hosts, h)
		s.boot(h)
	}
	return s
}

func (s *sim) host(id int) *simHost { return s.hosts[id-1] }

// mono reads h's monotonic clock at global time now.
func (h *simHost) mono(now time.Duration) Mono {
	if h.suspended {
		now = h.anchor
	}
	d := now - h.anchor
	return h.base + d + d*time.Duration(h.ppm)/1e6
}

// real is how much global time passes while h's clock advances by d.
func (h *simHost) real(d time.Duration) time.Duration {
	return d * 1e6 / time.Duration(1e6+h.ppm)
}

// setClock re-anchors h's clock at now with a rate error of ppm, suspended or not.
func (h *simHost) setClock(now time.Duration, ppm int64, suspended bool) {
	if !h.suspended {
		h.base = h.mono(now)
	}
	h.anchor, h.ppm, h.suspended = now, ppm, suspended
}

// boot starts a host: new generation, fresh memory, VMs running (a host
// that rejoins after being declared dead starts with no VMs of its old generation).
func (s *sim) boot(h *simHost) {
	h.up, h.frozen, h.stalled = true, false, false
	h.libvirtHung, h.stuck, h.hung = false, false, Action{}
	h.anchor, h.base, h.suspended = s.now, h.offset, false
	h.gen++
	h.seq, h.acked = 0, 0
	// A booting host's serf starts out seeing every peer alive.
	s.netLeaves(h)
	s.net[h.id-1] = netState{}
	for _, o := range s.hosts {
		s.lastReach[s.pair(h, o)] = s.now
	}
	h.vms = true
	h.lastPet = s.now
	h.nextBeat = s.now + h.real(time.Duration(s.rng.IntN(int(s.t.Renew/time.Millisecond)))*time.Millisecond)
	// Acquire the slot: state joining, then alive after the first cycles.
	s.lun[h.id] = &lunSlot{raw: RawSlot{ID: h.id, Name: s.names[h.id], Gen: h.gen, State: SlotAlive}}
	for _, m := range s.extra {
		m[h.id] = &lunSlot{raw: s.lun[h.id].raw}
		s.counted[h.id] = &lunSlot{}
	}
	h.node = NewNode(NodeConfig{Self: h.id, Gen: h.gen, Timings: s.t}, h.mono(s.now))
	h.reachedAt = Never
}

func (s *sim) logf(format string, a ...any) {
	s.log = append(s.log, fmt.Sprintf("%7.2fs ", s.now.Seconds())+fmt.Sprintf(format, a...))
}

// once logs a line the first time its key is seen.
func (s *sim) once(key, format string, a ...any) {
	if s.logged[key] {
		return
	}
	s.logged[key] = true
	s.logf(format, a...)
}

// connected reports whether a and b can talk over the network now.
func (s *sim) connected(a, b *simHost) bool { return a.netState().connected(b.netState()) }

func (h *simHost) netState() netState {
	return netState{ok: h.up && !h.frozen && !h.stalled, group: h.group}
}

func (s *sim) pair(a, b *simHost) int { return (a.id-1)*len(s.hosts) + b.id - 1 }

// reach is the last global time, as of the last tick, at which serf
// connected a to b.
func (s *sim) reach(a, b *simHost) time.Duration {
	if s.net[a.id-1].connected(s.net[b.id-1]) {
		return s.reachTick
	}
	return s.lastReach[s.pair(a, b)]
}

// netLeaves records, for every pair of h and a peer connected at the last
// tick, that they were reachable then: h's network state is about to change.
func (s *sim) netLeaves(h *simHost) {
	hs := s.net[h.id-1]
	for _, o := range s.hosts {
		if hs.connected(s.net[o.id-1]) {
			s.lastReach[s.pair(h, o)], s.lastReach[s.pair(o, h)] = s.reachTick, s.reachTick
		}
	}
}

// reachability brings serf's view up to now. Only pairs with a host whose
// network state changed since the last tick need work: the per-tick cost is
// proportional to hosts, not to pairs.
func (s *sim) reachability() {
	var changed []*simHost
	for _, h := range s.hosts {
		if h.netState() != s.net[h.id-1] {
			changed = append(changed, h)
		}
	}
	for _, h := range changed {
		s.netLeaves(h)
	}
	for _, h := range changed {
		s.net[h.id-1] = h.netState()
	}
	s.reachTick = s.now
}

// run advances virtual time by d.
func (s *sim) run(d time.Duration) {
	end := s.now + d
	for s.now < end && s.violation == "" {
		s.now += s.step
		s.tick()
	}
}

func (s *sim) tick() {
	// Late writes land.
	if s.extra != nil {
		s.landMembers()
	}
	for id, sl := range s.lun {
		if s.extra == nil && sl != nil && sl.next != nil && s.now >= sl.next.lands {
			w := sl.next
			sl.raw, sl.next = w.raw, nil
			sl.markLanded(s.now, s.t)
			// The writer learns of the completion only if it came within
			// io_timeout; a later one landed, but the writer gave up on it.
			if h := s.host(id); h.gen == w.raw.Gen && w.lands-w.issued <= s.t.IOTimeout {
				h.node.Wrote(w.issuedMono, w.write)
			}
		}
	}
	s.reachability()
	// Hardware watchdogs reset hosts whose daemon stopped petting.
	for _, h := range s.hosts {
		if h.frozen {
			h.lastPet += s.step // a stalled machine's watchdog timer stalls too
		}
		if h.up && s.now-h.lastPet >= h.real(s.t.Watchdog) {
			s.logf("host %d: watchdog reset (last pet %.2fs ago)", h.id, (s.now - h.lastPet).Seconds())
			h.up, h.vms = false, false
		}
	}
	for _, h := range s.hosts {
		if h.up && !h.frozen && !h.stalled && !h.stuck && s.now >= h.nextBeat {
			h.nextBeat = s.now + h.real(s.t.Renew)
			s.cycle(h)
		}
	}
	s.check()
}

// cycle is one heartbeat cycle of host h: read, decide, act, pet, write.
func (s *sim) cycle(h *simHost) {
	now := h.mono(s.now)
	n := h.node
	ioOK := h.lunOK && h.latency <= s.t.IOTimeout && (s.extra == nil || s.readable(h) >= 2)
	if ioOK {
		s.raws = s.raws[:0]
		for id, sl := range s.lun {
			if sl != nil && s.extra != nil {
				s.raws = append(s.raws, s.merged(h, id))
			} else if sl != nil {
				s.raws = append(s.raws, sl.raw)
			}
		}
		n.Read(now, s.raws)
		n.HeaderChanged(s.header)
	} else {
		n.ReadFailed(now)
	}
	var alive Set
	for _, o := range s.hosts {
		if s.now-s.reach(h, o) < s.serfDelay {
			alive.Add(o.id)
		}
	}
	n.Serf(now, alive)
	if ioOK {
		n.Mail(s.mail[h.id])
	}
	var fenceable Set
	for _, o := range s.hosts {
		if o.fenceable {
			fenceable.Add(o.id)
		}
	}
	n.SetFenceable(fenceable)
	if h.addresses && h.addrOK {
		h.reachedAt = now // the prober's round, once per cycle
	}
	ProbedAddresses(n, h.addresses, h.reachedAt)
	d := n.Decide(now)
	for _, a := range d.Actions {
		if s.act(h, a); h.stuck {
			return // in a VM destroy that does not return
		}
	}
	n.Executed(d)
	if ioOK {
		s.quarantineStep(h, d)
	}
	s.logDisarmEvents(h) // the log below says what else the scenarios show
	if d.MayRunVMs && !n.Fenced() {
		h.lastPet = s.now
	}
	// Like storage's bounded I/O, no new write is issued to the slot while
	// an earlier one is still in flight (ErrIOPending); a write lands after
	// the latency even when that is beyond io_timeout.
	if s.extra != nil {
		if h.lunOK {
			s.writeMembers(h, now)
		}
		return
	}
	if sl := s.lun[h.id]; h.lunOK && sl.next == nil {
		raw, w := s.nextWrite(h)
		sl.next = &lunSlot{raw: raw, write: w, lands: s.now + h.latency, issued: s.now, issuedMono: now}
		if h.latency < s.step {
			sl.raw, sl.next = raw, nil
			sl.markLanded(s.now, s.t)
			n.Wrote(now, w)
		}
	}
}

// nextWrite is what h's next heartbeat write says: its node's SlotWrite at
// the next sequence.
func (s *sim) nextWrite(h *simHost) (RawSlot, SlotWrite) {
	h.seq++
	w := h.node.SlotWrite()
	if w.Ack.Kind == MsgFence && w.Ack.Done && w.Ack.Nonce != s.acked[h.id] {
		s.acked[h.id] = w.Ack.Nonce
		s.flapped[h.id]++
	}
	raw := RawSlot{ID: h.id, Name: s.names[h.id], Gen: h.gen, Seq: h.seq, State: SlotAlive,
		SerfView: w.SerfView, Granted: w.Granted, Dead: w.Verdicts, Ack: w.Ack, Disarm: w.Disarm, Disarmed: w.Disarmed, Reach: w.Reach}
	if w.Fenced {
		raw.State = SlotFenced
	}
	return raw, w
}

func (sl *lunSlot) markLanded(now time.Duration, t Timings) {
	if sl.freshSince == 0 || now-sl.landed > t.Renew+t.IOTimeout {
		sl.freshSince = now
	}
	sl.landed = now
}

// act carries out action a of h's decision, as the heartbeat loop does:
// only what h's node starts (Start), reporting the end to it.
func (s *sim) act(h *simHost, a Action) {
	n := h.node
	start := n.Start(a)
	switch a.Kind {
	case ActSelfFence:
		if !start {
			break
		}
		if h.vms {
			s.logf("host %d: self-fence: %s", h.id, a.Reason)
			if h.libvirtHung {
				s.logf("host %d: destroying its VMs hangs (libvirt): they run until the watchdog resets the host", h.id)
				h.stuck, h.hung = true, a
				return
			}
		}
		h.vms = false
		n.SelfFenced(a.Reason, nil)
	case ActRequestLease:
		if !start {
			break
		}
		var granters Set
		for _, o := range s.hosts {
			if o.id == h.id || !s.connected(h, o) {
				continue
			}
			if ok, _ := o.node.Grant(o.mono(s.now), h.id, h.gen); ok {
				granters.Add(o.id)
			}
		}
		if n.LeaseAnswered(h.mono(s.now), granters, nil) {
			s.once(fmt.Sprintf("lease %d %d", h.id, h.gen), "host %d: network lease from %v", h.id, granters)
		}
	case ActApplyIsolation:
		if !start {
			break
		}
		if h.vms && h.libvirtHung {
			s.logf("host %d: poison pill: destroying its VMs hangs (libvirt)", h.id)
			h.stuck, h.hung = true, a
			return
		}
		if h.vms {
			s.logf("host %d: poison pill: VMs stopped, leases released", h.id)
		}
		h.vms = false
		n.IsolationApplied(a, nil)
	case ActSendPill:
		if !start {
			return
		}
		s.actors[h.id] = s.now
		s.nonce++
		n.PillSent(a, s.nonce)
		s.mail[a.Host] = Message{Kind: MsgFence, From: h.id, ToGen: a.Gen, Nonce: s.nonce}
		s.logf("host %d: send-pill host=%d gen=%d: %s", h.id, a.Host, a.Gen, a.Reason)
	case ActPowerFence:
		if !start {
			break
		}
		t := s.host(a.Host)
		if sl := s.lastLanded(a.Host); t.up && sl.freshSince > 0 && s.now-sl.landed <= s.t.Renew+s.step && s.now-sl.freshSince >= s.t.PowerFence+s.t.Renew {
			s.violation = fmt.Sprintf("host %d power-fenced host %d, whose heartbeat has landed regularly since %.2fs (last %.2fs)", h.id, a.Host, sl.freshSince.Seconds(), sl.landed.Seconds())
		}
		if s.fenceOK {
			s.logf("host %d: power-fence host=%d gen=%d: confirmed off", h.id, a.Host, a.Gen)
			if t.gen == a.Gen {
				t.up, t.vms = false, false
			}
		} else {
			s.logf("host %d: power-fence host=%d gen=%d: failed", h.id, a.Host, a.Gen)
		}
		n.PowerFenced(h.mono(s.now), a, s.fenceOK, nil)
	case ActDeclareDead:
		// Logged and checked once per verdict in the whole cluster.
		key := fmt.Sprintf("dead %d %d", a.Host, a.Gen)
		if !s.logged[key] {
			s.once(key, "host %d: declare-dead host=%d gen=%d: %s", h.id, a.Host, a.Gen, a.Reason)
			t := s.host(a.Host)
			if t.gen == a.Gen && t.vms && !t.frozen {
				s.violation = fmt.Sprintf("host %d declared host %d gen %d dead while its VMs still run", h.id, a.Host, a.Gen)
			}
			s.takeover[a.Host] = a.Gen
			s.declaredAt[a.Host] = s.now
			s.flapped[a.Host]++
			s.placeVMs(h, a.Host)
		}
	}
	if g := n.PillAcked(a.Host); g != 0 {
		key := fmt.Sprintf("acked %d %d", a.Host, g)
		s.once(key, "host %d: pill acknowledged by host %d gen %d", h.id, a.Host, g)
	}
}

// logDisarmEvents logs h's node's disarm events and drops the others.
func (s *sim) logDisarmEvents(h *simHost) {
	for _, e := range h.node.Events() {
		if strings.HasPrefix(e.Kind, "ha-") {
			s.logf("host %d: %s: %s", h.id, e.Kind, e.Message)
		}
	}
}

// disarm runs an operator's `ha disarm` (For > 0) or `ha arm` on host h.
func (s *sim) disarm(h *simHost, req DisarmRequest) {
	if !h.up || h.frozen || h.stalled || h.stuck {
		s.logf("host %d: ha disarm/arm not answered (host down or stalled)", h.id)
		return
	}
	// The simulator models a failover's restarts as taking 10s after the
	// verdict: a disarm meanwhile is refused.
	for id, at := range s.declaredAt {
		if s.now-at < 10*time.Second {
			req.Failover = fmt.Sprintf("host %d declared dead %.2fs ago, its VMs restarting", id, (s.now - at).Seconds())
		}
	}
	if _, err := h.node.Disarm(h.mono(s.now), req); err != nil {
		s.logf("host %d: %v", h.id, err)
	}
	s.logDisarmEvents(h)
}

// confirmOff runs an operator's `host confirm-off` of target on host on.
func (s *sim) confirmOff(target, on *simHost) {
	if !on.up || on.frozen || on.stalled || on.stuck {
		s.logf("host %d: confirm-off not answered (host down or stalled)", on.id)
		return
	}
	if _, err := on.node.ConfirmOff(on.mono(s.now), target.id, "operator"); err != nil {
		s.logf("host %d: %v", on.id, err)
		return
	}
	s.logf("host %d: host %d confirmed off by the operator", on.id, target.id)
	on.node.Events()
}

// libvirtBack ends what h's stuck heartbeat loop was doing: libvirt
// answered, its VMs are destroyed.
func (s *sim) libvirtBack(h *simHost) {
	a := h.hung
	h.stuck, h.vms, h.hung = false, false, Action{}
	switch a.Kind {
	case ActSelfFence:
		h.node.SelfFenced(a.Reason, nil)
	case ActApplyIsolation:
		h.node.IsolationApplied(a, nil)
	}
}

// check verifies the invariants after every step.
func (s *sim) check() {
	if s.violation != "" {
		return
	}
	// Never two: VMs taken over are not running on their old owner.
	for id, gen := range s.takeover {
		if h := s.host(id); h.gen == gen && h.vms && !h.frozen {
			s.violation = fmt.Sprintf("host %d gen %d runs VMs that were taken over", id, gen)
			return
		}
	}
	// A minority never fences: the hosts that sent a new poison pill within
	// the last two heartbeat cycles all sit in one network group. (Verdicts
	// need no such check: the never-two check above proves each one safe on
	// the timing rule alone; a power fence must only hit a host that is not
	// writing its heartbeat, checked where it happens.) (Over longer windows two groups may each act in turn,
	// legitimately: votes shrink as the LUN proves hosts dead.)
	groups := map[int]bool{}
	for id, at := range s.actors {
		h := s.host(id)
		if s.now-at < 2*s.t.Renew && h.up && !h.frozen && !h.stalled {
			groups[h.group] = true
		}
	}
	if len(groups) > 1 {
		s.violation = fmt.Sprintf("coordinators acted in %d network partitions within 2R", len(groups))
	}
}

// states renders each up host's view.
func (s *sim) states() string {
	var b strings.Builder
	for _, h := range s.hosts {
		if !h.up {
			fmt.Fprintf(&b, "host %d: down\n", h.id)
			continue
		}
		d, _ := h.node.Last()
		fmt.Fprintf(&b, "host %d: quorate=%v coordinator=%d may-run=%v vms=%v", h.id, d.Quorate, d.Coordinator, d.MayRunVMs, h.vms)
		if h.addresses {
			fmt.Fprintf(&b, " reach=%v", d.Reach)
		}
		b.WriteString(" |")
		for _, o := range d.Hosts {
			fmt.Fprintf(&b, " %d:%s", o.ID, o.State)
		}
		if h.frozen {
			b.WriteString(" (frozen)")
		}
		b.WriteString("\n")
	}
	return b.String()
}

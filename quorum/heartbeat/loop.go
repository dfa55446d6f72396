package heartbeat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

// Slot is the host's own heartbeat slot (*storage.Heartbeat).
type Slot interface {
	HostID() int
	Generation() uint64
	Renew(ctx context.Context) ([]storage.SlotView, error)
	// Observe reads every slot like Renew but writes nothing: it is not a
	// heartbeat. It returns ErrSlotLost, with the views, like Renew.
	Observe(ctx context.Context) ([]storage.SlotView, error)
	SetState(storage.SlotState)
	SetSerfView(storage.HostSet)
	SetGranted(storage.HostSet)
	SetVerdicts([]storage.Verdict)
	SetDisarm(storage.SlotDisarm)
	SetReach(storage.AddressReach)
	Ack(storage.Message, storage.AckResult)
}

// Addresses says whether this host reaches its isolation addresses
// (quorum/isolation's Prober). Reached must not block.
type Addresses interface {
	// Configured: there are addresses to probe.
	Configured() bool
	// Reached is how long ago the latest probe round that reached one of
	// them started; false: none did yet.
	Reached() (ago time.Duration, ok bool)
}

// Mailboxes reads this host's mailbox and writes others' (*storage.LUN).
type Mailboxes interface {
	ReadMailbox(ctx context.Context, host int) (storage.Message, error)
	SendMessage(ctx context.Context, m storage.Message) (storage.Message, error)
}

// Membership is serf (*gossip.Agent, through a small adapter).
type Membership interface {
	// Alive is the set of host ids serf sees alive.
	Alive() quorum.Set
	// AskLease asks every member to grant this host a network lease and
	// returns the host ids that granted it.
	AskLease(ctx context.Context, req LeaseRequest) (quorum.Set, error)
}

// VMs is what the VM manager does for the heartbeat loop.
type VMs interface {
	// SelfFence destroys every protected VM on this host, now.
	SelfFence(ctx context.Context, reason string) error
	// ApplyIsolation applies each local protected VM's isolation response
	// (destroy and release its lease, or leave it running).
	ApplyIsolation(ctx context.Context, reason string) error
}

// PowerFencer powers a host off through its fence agent.
type PowerFencer interface {
	// PowerOff returns whether the agent confirmed the host is off.
	PowerOff(ctx context.Context, host int) (bool, error)
	// Fenceable lists the hosts that have a fence agent configured.
	Fenceable() quorum.Set
}

// Watchdog is petted while this host may run VMs and every loop progresses.
type Watchdog interface {
	Pet() error
}

// LeaseRequest is what a host without the LUN sends to ask for a lease.
type LeaseRequest struct {
	Host int    `json:"host"`
	Gen  uint64 `json:"gen"`
}

// Event is something the loop did or saw, for the event log.
type Event = quorum.Event

// Timings converts the LUN header's timing rule to the decision core's,
// with serf's failure-detection time, which the LUN does not hold.
func Timings(t storage.Timings, serfDetect time.Duration) quorum.Timings {
	return quorum.Timings{Renew: t.Renew, IOTimeout: t.IOTimeout, SelfFence: t.SelfFence, Watchdog: t.Watchdog,
		Dead: t.Dead, PowerFence: t.PowerFence, SerfDetect: serfDetect, LeaseCeiling: t.Ceiling()}
}

// Config configures a Loop.
type Config struct {
	Timings quorum.Timings
	Slot    Slot
	LUN     Mailboxes
	Serf    Membership
	VMs     VMs
	Power   PowerFencer // nil: no power fencing
	// Addresses are this host's isolation addresses; nil or not Configured: none
	// (the slot says so, and the lowest id breaks a tie as before).
	Addresses Addresses
	// Watchdog is petted after each decision that allows running VMs and
	// when Healthy says every loop of the daemon progresses. Nil: none.
	Watchdog Watchdog
	Healthy  func() bool
	// OnDecision receives every decision (the VM manager acts on it). It
	// must not block for long.
	OnDecision func(quorum.Decision)
	// OnEvent receives events; it must not block: the loop calls it from
	// its cycle. A writer that may block (the LUN's event ring) goes behind
	// an EventQueue, whose Push is OnEvent.
	OnEvent func(Event)
	// Announce is called after a heartbeat write that published a new dead
	// verdict; it must not block. The daemon wakes the other hosts with it,
	// so they read that verdict from the LUN now instead of at their next
	// cycle (up to R later). The wake carries no authority: what a host does
	// still follows only from what it reads on the LUN. Nil: no announcement.
	Announce func()
	Logger   *slog.Logger
	// Now reads this host's monotonic clock; nil: CLOCK_BOOTTIME since the
	// loop started (see bootClock).
	Now func() time.Duration
	// Header says why the LUN's header, as the latest read of the slots
	// found it, no longer matches the one read at start, or nil
	// (*storage.LUN.HeaderChanged: it does no I/O). Nil: not checked.
	Header func() error
	// Reads is how many reads of every slot Run makes per R: the renewal's,
	// and Reads-1 observation passes spread evenly between two renewals
	// (see Run). 0: by the number of slots in use (see readsPerRenew);
	// 1: no observation passes.
	Reads int
}

// Loop is one host's heartbeat loop. Create it with New, run it with Run.
// What it remembers between cycles lives in its quorum.Node; it keeps only
// the I/O, the timers and the goroutines that drive it.
type Loop struct {
	cfg  Config
	self int
	log  *slog.Logger

	mu      sync.Mutex // guards node and rawMail: lease grants and fence results touch them
	node    *quorum.Node
	rawMail storage.Message // the mailbox as read, to acknowledge
	kick    chan struct{}   // run a cycle now
	// gossipKeys are the gossip key fingerprints of the last read of the
	// slots, for status pages only: no decision reads them.
	gossipKeys map[int]uint64
}

// New checks cfg and returns a loop.
func New(cfg Config) (*Loop, error) {
	if err := cfg.Timings.Validate(); err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	if cfg.Slot == nil || cfg.LUN == nil || cfg.Serf == nil || cfg.VMs == nil {
		return nil, errors.New("heartbeat: Slot, LUN, Serf and VMs are required")
	}
	if cfg.Reads < 0 || cfg.Reads > maxReads {
		return nil, fmt.Errorf("heartbeat: reads per renewal %d: use 0 (by the slots in use) or 1..%d", cfg.Reads, maxReads)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = bootClock()
	}
	if cfg.OnEvent == nil {
		cfg.OnEvent = func(Event) {}
	}
	self := cfg.Slot.HostID()
	node := quorum.NewNode(quorum.NodeConfig{Self: self, Gen: cfg.Slot.Generation(), Timings: cfg.Timings}, cfg.Now())
	return &Loop{cfg: cfg, self: self, log: cfg.Logger.With("host", self), node: node, kick: make(chan struct{}, 1)}, nil
}

// locked runs f on the node under mu, then delivers the events it emitted.
func (l *Loop) locked(f func(n *quorum.Node)) {
	l.mu.Lock()
	f(l.node)
	ev := l.node.Events()
	l.mu.Unlock()
	for _, e := range ev {
		l.cfg.OnEvent(e)
	}
}

// Run renews the heartbeat every R until ctx ends. It returns nil when ctx
// ends, or an error when the slot was lost (the host has then self-fenced).
//
// Between two renewals it makes observation passes (see observationPass):
// reads of every slot, evenly spaced, that write nothing. A peer's heartbeat
// write is then seen, and its change stamped, at most R/reads after it
// landed instead of up to R: the dead verdict, D after that stamp, comes
// that much sooner.
// A pass that finds something a cycle would act on or publish (a verdict, a
// fence, a pill) runs a cycle at once. A pass never delays a renewal: it is
// abandoned when the renewal is due.
//
// A cycle also runs early when a stalled peer's heartbeat will have been
// unchanged for D before the next tick: the verdict then comes at D, not up
// to R later.
func (l *Loop) Run(ctx context.Context) error {
	for {
		start := time.Now()
		if err := l.Cycle(ctx); err != nil {
			return err
		}
		if err := l.between(ctx, start); err != nil {
			return nil // ctx ended
		}
	}
}

// between waits for the cycle after the one that started at start, making
// the observation passes due before it. It returns ctx's error when ctx ends.
func (l *Loop) between(ctx context.Context, start time.Time) error {
	r := l.cfg.Timings.Renew
	next := start.Add(r) // R after the last cycle, even an early one
	if now := time.Now(); next.Before(now) {
		next = now // a slow cycle: do not try to catch up
	}
	reads := l.readsPerRenew()
	for k := 1; ; k++ {
		wake, pass := next, false
		for ; k < reads; k++ {
			at := start.Add(r * time.Duration(k) / time.Duration(reads))
			if !at.After(time.Now()) {
				continue // after a slow read or cycle: no catching up
			}
			if at.Before(next) {
				wake, pass = at, true
			}
			break
		}
		if due, ok := l.nextVerdict(); ok {
			if at := time.Now().Add(due); !at.After(wake) {
				wake, pass = at, false
			}
		}
		t := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		case <-l.kick:
			t.Stop()
			return nil
		}
		if !pass {
			return nil
		}
		// The renewal is due at next whatever this read does.
		pctx, cancel := context.WithDeadline(ctx, next)
		cycle, read := l.observationPass(pctx)
		cancel()
		switch {
		case cycle:
			return nil
		case !read:
			reads = 0 // no more reads on a failing path before the cycle's own
		}
	}
}

// Kick runs a cycle now (a read of every slot, and a decision on it) instead
// of at the next tick. It never blocks; kicks before that cycle coalesce.
// Another host's wake (see Config.Announce) calls it.
func (l *Loop) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// nextVerdict is how long until some stalled peer's heartbeat will have
// been unchanged for D, if that is before the next regular cycle.
func (l *Loop) nextVerdict() (due time.Duration, ok bool) {
	fenceable := l.fenceable()
	now := l.cfg.Now()
	l.locked(func(n *quorum.Node) {
		n.SetFenceable(fenceable)
		due, ok = n.NextVerdict(now)
	})
	return due, ok
}

// fenceable lists the hosts with a fence agent (none without a fencer).
func (l *Loop) fenceable() quorum.Set {
	if l.cfg.Power == nil {
		return quorum.Set{}
	}
	return l.cfg.Power.Fenceable()
}

// maxReads bounds Config.Reads: more reads per R would load the LUN for
// little gain.
const maxReads = 8

// readsPerRenew is how many reads of every slot Run makes per R (see
// Config.Reads). By default: 4 while at most 8 slots are in use, 2 while at
// most 16, else 1 (no observation passes). One read is one I/O of every slot
// of the LUN, 4 KiB each: 64 KiB with the default 16 slots. Each host adds
// reads-1 of them per R: 8 hosts × 3 passes × 64 KiB = 1.5 MiB/s more reads
// on the LUN at R = 1 s, 16 hosts × 1 pass × 64 KiB = 1 MiB/s. A self-fenced
// host makes none: it decides nothing that a pass could speed up.
func (l *Loop) readsPerRenew() int {
	l.mu.Lock()
	used, fenced := l.node.SlotsInUse(), l.node.Fenced()
	l.mu.Unlock()
	switch {
	case fenced:
		return 1
	case l.cfg.Reads > 0:
		return l.cfg.Reads
	case used <= 8:
		return 4
	case used <= 16:
		return 2
	}
	return 1
}

// fenceFirst decides on what is already known before any I/O: a host that
// was frozen must fence itself before a write makes it look fresh, and
// before it acts on a read. It reports whether it self-fenced now.
func (l *Loop) fenceFirst(ctx context.Context) bool {
	fenced := l.isFenced()
	for _, a := range l.decide().Actions {
		if a.Kind == quorum.ActSelfFence {
			l.selfFence(ctx, a.Reason)
		}
	}
	return !fenced && l.isFenced()
}

// observationPass reads every slot without writing this host's own, and
// decides on what it read without acting on it: the read counts as a fresh
// read, never as a heartbeat write. It reports whether a cycle must run now
// (see quorum.Node.Urgent), and whether the read succeeded. The mailbox is left to the
// cycles, and so are the VM manager (OnDecision) and the watchdog.
func (l *Loop) observationPass(ctx context.Context) (cycle, read bool) {
	if l.fenceFirst(ctx) {
		return true, false // write "fenced" now
	}
	views, err := l.cfg.Slot.Observe(ctx)
	done := l.cfg.Now()
	if errors.Is(err, storage.ErrSlotLost) {
		return true, true // the cycle's renewal finds it too, and fences
	}
	if err != nil {
		l.log.Debug("observation pass failed", "err", err)
	}
	l.recordRead(done, views)
	if views == nil {
		return false, false
	}
	l.serfView()
	d := l.decide()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.node.Urgent(d), true
}

// Cycle runs one heartbeat cycle. Run calls it every R; tests may call it directly.
func (l *Loop) Cycle(ctx context.Context) error {
	l.fenceFirst(ctx)

	l.mu.Lock()
	w := l.node.SlotWrite() // w.Announce: this write carries a new verdict
	l.mu.Unlock()
	issued := l.cfg.Now()
	views, err := l.cfg.Slot.Renew(ctx)
	done := l.cfg.Now()
	var lost error
	switch {
	case errors.Is(err, storage.ErrSlotLost):
		lost = err
	case err != nil && views == nil:
		l.log.Warn("heartbeat read failed", "err", err)
	case err != nil:
		l.log.Warn("heartbeat write failed", "err", err)
	}

	l.recordRead(done, views)
	wrote := views != nil && err == nil
	if wrote {
		l.locked(func(n *quorum.Node) { n.Wrote(issued, w) })
	}
	if w.Announce && wrote && l.cfg.Announce != nil {
		l.cfg.Announce()
	}

	if views != nil {
		if m, err := l.cfg.LUN.ReadMailbox(ctx, l.self); err == nil {
			l.mu.Lock()
			l.rawMail = m
			l.node.Mail(quorum.Message{Kind: quorum.MessageKind(m.Type), From: m.From, ToGen: m.ToGen, Nonce: m.Nonce})
			l.mu.Unlock()
		} else {
			l.log.Warn("read mailbox", "err", err)
		}
	}
	l.serfView()

	if lost != nil {
		l.selfFence(ctx, "heartbeat slot lost: "+lost.Error())
		return lost
	}
	d := l.decide()
	l.execute(ctx, d)
	if d.MayRunVMs && !l.isFenced() && (l.cfg.Healthy == nil || l.cfg.Healthy()) && l.cfg.Watchdog != nil {
		if err := l.cfg.Watchdog.Pet(); err != nil {
			l.log.Error("pet watchdog", "err", err)
		}
	}
	if l.cfg.OnDecision != nil {
		l.cfg.OnDecision(d)
	}
	return nil
}

// recordRead records a read of every slot that ended at done: views nil
// if it failed.
func (l *Loop) recordRead(done quorum.Mono, views []storage.SlotView) {
	if views == nil {
		l.locked(func(n *quorum.Node) { n.ReadFailed(done) })
		return
	}
	why := ""
	if l.cfg.Header != nil {
		if err := l.cfg.Header(); err != nil {
			why = err.Error()
			var be *storage.BlockError
			if errors.As(err, &be) {
				why = be.Err.Error() // what it is, without the path
			}
		}
	}
	raws := make([]quorum.RawSlot, 0, len(views))
	keys := map[int]uint64{}
	for _, v := range views {
		if v.Err != nil || v.Empty {
			// Damaged or zeroed: a slot the node saw used keeps what it held.
			raws = append(raws, quorum.RawSlot{ID: v.HostID, Damaged: true})
			continue
		}
		if !v.Used() {
			continue
		}
		r := v.Record
		if r.State != storage.SlotLeft {
			keys[v.HostID] = r.GossipKey
		}
		raw := quorum.RawSlot{ID: v.HostID, Name: r.HostName, Gen: r.Generation, Seq: r.Beat(),
			State: quorum.SlotState(r.State), SerfView: quorum.Set(r.SerfView), Granted: quorum.Set(r.Granted),
			Ack: quorum.Ack{Kind: quorum.MessageKind(r.Ack.Type), Nonce: r.Ack.Nonce, Done: r.Ack.Result == storage.AckDone}}
		for _, vd := range r.Verdicts {
			raw.Dead = append(raw.Dead, quorum.Verdict{ID: vd.HostID, Gen: vd.Gen})
		}
		dm := r.Disarm
		raw.Disarm, raw.Disarmed = quorum.Disarm{Gen: dm.Gen, By: dm.By, For: dm.For, Reason: dm.Reason}, dm.Disarmed
		raw.Reach, raw.Records = quorum.Reach(r.Reach), r.Records
		raws = append(raws, raw)
	}
	changed := false
	l.locked(func(n *quorum.Node) {
		n.Read(done, raws)
		changed = n.HeaderChanged(why)
	})
	switch {
	case changed && why != "":
		l.log.Error("LUN header changed", "err", l.cfg.Header())
	case changed:
		l.log.Warn("LUN header is the one read at start again")
	}
	l.mu.Lock()
	l.gossipKeys = keys
	l.mu.Unlock()
}

// GossipKeys are the gossip key fingerprints the hosts published in their
// slots at the last read (hosts that left are not counted; 0: not published).
func (l *Loop) GossipKeys() map[int]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.gossipKeys)
}

// serfView gives the node serf's alive set.
func (l *Loop) serfView() {
	alive := l.cfg.Serf.Alive()
	now := l.cfg.Now()
	l.locked(func(n *quorum.Node) { n.Serf(now, alive) })
}

// input is what the next decision would read.
func (l *Loop) input() quorum.Input {
	fenceable := l.fenceable()
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.node.SetFenceable(fenceable)
	return l.node.Input(now)
}

// Input returns what the next decision would read (for status pages).
func (l *Loop) Input() quorum.Input { return l.input() }

func (l *Loop) decide() quorum.Decision {
	fenceable := l.fenceable()
	now := l.cfg.Now()
	configured, reachedAt := l.cfg.Addresses != nil && l.cfg.Addresses.Configured(), quorum.Never
	if configured {
		if ago, ok := l.cfg.Addresses.Reached(); ok {
			reachedAt = now - ago
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.node.SetFenceable(fenceable)
	quorum.ProbedAddresses(l.node, configured, reachedAt)
	return l.node.Decide(now)
}

// Decision returns the latest decision (false before the first).
func (l *Loop) Decision() (quorum.Decision, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.node.Last()
}

func (l *Loop) isFenced() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.node.Fenced()
}

// start asks the node whether to carry out a, and delivers its events.
func (l *Loop) start(a quorum.Action) (ok bool) {
	l.locked(func(n *quorum.Node) { ok = n.Start(a) })
	return ok
}

// execute carries out a decision's actions and publishes what it must.
func (l *Loop) execute(ctx context.Context, d quorum.Decision) {
	publish := false
	for _, a := range d.Actions {
		switch a.Kind {
		case quorum.ActSelfFence:
			l.selfFence(ctx, a.Reason)
		case quorum.ActApplyIsolation:
			l.applyIsolation(ctx, a)
		case quorum.AckTest:
			l.mu.Lock()
			msg := l.rawMail
			l.mu.Unlock()
			l.cfg.Slot.Ack(msg, storage.AckDone)
			l.start(a)
		case quorum.ActSendPill:
			l.sendPill(ctx, a)
		case quorum.ActPowerFence:
			l.powerFence(ctx, a)
		case quorum.ActDeclareDead:
			if l.start(a) {
				l.log.Warn("declared dead", "subject", a.Host, "gen", a.Gen, "reason", a.Reason)
				publish = true // write the new verdict now, not a cycle later
			}
		case quorum.ActRequestLease:
			l.requestLease(ctx, a)
		}
	}
	l.mu.Lock()
	l.node.Executed(d)
	w := l.node.SlotWrite()
	l.mu.Unlock()
	l.cfg.Slot.SetSerfView(storage.HostSet(w.SerfView))
	l.cfg.Slot.SetGranted(storage.HostSet(w.Granted))
	vs := make([]storage.Verdict, 0, len(w.Verdicts))
	for _, v := range w.Verdicts {
		vs = append(vs, storage.Verdict{HostID: v.ID, Gen: v.Gen})
	}
	l.cfg.Slot.SetVerdicts(vs)
	l.cfg.Slot.SetDisarm(storage.SlotDisarm{Gen: w.Disarm.Gen, By: w.Disarm.By, For: w.Disarm.For, Reason: w.Disarm.Reason, Disarmed: w.Disarmed})
	l.cfg.Slot.SetReach(storage.AddressReach(w.Reach))
	if publish {
		l.Kick()
	}
}

func (l *Loop) selfFence(ctx context.Context, reason string) {
	if !l.start(quorum.Action{Kind: quorum.ActSelfFence, Host: l.self, Reason: reason}) {
		return
	}
	l.log.Error("SELF-FENCE: destroying every protected VM on this host", "reason", reason)
	// Destroy first, report after: the daemon writes events to the LUN,
	// which may be the storage that hangs, for up to io_timeout.
	err := l.cfg.VMs.SelfFence(ctx, reason)
	if err != nil {
		// The watchdog, no longer petted, resets the host.
		l.log.Error("self-fence failed; the watchdog will reset this host", "err", err)
	}
	l.locked(func(n *quorum.Node) { n.SelfFenced(reason, err) })
	l.cfg.Slot.SetState(storage.SlotFenced)
}

// applyIsolation answers a poison pill in the background: the VM manager
// may need seconds (a step in progress holds its lock until the starts it
// launched return), and the heartbeat must not stop meanwhile, or the
// watchdog would reset a host that was only asked to stop some of its VMs.
// The acknowledgement is written by the cycle after it is done; until then
// the coordinator restarts nothing.
func (l *Loop) applyIsolation(ctx context.Context, a quorum.Action) {
	if !l.start(a) {
		return
	}
	l.mu.Lock()
	msg := l.rawMail
	l.mu.Unlock()
	l.log.Warn("poison pill: applying isolation responses", "reason", a.Reason)
	go func() {
		result := storage.AckDone
		err := l.cfg.VMs.ApplyIsolation(ctx, a.Reason)
		if err != nil {
			result = storage.AckFailed
		}
		l.locked(func(n *quorum.Node) { n.IsolationApplied(a, err) })
		if err != nil {
			// Could not stop what it was asked to stop: nothing else is safe.
			l.selfFence(ctx, "poison pill could not be applied: "+err.Error())
		}
		l.cfg.Slot.Ack(msg, result)
		l.Kick() // write the acknowledgement now
	}()
}

func (l *Loop) sendPill(ctx context.Context, a quorum.Action) {
	if !l.start(a) {
		return
	}
	m, err := l.cfg.LUN.SendMessage(ctx, storage.Message{Type: storage.MsgFence, From: l.self, FromGen: l.cfg.Slot.Generation(),
		To: a.Host, ToGen: a.Gen, Reason: truncate(a.Reason, 120)})
	if err != nil {
		l.log.Warn("send poison pill", "subject", a.Host, "err", err)
		return
	}
	l.locked(func(n *quorum.Node) { n.PillSent(a, m.Nonce) })
}

func (l *Loop) powerFence(ctx context.Context, a quorum.Action) {
	if l.cfg.Power == nil || !l.start(a) {
		return
	}
	go func() {
		ok, err := l.cfg.Power.PowerOff(ctx, a.Host)
		now := l.cfg.Now()
		l.mu.Lock()
		l.node.PowerFenced(now, a, ok, err)
		ev := l.node.Events()
		l.mu.Unlock()
		l.Kick() // decide on the result now, not at the next tick
		for _, e := range ev {
			l.cfg.OnEvent(e)
		}
	}()
}

// requestLease asks the others for a network lease, without blocking the loop.
func (l *Loop) requestLease(ctx context.Context, a quorum.Action) {
	if !l.start(a) {
		return
	}
	sent := l.cfg.Now()
	req := LeaseRequest{Host: l.self, Gen: l.cfg.Slot.Generation()}
	go func() {
		qctx, cancel := context.WithTimeout(ctx, l.cfg.Timings.IOTimeout)
		defer cancel()
		granters, err := l.cfg.Serf.AskLease(qctx, req)
		l.locked(func(n *quorum.Node) { n.LeaseAnswered(sent, granters, err) })
	}()
}

// Disarm accepts an operator's `ha disarm` (req.For > 0) or `ha arm` on
// this host (see quorum.Node.Disarm), and runs a cycle at once so that the
// request reaches the LUN now, not up to R later.
func (l *Loop) Disarm(req quorum.DisarmRequest) (dm quorum.Disarm, err error) {
	now := l.cfg.Now()
	l.locked(func(n *quorum.Node) { dm, err = n.Disarm(now, req) })
	if err == nil {
		l.Kick()
	}
	return dm, err
}

// ConfirmOff records an operator's word (by: who) that host is powered off
// (see quorum.Node.ConfirmOff), delivers its event, and runs a cycle at
// once: a coordinator declares the host dead now, not up to R later.
func (l *Loop) ConfirmOff(host int, by string) (quorum.Verdict, error) {
	now := l.cfg.Now()
	l.mu.Lock()
	v, err := l.node.ConfirmOff(now, host, by)
	ev := l.node.Events()
	l.mu.Unlock()
	for _, e := range ev {
		l.cfg.OnEvent(e)
	}
	if err == nil {
		l.Kick()
	}
	return v, err
}

// DisarmStatus is this host's disarm state now, with the time left.
func (l *Loop) DisarmStatus() (quorum.DisarmStatus, time.Duration) {
	now := l.cfg.Now()
	var st quorum.DisarmStatus
	l.locked(func(n *quorum.Node) { st = n.DisarmStatus(now) })
	if !st.Disarmed {
		return st, 0
	}
	return st, st.Until - now
}

// GrantLease answers another host's lease request: it grants when this
// host's latest decision allows it, and then promises (by publishing the
// grant in its slot) not to declare that host dead while the lease may run.
func (l *Loop) GrantLease(req LeaseRequest) (bool, string) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.node.Grant(now, req.Host, req.Gen)
}

// EncodeLeaseRequest and DecodeLeaseRequest are the wire form of a request.
func EncodeLeaseRequest(r LeaseRequest) []byte { b, _ := json.Marshal(r); return b }

// DecodeLeaseRequest parses a lease request.
func DecodeLeaseRequest(b []byte) (LeaseRequest, error) {
	var r LeaseRequest
	if err := json.Unmarshal(b, &r); err != nil || r.Host < 1 || r.Host > 255 {
		return r, fmt.Errorf("bad lease request %q", b)
	}
	return r, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

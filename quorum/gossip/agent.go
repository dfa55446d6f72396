package gossip

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

const (
	// eventBuffer is the buffer between serf and the drain; the drain never
	// blocks, so it only absorbs bursts while the drain is scheduled.
	eventBuffer = 1024
	// maxQueryHandlers bounds the query handlers running at once; queries
	// beyond it are dropped (and counted) rather than queued behind slow ones.
	maxQueryHandlers = 16
)

// ErrShutdown is returned by operations on an agent that was shut down.
var ErrShutdown = errors.New("gossip agent shut down")

// Status is what serf says about a member.
type Status int

// Member statuses, mapped from serf's. Serf's (memberlist's) "suspect" phase
// is internal to memberlist: a suspect member stays StatusAlive until the
// suspicion timeout marks it StatusFailed.
const (
	StatusUnknown Status = iota
	// StatusAlive: serf hears from the member.
	StatusAlive
	// StatusLeaving: the member announced it is leaving gracefully.
	StatusLeaving
	// StatusLeft: the member left gracefully.
	StatusLeft
	// StatusFailed: serf stopped hearing from the member. A hint only: the
	// member may be dead, or alive and cut off from us.
	StatusFailed
)

func (s Status) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusLeaving:
		return "leaving"
	case StatusLeft:
		return "left"
	case StatusFailed:
		return "failed"
	}
	return "unknown"
}

func statusFromSerf(s serf.MemberStatus) Status {
	switch s {
	case serf.StatusAlive:
		return StatusAlive
	case serf.StatusLeaving:
		return StatusLeaving
	case serf.StatusLeft:
		return StatusLeft
	case serf.StatusFailed:
		return StatusFailed
	}
	return StatusUnknown
}

// Member is one host as serf sees it.
type Member struct {
	// Name is the member's serf node name.
	Name string
	// HostID is the host id from its tags; 0 when TagsErr is set.
	HostID int
	// Addr is the address serf reaches it at.
	Addr netip.AddrPort
	// Status is serf's view of it.
	Status Status
	// Tags are its decoded tags; zero when TagsErr is set.
	Tags Tags
	// TagsErr is set when its tags could not be decoded (wrapping ErrBadTags)
	// or when another live member claims the same host id (wrapping
	// ErrDuplicateHostID). Such a member is left out of AliveSet.
	TagsErr error
}

// ErrDuplicateHostID marks members that claim a host id another live member
// also claims: a configuration error to fix, not a host to trust.
var ErrDuplicateHostID = errors.New("duplicate host id")

// Stats counts what the event drain did, for metrics and tests.
type Stats struct {
	// MemberEvents is the number of membership events serf delivered.
	MemberEvents uint64
	// NotificationsCoalesced counts change notifications merged into one
	// still pending for a subscriber that had not read it yet.
	NotificationsCoalesced uint64
	// QueriesHandled is the number of queries given to a handler (or
	// answered "no handler").
	QueriesHandled uint64
	// QueriesDropped counts queries left unanswered because
	// maxQueryHandlers handlers were still running.
	QueriesDropped uint64
	// OtherEvents counts serf events this package ignores (user events).
	OtherEvents uint64
}

// Agent is this host's serf agent. Its methods are safe for concurrent use.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	serf   *serf.Serf
	events chan serf.Event

	stop         chan struct{} // closed by Shutdown
	shutdownOnce sync.Once
	joinCancel   context.CancelFunc
	joinDone     chan struct{} // closed when the join loop ends
	joinErr      error         // set before joinDone is closed
	wg           sync.WaitGroup

	// queryMu serializes serf.Query: serf stamps a query with its query
	// clock's time and only advances the clock inside Query, so two queries
	// sent at once can carry the same time, under which serf files their
	// answers: the first one's answers are then dropped ("query reply ID
	// mismatch") and it waits out its whole timeout.
	queryMu sync.Mutex

	keyring *memberlist.Keyring // nil without encryption

	mu       sync.Mutex
	tags     Tags
	subs     map[chan struct{}]struct{}
	handlers map[string]QueryHandler

	joinAttempts                                                    atomic.Int64
	querySlots                                                      chan struct{}
	memberEvents, coalesced, queriesHandled, queriesDropped, others atomic.Uint64
}

// Start validates cfg, loads the keys, starts the serf agent and, when
// cfg.Join lists peers, joins them in the background until one answers,
// cfg.JoinRetryMax attempts failed, or ctx ends (see WaitJoined). ctx bounds
// only the joining; stop the agent with Leave and Shutdown.
func Start(ctx context.Context, cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	keys, err := cfg.loadKeys()
	if err != nil {
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	if keys == nil && !cfg.Insecure {
		return nil, fmt.Errorf("start gossip: no key: %w", ErrInvalidConfig)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("subsystem", "gossip")
	cfg.Tags.HostID = cfg.HostID
	tagMap, err := cfg.Tags.Encode()
	if err != nil {
		return nil, fmt.Errorf("start gossip: %w", err)
	}

	a := &Agent{
		cfg:        cfg,
		log:        logger,
		events:     make(chan serf.Event, eventBuffer),
		stop:       make(chan struct{}),
		joinDone:   make(chan struct{}),
		tags:       cfg.Tags,
		subs:       make(map[chan struct{}]struct{}),
		handlers:   make(map[string]QueryHandler),
		querySlots: make(chan struct{}, maxQueryHandlers),
	}
	// The drain runs before serf exists: serf emits events while starting.
	a.wg.Add(1)
	go a.drain()

	sc, err := serfConfig(cfg, keys, tagMap, a.events, newStdLogger(logger))
	if err != nil {
		close(a.stop)
		a.wg.Wait()
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	s, err := serf.Create(sc)
	if err != nil {
		close(a.stop)
		a.wg.Wait()
		return nil, fmt.Errorf("start serf on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	a.serf, a.keyring = s, sc.MemberlistConfig.Keyring
	if keys == nil {
		logger.Warn("gossip is NOT encrypted (Insecure): anyone on the network can join; never use this in production")
	}

	peers := a.otherPeers(cfg.Join)
	if len(peers) == 0 {
		a.joinCancel = func() {}
		close(a.joinDone)
		return a, nil
	}
	jctx, cancel := context.WithCancel(ctx)
	a.joinCancel = cancel
	a.wg.Add(1)
	go a.joinLoop(jctx, peers)
	return a, nil
}

func serfConfig(cfg Config, keys [][]byte, tags map[string]string, events chan<- serf.Event, logger *log.Logger) (*serf.Config, error) {
	ml := memberlist.DefaultLANConfig()
	ml.Name = cfg.NodeName
	ml.BindAddr = cfg.BindAddr
	ml.BindPort = cfg.BindPort
	ml.AdvertiseAddr = cfg.AdvertiseAddr
	ml.AdvertisePort = cfg.AdvertisePort
	if ml.AdvertisePort == 0 {
		ml.AdvertisePort = cfg.BindPort
	}
	t := cfg.Timing
	ml.ProbeInterval = t.ProbeInterval
	ml.ProbeTimeout = t.ProbeTimeout
	ml.SuspicionMult = t.SuspicionMult
	ml.SuspicionMaxTimeoutMult = t.SuspicionMaxTimeoutMult
	ml.GossipInterval = t.GossipInterval
	ml.PushPullInterval = t.PushPullInterval
	ml.TCPTimeout = t.TCPTimeout
	// Keep gossiping to a dead host for as long as a push-pull period, so a
	// host wrongly marked failed hears about it and refutes.
	ml.GossipToTheDeadTime = t.PushPullInterval
	if len(keys) > 0 {
		kr, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return nil, fmt.Errorf("build keyring: %w", err)
		}
		ml.Keyring = kr
		// Refuse plaintext both ways: a host without the key is not a member.
		ml.GossipVerifyIncoming = true
		ml.GossipVerifyOutgoing = true
	}

	sc, err := serfDefaults()
	if err != nil {
		return nil, err
	}
	sc.NodeName = cfg.NodeName
	sc.Tags = tags
	sc.EventCh = events
	sc.MemberlistConfig = ml
	sc.SnapshotPath = cfg.SnapshotPath
	sc.RejoinAfterLeave = false
	sc.KeyringFile = cfg.KeyringFile
	sc.ReconnectInterval = t.ReconnectInterval
	sc.ReconnectTimeout = t.ReconnectTimeout
	sc.LeavePropagateDelay = t.LeavePropagateDelay
	// SetTags waits this long for its broadcast to go out (serf's default is
	// 5 s). wingmand sets tags while it starts, with its watchdog armed at
	// the same 5 s: under load a start that waited the full default let the
	// watchdog expire. The tags are applied locally at once and spread by
	// gossip anyway; only the wait is bounded.
	sc.BroadcastTimeout = 2 * time.Second
	sc.ValidateNodeNames = true
	sc.Logger = logger
	ml.Logger = logger
	return sc, nil
}

// serfDefaults is serf.DefaultConfig, which panics when the hostname cannot
// be read; a bad environment must not crash the daemon.
func serfDefaults() (sc *serf.Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serf default config: %v", r)
		}
	}()
	return serf.DefaultConfig(), nil
}

// otherPeers drops this agent's own address from the join list.
func (a *Agent) otherPeers(join []string) []string {
	self := a.Addr()
	var out []string
	for _, p := range join {
		host, portStr, err := net.SplitHostPort(p)
		port := a.cfg.BindPort
		if err != nil {
			host = p
		} else if n, err := strconv.Atoi(portStr); err == nil {
			port = n
		}
		if ip, err := netip.ParseAddr(host); err == nil && port == int(self.Port()) &&
			(ip.Unmap() == self.Addr() || ip.IsUnspecified()) {
			continue
		}
		out = append(out, p)
	}
	return out
}

func (a *Agent) joinLoop(ctx context.Context, peers []string) {
	defer a.wg.Done()
	defer close(a.joinDone)
	var last error
	for attempt := 1; ; attempt++ {
		a.joinAttempts.Add(1)
		n, err := a.serf.Join(peers, true)
		if err == nil && n > 0 && a.serf.NumNodes() > 1 {
			a.log.Info("joined the cluster", "peers_answered", n, "attempt", attempt)
			return
		}
		if err == nil {
			err = errors.New("no peer answered")
		}
		last = err
		a.log.Warn("join failed; retrying", "peers", peers, "attempt", attempt, "err", err)
		if a.cfg.JoinRetryMax > 0 && attempt >= a.cfg.JoinRetryMax {
			a.joinErr = fmt.Errorf("join %v: gave up after %d attempts%s: %w", peers, attempt, keyHint(last), last)
			return
		}
		timer := time.NewTimer(a.cfg.JoinRetryInterval)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			a.joinErr = fmt.Errorf("join %v: stopped after %d attempts (%v): %w", peers, attempt, last, ctx.Err())
			return
		}
	}
}

// keyHint points at the usual cause of a join refused for encryption.
func keyHint(err error) string {
	if strings.Contains(err.Error(), "crypt") {
		return " (the peers use another gossip key, or none: every host needs the same key)"
	}
	return ""
}

// WaitJoined waits until the background join ends: nil once a peer answered
// (or when there was nobody to join), the reason otherwise. It returns
// ctx's error if ctx ends first.
func (a *Agent) WaitJoined(ctx context.Context) error {
	select {
	case <-a.joinDone:
		return a.joinErr
	case <-ctx.Done():
		return fmt.Errorf("wait for join: %w", ctx.Err())
	}
}

// Name is this agent's node name.
func (a *Agent) Name() string { return a.cfg.NodeName }

// Addr is the address peers reach this agent at (with the port picked at
// start when Config.BindPort was 0).
func (a *Agent) Addr() netip.AddrPort {
	m := a.serf.LocalMember()
	return addrPort(m.Addr, m.Port)
}

func addrPort(ip net.IP, port uint16) netip.AddrPort {
	addr, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(addr.Unmap(), port)
}

// Tags returns the tags this agent advertises.
func (a *Agent) Tags() Tags {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tags
}

// SetTags replaces the tags this agent advertises (HostID is kept) and
// waits until the change is broadcast. Tags that do not fit are refused
// with an error wrapping ErrTagsTooLarge and the old ones stay.
func (a *Agent) SetTags(t Tags) error {
	t.HostID = a.cfg.HostID
	m, err := t.Encode()
	if err != nil {
		return fmt.Errorf("set tags: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.serf.SetTags(m); err != nil {
		return fmt.Errorf("set tags: %w", err)
	}
	a.tags = t
	return nil
}

// Members returns a snapshot of every member serf knows, this host included,
// sorted by name.
func (a *Agent) Members() []Member {
	sms := a.serf.Members()
	out := make([]Member, 0, len(sms))
	for _, sm := range sms {
		m := Member{
			Name:   sm.Name,
			Addr:   addrPort(sm.Addr, sm.Port),
			Status: statusFromSerf(sm.Status),
		}
		if t, err := DecodeTags(sm.Tags); err != nil {
			m.TagsErr = fmt.Errorf("member %s: %w", sm.Name, err)
		} else {
			m.Tags, m.HostID = t, t.HostID
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(x, y Member) int {
		switch {
		case x.Name < y.Name:
			return -1
		case x.Name > y.Name:
			return 1
		}
		return 0
	})
	// Two live members with one host id: trust neither.
	claims := map[int][]int{}
	for i, m := range out {
		if m.TagsErr == nil && (m.Status == StatusAlive || m.Status == StatusLeaving) {
			claims[m.HostID] = append(claims[m.HostID], i)
		}
	}
	for id, idx := range claims {
		if len(idx) < 2 {
			continue
		}
		for _, i := range idx {
			out[i].TagsErr = fmt.Errorf("member %s: host id %d claimed by %d live members: %w",
				out[i].Name, id, len(idx), ErrDuplicateHostID)
		}
	}
	return out
}

// AliveSet returns the host ids of the members serf reports alive (not
// leaving, left or failed) with valid tags, this host included. A hint: see
// the package doc.
func (a *Agent) AliveSet() map[int]bool {
	set := map[int]bool{}
	for _, m := range a.Members() {
		if m.Status == StatusAlive && m.TagsErr == nil {
			set[m.HostID] = true
		}
	}
	return set
}

// Subscribe returns a channel that receives a value after membership
// changes (a member joined, left, failed, or changed its tags); read
// Members for the new picture. Notifications coalesce: a subscriber that
// reads slowly gets one notification for many changes and never holds up
// serf. Call cancel when done.
func (a *Agent) Subscribe() (changed <-chan struct{}, cancel func()) {
	ch := make(chan struct{}, 1)
	a.mu.Lock()
	a.subs[ch] = struct{}{}
	a.mu.Unlock()
	return ch, func() {
		a.mu.Lock()
		delete(a.subs, ch)
		a.mu.Unlock()
	}
}

// Stats returns the event drain's counters.
func (a *Agent) Stats() Stats {
	return Stats{
		MemberEvents:           a.memberEvents.Load(),
		NotificationsCoalesced: a.coalesced.Load(),
		QueriesHandled:         a.queriesHandled.Load(),
		QueriesDropped:         a.queriesDropped.Load(),
		OtherEvents:            a.others.Load(),
	}
}

// drain empties serf's event channel without ever blocking on a consumer:
// serf stalls when its EventCh is full.
func (a *Agent) drain() {
	defer a.wg.Done()
	for {
		select {
		case <-a.stop:
			return
		case e := <-a.events:
			switch e := e.(type) {
			case serf.MemberEvent:
				a.memberEvents.Add(1)
				a.notify()
			case *serf.Query:
				a.dispatchQuery(e)
			default:
				a.others.Add(1)
			}
		}
	}
}

func (a *Agent) notify() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ch := range a.subs {
		select {
		case ch <- struct{}{}:
		default:
			a.coalesced.Add(1)
		}
	}
}

// Leave announces to the cluster that this host leaves gracefully (peers
// then mark it left, not failed) and waits for the announcement to spread,
// or for ctx to end. Call Shutdown afterwards.
func (a *Agent) Leave(ctx context.Context) error {
	a.joinCancel()
	done := make(chan error, 1)
	go func() { done <- a.serf.Leave() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("leave cluster: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("leave cluster: %w", ctx.Err())
	}
}

// Shutdown stops the agent at once, without telling anyone: peers will mark
// it failed. Query handlers still running are not waited for (their answers
// are dropped). Safe to call more than once.
func (a *Agent) Shutdown() error {
	var err error
	a.shutdownOnce.Do(func() {
		a.joinCancel()
		if e := a.serf.Shutdown(); e != nil {
			err = fmt.Errorf("shut down serf: %w", e)
		}
		close(a.stop)
		a.wg.Wait()
	})
	return err
}

package notify

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

// Records are the cluster records on the LUN: the settings (targets) and
// the incident ledger (*storage.ClusterRecords).
type Records interface {
	Ledger
	Settings(ctx context.Context) (storage.ClusterSettings, error)
	UpdateSettings(ctx context.Context, me int, change func(*storage.ClusterSettings) error) (storage.ClusterSettings, error)
}

// EventSource reads what the incidents are made of (*storage.LUN).
type EventSource interface {
	ReadEvents(ctx context.Context, since time.Time) ([]storage.Event, error)
	ReadVMs(ctx context.Context) ([]storage.VMRecord, []error)
}

// Cluster is this host's view of the cluster: its last decision.
type Cluster interface {
	Decision() quorum.Decision
}

// Reporter writes an event to this host's ring on the LUN.
type Reporter interface {
	Event(sev storage.Severity, kind string, vm storage.UUID, subject int, format string, a ...any)
}

// Checks returns the warning conditions this host sends: its own, and the
// cluster-wide ones when it is the coordinator.
type Checks func(ctx context.Context, coordinator bool) []Check

// ServiceConfig configures a Service. Zero durations take the defaults.
type ServiceConfig struct {
	Cluster  string
	HostName string
	HostID   int
	// Every is the interval of the incident rounds (default 5 s);
	// WarnEvery the interval of the warning checks (default 30 s).
	Every, WarnEvery time.Duration
	Horizon          time.Duration // DefaultHorizon
	Repeat, Hold     time.Duration // DefaultWarningRepeat, DefaultWarningHold
	TestTimeout      time.Duration // bounds Test (default 30 s)
	Sender           Config        // its OnResult is the Service's
	OnResult         func(Result)  // optional: told of every attempt too (metrics)
	Log              *slog.Logger
}

// Count is what the deliveries to one target did since the daemon started.
type Count struct {
	Sent    uint64 `json:"sent"`    // notifications delivered
	Failed  uint64 `json:"failed"`  // attempts that failed
	GaveUp  uint64 `json:"gave_up"` // notifications not delivered: attempts exhausted, queue full, closed
	Retries uint64 `json:"retried"` // attempts after the first
}

// TestResult is what a test notification did at one target.
type TestResult struct {
	Target string
	Kind   string
	Err    error
	Took   time.Duration
}

// Service runs the notifications of one host: every Every, if this host
// is the coordinator, a Round of the incidents; every WarnEvery, the
// warnings it owns. It runs on its own goroutine (Run) and sends through a
// Sender, so neither a slow LUN read nor a hanging target ever reaches the
// heartbeat or a failover. Every delivery attempt becomes an event on this
// host's ring and a count.
type Service struct {
	cfg     ServiceConfig
	rec     Records
	src     EventSource
	cluster Cluster
	rep     Reporter
	checks  Checks
	sender  *Sender

	mu     sync.Mutex
	counts map[string]Count
	seen   map[string]Check // warning conditions as last seen, for Since
}

// NewService returns a Service; Run runs it.
func NewService(cfg ServiceConfig, rec Records, src EventSource, cluster Cluster, rep Reporter, checks Checks) (*Service, error) {
	if cfg.Every <= 0 {
		cfg.Every = 5 * time.Second
	}
	if cfg.WarnEvery <= 0 {
		cfg.WarnEvery = 30 * time.Second
	}
	if cfg.Hold == 0 {
		cfg.Hold = DefaultWarningHold
	}
	if cfg.TestTimeout <= 0 {
		cfg.TestTimeout = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, rec: rec, src: src, cluster: cluster, rep: rep, checks: checks,
		counts: map[string]Count{}, seen: map[string]Check{}}
	cfg.Sender.OnResult = s.onResult
	sender, err := NewSender(cfg.Sender)
	if err != nil {
		return nil, err
	}
	s.sender = sender
	return s, nil
}

// Run runs the rounds until ctx ends, then stops the deliveries.
func (s *Service) Run(ctx context.Context) {
	defer s.sender.Close()
	rounds, warns := time.NewTicker(s.cfg.Every), time.NewTicker(s.cfg.WarnEvery)
	defer rounds.Stop()
	defer warns.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rounds.C:
			s.step(ctx, false)
		case <-warns.C:
			s.step(ctx, true)
		}
	}
}

// step runs one round of the incidents, or of the warnings, bounded in
// time, and logs what failed (the next round tries again).
func (s *Service) step(ctx context.Context, warnings bool) {
	ctx, cancel := context.WithTimeout(ctx, max(s.cfg.Every, 30*time.Second))
	defer cancel()
	var err error
	if warnings {
		_, err = s.WarningRound(ctx, time.Now())
	} else {
		_, err = s.IncidentRound(ctx, time.Now())
	}
	if err != nil && ctx.Err() == nil {
		s.cfg.Log.Warn("notifications", "err", err)
	}
}

// coordinator reports whether this host coordinates a quorate partition,
// and the decision.
func (s *Service) coordinator() (quorum.Decision, bool) {
	dec := s.cluster.Decision()
	return dec, dec.Quorate && dec.Coordinator == s.cfg.HostID
}

// IncidentRound sends, if this host is the coordinator and targets exist,
// the incidents and "resolved" messages that are due (Round), and returns
// them.
func (s *Service) IncidentRound(ctx context.Context, now time.Time) ([]Notification, error) {
	dec, coord := s.coordinator()
	if !coord {
		return nil, nil
	}
	set, err := s.rec.Settings(ctx)
	if err != nil || len(set.Targets) == 0 {
		return nil, err
	}
	evs, err := s.src.ReadEvents(ctx, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("notify: read events: %w", err)
	}
	facts := Facts{Events: evs, HostNames: map[int]string{}, VMNames: map[storage.UUID]string{}, Now: now}
	for _, h := range dec.Hosts {
		facts.HostNames[h.ID] = h.Name
	}
	recs, _ := s.src.ReadVMs(ctx) // a VM without its record reads as its UUID
	for _, r := range recs {
		if r.Config != nil {
			facts.VMNames[r.Config.UUID] = r.Config.Name
		}
	}
	return Round(ctx, s.rec, s.cfg.HostID, facts, s.cfg.Horizon, s.cfg.Cluster, s.cfg.HostName, set.Targets, s.sender)
}

// WarningRound sends the warnings this host owns that are due
// (DueWarnings): its own, and the cluster-wide ones if it is the
// coordinator. It claims them in the ledger first, as Round does.
func (s *Service) WarningRound(ctx context.Context, now time.Time) ([]Notification, error) {
	// Targets first: the checks cost LUN reads (the capacity check reads
	// every VM record), which a cluster without targets need not pay.
	set, err := s.rec.Settings(ctx)
	if err != nil || len(set.Targets) == 0 {
		return nil, err
	}
	_, coord := s.coordinator()
	checks := s.track(s.checks(ctx, coord), now)
	return claimThenSend(ctx, s.rec, s.cfg.HostID, "warnings", set.Targets, s.sender, func(led storage.IncidentLedger) (storage.IncidentLedger, []Notification) {
		steps := DueWarnings(checks, led, s.cfg.HostID, now, s.cfg.Repeat, s.cfg.Hold)
		ns := make([]Notification, 0, len(steps))
		for _, st := range steps {
			ns = append(ns, ForWarning(st, s.cfg.Cluster, s.cfg.HostName))
		}
		return RecordWarnings(led, steps), ns
	})
}

// track gives each check the time its state began, as this host saw it.
func (s *Service) track(checks []Check, now time.Time) []Check {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range checks {
		k := c.Host + "/" + c.Key
		if prev, ok := s.seen[k]; ok && prev.Active == c.Active {
			checks[i].Since = prev.Since
		} else {
			checks[i].Since = now
			s.seen[k] = checks[i]
		}
	}
	return checks
}

func (s *Service) onResult(r Result) {
	s.mu.Lock()
	c := s.counts[r.Target]
	switch {
	case r.Err == nil:
		c.Sent++
	case r.Attempt > 0:
		c.Failed++
	}
	if r.Err != nil && r.Final {
		c.GaveUp++
	}
	if r.Attempt > 1 {
		c.Retries++
	}
	s.counts[r.Target] = c
	s.mu.Unlock()
	if s.cfg.OnResult != nil {
		s.cfg.OnResult(r)
	}
	switch {
	case r.Err == nil:
		s.rep.Event(storage.SevInfo, "notify-sent", storage.UUID{}, 0, "%s to target %s (%s): delivered in %v, attempt %d",
			r.ID, r.Target, r.Kind, r.Took.Round(time.Millisecond), r.Attempt)
	case r.Final:
		s.rep.Event(storage.SevError, "notify-failed", storage.UUID{}, 0, "%s to target %s (%s) not delivered: %v", r.ID, r.Target, r.Kind, r.Err)
	default:
		s.rep.Event(storage.SevWarning, "notify-failed", storage.UUID{}, 0, "%s to target %s (%s): attempt %d failed, retrying: %v",
			r.ID, r.Target, r.Kind, r.Attempt, r.Err)
	}
}

// Counts returns the counts of every target that was tried, by name.
func (s *Service) Counts() map[string]Count {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Count, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// TargetStatus is a target and what this host delivered to it.
type TargetStatus struct {
	storage.NotifyTarget
	Count Count
	Tried bool // this host tried it since it started
}

// Targets returns the targets stored on the LUN, with this host's counts.
func (s *Service) Targets(ctx context.Context) ([]TargetStatus, error) {
	set, err := s.rec.Settings(ctx)
	counts := s.Counts()
	out := make([]TargetStatus, 0, len(set.Targets))
	for _, t := range set.Targets {
		c, tried := counts[t.Name]
		out = append(out, TargetStatus{NotifyTarget: t, Count: c, Tried: tried})
	}
	return out, err
}

// AddTarget validates t on this host (its secret file must exist here)
// and adds it to the cluster settings.
func (s *Service) AddTarget(ctx context.Context, t storage.NotifyTarget) error {
	_, err := s.rec.UpdateSettings(ctx, s.cfg.HostID, func(set *storage.ClusterSettings) error { return AddTarget(set, t) })
	return err
}

// RemoveTarget removes the target named name from the cluster settings.
func (s *Service) RemoveTarget(ctx context.Context, name string) error {
	_, err := s.rec.UpdateSettings(ctx, s.cfg.HostID, func(set *storage.ClusterSettings) error { return RemoveTarget(set, name) })
	return err
}

// Test sends a test notification to every target, or to the one named,
// all at once, and waits for each (one attempt, at most TestTimeout).
// Each result is also an event and a count.
func (s *Service) Test(ctx context.Context, name string) ([]TestResult, error) {
	set, err := s.rec.Settings(ctx)
	if err != nil {
		return nil, err
	}
	targets := set.Targets
	if name != "" {
		i := slices.IndexFunc(targets, func(t storage.NotifyTarget) bool { return t.Name == name })
		if i < 0 {
			return nil, RemoveTarget(&storage.ClusterSettings{Targets: targets}, name) // its "no such target" error
		}
		targets = targets[i : i+1]
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: none is configured; add one with `wingman notify add`", ErrNoTarget)
	}
	now := time.Now()
	n := TestNotification(s.cfg.Cluster, s.cfg.HostName, fmt.Sprintf("test-%s-%d", s.cfg.HostName, now.UnixMilli()), now)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.TestTimeout)
	defer cancel()
	out := make([]TestResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			start := time.Now()
			err := DeliverNow(ctx, t, n, s.cfg.Sender.TLS)
			out[i] = TestResult{Target: t.Name, Kind: t.Kind, Err: err, Took: time.Since(start)}
			s.onResult(Result{Target: t.Name, Kind: t.Kind, ID: n.ID, Attempt: 1, Final: true, Err: err, Took: out[i].Took})
		})
	}
	wg.Wait()
	return out, nil
}

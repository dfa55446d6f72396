// Package quarantine runs the quarantine of flapping hosts on one host: as
// coordinator, it counts the cluster's verdicts and applied poison pills
// and quarantines a host that flaps too often (quorum.QuarantineStep, on
// the record the LUN's cluster settings hold); on every host, it keeps the
// quarantined set that placement reads (vm.Config.Quarantined), carries out
// the operator's `wingman host quarantine|unquarantine`, reports a warning
// notification per quarantined host (vm/notify), and, when
// quarantine.migrate_away is on and this host is quarantined, moves its
// protected VMs away by live migration only, as maintenance mode does.
//
// It never stops, restarts or destroys a guest, and it counts no restart
// of wingmand that the cluster did not declare dead (DESIGN.md promise 6).
package quarantine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/notify"
)

// Records is the LUN's settings record (*storage.ClusterRecords).
type Records interface {
	Settings(ctx context.Context) (storage.ClusterSettings, error)
	UpdateSettings(ctx context.Context, me int, change func(*storage.ClusterSettings) error) (storage.ClusterSettings, error)
}

// Cluster is this host's view of the cluster.
type Cluster interface {
	Decision() quorum.Decision
	// ResolveHost finds a host by name or id (an error that says which
	// hosts there are).
	ResolveHost(nameOrID string) (quorum.Host, error)
}

// Evacuator live-migrates this host's protected VMs away (*vm.Manager).
type Evacuator interface {
	Evacuate(ctx context.Context, dec quorum.Decision, opts vm.EvacuateOptions) error
}

// Policy is the cluster-wide quarantine policy (vm/settings).
type Policy struct {
	quorum.QuarantineConfig
	// MigrateAway: a quarantined host's protected VMs leave it by live
	// migration, Parallel at a time.
	MigrateAway bool
	Parallel    int
}

// Config configures a Service.
type Config struct {
	HostID int
	// Policy returns the policy in force, read at every round.
	Policy func() Policy
	// Every is the interval of the rounds (default DefaultEvery); Observe
	// that of the looks at the decision between them (default
	// DefaultObserve), which must be shorter than the time between two
	// poison pills of one host (serf's detection plus the pill's grace).
	Every, Observe time.Duration
	// RetryAway is how long a failed migration away waits before the next
	// try (default DefaultRetryAway).
	RetryAway time.Duration
	Log       *slog.Logger
}

// Defaults of Config.
const (
	DefaultEvery     = 10 * time.Second // as vm/settings reads the same record
	DefaultObserve   = time.Second
	DefaultRetryAway = time.Minute
)

// WarnQuarantine is the key of the warning notification of a quarantined host.
const WarnQuarantine = "quarantine"

// Service runs the quarantine on one host. Its methods are safe for
// concurrent use.
type Service struct {
	cfg  Config
	rec  Records
	cl   Cluster
	rep  notify.Reporter
	away Evacuator

	mu      sync.Mutex
	record  quorum.QuarantineRecord
	seen    []quorum.Flap // signs of flaps observed since the last round that wrote them
	moving  bool          // a migration away is under way
	awayErr time.Time     // when the last migration away failed
	lastErr string
}

// New returns the service of host cfg.HostID.
func New(cfg Config, rec Records, cl Cluster, rep notify.Reporter, away Evacuator) *Service {
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Observe <= 0 {
		cfg.Observe = DefaultObserve
	}
	if cfg.RetryAway <= 0 {
		cfg.RetryAway = DefaultRetryAway
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Policy == nil {
		cfg.Policy = func() Policy { return Policy{QuarantineConfig: quorum.DefaultQuarantineConfig()} }
	}
	return &Service{cfg: cfg, rec: rec, cl: cl, rep: rep, away: away}
}

// Run observes the decision every Observe and runs a Round every Every
// until ctx ends.
func (s *Service) Run(ctx context.Context) {
	t, look := time.NewTicker(s.cfg.Every), time.NewTicker(s.cfg.Observe)
	defer t.Stop()
	defer look.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-look.C:
			s.Observe(s.cl.Decision(), time.Now())
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, s.cfg.Every)
			s.Round(rctx)
			cancel()
		}
	}
}

// maxSeen bounds the flaps kept between rounds; seenFor is how long one
// is kept when this host does not write it (it does not coordinate): a
// host that becomes coordinator counts what it saw just before, and the
// record's markers keep what the last coordinator counted from counting
// twice.
const (
	maxSeen = 256
	seenFor = time.Minute
)

// Observe records the signs of flaps that d shows at now (quorum.FlapsIn)
// for the next Round.
func (s *Service) Observe(d quorum.Decision, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range quorum.FlapsIn(d, now) {
		if !slices.ContainsFunc(s.seen, func(o quorum.Flap) bool {
			return o.Host == f.Host && o.DeadGen == f.DeadGen && o.PillNonce == f.PillNonce
		}) {
			s.seen = append(s.seen, f)
		}
	}
	s.seen = slices.DeleteFunc(s.seen, func(f quorum.Flap) bool { return now.Sub(f.At) > seenFor })
	s.seen = s.seen[max(len(s.seen)-maxSeen, 0):]
}

// Round reads the record; as coordinator, records the new flaps and
// quarantines, and ends the quarantines whose time ran out; then starts a
// migration away if this host is quarantined and the policy says so.
func (s *Service) Round(ctx context.Context) error {
	p := s.cfg.Policy()
	var events []quorum.Event
	var written quorum.QuarantineRecord
	s.mu.Lock()
	seen := slices.Clone(s.seen)
	s.mu.Unlock()
	_, err := s.rec.UpdateSettings(ctx, s.cfg.HostID, func(st *storage.ClusterSettings) error {
		rec := fromStorage(*st)
		out, evs, changed := quorum.QuarantineStep(quorum.QuarantineInput{Self: s.cfg.HostID, Now: time.Now(),
			Config: p.QuarantineConfig, Record: rec, Decision: s.cl.Decision(), Seen: seen})
		if !changed {
			s.keep(rec)
			return errUnchanged
		}
		events, written = evs, out
		toStorage(out, st)
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		err = nil
	case err == nil:
		s.keep(written)
		s.report(events)
		s.forget(seen)
	}
	s.logOnce(err)
	if err == nil {
		s.migrateAway(ctx, p)
	}
	return err
}

var errUnchanged = errors.New("quarantine record unchanged")

// keep makes rec the record this host applies.
func (s *Service) keep(rec quorum.QuarantineRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record = rec
}

// forget drops the flaps a round wrote.
func (s *Service) forget(written []quorum.Flap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = slices.DeleteFunc(s.seen, func(f quorum.Flap) bool { return slices.Contains(written, f) })
}

func (s *Service) report(events []quorum.Event) {
	for _, e := range events {
		sev := storage.SevInfo
		if e.Error {
			sev = storage.SevWarning
		}
		s.rep.Event(sev, e.Kind, storage.UUID{}, e.Subject, "%s", e.Message)
	}
}

func (s *Service) logOnce(err error) {
	s.mu.Lock()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	again := msg == s.lastErr
	s.lastErr = msg
	s.mu.Unlock()
	if err != nil && !again {
		s.cfg.Log.Warn("quarantine record not read or written; keeping the last one", "err", err)
	}
}

// Refresh reads the record and keeps it.
func (s *Service) Refresh(ctx context.Context) error {
	st, err := s.rec.Settings(ctx)
	if err == nil {
		s.keep(fromStorage(st))
	}
	return err
}

// Record is the quarantine record as this host last read it (none before
// the service exists).
func (s *Service) Record() quorum.QuarantineRecord {
	if s == nil {
		return quorum.QuarantineRecord{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.record.Clone()
}

// Set is the set of quarantined hosts (vm.Config.Quarantined).
func (s *Service) Set() quorum.Set { return s.Record().Set() }

// Quarantine puts host (a name or an id) in quarantine for the policy's
// duration, by the operator by.
func (s *Service) Quarantine(ctx context.Context, host, by string) (quorum.Quarantined, error) {
	return s.command(ctx, host, func(rec quorum.QuarantineRecord, h quorum.Host) (quorum.QuarantineRecord, quorum.Event, error) {
		out, e, err := quorum.QuarantineHost(rec, h.ID, by, time.Now(), s.cfg.Policy().Duration)
		if errors.Is(err, quorum.ErrAlreadyQuarantined) {
			err = vm.Refuse(vm.ErrConflict, "see `wingman host-list`; `wingman host unquarantine "+h.Name+"` ends it", "%s: %w", h.Name, err)
		}
		return out, e, err
	})
}

// Unquarantine ends host's quarantine (a name or an id), by the operator by.
func (s *Service) Unquarantine(ctx context.Context, host, by string) (quorum.Quarantined, error) {
	return s.command(ctx, host, func(rec quorum.QuarantineRecord, h quorum.Host) (quorum.QuarantineRecord, quorum.Event, error) {
		out, e, err := quorum.Unquarantine(rec, h.ID, by, time.Now())
		if errors.Is(err, quorum.ErrNotQuarantined) {
			err = vm.Refuse(vm.ErrConflict, "`wingman host-list` shows which hosts are quarantined", "%s is not quarantined", h.Name)
		}
		return out, e, err
	})
}

// command applies change to the record for host, writes it by
// compare-and-swap (again on a fresh read if another host wrote in
// between), and reports its event. It returns host's quarantine as
// change left it (zero: none).
func (s *Service) command(ctx context.Context, host string,
	change func(quorum.QuarantineRecord, quorum.Host) (quorum.QuarantineRecord, quorum.Event, error)) (quorum.Quarantined, error) {
	h, err := s.cl.ResolveHost(host)
	if err != nil {
		return quorum.Quarantined{}, err
	}
	var ev quorum.Event
	var q quorum.Quarantined
	var written quorum.QuarantineRecord
	_, err = s.rec.UpdateSettings(ctx, s.cfg.HostID, func(st *storage.ClusterSettings) error {
		out, e, err := change(fromStorage(*st), h)
		if err != nil {
			return err
		}
		ev, q, written = e, quorum.Quarantined{}, out
		if got, ok := out.Quarantined(h.ID); ok {
			q = got
		}
		toStorage(out, st)
		return nil
	})
	if err != nil {
		return quorum.Quarantined{}, err
	}
	s.keep(written)
	s.report([]quorum.Event{ev})
	return q, nil
}

// migrateAway starts, in the background, the live migration of this
// host's protected VMs to other hosts if it is quarantined and the policy
// says they leave: maintenance mode's evacuation, never a cold move. A
// failed one is tried again after RetryAway.
func (s *Service) migrateAway(ctx context.Context, p Policy) {
	s.mu.Lock()
	_, mine := s.record.Quarantined(s.cfg.HostID)
	start := p.MigrateAway && mine && s.away != nil && !s.moving && time.Since(s.awayErr) >= s.cfg.RetryAway
	if start {
		s.moving = true
	}
	s.mu.Unlock()
	if !start {
		return
	}
	dec := s.cl.Decision()
	go func() {
		err := s.away.Evacuate(context.WithoutCancel(ctx), dec, vm.EvacuateOptions{Parallel: max(p.Parallel, 1), Current: s.cl.Decision,
			Planned: func(moves []vm.Move) {
				if len(moves) > 0 {
					s.rep.Event(storage.SevInfo, "quarantine-migrate", storage.UUID{}, s.cfg.HostID,
						"quarantined with quarantine.migrate_away on: moving %d protected VMs away by live migration", len(moves))
				}
			}})
		s.mu.Lock()
		s.moving = false
		if err != nil {
			s.awayErr = time.Now()
		}
		s.mu.Unlock()
		if err != nil {
			s.rep.Event(storage.SevWarning, "quarantine-migrate-failed", storage.UUID{}, s.cfg.HostID,
				"live migration away from the quarantined host: %v; the VMs stay, retried in %v", err, s.cfg.RetryAway)
		}
	}()
}

// Checks are the warning notifications of the quarantine (vm/notify): as
// coordinator, one per host of the decision, active while it is
// quarantined; elsewhere none (the coordinator sends them).
func (s *Service) Checks(coordinator bool) []notify.Check {
	if !coordinator {
		return nil
	}
	rec := s.Record()
	var out []notify.Check
	for _, h := range s.cl.Decision().Hosts {
		c := notify.Check{Key: WarnQuarantine, Host: h.Name, Title: h.Name + " is not quarantined"}
		if q, ok := rec.Quarantined(h.ID); ok {
			c.Active = true
			c.Text = fmt.Sprintf("%s is quarantined by %s until %s: %s. It keeps its VMs and takes no new one; `wingman host unquarantine %s` ends it sooner.",
				h.Name, q.By, q.Until.UTC().Format(time.RFC3339), q.Why, h.Name)
		}
		out = append(out, c)
	}
	return out
}

func fromStorage(st storage.ClusterSettings) quorum.QuarantineRecord {
	var rec quorum.QuarantineRecord
	for _, f := range st.Flaps {
		rec.Flaps = append(rec.Flaps, quorum.HostFlaps{Host: f.Host, DeadGen: f.DeadGen, PillNonces: slices.Clone(f.PillNonces), At: slices.Clone(f.At)})
	}
	for _, q := range st.Quarantined {
		rec.Hosts = append(rec.Hosts, quorum.Quarantined{Host: q.Host, Since: q.Since, Until: q.Until, By: q.By, Why: q.Why})
	}
	return rec
}

// toStorage writes rec into st, keeping the fields of st's entries that
// this build does not know.
func toStorage(rec quorum.QuarantineRecord, st *storage.ClusterSettings) {
	flaps := make([]storage.HostFlaps, 0, len(rec.Flaps))
	for _, f := range rec.Flaps {
		e := storage.HostFlaps{}
		if i := slices.IndexFunc(st.Flaps, func(o storage.HostFlaps) bool { return o.Host == f.Host }); i >= 0 {
			e = st.Flaps[i]
		}
		e.Host, e.DeadGen, e.At = f.Host, f.DeadGen, f.At[max(len(f.At)-storage.MaxFlapTimes, 0):]
		e.PillNonces = f.PillNonces[max(len(f.PillNonces)-storage.MaxFlapTimes, 0):]
		flaps = append(flaps, e)
	}
	hosts := make([]storage.HostQuarantine, 0, len(rec.Hosts))
	for _, q := range rec.Hosts {
		e := storage.HostQuarantine{}
		if i := slices.IndexFunc(st.Quarantined, func(o storage.HostQuarantine) bool { return o.Host == q.Host }); i >= 0 {
			e = st.Quarantined[i]
		}
		e.Host, e.Since, e.Until, e.By, e.Why = q.Host, q.Since, q.Until, q.By, q.Why
		hosts = append(hosts, e)
	}
	st.Flaps, st.Quarantined = flaps, hosts
}

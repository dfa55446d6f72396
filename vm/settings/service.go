package settings

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/maintenance"
	"github.com/wingmanha/wingman/vm/notify"
	"github.com/wingmanha/wingman/vm/quarantine"
	"github.com/wingmanha/wingman/vm/reconcile"
)

// Records is the LUN's settings record (*storage.ClusterRecords).
type Records interface {
	Settings(ctx context.Context) (storage.ClusterSettings, error)
	UpdateSettings(ctx context.Context, me int, change func(*storage.ClusterSettings) error) (storage.ClusterSettings, error)
}

// Reporter writes an event to this host's ring on the LUN.
type Reporter interface {
	Event(sev storage.Severity, kind string, vm storage.UUID, subject int, format string, a ...any)
}

// Config configures a Service.
type Config struct {
	HostName string
	HostID   int
	File     File
	// HostNames names the hosts that set values (optional).
	HostNames func() map[int]string
	// Every is how often Run reads the record (default DefaultEvery): a
	// change made on another host applies here within it.
	Every time.Duration
	Log   *slog.Logger
}

// DefaultEvery is how often a host reads the settings record: one read
// of every host's ballot of one register, cheap next to the heartbeat.
const DefaultEvery = 10 * time.Second

// WarnConfig is the key of the warning notification of a host whose
// wingman.toml disagrees with the cluster.
const WarnConfig = "config"

// Service keeps one host's view of the cluster-wide keys and changes them.
// Its methods are safe for concurrent use.
type Service struct {
	cfg Config
	rec Records
	rep Reporter

	mu      sync.Mutex
	view    View
	lastErr string // the last failed read's error, logged once
}

// NewService returns the service of the host cfg names, its view the
// file's values until Refresh reads the LUN.
func NewService(cfg Config, rec Records, rep Reporter) *Service {
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, rec: rec, rep: rep, view: Merge(cfg.File, storage.ClusterSettings{})}
}

// Run refreshes the view every Every until ctx ends.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, s.cfg.Every)
			s.Refresh(rctx)
			cancel()
		}
	}
}

// Refresh reads the record and applies it. A failed read keeps the last
// view (at the start: the file's values), and is logged.
func (s *Service) Refresh(ctx context.Context) (View, error) {
	stored, err := s.rec.Settings(ctx)
	s.mu.Lock()
	again := err != nil && err.Error() == s.lastErr
	s.lastErr = ""
	if err != nil {
		s.lastErr = err.Error()
	}
	s.mu.Unlock()
	if err != nil {
		if !again && ctx.Err() == nil { // a LUN without the records' room would say so every round
			s.cfg.Log.Warn("cluster settings not read; keeping the last ones", "err", err)
		}
		return s.View(), err
	}
	return s.apply(stored), nil
}

// apply makes stored the view, unless a newer generation is applied
// already, and logs what changed.
func (s *Service) apply(stored storage.ClusterSettings) View {
	v := Merge(s.cfg.File, stored)
	s.mu.Lock()
	old := s.view
	if v.Generation < old.Generation {
		v = old
	} else {
		s.view = v
	}
	s.mu.Unlock()
	v = s.named(v)
	if v.Values != old.Values {
		s.cfg.Log.Info("cluster settings applied", "generation", v.Generation, "values", fmt.Sprintf("%+v", v.Values))
	}
	for _, w := range v.Warnings {
		if !slices.Contains(old.Conflicts(s.cfg.HostName, s.cfg.File.Path), w) {
			s.cfg.Log.Warn(w)
		}
	}
	return v
}

// View is the last view.
func (s *Service) View() View {
	s.mu.Lock()
	v := s.view
	s.mu.Unlock()
	return s.named(v)
}

// named fills in the view's host, its warnings and the names of the hosts
// that set values.
func (s *Service) named(v View) View {
	v.Host, v.Warnings = s.cfg.HostName, v.Conflicts(s.cfg.HostName, s.cfg.File.Path)
	var names map[int]string
	if s.cfg.HostNames != nil {
		names = s.cfg.HostNames()
	}
	v.Entries = slices.Clone(v.Entries)
	for i, e := range v.Entries {
		if e.Source == SourceCluster {
			v.Entries[i].HostName = cmp.Or(names[e.Host], fmt.Sprintf("host %d", e.Host))
		}
	}
	return v
}

// Values are the values this host applies now.
func (s *Service) Values() Values { return s.View().Values }

// GuestAgentWait is failover.guest_agent_wait now (vm.Config's).
func (s *Service) GuestAgentWait() time.Duration { return s.Values().GuestAgentWait }

// DiskLoss is failover.disk_loss and disk_loss_grace now (vm.Config's).
func (s *Service) DiskLoss() reconcile.DiskLossPolicy { return s.Values().DiskLossPolicy() }

// Maintenance are the maintenance defaults now (vm/maintenance's).
func (s *Service) Maintenance() maintenance.Defaults {
	v := s.Values()
	return maintenance.Defaults{ParallelMigrations: v.ParallelMigrations, ColdMove: v.ColdMove(), ExecTimeout: v.ExecTimeout}
}

// Quarantine is the quarantine policy now (vm/quarantine's Config.Policy).
func (s *Service) Quarantine() quarantine.Policy {
	v := s.Values()
	return quarantine.Policy{QuarantineConfig: v.Quarantine, MigrateAway: v.MigrateAway, Parallel: v.ParallelMigrations}
}

// Warnings are the conflicts of this host's wingman.toml with the cluster.
func (s *Service) Warnings() []string { return s.View().Warnings }

// Check is the warning notification of those conflicts (vm/notify).
func (s *Service) Check() notify.Check {
	c := notify.Check{Key: WarnConfig, Host: s.cfg.HostName, Title: s.cfg.HostName + ": wingman.toml agrees with the cluster-wide settings"}
	if w := s.Warnings(); len(w) > 0 {
		c.Active, c.Text = true, fmt.Sprint(w)
	}
	return c
}

// List reads the record and returns the view.
func (s *Service) List(ctx context.Context) (View, error) { return s.Refresh(ctx) }

// Get reads the record and returns key's entry.
func (s *Service) Get(ctx context.Context, key string) (Entry, View, error) {
	if _, err := Lookup(key); err != nil {
		return Entry{}, View{}, err
	}
	v, err := s.Refresh(ctx)
	e, _ := v.Entry(key)
	return e, v, err
}

// Set stores value as key's for the whole cluster (Parse checks it), as
// this host, writes an event with the old and the new value, and applies
// it here at once; the others apply it at their next Refresh. Setting the
// value the cluster has already changes nothing.
func (s *Service) Set(ctx context.Context, key, value string) (Entry, View, error) {
	k, canon, err := Parse(key, value)
	if err != nil {
		return Entry{}, View{}, err
	}
	return s.change(ctx, k, func(vals []storage.ClusterValue, i int) []storage.ClusterValue {
		cv := storage.ClusterValue{Key: k.Name, Value: canon, Host: s.cfg.HostID, Wall: time.Now()}
		if i < 0 {
			return append(vals, cv)
		}
		if vals[i].Value == canon {
			return nil
		}
		vals[i] = cv
		return vals
	})
}

// Unset removes key's cluster value: every host goes back to its file's
// value or the default.
func (s *Service) Unset(ctx context.Context, key string) (Entry, View, error) {
	k, err := Lookup(key)
	if err != nil {
		return Entry{}, View{}, err
	}
	return s.change(ctx, k, func(vals []storage.ClusterValue, i int) []storage.ClusterValue {
		if i < 0 {
			return nil
		}
		return slices.Delete(vals, i, i+1)
	})
}

// errUnchanged ends an update that would change nothing.
var errUnchanged = errors.New("unchanged")

// change applies edit to the stored values (i: key's index, or -1; nil
// from edit: nothing to change) by compare-and-swap, then reports it.
func (s *Service) change(ctx context.Context, k Key, edit func(vals []storage.ClusterValue, i int) []storage.ClusterValue) (Entry, View, error) {
	var before View
	stored, err := s.rec.UpdateSettings(ctx, s.cfg.HostID, func(set *storage.ClusterSettings) error {
		before = Merge(s.cfg.File, *set)
		vals := edit(set.Values, slices.IndexFunc(set.Values, func(cv storage.ClusterValue) bool { return cv.Key == k.Name }))
		if vals == nil {
			return errUnchanged
		}
		set.Values = vals
		return nil
	})
	if errors.Is(err, errUnchanged) {
		v := s.apply(stored)
		e, _ := v.Entry(k.Name)
		return e, v, nil
	}
	if err != nil {
		return Entry{}, View{}, fmt.Errorf("change cluster setting %s: %w", k.Name, err)
	}
	v := s.apply(stored)
	old, _ := before.Entry(k.Name)
	now, _ := v.Entry(k.Name)
	s.rep.Event(storage.SevInfo, "config-changed", storage.UUID{}, s.cfg.HostID, "%s = %s, was %s; by %s, settings generation %d",
		k.Name, now.clusterValue(), old.clusterValue(), s.cfg.HostName, v.Generation)
	return now, v, nil
}

// clusterValue is the value the cluster has for the entry's key: its own,
// or the default (a host's file is not the cluster's).
func (e Entry) clusterValue() string {
	if e.Source == SourceCluster {
		return e.Value
	}
	return e.Default + " (default)"
}

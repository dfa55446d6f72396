package maintenance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
)

// VMs is the part of *vm.Manager maintenance uses.
type VMs interface {
	Evacuate(ctx context.Context, dec quorum.Decision, opts vm.EvacuateOptions) error
	Find(ctx context.Context, nameOrUUID string) (storage.VMRecord, vm.RecordPolicy, error)
	Start(ctx context.Context, nameOrUUID string) error
	Stop(ctx context.Context, nameOrUUID string) error
	EvacuationPlan(ctx context.Context, dec quorum.Decision) (moves []vm.Move, unplaced []string, err error)
	Migrate(ctx context.Context, nameOrUUID string, target int) (hypervisor.MigrationResult, error)
	ReleaseAll(ctx context.Context, reason string) error
}

// Records reads the LUN's VM records (*storage.LUN).
type Records interface {
	ReadVMs(ctx context.Context) ([]storage.VMRecord, []error)
}

// Domains is the part of *hypervisor.Conn maintenance uses.
type Domains interface {
	ListDomains(ctx context.Context) ([]hypervisor.Domain, error)
	Connected() bool
}

// Cluster is this host's view of and voice in the cluster.
type Cluster interface {
	// Decision is this host's latest decision.
	Decision() quorum.Decision
	// ResolveHost finds a host by name or id (an error wrapping a
	// not-found class that lists the hosts).
	ResolveHost(nameOrID string) (quorum.Host, error)
	// SetMaintenance shows this host in maintenance (or not) to the
	// others: its heartbeat slot's state and its serf tags.
	SetMaintenance(ctx context.Context, on bool) error
	// MigrateHere asks the owner of VM id, wherever it is, to live-migrate
	// it to this host (the failback).
	MigrateHere(ctx context.Context, id string) error
}

// Events writes to this host's event ring; it must not block for long.
type Events interface {
	Event(sev storage.Severity, kind string, vmID storage.UUID, subject int, format string, a ...any)
}

// Config is one host's maintenance settings.
type Config struct {
	HostName string
	HostID   int
	// Generation is this host's heartbeat generation (a reboot's answer).
	Generation uint64
	// StateDir keeps the maintenance state and the frozen-VM list across
	// a restart or a reboot of the host.
	StateDir string
	// ConfigPath names the configuration file in hints.
	ConfigPath string
	// Renew and IOTimeout are the cluster's timings: the others see a
	// change of this host's state within two renewals and one I/O.
	Renew, IOTimeout time.Duration
	// ParallelMigrations is how many migrations an evacuation runs at once.
	ParallelMigrations int
	// ColdMove: a VM whose live migration failed is shut down and released
	// for another host to start (maintenance.on_migration_failure).
	ColdMove bool
	// AllowExec allows Exec; ExecTimeout is its default time limit.
	AllowExec   bool
	ExecTimeout time.Duration
	// RebootCommand reboots the host ("": Reboot is refused).
	RebootCommand string
	// Defaults, if set, gives ParallelMigrations, ColdMove and ExecTimeout
	// at each use instead of the fields above: the cluster-wide values
	// (vm/settings), which change without a restart.
	Defaults func() Defaults
	Log      *slog.Logger
}

// Defaults are the maintenance settings that are alike on every host.
type Defaults struct {
	ParallelMigrations int
	ColdMove           bool
	ExecTimeout        time.Duration
}

// defaults are the maintenance settings to use now.
func (c Config) defaults() Defaults {
	if c.Defaults != nil {
		return c.Defaults()
	}
	return Defaults{ParallelMigrations: c.ParallelMigrations, ColdMove: c.ColdMove, ExecTimeout: c.ExecTimeout}
}

// Host is this host's maintenance. Its methods are safe for concurrent use.
type Host struct {
	cfg     Config
	vms     VMs
	records Records
	doms    Domains
	cluster Cluster
	events  Events

	mu         sync.Mutex
	active     bool
	evacCancel context.CancelFunc
	evac       Tracker // the last evacuation's progress
}

// New returns the maintenance of the host cfg names.
func New(cfg Config, vms VMs, records Records, doms Domains, cluster Cluster, events Events) *Host {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Host{cfg: cfg, vms: vms, records: records, doms: doms, cluster: cluster, events: events}
}

// Request changes this host's maintenance (api.MaintenanceRequest).
type Request struct {
	Enter bool `json:"enter"`
	// All also migrates unprotected VMs away.
	All bool `json:"all,omitempty"`
	// NoWait returns once the host is in maintenance; the evacuation goes on.
	NoWait bool `json:"no_wait,omitempty"`
	// Abort stops the evacuation in progress; the host stays in maintenance.
	Abort bool `json:"abort,omitempty"`
	// Failback, with Enter false, migrates back the VMs that left.
	Failback bool `json:"failback,omitempty"`
}

// Active reports whether this host is in maintenance.
func (h *Host) Active() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.active
}

func (h *Host) event(sev storage.Severity, kind, format string, a ...any) {
	h.events.Event(sev, kind, storage.UUID{}, h.cfg.HostID, format, a...)
}

func (h *Host) stateFile() string { return filepath.Join(h.cfg.StateDir, "maintenance") }

// Restore puts the host back in maintenance if it was when its daemon
// stopped: it stays there until the operator (or a rolling update's
// reboot request) takes it out. It reports whether it did.
func (h *Host) Restore(ctx context.Context) bool {
	if _, err := os.Stat(h.stateFile()); err != nil {
		return false
	}
	h.mu.Lock()
	h.active = true
	h.mu.Unlock()
	if err := h.cluster.SetMaintenance(ctx, true); err != nil {
		h.cfg.Log.Warn("maintenance tag", "err", err)
	}
	h.event(storage.SevInfo, "maintenance-kept", "%s is still in maintenance after the restart", h.cfg.HostName)
	return true
}

// Set enters or leaves maintenance mode on this host, or aborts the
// evacuation in progress.
func (h *Host) Set(ctx context.Context, req Request) error {
	if req.Abort {
		h.mu.Lock()
		cancel := h.evacCancel
		h.mu.Unlock()
		if cancel == nil {
			return vm.Refuse(vm.ErrInvalid, "", "%s has no evacuation in progress", h.cfg.HostName)
		}
		cancel()
		h.event(storage.SevWarning, "maintenance-aborted", "evacuation of %s aborted by the operator; it stays in maintenance", h.cfg.HostName)
		return nil
	}
	h.mu.Lock()
	h.active = req.Enter
	h.mu.Unlock()
	if req.Enter {
		// Kept across a restart or a reboot of this host (see Restore).
		if _, err := os.Stat(h.stateFile()); err != nil {
			if err := os.WriteFile(h.stateFile(), nil, 0o600); err != nil {
				h.cfg.Log.Warn("maintenance state not saved", "err", err)
			}
		}
	}
	if err := h.cluster.SetMaintenance(ctx, req.Enter); err != nil {
		return err
	}
	if !req.Enter {
		moved := h.movedAway()
		os.Remove(h.stateFile())
		h.event(storage.SevInfo, "maintenance-exit", "%s takes VMs again", h.cfg.HostName)
		if req.Failback && len(moved) > 0 {
			return h.failback(ctx, moved)
		}
		return nil
	}
	h.event(storage.SevInfo, "maintenance-enter", "%s enters maintenance: evacuating its VMs", h.cfg.HostName)
	// The evacuation outlives the request when the caller does not wait.
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.mu.Lock()
	if h.evacCancel != nil {
		h.evacCancel()
	}
	h.evacCancel = cancel
	h.mu.Unlock()
	// The evacuation shows as running from now on, through the wait, also
	// to a caller that does not wait.
	h.evac.start(h.cfg.HostName, h.cfg.defaults().ParallelMigrations, time.Now())
	run := func() (err error) {
		defer func() {
			h.evac.end(err, time.Now())
			cancel()
			h.mu.Lock()
			h.evacCancel = nil
			h.mu.Unlock()
		}()
		// The other hosts must see the maintenance state before the planner
		// runs, and this host's decision must show it: wait two cycles.
		select {
		case <-ectx.Done():
			return ectx.Err()
		case <-time.After(h.settle()):
		}
		if err := h.Evacuate(ectx, req.All); err != nil {
			h.event(storage.SevError, "maintenance-incomplete", "evacuation incomplete: %v", err)
			return err
		}
		h.event(storage.SevInfo, "maintenance-empty", "%s is empty: ready for maintenance", h.cfg.HostName)
		return nil
	}
	if req.NoWait {
		go run()
		return nil
	}
	return run()
}

// settle is how long the others take to see a change of this host's state.
func (h *Host) settle() time.Duration { return 2*h.cfg.Renew + h.cfg.IOTimeout }

// Evacuation is the progress of this host's last evacuation, trimmed to
// fit limit bytes of JSON (see Tracker.Snapshot).
func (h *Host) Evacuation(limit int) Evacuation {
	e := h.evac.Snapshot(limit)
	e.Host = h.cfg.HostName
	return e
}

// Evacuate live-migrates this host's protected VMs away, by priority,
// ParallelMigrations at a time (and, with all, its unprotected running
// domains afterwards), through the VM manager. Its progress shows in
// Evacuation, also when Set started it.
func (h *Host) Evacuate(ctx context.Context, all bool) (err error) {
	def := h.cfg.defaults()
	if !h.evac.running() {
		h.evac.start(h.cfg.HostName, def.ParallelMigrations, time.Now())
		defer func() { h.evac.end(err, time.Now()) }()
	}
	return h.vms.Evacuate(ctx, h.cluster.Decision(), vm.EvacuateOptions{
		Parallel:    def.ParallelMigrations,
		ColdMove:    def.ColdMove,
		Unprotected: all,
		Current:     h.cluster.Decision,
		Planned:     h.evac.planned,
		Progress:    h.evac.progress,
		Done: func(m vm.Move, r hypervisor.MigrationResult, err error) {
			h.evac.done(m, err)
			id, _ := storage.ParseUUID(m.UUID)
			if err != nil {
				h.events.Event(storage.SevError, "evacuation-failed", id, m.To, "%s to %s: %v", m.Name, m.ToName, err)
				return
			}
			if !m.Cold { // a cold move: the VM manager recorded it; another host starts the VM
				h.events.Event(storage.SevInfo, "evacuated", id, m.To, "%s moved to %s in %v (downtime %v)", m.Name, m.ToName, r.Wall.Round(time.Millisecond), r.Downtime)
			}
			h.noteMoved(m.UUID)
		},
	})
}

// movedAway lists the VMs the current maintenance moved off this host.
func (h *Host) movedAway() []string {
	b, _ := os.ReadFile(h.stateFile())
	var ids []string
	for _, f := range strings.Fields(string(b)) {
		if !strings.HasPrefix(f, rebootMarker) {
			ids = append(ids, f)
		}
	}
	return ids
}

// noteMoved records a VM that an evacuation moved away, for a failback.
func (h *Host) noteMoved(id string) {
	_ = appendLine(h.stateFile(), id)
}

// failback migrates back, one at a time, the VMs that left this host.
func (h *Host) failback(ctx context.Context, moved []string) error {
	// The others must see this host alive again before they migrate to it.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(h.settle()):
	}
	var failed []error
	for _, id := range moved {
		r, _, err := h.vms.Find(ctx, id)
		if err != nil || (r.Lease.Held() && r.Lease.Owner.Host == h.cfg.HostID) {
			continue // unprotected since, or already back
		}
		if err := h.cluster.MigrateHere(ctx, id); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", id, err))
			continue
		}
		h.event(storage.SevInfo, "failback", "%s migrated back to %s", id, h.cfg.HostName)
	}
	if len(failed) > 0 {
		return fmt.Errorf("failback: %w", errors.Join(failed...))
	}
	return nil
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

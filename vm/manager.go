package vm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/plan"
	"github.com/wingmanha/wingman/vm/reconcile"
)

// LUN is the part of *storage.LUN the manager uses.
type LUN interface {
	ReadVMs(ctx context.Context) ([]storage.VMRecord, []error)
	ReadVM(ctx context.Context, idx int) (storage.VMRecord, error)
	FindVM(ctx context.Context, id storage.UUID) (storage.VMRecord, error)
	ReadLease(ctx context.Context, idx int) (storage.LeaseState, error)
	ProtectVM(ctx context.Context, me storage.Owner, cfg storage.VMConfig) (int, storage.LeaseState, error)
	AcquireLease(ctx context.Context, idx int, expect uint64, me storage.Owner) (storage.LeaseState, error)
	SetMigration(ctx context.Context, idx int, lease storage.LeaseState, m storage.Migration) (storage.LeaseState, error)
	SetGuestUp(ctx context.Context, idx int, lease storage.LeaseState) (storage.LeaseState, error)
	ReleaseLease(ctx context.Context, idx int, lease storage.LeaseState) error
	WriteVMConfig(ctx context.Context, idx int, lease storage.LeaseState, cfg storage.VMConfig) (storage.VMConfig, error)
	DeleteVM(ctx context.Context, idx int, lease storage.LeaseState) error
}

// Events is this host's event ring (*storage.EventLog).
type Events interface {
	Append(ctx context.Context, e storage.Event) (storage.Event, error)
}

// Hypervisor is the part of *hypervisor.Conn the manager uses.
type Hypervisor interface {
	ListDomains(ctx context.Context) ([]hypervisor.Domain, error)
	DomainXML(ctx context.Context, name string) (string, error)
	Define(ctx context.Context, domainXML string) (hypervisor.Domain, error)
	Start(ctx context.Context, name string) error
	Destroy(ctx context.Context, name string) error
	Shutdown(ctx context.Context, name string, opts hypervisor.ShutdownOptions) (hypervisor.ShutdownResult, error)
	Migrate(ctx context.Context, nameOrUUID string, opts hypervisor.MigrateOptions) (hypervisor.MigrationResult, error)
}

// Resumer is implemented by hypervisors that can continue a paused guest
// (*hypervisor.Conn does); without it a Resume action fails with
// ErrUnsupported and says so in an event.
type Resumer interface {
	Resume(ctx context.Context, name string) error
}

// AgentPinger is implemented by hypervisors that can ping a guest agent
// (*hypervisor.Conn). For a VM whose policy says WaitGuestAgent, its owner
// pings until the agent answers, then marks the lease guest-up on the LUN
// (later start tiers of a failover wait for it) and writes the "guest-up"
// event of the failover timeline. From then on it keeps pinging, every
// Config.AgentCheck.Interval, and reports an agent that stops answering
// ("guest-agent-lost") and one that answers again ("guest-agent-back"),
// nothing more (see checkAgents).
type AgentPinger interface {
	PingAgent(ctx context.Context, name string) error
}

// Errors callers test with errors.Is.
var (
	ErrNotOwner    = errors.New("this host does not own the VM")
	ErrNotFound    = errors.New("VM not found")
	ErrNoQuorum    = errors.New("this host may not run VMs now")
	ErrUnsupported = errors.New("not supported by the hypervisor adapter")
	// ErrUnsafeDisk: the VM's definition has a disk that would lose the
	// guest's acknowledged writes, or that cannot follow it to another host
	// (DiskDefinitionProblems).
	ErrUnsafeDisk = errors.New("disk not safe for failover")
	// ErrDiskUnreachable: an alive host cannot reach one of the VM's disks.
	ErrDiskUnreachable = errors.New("disk not reachable from every host")
)

// Capacity is a host's size for placement (from serf tags for other hosts).
type Capacity struct {
	Memory      uint64
	CPUs        int
	OtherMemory uint64
	OtherCPUs   int
	// Limits are the host's own overcommit ratios and reserve; nil: the
	// planner's defaults.
	Limits *plan.Limits
}

// Observer is told what the manager measures. Its methods must not block:
// they run in a Step and under the manager's lock.
type Observer interface {
	// FailedOver: a VM whose owner failed started here, took after the
	// last heartbeat the owner wrote (its staleness on this host's clock:
	// the outage as the VM's users saw it, detection included).
	FailedOver(took time.Duration)
	// Migrated: a live migration from here ended, in wall time, with the
	// guest paused for downtime.
	Migrated(wall, downtime time.Duration)
}

// Config configures a Manager.
type Config struct {
	// Host and Gen identify this host's heartbeat slot.
	Host int
	Gen  uint64
	// Reconcile tunes the decisions (placement, start retries).
	Reconcile reconcile.Config
	// GuestAgentWait, if set, gives Reconcile.GuestAgentWait at every
	// step: the cluster-wide value (vm/settings), which changes without a
	// restart.
	GuestAgentWait func() time.Duration
	// DiskLoss, if set, gives Reconcile.DiskLoss at every step: the
	// cluster-wide failover.disk_loss and disk_loss_grace (vm/settings).
	DiskLoss func() reconcile.DiskLossPolicy
	// DeadAfter is the LUN's D: the disk-loss grace applied is at least D
	// (reconcile.DiskLossPolicy).
	DeadAfter time.Duration
	// Capacity returns every host's capacity; nil: every host counts as
	// 1 TiB and 1024 CPUs (placement then only spreads).
	Capacity func() map[int]Capacity
	// MigrationURI returns the libvirt URI of a host, for Migrate.
	MigrationURI func(host int) (string, error)
	// UnsafeMigration passes libvirt's unsafe flag (test clusters whose
	// shared directory is a local disk).
	UnsafeMigration bool
	// Quarantined, if set, returns the hosts the cluster quarantined for
	// flapping (vm/quarantine): placement gives them no VM.
	Quarantined func() quorum.Set
	// ShutdownTimeout bounds a graceful stop before the VM is destroyed.
	ShutdownTimeout time.Duration
	// CheckDisksOn asks another host whether it reaches each of disks (one
	// problem per disk, "" where it does); the daemon forwards the question
	// to that host's Manager.CheckDisks. Nil: Protect asks nobody and
	// reports every other host unchecked.
	CheckDisksOn func(ctx context.Context, host int, disks []hypervisor.DiskSpec) ([]string, error)
	// Observe, if set, is told the durations the manager measures (the
	// daemon's metrics).
	Observe Observer
	// DiskCheckTimeout bounds Protect's wait for the other hosts' answers
	// (0: DefaultDiskCheckTimeout). A host that has not answered by then is
	// reported unchecked, not waited for.
	DiskCheckTimeout time.Duration
	// AgentCheck: how often this host pings the guest agent of a VM it runs
	// with WaitGuestAgent once the agent has answered, and when a silent
	// one is reported lost (zero: reconcile.DefaultAgentCheckConfig, a ping
	// every 10 s, lost after 30 s and 3 unanswered pings, or 5 min for the
	// first answer after a start). It only reports.
	AgentCheck reconcile.AgentCheckConfig
	// RecordsChanged, if set, is told that this host protected a VM or
	// released or reclaimed a lease: the daemon bumps its slot's counter,
	// on which the other hosts read every record (see FullScanEvery).
	RecordsChanged func()
}

// recordsChanged calls the RecordsChanged hook if there is one.
func (c *Config) recordsChanged() {
	if c.RecordsChanged != nil {
		c.RecordsChanged()
	}
}

// Manager runs this host's part of keeping protected VMs up. Its methods
// are safe for concurrent use; Step and the lease writes of Migrate are
// serialised.
type Manager struct {
	cfg    Config
	lun    LUN
	hv     Hypervisor
	events Events

	mu       sync.Mutex // Step, lease changes
	history  map[string]reconcile.History
	histMu   sync.Mutex           // history, also from the parallel starts of a Step
	seen     map[string]seenState // uuid -> state first seen
	outgoing map[string]bool
	lastDec  quorum.Decision
	scan     recordScan               // Step's last full scan of the VM records
	rescan   atomic.Bool              // the next Step reads every record (a protect here)
	decoded  map[string]decodedConfig // uuid -> the last step's decoded policy and size
	noticed  map[string]string        // uuid -> last notice text (to not repeat it)
	fenced   atomic.Bool              // SelfFence ran: start nothing more in this generation
	// isolating: ApplyIsolation waits for the step lock; the step in
	// progress launches no more failover starts, so it ends sooner.
	isolating atomic.Int32
	// heldSeen: uuid -> the lease epoch and when Step first saw it held.
	heldSeen map[string]heldSeen
	// avoidSeen: uuid -> the epoch of the record's disk-loss mark and when
	// Step first saw it.
	avoidSeen map[string]heldSeen
	agentMu   sync.Mutex
	// agentWatch: uuid -> the lease epoch whose guest agent this host
	// watches (or gave up on): one watcher per VM and epoch.
	agentWatch map[string]agentWait
	// agentChecks: uuid -> the running check of a guest agent that has
	// answered (checkAgents), one per VM.
	agentChecks map[string]agentCheck
	// agentHeard: uuid -> when this host's wait after a start or adoption
	// last heard the agent (awaitGuest), so that the check that follows
	// counts its grace from that answer rather than waiting for a first one.
	agentHeard map[string]time.Time

	// life ends with Close; the guest agent waits and checks run under it
	// and are counted in background.
	life       context.Context
	endLife    context.CancelFunc
	background sync.WaitGroup
}

type heldSeen struct {
	epoch uint64
	since time.Time
}

type seenState struct {
	state reconcile.DomainState
	since time.Time
}

// NewManager returns a manager for host cfg.Host at generation cfg.Gen.
func NewManager(cfg Config, lun LUN, hv Hypervisor, events Events) (*Manager, error) {
	if cfg.Host <= 0 || cfg.Gen == 0 {
		return nil, fmt.Errorf("vm manager: host %d generation %d: both must be set from the heartbeat slot", cfg.Host, cfg.Gen)
	}
	if cfg.Reconcile.Plan.MaxConcurrentStarts == 0 {
		cfg.Reconcile = reconcile.DefaultConfig()
	}
	if err := cfg.Reconcile.Validate(); err != nil {
		return nil, fmt.Errorf("vm manager: %w", err)
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 2 * time.Minute
	}
	if cfg.DiskCheckTimeout <= 0 {
		cfg.DiskCheckTimeout = DefaultDiskCheckTimeout
	}
	if cfg.AgentCheck == (reconcile.AgentCheckConfig{}) {
		cfg.AgentCheck = reconcile.DefaultAgentCheckConfig()
	}
	if err := cfg.AgentCheck.Validate(); err != nil {
		return nil, fmt.Errorf("vm manager: %w", err)
	}
	life, endLife := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, lun: lun, hv: hv, events: events,
		history: map[string]reconcile.History{}, seen: map[string]seenState{},
		outgoing: map[string]bool{}, noticed: map[string]string{}, heldSeen: map[string]heldSeen{},
		agentWatch: map[string]agentWait{}, agentChecks: map[string]agentCheck{}, agentHeard: map[string]time.Time{},
		life: life, endLife: endLife}, nil
}

// Close ends the manager's background work (guest agent waits and checks)
// and waits for it to return. Steps and commands must not run after it.
func (m *Manager) Close() {
	m.endLife()
	m.background.Wait()
}

// newOwner is this host at its generation, with a fresh nonce, as a lease owner.
func newOwner(cfg Config) storage.Owner {
	return storage.Owner{Host: cfg.Host, Gen: cfg.Gen, Nonce: rand.Uint64() | 1}
}

// writeEvent appends an event to events (nil: none), cut to its size.
func writeEvent(ctx context.Context, events Events, sev storage.Severity, kind string, id storage.UUID, subject int, format string, args ...any) {
	if events == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if len(msg) > 175 {
		msg = msg[:172] + "..."
	}
	// An event that cannot be written must not stop the action it reports.
	_, _ = events.Append(ctx, storage.Event{Severity: sev, Kind: kind, VM: id, Subject: subject, Message: msg})
}

// ownerGone reports whether nobody may run the VM under lease: it was
// released, or its owner is dead or left (at that generation, per the last
// decision), or its owner is an older generation of this host.
func ownerGone(cfg Config, lastDec quorum.Decision, l storage.LeaseState) bool {
	if !l.Held() {
		return !l.InProgress
	}
	if l.Owner.Host == cfg.Host && l.Owner.Gen < cfg.Gen {
		return true
	}
	for _, v := range lastDec.Verdicts {
		if v.ID == l.Owner.Host && v.Gen >= l.Owner.Gen {
			return true
		}
	}
	h, ok := lastDec.Host(l.Owner.Host)
	return ok && h.State.Gone() && h.Gen >= l.Owner.Gen
}

// owns reports whether lease is held by this host at its generation.
func owns(cfg Config, l storage.LeaseState) bool {
	return l.Held() && l.Owner.Host == cfg.Host && l.Owner.Gen == cfg.Gen
}

// --- operator commands -----------------------------------------------------

// findLocal returns the local domain named nameOrUUID.
func findLocal(ctx context.Context, hv Hypervisor, host int, nameOrUUID string) (hypervisor.Domain, error) {
	doms, err := hv.ListDomains(ctx)
	if err != nil {
		return hypervisor.Domain{}, err
	}
	for _, d := range doms {
		if d.Name == nameOrUUID || strings.EqualFold(d.UUID, nameOrUUID) {
			return d, nil
		}
	}
	return hypervisor.Domain{}, fmt.Errorf("domain %q on host %d: %w", nameOrUUID, host, ErrNotFound)
}

// Find returns the protected record named nameOrUUID (a name or a UUID)
// and its policy; an error wrapping ErrNotFound when no protected VM has
// that name. It is the one lookup of a VM by what an operator typed.
func (m *Manager) Find(ctx context.Context, nameOrUUID string) (storage.VMRecord, RecordPolicy, error) {
	if id, err := storage.ParseUUID(nameOrUUID); err == nil {
		r, err := m.lun.FindVM(ctx, id)
		if err != nil {
			return r, RecordPolicy{}, fmt.Errorf("VM %s: %w", nameOrUUID, errors.Join(ErrNotFound, err))
		}
		rp, err := UnmarshalRecordPolicy(r.Config.Policy)
		return r, rp, err
	}
	recs, errs := m.lun.ReadVMs(ctx)
	for _, r := range recs {
		if r.Protected() && r.Config.Name == nameOrUUID {
			rp, err := UnmarshalRecordPolicy(r.Config.Policy)
			return r, rp, err
		}
	}
	if len(errs) > 0 {
		return storage.VMRecord{}, RecordPolicy{}, fmt.Errorf("VM %q: %w (and %d records unreadable: %w)", nameOrUUID, ErrNotFound, len(errs), errs[0])
	}
	return storage.VMRecord{}, RecordPolicy{}, fmt.Errorf("VM %q: %w: it is not protected", nameOrUUID, ErrNotFound)
}

// Protect stores the local domain nameOrUUID on the LUN with policy, owned
// by this host. It refuses a domain whose disks would lose the guest's
// acknowledged writes or cannot follow it (DiskDefinitionProblems,
// ErrUnsafeDisk), and one whose disks some alive host of dec cannot reach
// (ErrDiskUnreachable, unless opts.Force). It asks the other hosts in
// parallel and waits at most cfg.DiskCheckTimeout; the report lists the
// hosts it could not ask.
func (m *Manager) Protect(ctx context.Context, dec quorum.Decision, nameOrUUID string, rp RecordPolicy, opts ProtectOptions) (ProtectReport, error) {
	d, err := findLocal(ctx, m.hv, m.cfg.Host, nameOrUUID)
	if err != nil {
		return ProtectReport{}, fmt.Errorf("protect %q: %w", nameOrUUID, err)
	}
	id, err := storage.ParseUUID(d.UUID)
	if err != nil {
		return ProtectReport{}, fmt.Errorf("protect %q: domain uuid %q: %w", d.Name, d.UUID, err)
	}
	if r, err := m.lun.FindVM(ctx, id); err == nil && r.Protected() {
		return ProtectReport{}, alreadyProtected(d.Name) // before asking the other hosts about its disks
	}
	xml, err := m.hv.DomainXML(ctx, d.Name)
	if err != nil {
		return ProtectReport{}, fmt.Errorf("protect %q: %w", d.Name, err)
	}
	spec, err := hypervisor.ParseDomainXML(xml)
	if err != nil {
		return ProtectReport{}, fmt.Errorf("protect %q: %w", d.Name, err)
	}
	if problems := DiskDefinitionProblems(spec); len(problems) > 0 {
		return ProtectReport{}, fmt.Errorf("protect %q: %w: %s; change the definition ('virsh edit %s'), shut the guest down and start it again, then protect it",
			d.Name, ErrUnsafeDisk, strings.Join(problems, "; "), d.Name)
	}
	pol, err := rp.Marshal()
	if err != nil {
		return ProtectReport{}, fmt.Errorf("protect %q: %w", d.Name, err)
	}
	disks := disksToReach(spec)
	rep, err := diskReachVerdict(disks, m.askDisks(ctx, dec, disks))
	if err != nil && !opts.Force {
		return rep, fmt.Errorf("protect %q: %w", d.Name, err)
	}
	if m.fenced.Load() {
		return rep, fmt.Errorf("protect %q: %w: this host fenced itself", d.Name, ErrNoQuorum)
	}
	me := newOwner(m.cfg)
	// Not under the manager's lock: ProtectVM scans every record twice, which
	// on a slow LUN takes seconds, and a step waiting that long for the lock
	// would look stalled to the watchdog. A step that runs meanwhile sees the
	// VM unprotected (it leaves it alone) or protected and owned here.
	idx, _, err := m.lun.ProtectVM(ctx, me, storage.VMConfig{UUID: id, Name: d.Name, Policy: pol, XML: []byte(xml)})
	if errors.Is(err, storage.ErrAlreadyProtected) {
		return rep, alreadyProtected(d.Name) // by another request meanwhile
	}
	if err != nil {
		return rep, fmt.Errorf("protect %q: %w", d.Name, err)
	}
	m.rescan.Store(true) // the record may have been blank at the last full scan
	m.cfg.recordsChanged()
	if m.fenced.Load() {
		// The host fenced itself while the record was written, and the
		// self-fence may not have seen it: the others will restart it.
		if err := m.hv.Destroy(context.WithoutCancel(ctx), d.Name); err != nil && !errors.Is(err, hypervisor.ErrNotFound) && !errors.Is(err, hypervisor.ErrNotRunning) {
			return rep, fmt.Errorf("protect %q: this host fenced itself meanwhile, and destroying the guest failed: %w", d.Name, err)
		}
		return rep, fmt.Errorf("protect %q: %w: this host fenced itself meanwhile; the guest was destroyed and restarts elsewhere", d.Name, ErrNoQuorum)
	}
	sev, msg := storage.SevInfo, fmt.Sprintf("protected in record %d, owned by host %d", idx, m.cfg.Host)
	if len(rep.Unreachable) > 0 {
		sev, msg = storage.SevWarning, msg+"; forced although "+strings.Join(rep.Unreachable, "; ")
	}
	if len(rep.Unchecked) > 0 {
		var hosts []string
		for _, u := range rep.Unchecked {
			hosts = append(hosts, u.Host)
		}
		msg += "; disks not checked on " + strings.Join(hosts, ", ")
	}
	writeEvent(ctx, m.events, sev, "protected", id, 0, "%s", msg)
	return rep, nil
}

// alreadyProtected refuses to protect a VM twice; its policy changes with
// set-policy. It says nothing of the record that holds it.
func alreadyProtected(name string) error {
	return Refuse(ErrConflict, fmt.Sprintf("to change its policy, use 'wingman set-policy %s'", name), "%s is already protected", name)
}

// ownedRecord finds nameOrUUID and checks this host owns it.
func (m *Manager) ownedRecord(ctx context.Context, op, nameOrUUID string) (storage.VMRecord, RecordPolicy, error) {
	r, rp, err := m.Find(ctx, nameOrUUID)
	if err != nil {
		return r, rp, fmt.Errorf("%s %q: %w", op, nameOrUUID, err)
	}
	if !owns(m.cfg, r.Lease) {
		return r, rp, fmt.Errorf("%s %q: %w: owner is host %d generation %d (released: %v); run it there",
			op, nameOrUUID, ErrNotOwner, r.Lease.Owner.Host, r.Lease.Owner.Gen, r.Lease.Released)
	}
	return r, rp, nil
}

// Unprotect removes the VM's record; the domain itself is left as it is.
func (m *Manager) Unprotect(ctx context.Context, nameOrUUID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, _, err := m.ownedRecord(ctx, "unprotect", nameOrUUID)
	if err != nil {
		return err
	}
	if err := m.lun.DeleteVM(ctx, r.Index, r.Lease); err != nil {
		return fmt.Errorf("unprotect %q: %w", r.Config.Name, err)
	}
	writeEvent(ctx, m.events, storage.SevInfo, "unprotected", r.Config.UUID, 0, "record %d removed", r.Index)
	return nil
}

// writePolicy rewrites the record's policy bytes (lease held).
func (m *Manager) writePolicy(ctx context.Context, r storage.VMRecord, rp RecordPolicy) error {
	pol, err := rp.Marshal()
	if err != nil {
		return err
	}
	cfg := *r.Config
	cfg.Policy = pol
	_, err = m.lun.WriteVMConfig(ctx, r.Index, r.Lease, cfg)
	return err
}

// SetPolicy changes the failover policy of a VM this host owns to what
// change makes of the policy on the LUN, and returns the new policy. The
// read, the change and the write happen under the manager's lock: two
// concurrent changes of different fields both land, where a policy read
// before the lock would let the later write undo the earlier one.
func (m *Manager) SetPolicy(ctx context.Context, nameOrUUID string, change func(RecordPolicy) (RecordPolicy, error)) (RecordPolicy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, old, err := m.ownedRecord(ctx, "set policy of", nameOrUUID)
	if err != nil && !(r.Config != nil && owns(m.cfg, r.Lease)) {
		return old, err
	}
	p, err := change(old)
	if err != nil {
		return old, err
	}
	p.Stopped = old.Stopped // the desired state changes through Start/Stop only
	if err := m.writePolicy(ctx, r, p); err != nil {
		return old, fmt.Errorf("set policy of %q: %w", r.Config.Name, err)
	}
	writeEvent(ctx, m.events, storage.SevInfo, "policy-set", r.Config.UUID, 0, "policy changed")
	return p, nil
}

// Start marks an owned VM as meant to run; the next Step starts it.
func (m *Manager) Start(ctx context.Context, nameOrUUID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, rp, err := m.ownedRecord(ctx, "start", nameOrUUID)
	if err != nil && r.Config != nil && !owns(m.cfg, r.Lease) && ownerGone(m.cfg, m.lastDec, r.Lease) {
		// Nobody can run it: its lease was released, or its owner is
		// dead or left (a VM stopped, or frozen, on a host that is gone).
		// Take the lease here; the next step starts it.
		lease, lerr := m.lun.AcquireLease(ctx, r.Index, r.Lease.Epoch, newOwner(m.cfg))
		if lerr != nil {
			return fmt.Errorf("start %q: take its lease: %w", r.Config.Name, lerr)
		}
		r.Lease, err = lease, nil
		writeEvent(ctx, m.events, storage.SevInfo, "lease-acquired", r.Config.UUID, 0, "epoch %d: started by the operator while no live host owned it", lease.Epoch)
	}
	if err != nil && !(r.Config != nil && owns(m.cfg, r.Lease)) {
		return err
	}
	if !rp.Stopped {
		return nil
	}
	rp.Stopped = false
	if err := m.writePolicy(ctx, r, rp); err != nil {
		return fmt.Errorf("start %q: %w", r.Config.Name, err)
	}
	writeEvent(ctx, m.events, storage.SevInfo, "desired-running", r.Config.UUID, 0, "started by the operator")
	return nil
}

// Stop marks an owned VM as stopped by the operator (it stays down on every
// host) and shuts it down here.
func (m *Manager) Stop(ctx context.Context, nameOrUUID string) error {
	m.mu.Lock()
	r, rp, err := m.ownedRecord(ctx, "stop", nameOrUUID)
	if err != nil && !(r.Config != nil && owns(m.cfg, r.Lease)) {
		m.mu.Unlock()
		return err
	}
	if !rp.Stopped {
		rp.Stopped = true
		if err := m.writePolicy(ctx, r, rp); err != nil {
			m.mu.Unlock()
			return fmt.Errorf("stop %q: %w", r.Config.Name, err)
		}
	}
	m.mu.Unlock()
	writeEvent(ctx, m.events, storage.SevInfo, "desired-stopped", r.Config.UUID, 0, "stopped by the operator")
	return m.shutdown(ctx, r.Config.Name)
}

func (m *Manager) shutdown(ctx context.Context, name string) error {
	_, err := m.hv.Shutdown(ctx, name, hypervisor.ShutdownOptions{Timeout: m.cfg.ShutdownTimeout, DestroyOnTimeout: true})
	if err != nil && !errors.Is(err, hypervisor.ErrNotRunning) && !errors.Is(err, hypervisor.ErrNotFound) {
		return fmt.Errorf("stop %q: %w", name, err)
	}
	return nil
}

// Migrate live-migrates an owned, running VM to target: SetMigration
// Started, hypervisor Migrate, SetMigration Completed. The target's next
// Step claims the lease (reconcile rule c). If the migration fails with the
// guest still here, the record says Aborted; if its outcome is unknown
// (hypervisor.ErrTimeout), Started stays and reconcile resolves it from
// where the guest is found.
func (m *Manager) Migrate(ctx context.Context, nameOrUUID string, target int) (hypervisor.MigrationResult, error) {
	return m.MigrateWithProgress(ctx, nameOrUUID, target, nil)
}

// MigrateWithProgress is Migrate, calling progress (if not nil) with samples
// of the running migration job (see hypervisor.MigrateOptions.Progress).
func (m *Manager) MigrateWithProgress(ctx context.Context, nameOrUUID string, target int, progress func(hypervisor.MigrationProgress)) (hypervisor.MigrationResult, error) {
	if m.cfg.MigrationURI == nil {
		return hypervisor.MigrationResult{}, fmt.Errorf("migrate %q: no MigrationURI resolver configured", nameOrUUID)
	}
	uri, err := m.cfg.MigrationURI(target)
	if err != nil {
		return hypervisor.MigrationResult{}, fmt.Errorf("migrate %q to host %d: %w", nameOrUUID, target, err)
	}
	m.mu.Lock()
	r, _, err := m.ownedRecord(ctx, "migrate", nameOrUUID)
	if err != nil {
		m.mu.Unlock()
		return hypervisor.MigrationResult{}, err
	}
	name, id := r.Config.Name, r.Config.UUID
	th, ok := m.lastDec.Host(target)
	if !ok || th.State != quorum.StateAlive {
		m.mu.Unlock()
		return hypervisor.MigrationResult{}, fmt.Errorf("migrate %q: target host %d is not alive in this host's last quorum decision (%v)", name, target, th.State)
	}
	if quarantinedIn(m.cfg).Has(target) {
		m.mu.Unlock()
		return hypervisor.MigrationResult{}, Refuse(ErrInvalid, "choose another host, or end its quarantine first: wingman host unquarantine "+th.Name,
			"migrate %q: target host %s is quarantined for flapping and takes no new VM", name, th.Name)
	}
	if r.Lease.Migration.Phase == storage.MigrationStarted || r.Lease.Migration.Phase == storage.MigrationCompleted {
		m.mu.Unlock()
		return hypervisor.MigrationResult{}, fmt.Errorf("migrate %q: a migration to host %d is already %s", name, r.Lease.Migration.Target, r.Lease.Migration.Phase)
	}
	lease, err := m.lun.SetMigration(ctx, r.Index, r.Lease, storage.Migration{Phase: storage.MigrationStarted, Target: target, TargetGen: th.Gen})
	if err != nil {
		m.mu.Unlock()
		return hypervisor.MigrationResult{}, fmt.Errorf("migrate %q: record the start: %w", name, err)
	}
	m.outgoing[id.String()] = true
	m.mu.Unlock()
	writeEvent(ctx, m.events, storage.SevInfo, "migration-started", id, target, "live migration to host %d gen %d", target, th.Gen)

	res, merr := m.hv.Migrate(ctx, name, hypervisor.MigrateOptions{DestURI: uri, Unsafe: m.cfg.UnsafeMigration, Progress: progress})

	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.outgoing, id.String())
	wctx := context.WithoutCancel(ctx) // the outcome must be recorded even if the caller gave up
	switch {
	case merr == nil:
		started := storage.Migration{Phase: storage.MigrationStarted, Target: target, TargetGen: th.Gen}
		if cur, err := m.lun.ReadLease(wctx, r.Index); err == nil && cur.Migration != started {
			// A Step cleared it meanwhile (the target was declared gone).
			return res, fmt.Errorf("migrate %q: migrated, but the record's migration is now %s: target host %d was declared gone", name, cur.Migration.Phase, target)
		}
		if _, err := m.lun.SetMigration(wctx, r.Index, lease, storage.Migration{Phase: storage.MigrationCompleted, Target: target, TargetGen: th.Gen}); err != nil {
			// The guest runs on the target; reconcile marks it Completed
			// on a later Step (the guest is no longer here).
			return res, fmt.Errorf("migrate %q: the guest runs on host %d but recording it failed: %w", name, target, err)
		}
		writeEvent(ctx, m.events, storage.SevInfo, "migration-completed", id, target, "runs on host %d after %v (downtime %v)", target, res.Wall.Round(time.Millisecond), res.Downtime)
		if m.cfg.Observe != nil {
			m.cfg.Observe.Migrated(res.Wall, res.Downtime)
		}
		return res, nil
	case errors.Is(merr, hypervisor.ErrTimeout):
		writeEvent(ctx, m.events, storage.SevWarning, "migration-unknown", id, target, "outcome unknown: %v", merr)
		return res, fmt.Errorf("migrate %q: %w", name, merr)
	default:
		if _, err := m.lun.SetMigration(wctx, r.Index, lease, storage.Migration{Phase: storage.MigrationAborted, Target: target, TargetGen: th.Gen}); err != nil {
			merr = errors.Join(merr, fmt.Errorf("record the abort: %w", err))
		}
		writeEvent(ctx, m.events, storage.SevWarning, "migration-failed", id, target, "guest stays on host %d: %v", m.cfg.Host, merr)
		return res, fmt.Errorf("migrate %q: %w", name, merr)
	}
}

// quarantinedIn is the set of hosts in quarantine (Config.Quarantined).
func quarantinedIn(cfg Config) quorum.Set {
	if cfg.Quarantined == nil {
		return quorum.Set{}
	}
	return cfg.Quarantined()
}

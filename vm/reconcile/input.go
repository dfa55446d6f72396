package reconcile

import (
	"fmt"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm/plan"
)

// Owner is a lease holder: a host at one generation of its slot.
type Owner struct {
	Host int // 0: nobody
	Gen  uint64
}

func (o Owner) String() string { return fmt.Sprintf("host %d gen %d", o.Host, o.Gen) }

// MigrationPhase mirrors the migration state the owner keeps with the lease.
type MigrationPhase uint8

const (
	MigrationNone      MigrationPhase = iota
	MigrationStarted                  // the owner is moving the VM to Target
	MigrationCompleted                // the guest runs on Target; Target may claim the lease
	MigrationAborted                  // cancelled; the guest stays with the owner
)

var phaseNames = [...]string{"none", "started", "completed", "aborted"}

func (p MigrationPhase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// Migration is the owner-written migration state of a VM.
type Migration struct {
	Phase     MigrationPhase
	Target    int
	TargetGen uint64
}

// inFlight reports whether the migration may have moved the guest.
func (m Migration) inFlight() bool {
	return (m.Phase == MigrationStarted || m.Phase == MigrationCompleted) && m.Target != 0
}

// Lease is a VM lease as read from the LUN.
type Lease struct {
	Epoch    uint64 // 0: never acquired
	Owner    Owner  // after a release: who released it
	Released bool
	// InProgress: an acquisition of Epoch+1 has started and not settled.
	InProgress bool
	Migration  Migration
	// GuestUp: the owner saw the guest agent answer at this epoch.
	GuestUp bool
}

// held reports whether somebody owns the lease.
func (l Lease) held() bool { return l.Owner.Host != 0 && !l.Released }

// Record is one protected VM as stored on the LUN.
type Record struct {
	Index  int // VM record index on the LUN
	UUID   string
	Name   string
	Lease  Lease
	Policy plan.Policy
	// Stopped is the desired state: the operator stopped the VM through
	// Wingman, so it stays down wherever it is.
	Stopped bool
	Memory  uint64 // bytes, for placement
	VCPUs   int
	// HeldSince is when this host first saw the lease held at its current
	// epoch (the caller's clock); zero: not known. A later start tier
	// waits for the guest agent of a VM taken less than
	// Config.GuestAgentWait ago.
	HeldSince time.Time
	// AvoidHosts are the hosts marked on the record as unable to reach the
	// VM's disks (the disk-loss response); AvoidSince is when this host
	// first saw that mark (the caller's clock; zero: no mark). See Avoided.
	AvoidHosts []int
	AvoidSince time.Time
}

// DomainState is what the local libvirt says about a domain, reduced to what
// the decisions need.
type DomainState string

const (
	DomainRunning  DomainState = "running"  // running (or blocked, or being shut down)
	DomainPaused   DomainState = "paused"   // paused for another reason: operator, incoming migration
	DomainIOError  DomainState = "io-error" // paused by QEMU on a disk I/O error
	DomainPanicked DomainState = "panicked" // the guest kernel panicked (QEMU still there)
	DomainCrashed  DomainState = "crashed"  // QEMU crashed or was killed (gone), or crashed and kept
	DomainShutoff  DomainState = "shutoff"  // shut down cleanly: by the guest or by a person
	// DomainLost: shut off for no reason libvirt saw (it found the domain
	// off when it started): the host went down under it, as in a power loss.
	DomainLost DomainState = "lost"
)

// Domain is one local libvirt domain.
type Domain struct {
	UUID  string
	Name  string
	State DomainState
	// Active: a QEMU process exists, so the guest may write its disks.
	Active bool
	// Since is when this state was first seen (the caller's clock).
	Since time.Time
}

// Host is one host as the quorum decision and its capacity tags describe it.
type Host struct {
	ID    int
	Name  string
	Gen   uint64
	State quorum.HostState
	// Quarantined: the cluster quarantined it for flapping (quorum's
	// QuarantineStep): it keeps its VMs and is given none.
	Quarantined bool
	// Capacity and load not shown by the VM records, for placement.
	Memory      uint64
	CPUs        int
	OtherMemory uint64
	OtherCPUs   int
	// Limits are the host's own overcommit ratios and reserve; nil: those
	// of Config.Plan.
	Limits *plan.Limits
}

// History is what this host remembers of one VM (rebuilt from its own event
// ring after a restart of the daemon).
type History struct {
	// Restarts are this host's automatic restarts of the VM.
	Restarts []time.Time
	// StartFailures counts failed starts since the last successful one;
	// LastFailure is when the latest failed.
	StartFailures int
	LastFailure   time.Time
	// DelaySince is when the start delay of the VM's failover at lease
	// epoch DelayEpoch began (from a Wait action); zero: not begun.
	DelaySince time.Time
	DelayEpoch uint64
}

// Config tunes the reconciler. Start from DefaultConfig.
type Config struct {
	// Plan is the placement configuration passed to the failover planner.
	Plan plan.Config
	// MaxStartFailures: after this many failed starts in a row the lease is
	// released so another host tries.
	MaxStartFailures int
	// StartBackoff is the wait after the first failed start; it doubles per
	// failure up to MaxStartBackoff.
	StartBackoff    time.Duration
	MaxStartBackoff time.Duration
	// GuestAgentWait bounds how long a later start tier waits for the
	// guest agent of an earlier tier's VM with WaitGuestAgent, counted from
	// when that VM's lease was taken. After it, the tier starts anyway.
	GuestAgentWait time.Duration
	// DiskLoss is the response to a VM paused on an I/O error while this
	// host is otherwise healthy (zero: off).
	DiskLoss DiskLossPolicy
}

// Bounds of Config.GuestAgentWait.
const (
	MinGuestAgentWait = 10 * time.Second
	MaxGuestAgentWait = time.Hour
)

// DefaultConfig: the planner's defaults, release after 3 failed starts,
// retry after 5 s, doubling up to 1 min; later tiers wait up to 5 min for
// guest agents; a VM paused on an I/O error for a minute is restarted on
// another host.
func DefaultConfig() Config {
	return Config{Plan: plan.DefaultConfig(), MaxStartFailures: 3, StartBackoff: 5 * time.Second, MaxStartBackoff: time.Minute,
		GuestAgentWait: 5 * time.Minute, DiskLoss: DefaultDiskLossPolicy()}
}

// Validate rejects values that would stop failed VMs from ever moving.
func (c Config) Validate() error {
	if err := c.Plan.Validate(); err != nil {
		return err
	}
	if c.MaxStartFailures < 1 {
		return fmt.Errorf("reconcile config: max start failures %d: use at least 1", c.MaxStartFailures)
	}
	if c.StartBackoff < 0 || c.MaxStartBackoff < c.StartBackoff {
		return fmt.Errorf("reconcile config: start backoff %v..%v: use 0 <= start backoff <= max start backoff", c.StartBackoff, c.MaxStartBackoff)
	}
	if c.GuestAgentWait < MinGuestAgentWait || c.GuestAgentWait > MaxGuestAgentWait {
		return fmt.Errorf("reconcile config: guest agent wait %v: use %v to %v (default 5m)", c.GuestAgentWait, MinGuestAgentWait, MaxGuestAgentWait)
	}
	if c.DiskLoss.Restart {
		if err := c.DiskLoss.Validate(); err != nil {
			return fmt.Errorf("reconcile config: %w", err)
		}
	}
	return nil
}

// Input is the snapshot Reconcile reads. Slice order does not matter.
type Input struct {
	Now     time.Time
	Self    int
	SelfGen uint64
	// MayRunVMs and Quorate come from this host's quorum decision.
	MayRunVMs bool
	Quorate   bool
	Hosts     []Host           // every host of the decision, this one included
	Verdicts  []quorum.Verdict // hosts known declared dead, at a generation
	Records   []Record         // protected VMs (deleted records left out)
	Local     []Domain         // this host's libvirt domains
	History   map[string]History
	// MigratingOut holds the UUIDs of VMs this host is migrating away right
	// now (a Migrate call is in progress).
	MigratingOut map[string]bool
	Config       Config
}

package hypervisor

import (
	"fmt"
	"time"

	"libvirt.org/go/libvirt"
)

// State is a domain's run state as libvirt reports it.
type State int

// The states, in libvirt's numbering (virDomainState).
const (
	StateNoState     State = State(libvirt.DOMAIN_NOSTATE)
	StateRunning     State = State(libvirt.DOMAIN_RUNNING)
	StateBlocked     State = State(libvirt.DOMAIN_BLOCKED)
	StatePaused      State = State(libvirt.DOMAIN_PAUSED)
	StateShuttingOff State = State(libvirt.DOMAIN_SHUTDOWN) // being shut down
	StateShutoff     State = State(libvirt.DOMAIN_SHUTOFF)
	StateCrashed     State = State(libvirt.DOMAIN_CRASHED)
	StatePMSuspended State = State(libvirt.DOMAIN_PMSUSPENDED)
)

var stateNames = map[State]string{
	StateNoState:     "nostate",
	StateRunning:     "running",
	StateBlocked:     "blocked",
	StatePaused:      "paused",
	StateShuttingOff: "shutting-down",
	StateShutoff:     "shutoff",
	StateCrashed:     "crashed",
	StatePMSuspended: "pmsuspended",
}

func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Active reports whether a QEMU process exists for the domain in this state,
// i.e. whether the guest may be using its disks. Paused and crashed-but-kept
// guests are active: they can resume (or be reset) and write. libvirt's
// "crashed" state is only reported while that QEMU is kept (on_crash
// preserve); a crash that ended the process is shutoff with reason crashed.
func (s State) Active() bool {
	switch s {
	case StateRunning, StateBlocked, StatePaused, StateShuttingOff, StateCrashed, StatePMSuspended:
		return true
	}
	return false
}

// reasonNames are virsh's names for each state's reason codes, keyed by
// libvirt's per-state enums (virDomainRunningReason and friends) so that a
// renumbering in libvirt cannot shift them.
var reasonNames = map[State]map[int]string{
	StateNoState: {int(libvirt.DOMAIN_NOSTATE_UNKNOWN): "unknown"},
	StateRunning: {
		int(libvirt.DOMAIN_RUNNING_UNKNOWN):            "unknown",
		int(libvirt.DOMAIN_RUNNING_BOOTED):             "booted",
		int(libvirt.DOMAIN_RUNNING_MIGRATED):           "migrated",
		int(libvirt.DOMAIN_RUNNING_RESTORED):           "restored",
		int(libvirt.DOMAIN_RUNNING_FROM_SNAPSHOT):      "from-snapshot",
		int(libvirt.DOMAIN_RUNNING_UNPAUSED):           "unpaused",
		int(libvirt.DOMAIN_RUNNING_MIGRATION_CANCELED): "migration-canceled",
		int(libvirt.DOMAIN_RUNNING_SAVE_CANCELED):      "save-canceled",
		int(libvirt.DOMAIN_RUNNING_WAKEUP):             "wakeup",
		int(libvirt.DOMAIN_RUNNING_CRASHED):            "crashed",
		int(libvirt.DOMAIN_RUNNING_POSTCOPY):           "post-copy",
		int(libvirt.DOMAIN_RUNNING_POSTCOPY_FAILED):    "post-copy-failed",
	},
	StateBlocked: {int(libvirt.DOMAIN_BLOCKED_UNKNOWN): "unknown"},
	StatePaused: {
		int(libvirt.DOMAIN_PAUSED_UNKNOWN):         "unknown",
		int(libvirt.DOMAIN_PAUSED_USER):            "user",
		int(libvirt.DOMAIN_PAUSED_MIGRATION):       "migration",
		int(libvirt.DOMAIN_PAUSED_SAVE):            "save",
		int(libvirt.DOMAIN_PAUSED_DUMP):            "dump",
		int(libvirt.DOMAIN_PAUSED_IOERROR):         "ioerror",
		int(libvirt.DOMAIN_PAUSED_WATCHDOG):        "watchdog",
		int(libvirt.DOMAIN_PAUSED_FROM_SNAPSHOT):   "from-snapshot",
		int(libvirt.DOMAIN_PAUSED_SHUTTING_DOWN):   "shutdown",
		int(libvirt.DOMAIN_PAUSED_SNAPSHOT):        "snapshot",
		int(libvirt.DOMAIN_PAUSED_CRASHED):         "crashed",
		int(libvirt.DOMAIN_PAUSED_STARTING_UP):     "starting-up",
		int(libvirt.DOMAIN_PAUSED_POSTCOPY):        "post-copy",
		int(libvirt.DOMAIN_PAUSED_POSTCOPY_FAILED): "post-copy-failed",
		int(libvirt.DOMAIN_PAUSED_API_ERROR):       "api-error",
	},
	StateShuttingOff: {
		int(libvirt.DOMAIN_SHUTDOWN_UNKNOWN): "unknown",
		int(libvirt.DOMAIN_SHUTDOWN_USER):    "user",
	},
	StateShutoff: {
		int(libvirt.DOMAIN_SHUTOFF_UNKNOWN):       "unknown",
		int(libvirt.DOMAIN_SHUTOFF_SHUTDOWN):      "shutdown",
		int(libvirt.DOMAIN_SHUTOFF_DESTROYED):     "destroyed",
		int(libvirt.DOMAIN_SHUTOFF_CRASHED):       "crashed",
		int(libvirt.DOMAIN_SHUTOFF_MIGRATED):      "migrated",
		int(libvirt.DOMAIN_SHUTOFF_SAVED):         "saved",
		int(libvirt.DOMAIN_SHUTOFF_FAILED):        "failed",
		int(libvirt.DOMAIN_SHUTOFF_FROM_SNAPSHOT): "from-snapshot",
		int(libvirt.DOMAIN_SHUTOFF_DAEMON):        "daemon",
	},
	StateCrashed: {
		int(libvirt.DOMAIN_CRASHED_UNKNOWN):  "unknown",
		int(libvirt.DOMAIN_CRASHED_PANICKED): "panicked",
	},
	StatePMSuspended: {int(libvirt.DOMAIN_PMSUSPENDED_UNKNOWN): "unknown"},
}

// ReasonName returns virsh's name for a state's reason code.
func ReasonName(s State, reason int) string {
	if n, ok := reasonNames[s][reason]; ok {
		return n
	}
	return fmt.Sprintf("reason(%d)", reason)
}

// Domain is one libvirt domain as listed on this host.
type Domain struct {
	Name string
	UUID string
	// State and Reason are libvirt's; Reason is virsh's name for the reason
	// code (e.g. "ioerror" for paused, "crashed" for shutoff) and ReasonCode
	// the raw number.
	State      State
	Reason     string
	ReasonCode int
	// Persistent is false for transient domains (running without a stored
	// definition).
	Persistent bool
	// MemoryBytes is the current memory (balloon) and MaxMemoryBytes the
	// configured maximum.
	MemoryBytes    uint64
	MaxMemoryBytes uint64
	VCPUs          int
}

// Active reports whether a QEMU process exists for the domain.
func (d Domain) Active() bool { return d.State.Active() }

// PausedOnIOError reports whether the guest is paused because a disk failed.
func (d Domain) PausedOnIOError() bool {
	return d.State == StatePaused && d.ReasonCode == int(libvirt.DOMAIN_PAUSED_IOERROR)
}

// EventKind says what happened to a domain, or to the stream itself.
type EventKind int

// Event kinds. Lifecycle kinds follow libvirt's virDomainEventType; Resync
// and Disconnected are about the stream.
const (
	// EventResync: events may have been lost (overflow, reconnect) or the
	// subscription just started. List the domains again; the listing is the
	// truth. Event.Detail says why: "subscribed", "overflow", "reconnected".
	EventResync EventKind = iota + 1
	// EventDisconnected: the connection to libvirtd was lost; a reconnect is
	// under way and will be followed by EventResync.
	EventDisconnected
	EventDefined
	EventUndefined
	EventStarted
	EventPaused
	EventResumed
	// EventStopped: the domain is no longer running (Detail: "shutdown",
	// "destroyed", "migrated", "saved", ...). A QEMU that died is EventCrashed.
	EventStopped
	// EventShutdown: the guest is shutting down or has finished doing so.
	EventShutdown
	EventPMSuspended
	// EventCrashed: the guest crashed or panicked, or its QEMU died
	// (libvirt's stopped/failed and stopped/crashed are reported as this).
	EventCrashed
	// EventIOError: a disk I/O error happened; Detail holds libvirt's action
	// and reason (e.g. "pause: eio"). A pause, if any, follows as EventPaused
	// with Detail "ioerror".
	EventIOError
)

var eventKindNames = map[EventKind]string{
	EventResync:       "resync",
	EventDisconnected: "disconnected",
	EventDefined:      "defined",
	EventUndefined:    "undefined",
	EventStarted:      "started",
	EventPaused:       "paused",
	EventResumed:      "resumed",
	EventStopped:      "stopped",
	EventShutdown:     "shutdown",
	EventPMSuspended:  "pmsuspended",
	EventCrashed:      "crashed",
	EventIOError:      "ioerror",
}

func (k EventKind) String() string {
	if n, ok := eventKindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// Event is one entry of the event stream.
type Event struct {
	Kind EventKind
	// Domain and UUID are empty for EventResync and EventDisconnected.
	Domain string
	UUID   string
	// Detail is libvirt's event detail in words ("booted", "destroyed",
	// "failed", "ioerror", "panicked", ...) or, for a resync, its cause.
	Detail string
	// Received is when this process got the event from libvirt (monotonic
	// clock reading included); libvirt events carry no time of their own.
	Received time.Time
}

func (e Event) String() string {
	if e.Domain == "" {
		return fmt.Sprintf("%s (%s)", e.Kind, e.Detail)
	}
	return fmt.Sprintf("%s %q (%s)", e.Kind, e.Domain, e.Detail)
}

// Capacity is what this host has and what its running guests use.
type Capacity struct {
	// CPUs is the number of logical host CPUs libvirt reports.
	CPUs int
	// MemoryBytes is the host's total memory.
	MemoryBytes uint64
	// FreeMemoryBytes is the host kernel's free memory; FreeMemoryKnown is
	// false when the driver cannot tell (test:/// with a custom host file).
	FreeMemoryBytes uint64
	FreeMemoryKnown bool
	// RunningGuests, GuestMemoryBytes and GuestVCPUs sum over active domains
	// (current memory, not maximum).
	RunningGuests    int
	GuestMemoryBytes uint64
	GuestVCPUs       int
}

// ShutdownOptions tune a graceful shutdown.
type ShutdownOptions struct {
	// Timeout is how long the guest may take to power off after the ACPI
	// request; zero means Config.ShutdownTimeout.
	Timeout time.Duration
	// DestroyOnTimeout destroys (hard powers off) the domain when Timeout
	// passes, instead of returning ErrTimeout.
	DestroyOnTimeout bool
}

// ShutdownResult says how a shutdown ended.
type ShutdownResult struct {
	// Forced is true when the guest did not power off in time and was destroyed.
	Forced bool
	// Took is the time from the request to the domain being off.
	Took time.Duration
}

// MigrateOptions tune a live migration. Migrations are always live,
// peer-to-peer (the source libvirtd talks to the destination's), persistent
// on the destination, and undefine the source definition on success.
type MigrateOptions struct {
	// DestURI is the destination libvirtd's URI as the source libvirtd sees
	// it, e.g. "qemu+tcp://10.77.0.2/system". Required.
	DestURI string
	// MigrationURI optionally picks the data channel, e.g. "tcp://10.77.0.2";
	// empty lets libvirt choose from the destination's migration_host.
	MigrationURI string
	// BandwidthMiBps limits the migration stream; 0 means unlimited.
	BandwidthMiBps uint64
	// MaxDowntime is the longest pause tolerated at switch-over; 0 keeps
	// QEMU's default (300 ms).
	MaxDowntime time.Duration
	// AutoConverge lets QEMU throttle a guest that dirties memory faster than
	// it can be sent.
	AutoConverge bool
	// Unsafe skips libvirt's check that disks are on shared storage with safe
	// caching. Test clusters only: on plain local directories libvirt 9.0
	// refuses otherwise.
	Unsafe bool
	// Progress, if set, is called about every Config.MigrationProgressInterval
	// while the migration runs, from one goroutine of Migrate's (never from
	// libvirt's event loop, never concurrently with itself, never after Migrate
	// returned). It must return quickly: sampling waits for it. A migration
	// shorter than the interval may end without any call.
	Progress func(MigrationProgress)
}

// MigrationProgress is a sample of a running migration job.
type MigrationProgress struct {
	Elapsed time.Duration
	// DataProcessed, DataRemaining and DataTotal are bytes (memory plus
	// disks) as libvirt's job statistics report them.
	DataProcessed uint64
	DataRemaining uint64
	DataTotal     uint64
	// Percent is DataProcessed as a share of DataTotal, 0 to 100. DataTotal
	// grows when the guest dirties memory, so Percent can go down.
	Percent float64
	// MemIteration is the number of memory passes so far; a growing number
	// with a steady DataRemaining means the guest dirties memory too fast.
	MemIteration uint64
	// ExpectedDowntime is QEMU's estimate of the switch-over pause if the
	// migration switched over now; ExpectedDowntimeKnown is false until QEMU
	// has one.
	ExpectedDowntime      time.Duration
	ExpectedDowntimeKnown bool
}

// MigrationResult describes a completed migration.
type MigrationResult struct {
	// Wall is the time Migrate spent, as the caller saw it.
	Wall time.Duration
	// JobTime is the migration job's own elapsed time from libvirt.
	JobTime time.Duration
	// Downtime is how long the guest was paused at switch-over, from
	// libvirt's completed-job statistics (the source's job-completed event);
	// DowntimeKnown is false when those statistics did not arrive within
	// Config.JobStatsWait.
	Downtime      time.Duration
	DowntimeKnown bool
	// DataTransferred is the number of bytes sent.
	DataTransferred uint64
}

// Condition is the health verdict on a guest.
type Condition int

// Conditions, from good to bad.
const (
	ConditionUnknown Condition = iota
	// ConditionRunning: the guest runs.
	ConditionRunning
	// ConditionStopped: the guest is off (shut down, destroyed, migrated away).
	ConditionStopped
	// ConditionPaused: paused for an ordinary reason (user, migration, save).
	ConditionPaused
	// ConditionIOError: paused because a disk failed; it resumes only when
	// storage returns and someone resumes it.
	ConditionIOError
	// ConditionPanicked: the guest kernel panicked (pvpanic device).
	ConditionPanicked
	// ConditionCrashed: the guest or its QEMU crashed.
	ConditionCrashed
)

var conditionNames = map[Condition]string{
	ConditionUnknown:  "unknown",
	ConditionRunning:  "running",
	ConditionStopped:  "stopped",
	ConditionPaused:   "paused",
	ConditionIOError:  "io-error",
	ConditionPanicked: "panicked",
	ConditionCrashed:  "crashed",
}

func (c Condition) String() string {
	if n, ok := conditionNames[c]; ok {
		return n
	}
	return fmt.Sprintf("condition(%d)", int(c))
}

// Health is a guest's health as libvirt sees it (QEMU's own view is
// QMPDiagnostics, an opt-in that taints the domain).
type Health struct {
	Domain     string
	State      State
	Reason     string
	ReasonCode int
	// Condition is the verdict on libvirt's state and reason.
	Condition Condition
}

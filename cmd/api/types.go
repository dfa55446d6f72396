package api

import "time"

// Status is the cluster as this host sees it.
type Status struct {
	Host        string    `json:"host"`
	HostID      int       `json:"host_id"`
	Generation  uint64    `json:"generation"`
	Cluster     string    `json:"cluster"`
	ClusterUUID string    `json:"cluster_uuid"`
	Version     string    `json:"version"`
	Now         time.Time `json:"now"`
	Quorate     bool      `json:"quorate"`
	Coordinator int       `json:"coordinator"`
	Partition   []int     `json:"partition"`
	Voters      []int     `json:"voters"`
	MayRunVMs   bool      `json:"may_run_vms"`
	LUN         LUNHealth `json:"lun"`
	Timings     Timings   `json:"timings"`
	Watchdog    string    `json:"watchdog"`
	// Capacity is the admission-control verdict: can the cluster restart
	// every protected VM after losing any one host?
	Capacity CapacityVerdict `json:"capacity"`
	Warnings []string        `json:"warnings"`
	Hosts    []Host          `json:"hosts"`
	// HA says whether failover and fencing are armed (`wingman ha`).
	HA HAState `json:"ha"`
}

// DisarmRequest disarms HA cluster-wide for For (`wingman ha disarm`): no
// failover and no fencing until every host re-arms by itself, or `ha arm`.
type DisarmRequest struct {
	For    time.Duration `json:"for_ns"`
	Reason string        `json:"reason,omitempty"`
	// Force lets the disarm end sooner than the one running.
	Force bool `json:"force,omitempty"`
}

// HAState is whether HA is armed, as the answering host sees it.
type HAState struct {
	Disarmed bool `json:"disarmed"`
	// While disarmed: when this host re-arms by itself (by its own
	// clock; each host times the disarm from when it first saw it), how
	// long that is from now, and the request's host, reason, length.
	Until     time.Time     `json:"until,omitzero"`
	Remaining time.Duration `json:"remaining_ns,omitempty"`
	By        string        `json:"by,omitempty"`
	For       time.Duration `json:"for_ns,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	// Generation is the newest disarm request's cluster-wide number (0: none yet).
	Generation uint64 `json:"generation"`
	// DisarmedHosts are the hosts whose slots on the LUN say they are
	// disarmed (a host cut off during an early arm stays so until its own
	// timer runs out).
	DisarmedHosts []string `json:"disarmed_hosts,omitempty"`
}

// LUNHealth is this host's view of the heartbeat LUN.
type LUNHealth struct {
	Path           string        `json:"path"`
	LastWriteAgo   time.Duration `json:"last_write_ago_ns"`
	LastReadAgo    time.Duration `json:"last_read_ago_ns"`
	WriteLatency   time.Duration `json:"write_latency_ns"`     // last cycle
	WriteLatencyHi time.Duration `json:"write_latency_max_ns"` // worst of the last minute
	NetworkLease   bool          `json:"network_lease"`
	Reads          uint64        `json:"reads"`  // I/Os issued since wingmand started, before this request's
	Writes         uint64        `json:"writes"` // I/Os issued since wingmand started, before this request's
	// Members are the heartbeat LUNs of a set of three, as this host uses
	// them (none for a single LUN, which Path names).
	Members []LUNMember `json:"members,omitempty"`
}

// LUNMember is one heartbeat LUN of a set of three as this host uses it.
type LUNMember struct {
	Index int    `json:"index"` // 1..3, the order of lun in wingman.toml
	Path  string `json:"path"`
	OK    bool   `json:"ok"`
	// Problem says what is wrong while not OK: I/O errors, I/O timeouts, a
	// changed header; Since is when it began, by this host's clock.
	Problem string    `json:"problem,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

// Timings are the cluster's timing rule, from the LUN header.
type Timings struct {
	Renew      time.Duration `json:"renew_ns"`
	IOTimeout  time.Duration `json:"io_timeout_ns"`
	SelfFence  time.Duration `json:"self_fence_ns"`
	Watchdog   time.Duration `json:"watchdog_ns"`
	Dead       time.Duration `json:"dead_ns"`
	PowerFence time.Duration `json:"power_fence_ns"`
	// LeaseCeiling (C): the longest a host runs its VMs on network leases
	// alone; hosts lost together are declared dead after C + D.
	LeaseCeiling time.Duration `json:"lease_ceiling_ns"`
}

// ConfirmOffRequest is an operator's `wingman host confirm-off`, as the
// host that took it forwards it to the coordinator: the host confirmed off
// and who confirmed it (the daemon fills By in from the caller).
type ConfirmOffRequest struct {
	Host int    `json:"host"`
	By   string `json:"by"`
}

// ConfirmOffResult says which generation of the host is now dead, who
// confirmed it, and which host declares it.
type ConfirmOffResult struct {
	Host       string `json:"host"`
	HostID     int    `json:"host_id"`
	Generation uint64 `json:"generation"`
	By         string `json:"by"`
	DeclaredOn string `json:"declared_on"`
}

// CapacityVerdict says whether the cluster survives the loss of K hosts.
type CapacityVerdict struct {
	K          int      `json:"k"`
	Survivable bool     `json:"survivable"`
	Problems   []string `json:"problems,omitempty"`
}

// Host is one hypervisor host.
type Host struct {
	ID          int    `json:"id"`
	Name        string `json:"name"`
	State       string `json:"state"` // joining, alive, maintenance, isolated, suspect, dead, left
	Reason      string `json:"reason"`
	Generation  uint64 `json:"generation"`
	Serf        string `json:"serf"` // alive, failed, left, unknown
	Maintenance bool   `json:"maintenance"`
	Coordinator bool   `json:"coordinator"`
	MemoryMiB   uint64 `json:"memory_mib"`
	FreeMiB     uint64 `json:"free_mib"`
	CPUs        int    `json:"cpus"`
	VMs         int    `json:"vms"` // protected VMs it owns
	Fenceable   bool   `json:"fenceable"`
	// GossipKey says, when it does not, that the host's gossip key differs
	// from the cluster's: "differs from the majority's" or "differs from
	// this host's" (the fingerprints its slot on the LUN publishes).
	GossipKey string `json:"gossip_key,omitempty"`
	// AliveBy says how this host sees the host alive: "disk" (its heartbeat
	// on the only LUN), "disk 3/3" or "disk 2/3" (on how many of three
	// LUNs its heartbeat is fresh; a majority counts), "network lease" (its
	// heartbeat is not fresh on a majority, but the others granted it a
	// lease); "" for a host that is not alive.
	AliveBy string `json:"alive_by,omitempty"`
	// LockManager is the lock manager the host's libvirt has loaded for
	// QEMU guests: "lockd" (virtlockd), "sanlock" or "none"; "" when the
	// host does not say (an older version, or its /proc unreadable).
	LockManager string `json:"lock_manager,omitempty"`
	// Quarantine is set while the host is quarantined for flapping: it
	// keeps its VMs and takes no new one (`wingman host unquarantine`).
	Quarantine *HostQuarantine `json:"quarantine,omitempty"`
}

// HostQuarantine is a host's quarantine: since and until when, who put it
// there ("wingman" when the cluster counted its flaps) and why.
type HostQuarantine struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	By    string    `json:"by"`
	Why   string    `json:"why"`
}

// QuarantineRequest puts a host in quarantine (true) or ends its
// quarantine (false).
type QuarantineRequest struct {
	Quarantine bool `json:"quarantine"`
}

// QuarantineResult is the host's quarantine after the request (none:
// ended).
type QuarantineResult struct {
	Host       string          `json:"host"`
	Quarantine *HostQuarantine `json:"quarantine,omitempty"`
}

// VM is one virtual machine: a protected one (with a record on the LUN) or
// a local unprotected domain.
type VM struct {
	Name       string `json:"name"`
	UUID       string `json:"uuid"`
	Protected  bool   `json:"protected"`
	Owner      int    `json:"owner,omitempty"` // host id holding the lease
	OwnerName  string `json:"owner_name,omitempty"`
	State      string `json:"state"` // running, shut off, paused, ... as seen on the host that runs it; "unknown" if not visible
	Reason     string `json:"reason,omitempty"`
	Priority   int    `json:"priority,omitempty"`
	Policy     Policy `json:"policy,omitempty"`
	Stopped    bool   `json:"stopped,omitempty"` // stopped through Wingman: stays stopped
	LeaseEpoch uint64 `json:"lease_epoch,omitempty"`
	Migration  string `json:"migration,omitempty"`
	MemoryMiB  uint64 `json:"memory_mib,omitempty"`
	VCPUs      int    `json:"vcpus,omitempty"`
	// LockManager, for a protected VM, is its owner's Host.LockManager:
	// whether libvirt's lock manager guards it there as well as its lease.
	LockManager string `json:"lock_manager,omitempty"`
	// QMP is QEMU's own view of the VM, only when asked for (GET
	// /v1/vms/{vm}?qmp=1, 'wingman dominfo --qmp'): reading it marks the
	// domain tainted in libvirt (custom-monitor).
	QMP *QMPDiagnostics `json:"qmp,omitempty"`
}

// QMPDiagnostics is QEMU's own view of a running VM, read over QMP on the
// host that runs it. Normal operation never reads it: libvirt marks a domain
// whose QEMU was sent QMP through libvirt as tainted (custom-monitor) until
// that QEMU exits.
type QMPDiagnostics struct {
	Host string `json:"host"` // the host that was asked
	// Status is QEMU's run state: running, paused, io-error,
	// guest-panicked, internal-error, shutdown, ...
	Status string `json:"status,omitempty"`
	// Condition combines libvirt's and QEMU's view, the worse of the two:
	// running, stopped, paused, io-error, panicked or crashed.
	Condition   string    `json:"condition,omitempty"`
	QEMUVersion string    `json:"qemu_version,omitempty"`
	Disks       []QMPDisk `json:"disks,omitempty"`
	// Errors are the queries that failed after QEMU gave its run state.
	Errors []string `json:"errors,omitempty"`
	// Error says why there is no diagnostic at all (VM not running there,
	// QEMU not answering, host not reachable).
	Error string `json:"error,omitempty"`
}

// QMPDisk is one of QEMU's block devices.
type QMPDisk struct {
	Device string `json:"device,omitempty"` // QEMU's device name, or its block node's
	File   string `json:"file,omitempty"`   // the image; empty for an empty drive
	// IOStatus is ok, failed or nospace; empty when the device does not
	// track it.
	IOStatus string `json:"io_status,omitempty"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Policy is the failover policy of a protected VM, as the CLI shows and sets it.
type Policy struct {
	Priority       string        `json:"priority,omitempty"` // high, medium, low or 0..1000
	Restart        string        `json:"restart,omitempty"`  // always, on-failure, never
	RestartMax     int           `json:"restart_max,omitempty"`
	RestartWindow  time.Duration `json:"restart_window_ns,omitempty"`
	AntiAffinity   string        `json:"anti_affinity,omitempty"`
	PreferredHosts []string      `json:"preferred_hosts,omitempty"`
	StartOrder     int           `json:"start_order,omitempty"`
	StartDelay     time.Duration `json:"start_delay_ns,omitempty"`
	WaitGuestAgent bool          `json:"wait_guest_agent,omitempty"`
	Isolation      string        `json:"isolation,omitempty"` // stop, leave-running
}

// ProtectRequest protects a VM or changes its policy. Empty fields keep
// the current value (or the default when protecting).
type ProtectRequest struct {
	Policy Policy `json:"policy"`
	// Force protects the VM even when an alive host cannot reach one of
	// its disks (that host then cannot start it after a failure). It does
	// not override a refused disk definition (cache='unsafe', a disk
	// without source). Ignored when changing a policy.
	Force bool `json:"force,omitempty"`
}

// ProtectResult is the VM protect protected, and what the other hosts
// said about its disks.
type ProtectResult struct {
	VM
	// DisksReached are the hosts that reach every disk of the VM.
	DisksReached []string `json:"disks_reached,omitempty"`
	// DisksUnchecked are the hosts that could not be asked whether they
	// reach its disks (not alive, or no answer in time), with why. Protect
	// does not wait for them; 'wingman drill' checks them.
	DisksUnchecked []HostNote `json:"disks_unchecked,omitempty"`
	// DisksUnreachable are the problems Force accepted, one per host and
	// disk ("kvm2: disk vda: /srv/vm/a.img: no such file or directory").
	DisksUnreachable []string `json:"disks_unreachable,omitempty"`
}

// HostNote is a host and something about it.
type HostNote struct {
	Host   string `json:"host"`
	Reason string `json:"reason"`
}

// MigrateRequest live-migrates a VM to a host (empty: the planner chooses).
type MigrateRequest struct {
	Target string `json:"target"`
}

// MigrateResult reports a finished migration.
type MigrateResult struct {
	VM       string        `json:"vm"`
	From     string        `json:"from"`
	To       string        `json:"to"`
	Duration time.Duration `json:"duration_ns"`
	Downtime time.Duration `json:"downtime_ns"`
	Bytes    uint64        `json:"bytes"`
}

// MaintenanceRequest enters or leaves maintenance mode, or aborts an
// evacuation in progress.
type MaintenanceRequest struct {
	Enter bool `json:"enter"`
	// All also migrates unprotected VMs away.
	All bool `json:"all,omitempty"`
	// NoWait returns as soon as the host is in maintenance; the evacuation
	// goes on (watch Host.VMs). Without it the request returns when the
	// host is empty.
	NoWait bool `json:"no_wait,omitempty"`
	// Abort stops the evacuation in progress: migrations in flight are
	// cancelled (each guest stays on exactly one host) and no new one
	// starts; the host stays in maintenance.
	Abort bool `json:"abort,omitempty"`
	// Failback, with Enter false, migrates back the VMs that the last
	// maintenance moved away from the host.
	Failback bool `json:"failback,omitempty"`
}

// FenceRequest asks the coordinator to fence a host; Test only proves the
// mailbox path (and the fence agent's status) without harm.
type FenceRequest struct {
	Test bool `json:"test"`
}

// FenceResult reports a fence or fence test.
type FenceResult struct {
	Host     string        `json:"host"`
	Test     bool          `json:"test"`
	Mailbox  string        `json:"mailbox"` // acknowledged, not acknowledged, ...
	Agent    string        `json:"agent,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Event is one entry of the cluster's event log.
type Event struct {
	Time     time.Time `json:"time"`
	Host     int       `json:"host"`
	HostName string    `json:"host_name,omitempty"`
	Seq      uint64    `json:"seq"`
	Severity string    `json:"severity"`
	Kind     string    `json:"kind"`
	VM       string    `json:"vm,omitempty"`
	Subject  int       `json:"subject,omitempty"`
	Message  string    `json:"message"`
}

// Error is the body of every failed request.
type Error struct {
	Error string `json:"error"`
	Hint  string `json:"hint,omitempty"`
	// Class names the error's class (see ErrNotFound and the others):
	// "not-found", "conflict", "no-quorum", "unavailable", "invalid",
	// "forbidden"; empty for an error without a class.
	Class string `json:"class,omitempty"`
}

// ExecRequest runs a shell command on a host in maintenance that holds no
// protected VM (a patching step of a rolling update).
type ExecRequest struct {
	// Command is run as `/bin/sh -c COMMAND` by wingmand's user on that host.
	Command string `json:"command"`
	// Timeout kills the command (its whole process group) after this long;
	// 0 means the host's maintenance.exec_timeout (default 30m).
	Timeout time.Duration `json:"timeout_ns,omitempty"`
}

// ExecResult is how a command ended. A non-zero exit is a result, not a
// failed request. The full output goes to that host's log.
type ExecResult struct {
	Host     string        `json:"host"`
	ExitCode int           `json:"exit_code"` // -1: killed (timeout) or ended by a signal
	TimedOut bool          `json:"timed_out,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	// Output is the end of the command's stdout and stderr (a few hundred
	// bytes: forwarded answers travel in one serf message).
	Output    string `json:"output"`
	Truncated bool   `json:"truncated,omitempty"`
}

// RebootRequest reboots a host in maintenance that holds no protected VM,
// with its maintenance.reboot_command.
type RebootRequest struct {
	// ExitMaintenance: once back, joined, quorate and healthy, the host's
	// wingmand leaves maintenance by itself (kept in its state directory,
	// so it works when the caller reboots with the host).
	ExitMaintenance bool `json:"exit_maintenance,omitempty"`
	// Failback, with ExitMaintenance, migrates back the VMs that left it.
	Failback bool `json:"failback,omitempty"`
}

// RebootResult answers a reboot request before the reboot starts.
type RebootResult struct {
	Host string `json:"host"`
	// Generation is the host's current heartbeat generation: once back,
	// it has a higher one.
	Generation uint64 `json:"generation"`
	// At is the host's own clock when it accepted the request; a
	// "reboot-failed" event of that host after At means the reboot
	// command failed.
	At      time.Time `json:"at"`
	Command string    `json:"command"`
}

// EvacuationPlan is what entering maintenance on a host would do now: which
// protected VMs move where, and which fit nowhere.
type EvacuationPlan struct {
	Host     string           `json:"host"`
	Moves    []EvacuationMove `json:"moves"`
	Unplaced []string         `json:"unplaced,omitempty"` // "name: reason"
}

// EvacuationMove is one planned live migration.
type EvacuationMove struct {
	VM string `json:"vm"`
	To string `json:"to"`
}

// NotifyTarget is a notification target, stored cluster-wide on the LUN
// (docs/NOTIFICATIONS.md). Secrets stay in files on every host: only the
// file's path travels.
type NotifyTarget struct {
	Name        string        `json:"name"`
	Kind        string        `json:"kind"`    // "mail", "webhook", "exec"
	Address     string        `json:"address"` // SMTP host:port, webhook URL, or program path
	From        string        `json:"from,omitempty"`
	To          []string      `json:"to,omitempty"`
	User        string        `json:"user,omitempty"`
	SecretFile  string        `json:"secret_file,omitempty"`  // SMTP password or webhook key, on every host
	MinSeverity string        `json:"min_severity,omitempty"` // "info" (default), "warning", "error"
	Kinds       []string      `json:"kinds,omitempty"`        // incident, resolved, warning, cleared; empty: all
	Hosts       []string      `json:"hosts,omitempty"`        // only about these hosts; empty: all
	Timeout     time.Duration `json:"timeout_ns,omitempty"`   // one attempt; 0: the kind's default
	// Counts are the answering host's deliveries since its wingmand started
	// (GET only).
	Counts *NotifyCounts `json:"counts,omitempty"`
}

// NotifyCounts are the deliveries to one target by one host.
type NotifyCounts struct {
	Sent    uint64 `json:"sent"`
	Failed  uint64 `json:"failed"`  // attempts that failed
	GaveUp  uint64 `json:"gave_up"` // notifications never delivered
	Retried uint64 `json:"retried"`
}

// RestoreHeaderRequest asks a daemon to write back the LUN header it read
// at start. Force writes it over another valid header.
type RestoreHeaderRequest struct {
	Force bool `json:"force,omitempty"`
}

// RestoreHeaderResult says what block 0 of the LUN held and whether the
// daemon wrote its copy of the header back.
type RestoreHeaderResult struct {
	Host  string `json:"host"`  // the daemon whose copy it is
	Found string `json:"found"` // what block 0 held: "zeros", "a damaged wingman header", ...
	Wrote bool   `json:"wrote"` // false: block 0 held this cluster's header already
}

// ReclaimLeaseRequest asks the daemon of the host that runs a VM to
// re-establish the damaged lease of the VM record Record.
type ReclaimLeaseRequest struct {
	Record int `json:"record"`
}

// ReclaimLeaseResult is the lease the daemon now holds.
type ReclaimLeaseResult struct {
	Record int    `json:"record"`
	Host   string `json:"host"`
	Epoch  uint64 `json:"epoch"`
}

// NotifyTestRequest sends a test notification to one target (Target) or,
// with none named, to every target.
type NotifyTestRequest struct {
	Target string `json:"target,omitempty"`
}

// NotifyTestResult is what a test notification did at one target.
type NotifyTestResult struct {
	Target string        `json:"target"`
	Kind   string        `json:"kind"`
	OK     bool          `json:"ok"`
	Error  string        `json:"error,omitempty"`
	Took   time.Duration `json:"took_ns"`
}

// Incident is one lost host and what became of its protected VMs: a
// failover's timeline, as every host computes it from the LUN's events
// (GET /v1/incidents, oldest first).
type Incident struct {
	ID     string `json:"id"` // stable: the same on every host and across restarts
	Host   string `json:"host"`
	HostID int    `json:"host_id"`
	// Lost is the first sign of the loss: a suspicion, a poison pill or a
	// fence; the declaration itself when there was none.
	Lost time.Time `json:"lost"`
	// LastHeartbeat, for a host declared dead by its heartbeat, is when
	// the declaring host last saw that heartbeat change: D before the
	// declaration.
	LastHeartbeat time.Time    `json:"last_heartbeat,omitzero"`
	Declared      time.Time    `json:"declared"`
	How           string       `json:"how"` // heartbeat, fenced, isolated or left
	Reason        string       `json:"reason"`
	VMs           []IncidentVM `json:"vms"`
	// Settled: every VM started or was given up, or the settle bound
	// passed.
	Settled    bool      `json:"settled"`
	SettledAt  time.Time `json:"settled_at,omitzero"`
	Resolved   bool      `json:"resolved"` // the host came back
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	Severity   string    `json:"severity"` // warning when every VM came back, else error
}

// IncidentVM is one VM of a lost host in its failover.
type IncidentVM struct {
	Name    string    `json:"name"`
	UUID    string    `json:"uuid"`
	State   string    `json:"state"`          // pending, started or failed
	Host    string    `json:"host,omitempty"` // where it runs now (or was tried)
	Planned time.Time `json:"planned,omitzero"`
	At      time.Time `json:"at,omitzero"` // when it started (or failed)
	// Took is the time from the declaration to At.
	Took    time.Duration `json:"took_ns,omitempty"`
	Message string        `json:"message,omitempty"` // why it failed
}

// ClusterSettings are the cluster-wide keys (`wingman config list`), stored
// on the heartbeat LUN, as the answering host applies them. A change by
// `wingman config set` applies on every host within 10 s, without a restart.
type ClusterSettings struct {
	Host       string           `json:"host"`       // the host that answered
	Generation uint64           `json:"generation"` // of the settings record: every change adds one
	Settings   []ClusterSetting `json:"settings"`
	// Warnings are the answering host's wingman.toml setting a key to
	// another value than the cluster's.
	Warnings []string `json:"warnings"`
}

// ClusterSetting is one cluster-wide key.
type ClusterSetting struct {
	Key   string `json:"key"`
	Value string `json:"value"` // what the answering host applies
	// Source is "cluster" (set with `wingman config set`), "file" (the
	// answering host's wingman.toml, the cluster setting none) or "default".
	Source  string    `json:"source"`
	SetBy   string    `json:"set_by,omitempty"` // the host that set the cluster's value
	SetAt   time.Time `json:"set_at,omitzero"`  // when, by that host's clock
	File    string    `json:"file,omitempty"`   // the answering host's wingman.toml value, if it sets one
	Default string    `json:"default"`
	Summary string    `json:"summary,omitempty"` // what it does, its range
	// Ignored says why a value on the LUN is not applied (a newer
	// wingman's key or range): upgrade the answering host.
	Ignored string `json:"ignored,omitempty"`
}

// ConfigSetRequest sets a cluster-wide key (PUT /v1/config/{key}).
type ConfigSetRequest struct {
	Value string `json:"value"`
}

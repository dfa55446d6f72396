package plan

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidInput is wrapped by errors about the Input itself (duplicate
// ids, a bad Config, a VM with an invalid policy). The planner refuses to
// plan from an input it cannot trust: planning a VM twice could start it twice.
var ErrInvalidInput = errors.New("invalid planner input")

// ErrUnknownHost is returned for a host id that is not in the Input.
var ErrUnknownHost = errors.New("unknown host")

// HostState is a host's state as computed by the quorum layer.
type HostState string

const (
	HostAlive       HostState = "alive"       // runs VMs and takes new ones
	HostMaintenance HostState = "maintenance" // being emptied or emptied; takes none
	HostSuspect     HostState = "suspect"     // serf lost it but the LUN says alive: keep its VMs, send none
	HostQuarantined HostState = "quarantined" // alive but flapping (quorum's quarantine): keeps its VMs, takes none
	HostDead        HostState = "dead"        // declared dead: its VMs are restarted elsewhere
	HostLeft        HostState = "left"        // left the cluster cleanly: its VMs are restarted elsewhere
)

// lost reports whether the host's VMs belong to others now.
func (s HostState) lost() bool { return s == HostDead || s == HostLeft }

func (s HostState) valid() bool {
	switch s {
	case HostAlive, HostMaintenance, HostSuspect, HostDead, HostLeft, HostQuarantined:
		return true
	}
	return false
}

// Host is one host of the cluster as the planner sees it.
type Host struct {
	ID    int // slot id on the LUN, > 0
	Name  string
	State HostState
	// Memory and CPUs are the host's physical capacity.
	Memory uint64 // bytes
	CPUs   int
	// OtherMemory and OtherCPUs are load the VM list does not show:
	// unprotected guests and anything else already committed on the host.
	OtherMemory uint64
	OtherCPUs   int
	// Limits, when set, replace Config's overcommit ratios and reserve for
	// this host: each host says how much it may hold ([placement] in its
	// wingman.toml, advertised through serf).
	Limits *Limits
}

// Limits are how far one host may be filled: its VMs may use up to
// MemoryOvercommit times its memory minus ReservedMemory, and have up to
// CPUOvercommit vCPUs per CPU; a failover wave starts at most MaxStarts VMs
// on it at once.
type Limits struct {
	MemoryOvercommit float64
	CPUOvercommit    float64
	ReservedMemory   uint64 // bytes
	MaxStarts        int
}

// Validate rejects ratios the planner cannot honour, saying what to change.
func (l Limits) Validate() error {
	var errs []error
	// NaN fails both comparisons, so it is rejected too.
	if !(l.MemoryOvercommit >= 1 && l.MemoryOvercommit <= 10) {
		errs = append(errs, fmt.Errorf("memory overcommit %v: use 1.0 (none) to 10; keep headroom with reserved memory instead", l.MemoryOvercommit))
	}
	if !(l.CPUOvercommit >= 1 && l.CPUOvercommit <= 64) {
		errs = append(errs, fmt.Errorf("cpu overcommit %v: use 1 to 64 vCPUs per CPU", l.CPUOvercommit))
	}
	if l.ReservedMemory > 1<<50 {
		errs = append(errs, fmt.Errorf("reserved memory %d MiB: more than any host has", l.ReservedMemory>>20))
	}
	if l.MaxStarts < 1 || l.MaxStarts > 64 {
		errs = append(errs, fmt.Errorf("max starts per host %d: use 1 to 64", l.MaxStarts))
	}
	return errors.Join(errs...)
}

// VM is one protected VM.
type VM struct {
	UUID string
	Name string
	// Owner is the id of the host whose lease the VM holds; 0 means none.
	Owner  int
	Memory uint64 // bytes
	VCPUs  int
	// Running says whether the VM runs (or ran, when its owner was lost).
	// Only running VMs count as load on their owner.
	Running bool
	Policy  Policy
	// Restarts holds the times of earlier automatic restarts, for the
	// policy's restart limit (compared with Input.Now; entries outside the
	// window are ignored).
	Restarts []time.Time
}

// Config tunes placement. The zero value is not valid: start from
// DefaultConfig.
type Config struct {
	// MemoryOvercommit: a host's VMs may use up to this many times its
	// memory minus ReservedMemory. 1.0 means no overcommit.
	MemoryOvercommit float64
	// CPUOvercommit: a host's VMs may have up to this many vCPUs per CPU.
	CPUOvercommit float64
	// ReservedMemory is kept free on every host for the host itself.
	ReservedMemory uint64
	// MaxConcurrentStarts bounds the VM starts of one failover wave, cluster
	// wide; MaxStartsPerHost bounds them per target host.
	MaxConcurrentStarts int
	MaxStartsPerHost    int
	// MaxConcurrentMigrations bounds the live migrations of one evacuation
	// wave; MaxMigrationsPerHost bounds the incoming ones per target host.
	MaxConcurrentMigrations int
	MaxMigrationsPerHost    int
}

// DefaultConfig is the production placement configuration: no memory
// overcommit, 4 vCPUs per CPU, 1 GiB reserved per host, 64 concurrent starts
// (16 per host), 2 concurrent migrations (1 per target). Starts per host:
// starting 30 guests on two hosts through libvirt took 13.6 s at 4 per host,
// 10.3 s at 8 and 7.5 s at 15 on a 2-core test machine; vSphere HA allows 32
// concurrent failover power-ons per host by default.
func DefaultConfig() Config {
	return Config{
		MemoryOvercommit:        1.0,
		CPUOvercommit:           4.0,
		ReservedMemory:          1 << 30,
		MaxConcurrentStarts:     64,
		MaxStartsPerHost:        16,
		MaxConcurrentMigrations: 2,
		MaxMigrationsPerHost:    1,
	}
}

// Limits are the ratios and reserve of every host that sets none itself.
func (c Config) Limits() Limits {
	return Limits{MemoryOvercommit: c.MemoryOvercommit, CPUOvercommit: c.CPUOvercommit, ReservedMemory: c.ReservedMemory,
		MaxStarts: c.MaxStartsPerHost}
}

// Validate rejects values the planner cannot honour, saying what to change.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: config "+format, append([]any{ErrInvalidInput}, args...)...))
	}
	if err := c.Limits().Validate(); err != nil {
		add("%v", err)
	}
	if c.MaxConcurrentStarts < 1 {
		add("max concurrent starts %d: use at least 1", c.MaxConcurrentStarts)
	}
	if c.MaxConcurrentMigrations < 1 {
		add("max concurrent migrations %d: use at least 1", c.MaxConcurrentMigrations)
	}
	if c.MaxMigrationsPerHost < 1 {
		add("max migrations per host %d: use at least 1", c.MaxMigrationsPerHost)
	}
	return errors.Join(errs...)
}

// Input is the immutable snapshot every planner function reads. Slice order
// does not matter.
type Input struct {
	Hosts  []Host
	VMs    []VM
	Config Config
	// Now is the time restart limits are counted back from.
	Now time.Time
}

// Validate checks the config, that host ids and VM UUIDs are unique, and
// every VM's size and policy.
func (in *Input) Validate() error {
	var errs []error
	if err := in.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidInput}, args...)...))
	}
	hosts := make(map[int]struct{}, len(in.Hosts))
	for i := range in.Hosts {
		h := &in.Hosts[i]
		if h.ID <= 0 {
			add("host %q has id %d: ids are positive", h.Name, h.ID)
		}
		if _, dup := hosts[h.ID]; dup {
			add("host id %d appears twice", h.ID)
		}
		hosts[h.ID] = struct{}{}
		if !h.State.valid() {
			add("host %d state %q: use alive, maintenance, quarantined, suspect, dead or left", h.ID, h.State)
		}
		if h.CPUs < 0 || h.OtherCPUs < 0 {
			add("host %d has a negative cpu count", h.ID)
		}
		if h.Limits != nil {
			if err := h.Limits.Validate(); err != nil {
				add("host %d limits: %v", h.ID, err)
			}
		}
	}
	vms := make(map[string]struct{}, len(in.VMs))
	for i := range in.VMs {
		v := &in.VMs[i]
		if v.UUID == "" {
			add("vm %q has no uuid", v.Name)
		}
		if _, dup := vms[v.UUID]; dup {
			add("vm uuid %s appears twice", v.UUID)
		}
		vms[v.UUID] = struct{}{}
		if v.VCPUs < 0 || v.Owner < 0 {
			add("vm %s has a negative vcpu count or owner", v.UUID)
		}
		if err := v.Policy.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: vm %s: %w", ErrInvalidInput, v.UUID, err))
		}
		if len(errs) > 20 {
			add("more errors not shown")
			break
		}
	}
	return errors.Join(errs...)
}

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/configfile"
	"github.com/wingmanha/wingman/cmd/internal/fenceconfig"
	"github.com/wingmanha/wingman/cmd/internal/luns"
	"github.com/wingmanha/wingman/cmd/internal/metrics"
	"github.com/wingmanha/wingman/quorum/isolation"
	"github.com/wingmanha/wingman/vm/maintenance"
	"github.com/wingmanha/wingman/vm/plan"
	"github.com/wingmanha/wingman/vm/settings"
)

// DefaultConfigPath is where wingmand reads its configuration.
const DefaultConfigPath = "/etc/wingman/wingman.toml"

// Config is wingmand's configuration file (contrib/wingman.toml documents
// every key). Flags override it.
type Config struct {
	// Cluster is the cluster name; the LUN must carry it.
	Cluster string `toml:"cluster"`
	// LUN are the heartbeat LUNs, one or three: shared block devices or files on shared storage.
	LUN luns.Paths `toml:"lun"`
	// HostName names this host in the cluster (default: the hostname).
	HostName string `toml:"host_name"`
	// HostID is this host's slot on the LUN, 1..255 (0: the slot that
	// already carries HostName, else the first free one).
	HostID int `toml:"host_id"`
	// StateDir holds the lock file and serf's snapshot.
	StateDir string `toml:"state_dir"`

	Libvirt  LibvirtConfig          `toml:"libvirt"`
	Serf     SerfConfig             `toml:"serf"`
	API      APIConfig              `toml:"api"`
	Watchdog WatchdogConfig         `toml:"watchdog"`
	Shutdown ShutdownConfig         `toml:"shutdown"`
	Metrics  metrics.ListenerConfig `toml:"metrics"`
	// Maintenance configures what a rolling update may do on this host.
	Maintenance MaintenanceConfig `toml:"maintenance"`
	// Placement is how far this host may be filled with protected VMs.
	Placement PlacementConfig `toml:"placement"`
	// Failover tunes the order of failover starts.
	Failover   FailoverConfig          `toml:"failover"`
	Quarantine settings.FileQuarantine `toml:"quarantine"` // cluster-wide: the cluster's values override it
	// Isolation lists the addresses that tell an isolated host from one cut off from its peers only.
	Isolation isolation.Config `toml:"isolation"`
	// Fence maps host names to their fence agent or fencing levels, and
	// FenceDevice names the devices of those levels (optional).
	Fence       map[string]fenceconfig.Host   `toml:"fence"`
	FenceDevice map[string]fenceconfig.Device `toml:"fence_device"`

	path string   // the file it was read from, for messages
	keys []string // the keys the file sets
}

// LibvirtConfig says how to reach libvirt.
type LibvirtConfig struct {
	// URI of the local libvirtd (default qemu:///system).
	URI string `toml:"uri"`
	// MigrationURI is the libvirt URI of another host as seen from this
	// one; {addr} is replaced by that host's serf address (default
	// qemu+tcp://{addr}/system, or qemu+tls://... where TLS is set up).
	MigrationURI string `toml:"migration_uri"`
	// UnsafeMigration passes libvirt's unsafe flag; only for test clusters
	// whose shared directory is not a cluster filesystem.
	UnsafeMigration bool `toml:"unsafe_migration"`
}

// SerfConfig configures gossip.
type SerfConfig struct {
	// Bind is the address serf listens on (default 0.0.0.0:7946).
	Bind string `toml:"bind"`
	// Advertise is the address others reach this host at (default: bind's,
	// or the address of the default route).
	Advertise string `toml:"advertise"`
	// Join lists other hosts' serf addresses.
	Join []string `toml:"join"`
	// Keyring is serf's keyring file (a JSON list of base64 keys; make a key
	// with `wingman keygen`). Required unless Insecure.
	Keyring string `toml:"keyring"`
	// Insecure runs gossip without encryption: test networks only.
	Insecure bool `toml:"insecure"`
	// Profile is serf's failure-detection profile: "default" (a dead host
	// is suspected in 3-6 s) or "fast" (test networks, ~0.5 s).
	Profile string `toml:"profile"`
}

// APIConfig configures the API socket.
type APIConfig struct {
	// Socket is the unix socket path (default /run/wingman/wingman.sock).
	Socket string `toml:"socket"`
	// Group may use the socket besides root (default "wingman").
	Group string `toml:"group"`
	// TLSListen is host:port of an optional remote API listener; it
	// requires mutual TLS: clients must present a certificate signed by
	// TLSClientCA. Empty: no remote access.
	TLSListen   string `toml:"tls_listen"`
	TLSCert     string `toml:"tls_cert"`
	TLSKey      string `toml:"tls_key"`
	TLSClientCA string `toml:"tls_client_ca"`
}

// WatchdogConfig configures the watchdog.
type WatchdogConfig struct {
	// Mode is auto (the device if present, else software with a warning),
	// device, software, or file (an emulated hardware watchdog for test
	// clusters: each pet rewrites the file named by device, and the test
	// harness resets the host when it goes stale).
	Mode string `toml:"mode"`
	// Device is the watchdog device (default /dev/watchdog).
	Device string `toml:"device"`
}

// ShutdownConfig says what happens to this host's VMs when the host itself
// shuts down or reboots. A stop of wingmand alone (restart, upgrade) leaves
// them running here, whatever the policy (vm/maintenance's PlanStop).
type ShutdownConfig struct {
	// Policy is "migrate" (live-migrate every protected VM away, then leave
	// the cluster; default), "failover" (shut the VMs down and release them
	// so other hosts start them, then leave), "freeze" (shut them down and
	// keep them stopped, so that no other host starts them, and start them
	// again here when wingmand comes back: for a short planned reboot of a
	// host whose VMs need not move), or "keep" (leave them: they stop with
	// the host and the others restart them once it is declared dead; needs a
	// hardware watchdog, else acts as failover).
	Policy string `toml:"policy"`
	// Timeout bounds the evacuation (default 10m).
	Timeout duration `toml:"timeout"`
}

// MaintenanceConfig says how this host is emptied and what a rolling update
// may do on it; the cluster's values override the cluster-wide keys.
type MaintenanceConfig struct {
	// ParallelMigrations is how many live migrations an evacuation runs at
	// once (default 2, 1 to 16). More empties a host sooner but shares the
	// migration network's bandwidth among more guests.
	ParallelMigrations int `toml:"parallel_migrations"`
	// OnMigrationFailure is what an evacuation does with a VM whose live
	// migration failed twice (to two hosts): "report" (default) leaves it
	// running here and reports it; "cold-move" shuts it down and releases
	// it so another host starts it (a short outage).
	OnMigrationFailure string `toml:"on_migration_failure"`
	// AllowExec lets the API run a shell command on this host as
	// wingmand's user (default true); false forbids remote execution.
	AllowExec bool `toml:"allow_exec"`
	// ExecTimeout is the default time limit of such a command (default 30m).
	ExecTimeout duration `toml:"exec_timeout"`
	// RebootCommand reboots this host (default "systemctl reboot"); it
	// runs through /bin/sh -c. Empty: reboots through the API are refused.
	RebootCommand string `toml:"reboot_command"`
}

// PlacementConfig is how far this host lets failovers and evacuations fill
// it. The host advertises it to its peers, so each host may differ; the
// planner on every host applies each target's own limits.
type PlacementConfig struct {
	// CPUOvercommit is how many guest vCPUs this host takes per logical
	// CPU (default 4, 1 to 64).
	CPUOvercommit float64 `toml:"cpu_overcommit"`
	// MemoryOvercommit is how many times its memory, after the reserve, the
	// guests may be given (default 1.0, no overcommit; up to 10).
	MemoryOvercommit float64 `toml:"memory_overcommit"`
	// ReservedMemoryMiB is memory kept for the host itself: the kernel,
	// libvirtd, QEMU overhead (default 1024).
	ReservedMemoryMiB uint64 `toml:"reserved_memory_mib"`
	// ParallelStarts is how many failed-over VMs this host starts at once
	// (default 16, 1 to 64); the next starts as soon as one is done.
	ParallelStarts int `toml:"parallel_starts"`
}

// Limits are the placement limits in the planner's terms.
func (p PlacementConfig) Limits() plan.Limits {
	return plan.Limits{CPUOvercommit: p.CPUOvercommit, MemoryOvercommit: p.MemoryOvercommit, ReservedMemory: p.ReservedMemoryMiB << 20,
		MaxStarts: p.ParallelStarts}
}

// FailoverConfig tunes the order of failover starts. A cluster-wide key:
// the cluster's value (wingman config set) overrides it (vm/settings).
type FailoverConfig struct {
	// GuestAgentWait bounds how long a later start tier waits for the guest
	// agent of an earlier tier's VM whose policy says wait-guest-agent,
	// counted from when that VM was taken (default 5m, 10s to 1h).
	GuestAgentWait duration `toml:"guest_agent_wait"`
	// DiskLoss ("restart" or "off") and DiskLossGrace: a VM paused on an
	// I/O error for the grace (15s to 24h) is restarted on another host.
	DiskLoss      string   `toml:"disk_loss"`
	DiskLossGrace duration `toml:"disk_loss_grace"`
}

// duration reads "30s" style values from TOML.
type duration = configfile.Duration

// DefaultConfig returns the defaults of every key.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	cw := settings.Defaults() // the cluster-wide keys' (vm/settings)
	return Config{
		HostName: host,
		StateDir: "/var/lib/wingman",
		Libvirt:  LibvirtConfig{URI: "qemu:///system", MigrationURI: "qemu+tcp://{addr}/system"},
		Serf:     SerfConfig{Bind: "0.0.0.0:7946", Profile: "default"},
		API:      APIConfig{Socket: "/run/wingman/wingman.sock", Group: "wingman"},
		Watchdog: WatchdogConfig{Mode: "auto", Device: "/dev/watchdog"},
		Shutdown: ShutdownConfig{Policy: "migrate", Timeout: duration{Duration: 10 * time.Minute}},
		Maintenance: MaintenanceConfig{ParallelMigrations: cw.ParallelMigrations, OnMigrationFailure: cw.OnMigrationFailure, AllowExec: true,
			ExecTimeout: duration{Duration: cw.ExecTimeout}, RebootCommand: "systemctl reboot"},
		Placement: PlacementConfig{CPUOvercommit: plan.DefaultConfig().CPUOvercommit, MemoryOvercommit: plan.DefaultConfig().MemoryOvercommit,
			ReservedMemoryMiB: plan.DefaultConfig().ReservedMemory >> 20, ParallelStarts: plan.DefaultConfig().MaxStartsPerHost},
		Failover:   FailoverConfig{GuestAgentWait: duration{Duration: cw.GuestAgentWait}, DiskLoss: cw.DiskLoss, DiskLossGrace: duration{Duration: cw.DiskLossGrace}},
		Quarantine: settings.DefaultFileQuarantine(),
	}
}

// LoadConfig reads path over the defaults. A missing file is an error
// unless allowMissing (flags may then provide everything).
func LoadConfig(path string, allowMissing bool) (Config, error) {
	cfg := DefaultConfig()
	cfg.path = path
	err := configfile.Decode(path, &cfg)
	if errors.Is(err, os.ErrNotExist) && allowMissing {
		cfg.path, err = "(flags)", nil
	} else if err == nil {
		cfg.keys, err = configfile.Keys(path)
	}
	return cfg, err
}

// Validate checks every key, saying which file and key is wrong and what to do.
func (c *Config) Validate() error {
	var probs []string
	bad := func(key, format string, a ...any) {
		probs = append(probs, fmt.Sprintf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.Cluster == "" || len(c.Cluster) > 63 {
		bad("cluster", "must be the cluster name given to `wingman lun format --cluster` (1..63 bytes)")
	}
	for _, p := range c.LUN.Problems() {
		bad("lun", "%s", p)
	}
	if c.HostName == "" || len(c.HostName) > 63 {
		bad("host_name", "must be 1..63 bytes (default: the hostname)")
	}
	if c.HostID < 0 || c.HostID > 255 {
		bad("host_id", "%d is outside 0..255 (0 picks a slot)", c.HostID)
	}
	if c.StateDir == "" {
		bad("state_dir", "is required")
	}
	if !strings.Contains(c.Libvirt.MigrationURI, "{addr}") {
		bad("libvirt.migration_uri", "%q must contain {addr}, the other host's address", c.Libvirt.MigrationURI)
	}
	if _, _, err := splitHostPort(c.Serf.Bind); err != nil {
		bad("serf.bind", "%v", err)
	}
	if c.Serf.Advertise != "" {
		if _, _, err := splitHostPort(c.Serf.Advertise); err != nil {
			bad("serf.advertise", "%v", err)
		}
	}
	if c.Serf.Keyring == "" && !c.Serf.Insecure {
		bad("serf.keyring", "is required: gossip must be encrypted; write a key with `wingman keygen` into a keyring file (or set serf.insecure = true on a test network)")
	} else if _, err := os.Stat(c.Serf.Keyring); c.Serf.Keyring != "" && err != nil {
		bad("serf.keyring", "%v: write the cluster's key into it (see `wingman keygen`), the same file on every host", err)
	}
	switch c.Serf.Profile {
	case "default", "fast":
	default:
		bad("serf.profile", "%q: use default or fast", c.Serf.Profile)
	}
	if err := api.CheckSocketPath(c.API.Socket); err != nil {
		bad("api.socket", "%v", err)
	}
	switch c.Watchdog.Mode {
	case "auto", "device", "software", "file":
	default:
		bad("watchdog.mode", "%q: use auto, device or software", c.Watchdog.Mode)
	}
	if _, err := maintenance.ParseShutdownPolicy(c.Shutdown.Policy); err != nil {
		bad("shutdown.policy", "%v", err)
	}
	if c.Shutdown.Timeout.Duration <= 0 {
		bad("shutdown.timeout", "%v: must be positive, like 10m", c.Shutdown.Timeout.Duration)
	}
	if c.API.TLSListen != "" {
		if _, _, err := splitHostPort(c.API.TLSListen); err != nil {
			bad("api.tls_listen", "%v", err)
		}
		if c.API.TLSCert == "" || c.API.TLSKey == "" || c.API.TLSClientCA == "" {
			bad("api.tls_listen", "needs api.tls_cert, api.tls_key and api.tls_client_ca: remote access requires mutual TLS")
		}
	}
	if !(c.Placement.CPUOvercommit >= 1 && c.Placement.CPUOvercommit <= 64) {
		bad("placement.cpu_overcommit", "%v: use 1 to 64 vCPUs per logical CPU (default 4)", c.Placement.CPUOvercommit)
	}
	if !(c.Placement.MemoryOvercommit >= 1 && c.Placement.MemoryOvercommit <= 10) {
		bad("placement.memory_overcommit", "%v: use 1.0 (none, the default) to 10; keep headroom with reserved_memory_mib instead", c.Placement.MemoryOvercommit)
	}
	if p := c.Placement.ParallelStarts; p < 1 || p > 64 {
		bad("placement.parallel_starts", "%d: must be 1 to 64 (default 16)", p)
	}
	if c.Placement.ReservedMemoryMiB > 1<<30 {
		bad("placement.reserved_memory_mib", "%d: more than any host has; use MiB, like 2048", c.Placement.ReservedMemoryMiB)
	}
	for _, p := range c.clusterFile().Values.Problems() {
		bad(p.Key, "%s", p.Msg)
	}
	for _, p := range c.Metrics.Problems() {
		bad("metrics."+p.Key, "%s", p.Msg)
	}
	for _, p := range c.Isolation.Problems() {
		bad("isolation."+p.Key, "%s", p.Msg)
	}
	for _, p := range fenceconfig.Problems(c.Fence, c.FenceDevice) {
		bad(p.Key, "%s", p.Msg)
	}
	if len(probs) > 0 {
		return fmt.Errorf("%s: %s", c.path, strings.Join(probs, "; "))
	}
	return nil
}

// clusterFile is what the file says of the cluster-wide keys, which the
// cluster's values override (vm/settings).
func (c *Config) clusterFile() settings.File {
	return settings.File{Path: c.path, Keys: c.keys, Values: c.Quarantine.Over(settings.Values{GuestAgentWait: c.Failover.GuestAgentWait.Duration,
		ParallelMigrations: c.Maintenance.ParallelMigrations, OnMigrationFailure: c.Maintenance.OnMigrationFailure, ExecTimeout: c.Maintenance.ExecTimeout.Duration,
		DiskLoss: c.Failover.DiskLoss, DiskLossGrace: c.Failover.DiskLossGrace.Duration})}
}

func splitHostPort(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", s)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", s)
	}
	return h, port, nil
}

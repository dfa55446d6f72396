package cluster

import (
	"fmt"
	"net/netip"
	"os"
	"time"
)

// Config describes a test cluster. Start from DefaultConfig and change what a test needs.
type Config struct {
	// Hosts is the number of hosts to bring up, 1 to 64. Default 2.
	Hosts int

	// NamePrefix names the hosts: host N (1-based) is NamePrefix+N, also its UTS hostname.
	// Default "kvm" (kvm1, kvm2, ...).
	NamePrefix string

	// Subnet is the private IPv4 test network of the switch; host N gets the Nth address of it
	// (10.77.0.1, 10.77.0.2, ...). Nothing routes out of it and the root namespace never sees it, so
	// any private prefix works, and two clusters may use the same one. Default 10.77.0.0/24.
	Subnet netip.Prefix

	// BaseDir is the directory under which the cluster creates its own fresh directory
	// (wingman-cluster-<pid>-<random>). Guest disks go in there, and ext4 enforces O_DIRECT
	// alignment where tmpfs may not, so keep it on a real disk. Default os.TempDir().
	BaseDir string

	// KeepDir keeps the cluster's directory (configs, libvirtd and guest logs, disks) after Close,
	// for debugging. Default false: Close removes it.
	KeepDir bool

	// MigrationPortBase is the first QEMU migration port; host N gets the 64 ports from
	// MigrationPortBase+(N-1)*64. Default 49152 (QEMU's usual range).
	MigrationPortBase int

	// LibvirtdLogLevel is the level of each libvirtd's log file (<host dir>/log/libvirtd.log):
	// 1 debug, 2 info, 3 warning, 4 error. Default 3.
	LibvirtdLogLevel int

	// StartTimeout bounds bringing up one host (namespaces, network, libvirtd answering), and
	// restarting its libvirtd. Default 60 s (a cold first start of libvirtd probes QEMU for ~1 s).
	StartTimeout time.Duration

	// StopTimeout bounds waiting for a killed host or daemon to be gone. Default 20 s.
	StopTimeout time.Duration

	// DomainType is the libvirt domain type of the guests made by Cluster.NewGuest: "kvm", "qemu"
	// (TCG, slow but works without /dev/kvm), or "" to use "kvm" when /dev/kvm can be opened.
	// Default "".
	DomainType string

	// GuestMemoryMiB is the memory of the guests made by Cluster.NewGuest. Default 64.
	GuestMemoryMiB int

	// GuestDiskMiB is the size of the raw disk that Cluster.NewGuest creates in the shared
	// directory. Default 8.
	GuestDiskMiB int

	// LockManager turns on libvirt's lock manager on every host: a virtlockd per host, started
	// before libvirtd, and lock_manager = "lockd" with its file lockspace in LockspaceSubdir of
	// the shared directory, which every host sees, as the lockspace of a real cluster lives on
	// shared storage. Default false.
	LockManager bool

	// HeartbeatLUNs is how many heartbeat LUNs wingmand gets: 1 (lun.img) or 3 (lun.img,
	// lun2.img, lun3.img, formatted as one set; every host names them in that order).
	// Default 1.
	HeartbeatLUNs int
}

// LockspaceSubdir is the lock manager's file lockspace (Config.LockManager) in the shared
// directory: one lease file per disk path.
const LockspaceSubdir = "lockspace"

// DefaultConfig returns the configuration of a two-host cluster on 10.77.0.0/24 with 64 MiB guests.
func DefaultConfig() Config {
	return Config{
		Hosts:             2,
		NamePrefix:        "kvm",
		Subnet:            netip.MustParsePrefix("10.77.0.0/24"),
		BaseDir:           os.TempDir(),
		MigrationPortBase: 49152,
		LibvirtdLogLevel:  3,
		StartTimeout:      60 * time.Second,
		StopTimeout:       20 * time.Second,
		GuestMemoryMiB:    64,
		GuestDiskMiB:      8,
		HeartbeatLUNs:     1,
	}
}

// Validate reports the first unusable setting, saying what to change.
func (c Config) Validate() error {
	if c.Hosts < 1 || c.Hosts > 64 {
		return fmt.Errorf("config: Hosts is %d: use 1 to 64", c.Hosts)
	}
	if c.NamePrefix == "" || len(c.NamePrefix) > 40 {
		return fmt.Errorf("config: NamePrefix %q: use 1 to 40 characters", c.NamePrefix)
	}
	if !c.Subnet.IsValid() || !c.Subnet.Addr().Is4() || c.Subnet != c.Subnet.Masked() {
		return fmt.Errorf("config: Subnet %v: use a masked IPv4 prefix such as 10.77.0.0/24", c.Subnet)
	}
	if room := 1<<(32-c.Subnet.Bits()) - 2; c.Hosts > room {
		return fmt.Errorf("config: Subnet %v has room for %d hosts, not %d: use a shorter prefix", c.Subnet, room, c.Hosts)
	}
	if c.BaseDir == "" {
		return fmt.Errorf("config: BaseDir is empty: use DefaultConfig().BaseDir or a directory on a real disk")
	}
	if c.MigrationPortBase < 1024 || c.MigrationPortBase+c.Hosts*64 > 65535 {
		return fmt.Errorf("config: MigrationPortBase %d: use 1024 to %d", c.MigrationPortBase, 65535-c.Hosts*64)
	}
	if c.HeartbeatLUNs != 1 && c.HeartbeatLUNs != 3 {
		return fmt.Errorf("config: HeartbeatLUNs %d: use 1 or 3 (a majority of 2 is 2)", c.HeartbeatLUNs)
	}
	if c.LibvirtdLogLevel < 1 || c.LibvirtdLogLevel > 4 {
		return fmt.Errorf("config: LibvirtdLogLevel %d: use 1 (debug) to 4 (error)", c.LibvirtdLogLevel)
	}
	if c.StartTimeout <= 0 || c.StopTimeout <= 0 {
		return fmt.Errorf("config: StartTimeout and StopTimeout must be positive: use DefaultConfig's values")
	}
	switch c.DomainType {
	case "", "kvm", "qemu":
	default:
		return fmt.Errorf("config: DomainType %q: use \"kvm\", \"qemu\" or \"\" (auto)", c.DomainType)
	}
	if c.GuestMemoryMiB < 16 {
		return fmt.Errorf("config: GuestMemoryMiB %d: use at least 16", c.GuestMemoryMiB)
	}
	if c.GuestDiskMiB < 1 {
		return fmt.Errorf("config: GuestDiskMiB %d: use at least 1", c.GuestDiskMiB)
	}
	return nil
}

// hostAddr returns the address of host n (1-based).
func (c Config) hostAddr(n int) netip.Addr {
	a := c.Subnet.Addr()
	for i := 0; i < n; i++ {
		a = a.Next()
	}
	return a
}

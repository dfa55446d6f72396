// Package cluster runs a multi-host KVM test cluster on one Linux machine, for the integration
// and end-to-end tests of Wingman, and injects the faults that Wingman must survive.
//
// # How it works
//
// Each host is a set of namespaces with its own libvirtd:
//
//   - A PID namespace whose init (PID 1) is this very binary, re-executed: the package's init
//     function recognises the role from the environment. The init is a child of the harness with
//     SIGKILL as parent-death signal, so the hosts die with the test process however it ends.
//     It reaps orphans (QEMU daemonises). Killing it is a power loss: the kernel kills libvirtd,
//     every QEMU and anything else of the host at once.
//   - A mount namespace (made private, so nothing propagates back) with a fresh /proc and private
//     bind mounts of the host's directory over /etc/libvirt, /run/libvirt, /var/lib/libvirt,
//     /var/log/libvirt and /var/cache/libvirt, the fixed paths of a root libvirtd. Everything
//     else, including the cluster's shared directory for guest disks, is the machine's.
//   - A UTS namespace with the host's name (kvm1, kvm2, ...), an IPC namespace, and a network
//     namespace whose eth0 is one end of a veth pair; the other end is a port of a bridge inside
//     a "switch" network namespace held by a sleeping child of the harness. Host N has the Nth
//     address of Config.Subnet (10.77.0.N/24). Nothing is added to the root namespace, nothing
//     routes out, and no named namespace is created (/run/netns is not touched), so nothing
//     outlives the processes.
//   - libvirtd, started through nsenter inside all of these, with --listen, a pid file in its own
//     run dir, a libvirtd.conf (TCP without auth on the test network only, a distinct host_uuid,
//     a log file) and a qemu.conf (root, no security driver, no cgroups, no virtlogd, migration
//     on the host's address with a distinct port range).
//
// The harness talks to each libvirtd through its socket file, Host.URI
// (qemu+unix:///system?socket=<host dir>/run/libvirt-sock); hosts talk to each other over TCP,
// Host.MigrationURI (qemu+tcp://10.77.0.N/system), e.g. for peer-to-peer live migration. The
// shared directory is plain local disk, so libvirt calls such a migration unsafe: pass the
// unsafe flag (VIR_MIGRATE_UNSAFE, virsh --unsafe) in tests.
//
// With Config.LockManager every host also runs its own virtlockd, started before libvirtd, and
// its qemu.conf sets lock_manager = "lockd" with the file lockspace in the shared directory
// (LockspaceSubdir), as a real cluster keeps it on shared storage. Host.LoopDisk gives a host its
// own loop device over a disk image under one path (HostDiskDir) on every host, so that QEMU's
// image locking, which sees one kernel here, cannot stand in for the lock manager.
//
// Guests need no OS: GuestSpec.XML is a 64 MiB, 1 vCPU domain (kvm when /dev/kvm works, else
// TCG) with a raw virtio disk (cache='none') whose boot sector, written by CreateDisk, reads the
// disk about nine times a second under SeaBIOS. It starts in a fraction of a second and migrates in
// about half a second.
//
// # Faults
//
//   - Cluster.PowerOff: SIGKILL to the host's init; returns when every process of the host is
//     gone. Cluster.PowerOn boots it again (run/ emptied, definitions in lib/ kept).
//   - Cluster.Partition / Cluster.Heal: the host's port on the switch goes down / up; packets are
//     dropped both ways, nothing is refused, and the harness still reaches the host's libvirtd.
//   - CutLink / JoinLinks: nftables bridge rules in the switch drop the frames
//     between two hosts only; each still reaches the switch's address and the other hosts.
//   - Cluster.KillLibvirtd: SIGKILL to libvirtd only (guests keep running);
//     Cluster.RestartLibvirtd starts it again in the same namespaces (libvirt records
//     namespace-relative PIDs).
//   - Cluster.ServeDiskNBD / Cluster.KillNBD: a guest disk served by qemu-nbd, which can be
//     killed so that the guest pauses with an I/O error.
//
// # Use
//
//	c := cluster.New(t, cluster.DefaultConfig()) // closed by t.Cleanup
//	h1, h2 := c.Hosts()[0], c.Hosts()[1]
//	g, err := c.NewGuest("vm1")                  // disk in c.SharedDir()
//	xml, err := g.XML()                           // define and start it on h1.URI() ...
//	err = c.PowerOff(h1)
//
// A program (make demo) uses Start and Close instead of New.
//
// Requirements: root, and the Debian packages and libvirt-qemu user that `make deps` installs.
// New skips the test otherwise, and in -short mode, except when the environment variable CI is
// set, where a missing prerequisite fails the test. A host costs about 35 MB (libvirtd), a guest
// about 40 MB.
//
// # Cleanup
//
// Close (registered by New with t.Cleanup, so it also runs when a test fails or panics) powers
// off every host, kills the NBD servers and the switch, and removes the cluster directory. On
// SIGINT, SIGTERM or SIGHUP a handler closes every cluster and then lets the signal kill the
// process. On SIGKILL or a test timeout the parent-death signal kills the host inits and the
// switch, which takes every process, mount and veth of the cluster with them; the next Start
// removes the directory left behind.
//
// This package must never touch the root network namespace, create named namespaces, leave a
// process or a mount behind, or be imported by production code.
package cluster

// Command wingmand is the Wingman daemon: one runs on every KVM host of a
// cluster. It only wires: it constructs the parts, connects them and
// serves their API; the features live in library packages.
//
// daemon.go is the wiring, and the only file here that touches the
// adapters: the heartbeat LUN (storage), serf (quorum/gossip) and libvirt
// (hypervisor), with the heartbeat loop (quorum/heartbeat), the watchdog
// (quorum/watchdog) and the fence agents (quorum/fence). The other files
// serve the API of cmd/api on a unix socket that only root and group
// wingman may use (apiServer), register the operations that one host must
// carry out in the forwarding table (ops.go, cmd/internal/forward), read
// the configuration file and talk to systemd (Type=notify). The API's views
// and error classes of the library packages' types are cmd/internal/apiview.
//
// Where each feature lives:
//
//   - protected VMs, their commands, failover and evacuation moves, the
//     VM list: vm (vm.Manager, vm.List; decisions in vm/reconcile, vm/plan);
//   - maintenance mode, the evacuation's progress, abort and failback, the
//     rolling update's exec, reboot and rejoin, what a stop does with the
//     guests (nothing unless the host goes down, which cmd/internal/systemd
//     asks systemd; then shutdown.policy), an operator's live migration:
//     vm/maintenance;
//   - failover drills, the disk checks protect asks of the other hosts, the
//     watch over disks this host cannot reach: vm/drill;
//   - host states, quorum, leases, poison pills and self-fencing:
//     quorum and quorum/heartbeat (with the resume proof of a restart,
//     heartbeat.ResumeFile, and the boot-time clock, heartbeat.BootTime).
//
// On start it recovers its whole picture from libvirt and the LUN, never
// from memory: the VM manager's first step destroys any local copy of a
// protected VM this host does not own before it does anything else.
//
// It refuses to run twice on one host (a lock in its state directory and
// its heartbeat slot on the LUN), and refuses unsafe timings, a LUN of
// another cluster and a malformed configuration with a message that names
// the file, the key and what to do.
//
// What it must never do: decide anything a library package decides, or
// import the LUN, libvirt or serf packages outside its wiring (test/guard
// checks it). The API's status views still read them through the daemon's
// fields (hosts, events, warnings, QMP); they are to follow the features
// out.
package main

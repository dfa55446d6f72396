// Command wingmand is the Wingman daemon: one runs on every KVM host of a
// cluster. It wires the parts together: the heartbeat LUN (storage), serf
// (quorum/gossip), the heartbeat loop and its decisions (quorum/heartbeat),
// the watchdog and fence agents, libvirt (hypervisor) and the VM manager
// (vm). It serves the API of cmd/api on a unix socket that only
// root and group wingman may use, and talks to systemd (Type=notify).
//
// On start it recovers its whole picture from libvirt and the LUN, never
// from memory: the VM manager's first step destroys any local copy of a
// protected VM this host does not own before it does anything else.
//
// It refuses to run twice on one host (a lock in its state directory and
// its heartbeat slot on the LUN), and refuses unsafe timings, a LUN of
// another cluster and a malformed configuration with a message that names
// the file, the key and what to do.
package main

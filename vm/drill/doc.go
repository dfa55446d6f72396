// Package drill runs failover drills across the cluster and the disk
// checks that protecting a VM asks of the other hosts.
//
// A drill (Runner.Run) plans each drilled host's failover (vm.PlanDrill),
// asks every alive host whether it could start the drilled hosts' VMs
// (Peers.Check, answered there by Runner.AnswerCheck), and, with Live,
// migrates a throwaway guest around the ring of hosts (Peers.Live and
// Peers.Cleanup, answered by Runner.LiveHop and Runner.Cleanup). Protect's
// question to another host, "do you reach these disks?", goes the same way
// (Runner.CheckDisksOn, answered by Runner.AnswerDiskCheck). Questions and
// answers each travel in one serf message (about 1000 bytes), so VMs and
// disks go in batches and an answer holds only the failures, trimmed to
// fit (FitAnswer).
//
// It owns its status types (Report, Hop), the wire types of its questions,
// and the small interfaces it needs: VMs (the VM manager's drill checks),
// Hypervisor (libvirt, for the throwaway guest), Cluster (the cluster
// view) and Peers (a question sent to one host, which the daemon forwards).
//
// What it must never do: stop, move or start a protected VM, or leave a
// throwaway guest behind (every hop cleans up both ends, even when the
// caller has gone).
package drill

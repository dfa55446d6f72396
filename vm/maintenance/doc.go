// Package maintenance is one host's planned work: maintenance mode and the
// evacuation that empties the host by live migration (with its progress,
// an abort, and a failback of the VMs it moved once the host is back), the
// rolling update's steps on a host (run a patch command, reboot, leave
// maintenance by itself once back and healthy), and what a stopping daemon
// does with its guests (PlanStop, StopCause, ApplyStop): nothing when only
// the daemon stops (a restart, an upgrade), shutdown.policy when the host
// itself goes down, such as the freeze policy (stop the host's protected
// VMs until its daemon is back).
//
// It owns the maintenance state file in the daemon's state directory (the
// VMs an evacuation moved, and a rolling update's exit-after-reboot
// request) and the frozen-VM list, its status types (Evacuation,
// ExecResult, RebootResult), and the small interfaces it needs: VMs (the
// VM manager), Records (the LUN's VM records), Domains (libvirt), Cluster
// (the cluster view, this host's maintenance flag for the others, a
// migration forwarded to a VM's owner) and ServiceManager (whether the
// host itself is going down). The daemon wires them and turns the status
// types into the API's.
//
// What it must never do: move or stop a guest because only the daemon
// stops, run a patch command or a reboot on a host that may still hold a
// running protected VM or a running guest, move a VM except through the VM
// manager (which holds the lease rule), or decide failover: it only asks
// the VM manager to migrate what this host owns.
package maintenance

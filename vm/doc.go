// Package vm is the protected-VM manager of one host: the adapter that
// turns the pure decisions of vm/reconcile (and vm/plan) into LUN writes,
// libvirt calls and events.
//
// It owns:
//
//   - the operator's VM commands on this host: Protect (which refuses a VM
//     whose disks would lose acknowledged writes or that some alive host
//     cannot reach: DiskDefinitionProblems, and each other host's
//     CheckDisks), Unprotect, SetPolicy, Start and Stop (the desired state)
//     and Migrate (the live-migration handover: SetMigration Started,
//     hypervisor.Migrate, SetMigration Completed; the target then claims the
//     lease);
//   - Step, one reconcile round: snapshot the LUN's VM records (every one,
//     or at rest only those in use; see FullScanEvery) and the local libvirt
//     domains, call reconcile.Reconcile, execute its actions in order, and
//     append each outcome to this host's event ring on the LUN;
//   - the guest agents of the VMs it runs with WaitGuestAgent, in the
//     background until Close: pinged until they first answer (the lease's
//     guest-up mark, which later start tiers wait for), then every
//     Config.AgentCheck.Interval, with a "guest-agent-lost" event when one
//     falls silent and "guest-agent-back" when it answers again
//     (reconcile.AgentLiveness decides). A silent agent is only reported:
//     the manager never restarts or stops a VM for it;
//   - the encoding of a VM record's policy bytes (RecordPolicy): the
//     vm/plan policy plus the desired state "stopped by the operator".
//     plan.Policy rejects unknown fields, so the desired state cannot live
//     inside it; RecordPolicy wraps it, and still reads a bare plan policy;
//   - the disk-loss response (diskloss.go): a VM paused on an I/O error past
//     failover.disk_loss_grace is destroyed here, seen gone in libvirt, its
//     record marked with the hosts whose disk check fails (this one first,
//     RecordPolicy.DiskLost), and its lease released for another host;
//   - the loop that runs Step on every decision (Run), the list of VMs as
//     this host sees them (List), and the destruction of protected guests
//     left unwatched by a previous daemon (DestroyProtected);
//   - Refusal, the error of a request refused with a class (ErrConflict,
//     ErrForbidden, ErrInvalid) and a hint, for vm and its subpackages
//     (vm/maintenance, vm/drill).
//
// Its dependencies are small interfaces it owns (LUN, Hypervisor, Events),
// satisfied by *storage.LUN, *hypervisor.Conn and *storage.EventLog.
//
// What it must never do: start a protected VM without holding its lease at
// the epoch it just read with no migration in flight, take a lease except
// as a reconcile action or an operator command allowed by the lease rule
// (see vm/reconcile), touch a domain that is not protected, decide anything
// itself, or panic on a bad record or a failed adapter: every failure is an
// error returned to the caller and, where it concerns a VM, an event.
package vm

// Package reconcile decides what one host does with the protected VMs of the
// cluster: which stale local copies it destroys, which leases it takes,
// which VMs it starts (failover), restarts in place, releases, resumes or
// stops, and how it takes part in a live-migration handover.
//
// Reconcile is a pure, deterministic function of an Input: this host's id
// and generation, its quorum decision (host states, verdicts, MayRunVMs),
// host capacities, the VM records read from the heartbeat LUN (lease, policy,
// desired state), this host's libvirt inventory, its local restart history
// and Now. Every live host runs it over its own snapshot; no messages pass
// between hosts. Each host starts only what the failover plan (vm/plan)
// assigns to itself, and the VM lease on the LUN (Disk Paxos, epoch+1) picks
// one winner when two hosts' snapshots differ.
//
// # The lease rule (never two)
//
// Safety never depends on the plan, only on this rule, which every action
// that takes a lease obeys. A host may take VM record i at epoch e+1 only if
//
//	(a) the lease at e is released, or
//	(b) the owner (host, generation) is gone: the quorum decision shows that
//	    host dead or left, or a verdict declared it dead, at a generation at
//	    least the owner's, or
//	(c) the owner wrote migration Completed naming this host (and this
//	    host's generation) as the target, or
//	(d) the owner is this very host at an older generation that was never
//	    declared dead (the daemon restarted; nothing else could have taken it).
//
// A host starts a protected VM only while it holds the lease at the current
// epoch and its quorum decision says MayRunVMs; takes over another host's VM
// (rules a and b), or restarts one of its own earlier generation that does
// not run here (rule d after a reboot: a whole-site power loss), only in a
// quorate partition and in start order; and destroys, before anything else,
// every active local copy of a protected VM that it does not own.
//
// # The caller's duties
//
//  1. Snapshot: list the local domains, then read the VM records from the
//     LUN, take the current quorum decision and host capacities. Skip the
//     round if any of these failed: deciding on a partial view could start a
//     VM twice. Every record in use must be read each round; a record blank
//     at the last full read may be skipped only while nothing could make
//     this host act on a VM stored there since (vm.FullScanEvery says when).
//  2. Call Reconcile and execute the actions in the order returned. Stop
//     taking leases and starting VMs for the round if a destroy failed.
//  3. Take every lease with AcquireLease(index, Action.Expect); a
//     lease-held error means another host won: do nothing more for that VM.
//  4. Record the outcome in the History of the next Input (restarts done,
//     start failures) and as events.
//
// # Choices that are the caller's to know
//
//   - The failover plan is recomputed every round. A host starts its steps of
//     the first wave, and may follow with its steps of the next waves of the
//     same tier (TakeAndStart with Wave > 0), in the order returned, each once
//     one of its own starts is done: it keeps no more starts in flight than
//     it has in the first wave, so the plan's concurrency limits hold. A VM
//     leaves the plan once a live host holds its lease, so a later tier
//     starts only after the earlier ones are taken, across hosts, without
//     messages.
//   - A tier also waits for the guest agents of the earlier tiers' VMs whose
//     policy says WaitGuestAgent: their owner marks the lease guest-up on the
//     LUN once the agent answers (Lease.GuestUp), and the wait ends at the
//     latest Config.GuestAgentWait after this host first saw such a VM taken
//     (Record.HeldSince, which the caller keeps). A VM's own StartDelay
//     counts from the first round in which it could start on this host: a
//     Wait action gives that moment (Since), which the caller keeps in the
//     VM's History (DelaySince, DelayEpoch). Both answer with Wait actions.
//   - Released VMs that should run are planned in rounds after the VMs of
//     lost hosts; the host that released a VM is never its target.
//   - Restart limits count this host's own restarts (History). A VM that
//     exceeds them is released, and so moves to another host with a fresh
//     count there.
//   - A VM whose owner died during a live migration is claimed only by the
//     migration target while that target is not proven gone: only the target
//     can see whether the guest already runs there.
//   - A VM this host owns that QEMU paused on an I/O error for the
//     cluster's disk-loss grace (Config.DiskLoss), this host otherwise
//     healthy, is released with Destroy and DiskLost: the caller destroys
//     it, checks that libvirt shows it gone, and marks on the record the
//     hosts that cannot reach its disks before it releases the lease. Its
//     plan then leaves those hosts out for AvoidAfterDiskLoss after this
//     host first saw the mark (Record.AvoidSince, which the caller keeps);
//     the releaser never takes such a VM back.
//
// AgentLiveness, apart from Reconcile, follows the pings of one guest agent
// that has answered and says when it is lost and when it is back: the owner
// reports both and does nothing else about them.
//
// What it must never do: I/O, read a clock (Now is an input), sleep, start
// goroutines, or import anything but the standard library, vm/plan and the
// quorum types.
package reconcile

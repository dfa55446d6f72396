// Package quorum decides, identically on every host, which hosts are alive,
// isolated or dead, which partition may act, who coordinates, whom to send a
// poison pill or power-fence, whom to grant a network lease, and when this
// host must fence itself.
//
// Decide is a pure function of an Input (the heartbeat slots as observed on
// the LUN, this host's serf view, its own I/O freshness, the network leases it
// holds and granted, fence results, and now on this host's monotonic clock).
// It returns a Decision. It does no I/O, reads no clock and starts no
// goroutine; the adapters in the sub-packages (gossip for serf, and the
// daemon's heartbeat loop) gather the input and carry out the actions.
//
// # The rules (DESIGN.md, "Host states" and "Timing rule")
//
//   - Another host's staleness is measured only as "its (generation,
//     sequence) has not changed for so long on my monotonic clock". Wall
//     clocks of different hosts are never compared.
//   - A host may run VMs while its last heartbeat write was issued less than
//     F ago, or while it holds a network lease granted by a majority. When
//     neither holds, it self-fences (destroys its protected VMs) and stops
//     petting the watchdog, so it runs nothing after F + W. A lease counts
//     only until the last completed write (or the re-arm after a disarm) is
//     C old, the network-lease ceiling (Timings.LeaseCeiling).
//   - A host is declared dead only when its heartbeat has not changed for D,
//     no slot has shown a network-lease grant for it for D, and the observer
//     has itself read the LUN without a gap longer than F for the last D and
//     wrote its own heartbeat less than F ago. D >= F + W + io_timeout + R, so
//     by then the host can no longer run anything. A confirmed power-off
//     (by a fence agent, or by the operator: Node.ConfirmOff), a slot that
//     says "left" or "fenced", also make it dead. While stalled peers could
//     be leasing each other where this host cannot see it, the verdict
//     waits until the host has shown no sign of life for C + D (+1%,
//     Timings.CeilingWait): past its ceiling it has fenced itself.
//   - Votes are counted among the hosts the LUN does not prove dead or gone.
//     A partition (this host and the voters its serf sees alive) is quorate
//     with more than half of the votes; at exactly half, the half where a
//     host reaches its isolation addresses wins over the half where none
//     does (every host publishes that in its slot, so all compute it alike
//     from the LUN); halves alike, or no address configured, the half
//     holding the lowest voter id wins, which makes the LUN the tie-breaker
//     of a two-host cluster. A partition that is not quorate does nothing:
//     no verdict, no pill, no fence, no grant. It does not stop its own VMs
//     for that. A changed address flag keeps pills and fences waiting until
//     every side has read it (reachSettle).
//   - The coordinator is the lowest-id live voter in the quorate partition.
//     It alone declares hosts dead, sends poison pills to isolated hosts and
//     power-fences unresponsive ones.
//   - A poison pill asks an isolated host (serf says failed, its heartbeat is
//     fresh, and its slot does not say it reaches one of its isolation
//     addresses: such a host is cut off from its peers only, and its guests
//     still serve their users) to apply its VMs' isolation response: the VMs set to "stop" are
//     destroyed and their leases released, so they can restart elsewhere;
//     the others keep running. A pill for another generation is ignored.
//
// # Quarantine of a flapping host
//
// QuarantineStep, beside the Node, decides as pure a function which hosts
// are quarantined for flapping: the coordinator counts each verdict once
// per generation and each applied poison pill once per nonce (FlapsIn),
// quarantines a host with QuarantineConfig.Threshold of them within the
// window, for the duration, and ends quarantines whose time ran out; the
// record lives on the LUN (vm/quarantine reads and writes it), so every
// host sees the same quarantined set. A quarantined host keeps its VMs and
// is given none; nothing here ever stops a guest for it.
//
// # Driving a Node
//
// Decide has no memory; Node is the memory of one host's heartbeat loop
// (what it observed, since when, what it sent, granted, declared) around
// it, in the manner of etcd's raft.RawNode: the caller feeds it what its
// I/O returned, asks it what to do, does it, and reports the result. The
// heartbeat loop (package heartbeat), the simulator and the scenario files
// all drive the same Node. The caller's duties:
//
//  1. Create one Node per slot acquisition with NewNode, at the time the
//     slot was acquired; a new generation gets a new Node.
//  2. After every read of all slots, call Read with the time it completed
//     and the used slots (their acknowledgements included), or ReadFailed.
//     After a heartbeat write that completed within io_timeout, call Wrote
//     with the time it was issued and the SlotWrite it carried.
//  3. After every mailbox read call Mail; before every decision call Serf
//     with serf's alive set, and SetFenceable when the fence agents change.
//  4. Call Decide with the time now. Before any I/O of a cycle, decide once
//     and carry out a self-fence it asks for: a host that woke from a
//     freeze must fence itself before a write makes it look fresh.
//  5. For each action of the decision to carry out, call Start; do the
//     action only if it returns true, and report its end: SelfFenced,
//     IsolationApplied (then self-fence if it failed), PillSent (only if
//     the message was written), PowerFenced, LeaseAnswered. Actions that
//     take long (isolation, power fences, lease requests) run in the
//     background; their reports may come at any time, serialised with the
//     other calls. Then call Executed with the decision.
//  6. Write SlotWrite into this host's slot (state fenced once Fenced,
//     partition, grants, verdicts, acknowledgement). When the write that
//     carried Announce lands, wake the other hosts.
//  7. Pet the watchdog only if the decision's MayRunVMs holds, Fenced is
//     false and every loop of the daemon progresses.
//  8. Between writes, a read may be decided on without being executed: if
//     Urgent says so, run a full cycle at once. NextVerdict says when a
//     stalled peer's verdict falls due before the next write.
//  9. Answer other hosts' lease requests with Grant, and deliver Events to
//     the event log without blocking the loop.
//
// A Node reads no clock: every time is an argument, on this host's
// monotonic clock.
//
// This package must never perform I/O, call time.Now, sleep, or import an
// adapter (storage, hypervisor, serf, libvirt).
package quorum

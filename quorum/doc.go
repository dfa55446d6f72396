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
//     petting the watchdog, so it runs nothing after F + W.
//   - A host is declared dead only when its heartbeat has not changed for D,
//     no slot has shown a network-lease grant for it for D, and the observer
//     has itself read the LUN without a gap longer than F for the last D and
//     wrote its own heartbeat less than F ago. D >= F + W + io_timeout + R, so
//     by then the host can no longer run anything. A confirmed power-off, a
//     slot that says "left" or "fenced", also make it dead.
//   - Votes are counted among the hosts the LUN does not prove dead or gone.
//     A partition (this host and the voters its serf sees alive) is quorate
//     with more than half of the votes; at exactly half, the half holding the
//     lowest voter id wins, which makes the LUN the tie-breaker of a two-host
//     cluster. A partition that is not quorate does nothing: no verdict, no
//     pill, no fence, no grant. It does not stop its own VMs for that.
//   - The coordinator is the lowest-id live voter in the quorate partition.
//     It alone declares hosts dead, sends poison pills to isolated hosts and
//     power-fences unresponsive ones.
//   - A poison pill asks an isolated host (serf says failed, its heartbeat is
//     fresh) to apply its VMs' isolation response: the VMs set to "stop" are
//     destroyed and their leases released, so they can restart elsewhere;
//     the others keep running. A pill for another generation is ignored.
//
// This package must never perform I/O, call time.Now, sleep, or import an
// adapter (storage, hypervisor, serf, libvirt).
package quorum

// Package heartbeat runs a host's heartbeat loop: every R it renews the
// host's slot on the LUN (one read of all slots, one write of its own, each
// bounded by io_timeout), reads its mailbox, asks serf who is alive, feeds
// all that to its quorum.Node (the pure core that remembers everything
// between cycles and decides) and carries out what it returns: self-fencing through
// the VM manager, answering poison pills and test messages, sending pills,
// running power fences, asking and granting network leases over serf, and
// publishing grants and verdicts in its slot. It pets the watchdog only
// while the decision allows this host to run VMs.
//
// Between two renewals it makes observation passes: reads of every slot
// (no write, no mailbox), evenly spaced, up to 4 per R (see Config.Reads),
// so that a peer's last heartbeat is stamped, and its dead verdict comes, at
// most R/4 late rather than up to R. A pass counts as a fresh read, never as
// a heartbeat write; a pass that finds a new verdict, fence or pill runs a
// cycle at once, which acts and publishes it.
//
// Before each renewal and each pass it decides once more on what it already
// knows, so a host that wakes from a freeze longer than F fences itself
// before its first write can make it look fresh again, and before it acts on
// a read.
//
// Beside the loop it owns what a daemon needs of the heartbeat: the clock
// (BootTime, CLOCK_BOOTTIME, which counts suspends and means the same in the
// next daemon of the host), the proof that lets a restarted daemon resume
// its slot at once (ResumeFile), the renewal latency and its warning
// (RenewLatency, LatencyWarning), the Prometheus metrics of the heartbeat
// and the decision (Metrics), the operator's harmless test of the
// poison-pill path (TestMailbox), and the real-time priority of the loop's
// own thread (LockThread).
//
// Its events leave through Config.OnEvent, which must not block: a writer
// that may (the LUN's event ring) goes behind an EventQueue, so that the
// heartbeat never waits on an event write.
//
// It decides nothing and remembers nothing itself but the raw mailbox
// message it must acknowledge: it holds only I/O, timers and goroutines,
// and drives the Node as the quorum package doc ("Driving a Node") says.
// It must never block on a peer, never retry an I/O past io_timeout, and
// never compare another host's clock with its own.
package heartbeat

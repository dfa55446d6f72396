// Package hypervisor is Wingman's adapter to the local hypervisor: everything
// the daemon does to virtual machines goes through libvirt's own APIs. QEMU's
// QMP monitor is reached (through libvirt's passthrough, with go-qemu's typed
// queries) only for QMPDiagnostics, which an operator asks for.
//
// It owns:
//
//   - one robust connection per libvirtd (keepalive, close callback, reconnect
//     with exponential backoff, event callbacks re-registered after a reconnect);
//   - the domain operations the VM manager needs: list, define, undefine, start,
//     destroy, graceful shutdown with a deadline;
//   - a lifecycle event stream that never blocks libvirt's event loop and never
//     loses an event silently: when it cannot deliver, it emits a resync marker
//     telling the consumer to list the domains again;
//   - host capacity, live migration with progress and abort, guest health
//     (I/O-error pause, crash, guest panic) and guest-agent pings.
//
// What it must never do: decide anything. Whether a VM should run, where, and
// when to kill it is decided by the pure code in vm/ and quorum/; this package
// only executes those decisions and reports what libvirt says. It keeps no
// state that the daemon could not rebuild by listing libvirt again. Nor may it
// pass raw commands to QEMU or to the guest agent in normal operation
// (virDomainQemuMonitorCommand, virDomainQemuAgentCommand): libvirt marks such
// a domain tainted. The one exception is QMPDiagnostics, on request; see
// health.go for which call does what, and test/guard for the check.
//
// The caller's duties:
//
//  1. Build a Config (start from DefaultConfig) and call Dial.
//  2. Subscribe to events before listing domains, so that nothing that happens
//     between the listing and the subscription is missed; each subscription
//     starts with a resync marker.
//  3. On every EventResync, list the domains again and treat the listing as the
//     truth: it is newer than any event received before the marker.
//  4. Close the Conn when done.
//
// Errors name the operation, the domain and the host, and wrap one of the
// exported sentinels (ErrNotFound, ErrNotRunning, ...) for errors.Is, plus the
// underlying libvirt.Error for errors.As.
//
// libvirt's test:/// driver is enough for the unit tests (see testdata/); QMP
// parsing is tested with replies recorded from a real QEMU. Migration, job
// statistics, real QMP and real guest agents need a real libvirtd and are
// covered by the integration tests, which run against the test/cluster harness
// as root.
package hypervisor

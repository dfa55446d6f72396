package hypervisor

import (
	"errors"
	"strings"

	"libvirt.org/go/libvirt"
)

// Sentinel errors. Every error returned by this package wraps at most one of
// them (plus ErrMigrationFailed alongside another class when a migration
// failed: ErrMigrationAborted, ErrDestinationUnreachable, ...); test with
// errors.Is. The underlying *libvirt.Error, when there is one, is reachable
// with errors.As (target type libvirt.Error).
var (
	// ErrNotFound: libvirt on this host has no domain by that name.
	ErrNotFound = errors.New("domain not found")
	// ErrNotRunning: the operation needs a running domain and it is not.
	ErrNotRunning = errors.New("domain not running")
	// ErrAlreadyRunning: the domain is already running on this host.
	ErrAlreadyRunning = errors.New("domain already running")
	// ErrConnection: libvirtd cannot be reached right now; the Conn keeps
	// reconnecting in the background.
	ErrConnection = errors.New("libvirt connection unavailable")
	// ErrClosed: the Conn was closed by its owner.
	ErrClosed = errors.New("hypervisor connection closed")
	// ErrMigrationFailed: a live migration did not complete; the guest keeps
	// running on the source unless the error says otherwise.
	ErrMigrationFailed = errors.New("migration failed")
	// ErrMigrationAborted: the migration was aborted on request (always
	// together with ErrMigrationFailed).
	ErrMigrationAborted = errors.New("migration aborted")
	// ErrDestinationUnreachable: the source libvirtd could not reach the
	// destination libvirtd (or lost it during the migration).
	ErrDestinationUnreachable = errors.New("migration destination unreachable")
	// ErrNoMigration: there is no migration job to abort or watch.
	ErrNoMigration = errors.New("no migration in progress")
	// ErrTimeout: the operation did not finish within its deadline.
	ErrTimeout = errors.New("timed out")
	// ErrUnsupported: the libvirt driver cannot do this (e.g. test:/// and QMP).
	ErrUnsupported = errors.New("not supported by this hypervisor driver")
	// ErrInvalidXML: libvirt rejected the domain XML.
	ErrInvalidXML = errors.New("invalid domain XML")
	// ErrAgentUnavailable: the guest agent is not configured, not connected
	// or not answering.
	ErrAgentUnavailable = errors.New("guest agent unavailable")
)

// hints tell the reader of a log line what to do about each class of error.
var hints = map[error]string{
	ErrNotFound:       "check the name against the domain list, or define the domain on this host first",
	ErrNotRunning:     "start the domain first",
	ErrAlreadyRunning: "it is already running here; destroy it first if a restart is really meant",
	ErrConnection:     "check that libvirtd is running; the connection is retried in the background",
	ErrClosed:         "the connection was closed by its owner; dial a new one",
	ErrNoMigration:    "nothing to abort; the migration may have finished already",
	ErrDestinationUnreachable: "check the destination URI, and that the destination libvirtd listens there " +
		"and is reachable from the source host",
	ErrInvalidXML:       "fix the domain XML",
	ErrAgentUnavailable: "add a guest-agent channel to the domain and run qemu-guest-agent in the guest",
	ErrUnsupported:      "this needs a real QEMU/KVM libvirtd",
}

// opError is the error type of every failed operation: what was done, to
// which domain, on which host, the error class and the cause.
type opError struct {
	op    string // e.g. `start domain "web1" on kvm2`
	class error  // one of the sentinels, or nil
	also  error  // a second class (ErrMigrationFailed with ErrMigrationAborted)
	cause error  // usually a libvirt.Error
}

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString(e.op)
	for _, c := range []error{e.also, e.class} {
		if c != nil {
			b.WriteString(": ")
			b.WriteString(c.Error())
		}
	}
	if h := hints[e.class]; h != "" {
		b.WriteString(" (")
		b.WriteString(h)
		b.WriteString(")")
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(causeText(e.cause))
	}
	return b.String()
}

// Brief prints err's classes and cause without the operation and the hint
// that its Error() also carries (`guest agent unavailable: libvirt: Guest
// agent is not responding: ...`): for a message that says itself what was
// done and has little room, such as an event. Context wrapped around the
// error is left out too. An error that is not this package's prints as it is.
func Brief(err error) string {
	var e *opError
	if !errors.As(err, &e) {
		return err.Error()
	}
	var parts []string
	for _, c := range []error{e.also, e.class} {
		if c != nil {
			parts = append(parts, c.Error())
		}
	}
	if e.cause != nil {
		parts = append(parts, causeText(e.cause))
	}
	if len(parts) == 0 {
		return e.op
	}
	return strings.Join(parts, ": ")
}

func (e *opError) Unwrap() []error {
	var errs []error
	for _, c := range []error{e.class, e.also, e.cause} {
		if c != nil {
			errs = append(errs, c)
		}
	}
	return errs
}

// causeText prints a libvirt error by its message only: libvirt.Error's own
// Error() adds numeric codes that mean nothing to an operator.
func causeText(err error) string {
	var lv libvirt.Error
	if errors.As(err, &lv) && lv.Message != "" {
		return "libvirt: " + lv.Message
	}
	return err.Error()
}

// libvirtCode returns the libvirt error code of err, or ERR_OK.
func libvirtCode(err error) libvirt.ErrorNumber {
	var lv libvirt.Error
	if errors.As(err, &lv) {
		return lv.Code
	}
	return libvirt.ERR_OK
}

// classify maps a libvirt error to one of the sentinels, where the code alone
// says enough. ERR_OPERATION_INVALID is ambiguous (not running, already
// running, no job): callers resolve it by looking at the domain's state.
func classify(err error) error {
	switch libvirtCode(err) {
	case libvirt.ERR_NO_DOMAIN:
		return ErrNotFound
	case libvirt.ERR_NO_CONNECT, libvirt.ERR_INVALID_CONN:
		return ErrConnection
	case libvirt.ERR_OPERATION_TIMEOUT, libvirt.ERR_AGENT_COMMAND_TIMEOUT:
		return ErrTimeout
	case libvirt.ERR_NO_SUPPORT:
		return ErrUnsupported
	case libvirt.ERR_XML_ERROR, libvirt.ERR_XML_DETAIL, libvirt.ERR_XML_INVALID_SCHEMA:
		return ErrInvalidXML
	case libvirt.ERR_AGENT_UNRESPONSIVE, libvirt.ERR_AGENT_UNSYNCED:
		return ErrAgentUnavailable
	case libvirt.ERR_OPERATION_ABORTED:
		return ErrMigrationAborted
	}
	return nil
}

// mayBeConnectionLoss reports whether err can mean that the libvirt
// connection itself is gone. RPC and system errors also have other causes
// (a missing disk image is a system error too), so the Conn confirms with
// IsAlive before it calls it a connection loss.
func mayBeConnectionLoss(err error) bool {
	switch libvirtCode(err) {
	case libvirt.ERR_NO_CONNECT, libvirt.ERR_INVALID_CONN, libvirt.ERR_RPC, libvirt.ERR_SYSTEM_ERROR:
		return true
	}
	return false
}

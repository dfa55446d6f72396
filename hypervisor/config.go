package hypervisor

import (
	"errors"
	"fmt"
	"time"
)

// Config configures the connection to one libvirtd. Start from DefaultConfig
// and change what you need; Dial calls Validate.
type Config struct {
	// URI is the libvirt connection URI of the local hypervisor, e.g.
	// "qemu:///system", or "qemu+unix:///system?socket=/x/libvirt-sock" for a
	// test-cluster host, or "test:///abs/path/host.xml" in unit tests.
	URI string

	// HostName names this host in error messages ("start domain "web1" on
	// kvm2: ..."). Empty means: ask libvirt for the hostname at Dial.
	HostName string

	// KeepAliveInterval is how often libvirt sends a keepalive probe on an idle
	// remote connection. Together with KeepAliveCount it bounds how long a hung
	// libvirtd goes unnoticed (about Interval*(Count+1)). Must be at least 1s
	// because libvirt counts in whole seconds. Drivers without keepalive
	// (test:///) ignore it.
	KeepAliveInterval time.Duration

	// KeepAliveCount is how many unanswered probes close the connection, which
	// triggers a reconnect. Must be at least 1.
	KeepAliveCount uint

	// ReconnectMinBackoff is the wait before the first reconnect attempt after
	// the connection was lost; each failed attempt doubles the wait.
	ReconnectMinBackoff time.Duration

	// ReconnectMaxBackoff caps the wait between reconnect attempts, so that a
	// restarted libvirtd is found again within about this long.
	ReconnectMaxBackoff time.Duration

	// EventBuffer is how many events each subscription holds for a slow
	// consumer. When it is full, further events are dropped and a resync
	// marker is delivered instead, so the consumer re-lists. Must be at least 1.
	EventBuffer int

	// PollInterval is how often waits (graceful shutdown) re-check the domain
	// state in case a libvirt event was missed. Events wake the waits earlier;
	// this is only the fallback.
	PollInterval time.Duration

	// ShutdownTimeout is the default time a graceful (ACPI) shutdown may take
	// when ShutdownOptions.Timeout is zero.
	ShutdownTimeout time.Duration

	// AgentTimeout bounds a guest-agent ping when the caller's context has no
	// earlier deadline.
	AgentTimeout time.Duration

	// QMPTimeout bounds the opt-in QMP diagnostic (QMPDiagnostics, all its
	// queries together); a QEMU stuck in I/O can leave its monitor
	// unanswered, and the diagnostic must still return.
	QMPTimeout time.Duration

	// MigrationProgressInterval is how often Migrate samples libvirt's job
	// statistics and calls MigrateOptions.Progress.
	MigrationProgressInterval time.Duration

	// MigrationAbortTimeout is how long Migrate waits, after its context ended
	// and it asked libvirt to abort, for the migration to end. An abort is
	// refused once the guest has been switched over, and a destination that
	// stopped answering is only noticed by keepalive; past this, Migrate
	// returns ErrTimeout and the caller must list both hosts to learn where
	// the guest runs.
	MigrationAbortTimeout time.Duration

	// JobStatsWait is how long Migrate waits, after libvirt reports success,
	// for the job-completed event that carries the final statistics
	// (downtime). Past it, the result says the downtime is unknown.
	JobStatsWait time.Duration
}

// DefaultConfig returns the production settings for the local system libvirtd.
func DefaultConfig() Config {
	return Config{
		URI:                       "qemu:///system",
		KeepAliveInterval:         5 * time.Second,
		KeepAliveCount:            3,
		ReconnectMinBackoff:       250 * time.Millisecond,
		ReconnectMaxBackoff:       5 * time.Second,
		EventBuffer:               1024,
		PollInterval:              time.Second,
		ShutdownTimeout:           2 * time.Minute,
		AgentTimeout:              5 * time.Second,
		QMPTimeout:                5 * time.Second,
		MigrationProgressInterval: 200 * time.Millisecond,
		MigrationAbortTimeout:     30 * time.Second,
		JobStatsWait:              2 * time.Second,
	}
}

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid hypervisor config")

// Validate rejects settings that cannot work, saying what to change.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.URI == "" {
		bad("URI is empty: set it to the libvirt URI of this host, e.g. qemu:///system")
	}
	if c.KeepAliveInterval < time.Second {
		bad("KeepAliveInterval %v is below 1s: libvirt counts whole seconds", c.KeepAliveInterval)
	}
	if c.KeepAliveCount < 1 {
		bad("KeepAliveCount is 0: set at least 1, or a hung libvirtd is never noticed")
	}
	if c.ReconnectMinBackoff <= 0 {
		bad("ReconnectMinBackoff %v must be positive", c.ReconnectMinBackoff)
	}
	if c.ReconnectMaxBackoff < c.ReconnectMinBackoff {
		bad("ReconnectMaxBackoff %v is below ReconnectMinBackoff %v", c.ReconnectMaxBackoff, c.ReconnectMinBackoff)
	}
	if c.EventBuffer < 1 {
		bad("EventBuffer %d must be at least 1", c.EventBuffer)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"PollInterval", c.PollInterval},
		{"ShutdownTimeout", c.ShutdownTimeout},
		{"AgentTimeout", c.AgentTimeout},
		{"QMPTimeout", c.QMPTimeout},
		{"MigrationProgressInterval", c.MigrationProgressInterval},
		{"MigrationAbortTimeout", c.MigrationAbortTimeout},
	} {
		if d.v <= 0 {
			bad("%s %v must be positive", d.name, d.v)
		}
	}
	if c.JobStatsWait < 0 {
		bad("JobStatsWait %v must not be negative", c.JobStatsWait)
	}
	return errors.Join(errs...)
}

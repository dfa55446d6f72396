package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"libvirt.org/go/libvirt"
)

func lvErr(code libvirt.ErrorNumber, msg string) libvirt.Error {
	return libvirt.Error{Code: code, Domain: libvirt.FROM_QEMU, Message: msg, Level: libvirt.ERR_ERROR}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		code     libvirt.ErrorNumber
		want     error
		connLoss bool
	}{
		{libvirt.ERR_NO_DOMAIN, ErrNotFound, false},
		{libvirt.ERR_NO_CONNECT, ErrConnection, true},
		{libvirt.ERR_INVALID_CONN, ErrConnection, true},
		{libvirt.ERR_OPERATION_TIMEOUT, ErrTimeout, false},
		{libvirt.ERR_AGENT_COMMAND_TIMEOUT, ErrTimeout, false},
		{libvirt.ERR_NO_SUPPORT, ErrUnsupported, false},
		{libvirt.ERR_XML_ERROR, ErrInvalidXML, false},
		{libvirt.ERR_XML_DETAIL, ErrInvalidXML, false},
		{libvirt.ERR_XML_INVALID_SCHEMA, ErrInvalidXML, false},
		{libvirt.ERR_AGENT_UNRESPONSIVE, ErrAgentUnavailable, false},
		{libvirt.ERR_AGENT_UNSYNCED, ErrAgentUnavailable, false},
		{libvirt.ERR_OPERATION_ABORTED, ErrMigrationAborted, false},
		// Ambiguous: resolved by looking at the domain or the connection.
		{libvirt.ERR_OPERATION_INVALID, nil, false},
		{libvirt.ERR_INTERNAL_ERROR, nil, false},
		{libvirt.ERR_RPC, nil, true},
		{libvirt.ERR_SYSTEM_ERROR, nil, true},
		{libvirt.ERR_OK, nil, false},
	} {
		err := fmt.Errorf("context: %w", lvErr(tc.code, "x"))
		if got := classify(err); got != tc.want {
			t.Errorf("classify(code %d) = %v, want %v", tc.code, got, tc.want)
		}
		if got := mayBeConnectionLoss(err); got != tc.connLoss {
			t.Errorf("mayBeConnectionLoss(code %d) = %v, want %v", tc.code, got, tc.connLoss)
		}
	}
	if got := classify(errors.New("not from libvirt")); got != nil {
		t.Errorf("classify(plain error) = %v, want nil", got)
	}
	if got := classify(nil); got != nil {
		t.Errorf("classify(nil) = %v, want nil", got)
	}
}

func TestOpError(t *testing.T) {
	cause := lvErr(libvirt.ERR_NO_DOMAIN, "Domain not found: no domain with matching name 'web1'")
	for _, tc := range []struct {
		name string
		err  *opError
		want string
		is   []error
		not  []error
	}{
		{
			name: "class, hint and libvirt cause",
			err:  &opError{op: `start domain "web1" on kvm2`, class: ErrNotFound, cause: cause},
			want: `start domain "web1" on kvm2: domain not found (check the name against the domain list, or define the domain on this host first): ` +
				`libvirt: Domain not found: no domain with matching name 'web1'`,
			is:  []error{ErrNotFound},
			not: []error{ErrConnection, ErrTimeout},
		},
		{
			name: "no class",
			err:  &opError{op: "list domains on kvm2", cause: context.Canceled},
			want: "list domains on kvm2: context canceled",
			is:   []error{context.Canceled},
			not:  []error{ErrNotFound},
		},
		{
			name: "no cause",
			err:  &opError{op: "list domains on kvm2", class: ErrClosed},
			want: "list domains on kvm2: hypervisor connection closed (the connection was closed by its owner; dial a new one)",
			is:   []error{ErrClosed},
		},
		{
			name: "two classes",
			err:  &opError{op: `migrate domain "web1" from kvm1`, class: ErrMigrationAborted, also: ErrMigrationFailed},
			want: `migrate domain "web1" from kvm1: migration failed: migration aborted`,
			is:   []error{ErrMigrationAborted, ErrMigrationFailed},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tc.want)
			}
			wrapped := fmt.Errorf("evacuate kvm2: %w", tc.err)
			for _, target := range tc.is {
				if !errors.Is(wrapped, target) {
					t.Errorf("not errors.Is %v", target)
				}
			}
			for _, target := range tc.not {
				if errors.Is(wrapped, target) {
					t.Errorf("errors.Is %v, should not be", target)
				}
			}
		})
	}

	var lv libvirt.Error
	if !errors.As(fmt.Errorf("x: %w", &opError{op: "o", class: ErrNotFound, cause: cause}), &lv) || lv.Code != libvirt.ERR_NO_DOMAIN {
		t.Errorf("errors.As libvirt.Error failed: %+v", lv)
	}
}

// Brief keeps what went wrong and drops what the caller's message says
// already: the operation and the hint.
func TestBrief(t *testing.T) {
	cause := lvErr(libvirt.ERR_AGENT_UNRESPONSIVE, "Guest agent is not responding: QEMU guest agent is not connected")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("check: %w", &opError{op: `ping guest agent of domain "web1" on kvm2`, class: ErrAgentUnavailable, cause: cause}),
			"guest agent unavailable: libvirt: Guest agent is not responding: QEMU guest agent is not connected"},
		{&opError{op: `migrate domain "web1" from kvm1`, class: ErrMigrationAborted, also: ErrMigrationFailed}, "migration failed: migration aborted"},
		{&opError{op: "list domains on kvm2"}, "list domains on kvm2"},
		{errors.New("not ours"), "not ours"},
	} {
		if got := Brief(tc.err); got != tc.want {
			t.Errorf("Brief(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// Every class an operation can report has a hint, so that a log line says
// what to do; classes that only describe an outcome need none.
func TestHints(t *testing.T) {
	for _, class := range []error{ErrNotFound, ErrNotRunning, ErrAlreadyRunning, ErrConnection, ErrClosed,
		ErrNoMigration, ErrInvalidXML, ErrAgentUnavailable, ErrUnsupported, ErrDestinationUnreachable} {
		if hints[class] == "" {
			t.Errorf("no hint for %v", class)
		}
	}
}

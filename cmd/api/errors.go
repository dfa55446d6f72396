package api

import (
	"errors"
	"fmt"
	"net/http"
)

// The classes of the daemon's errors. Every error it answers has at most
// one; the class travels with the error when a request is forwarded to
// another host and in the HTTP answer (Error.Class), so that a client
// tests it with errors.Is(err, api.ErrNotFound) whichever host acted.
var (
	// ErrNotFound: the VM or host the request names does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: not now, in this state (a host not in maintenance, a VM
	// owned by another host, a lease held elsewhere).
	ErrConflict = errors.New("conflict with the current state")
	// ErrNoQuorum: the host that must act may not run VMs now.
	ErrNoQuorum = errors.New("no quorum")
	// ErrUnavailable: the host that must act, or its storage or libvirt,
	// did not answer.
	ErrUnavailable = errors.New("unavailable")
	// ErrInvalid: the request itself is wrong.
	ErrInvalid = errors.New("invalid request")
	// ErrForbidden: the acting host's configuration does not allow it.
	ErrForbidden = errors.New("forbidden by the host's configuration")
)

// classes name each class on the wire and give its HTTP status.
var classes = []struct {
	name   string
	class  error
	status int
}{
	{"not-found", ErrNotFound, http.StatusNotFound},
	{"conflict", ErrConflict, http.StatusConflict},
	{"no-quorum", ErrNoQuorum, http.StatusConflict},
	{"unavailable", ErrUnavailable, http.StatusBadGateway},
	{"invalid", ErrInvalid, http.StatusBadRequest},
	{"forbidden", ErrForbidden, http.StatusForbidden},
}

// ClassName is the wire name of err's class, "" when it has none.
func ClassName(err error) string {
	for _, c := range classes {
		if errors.Is(err, c.class) {
			return c.name
		}
	}
	return ""
}

// classOf is the class named name or, for an answer without a known name
// (a daemon older than the classes), the class of its HTTP status.
func classOf(name string, status int) error {
	for _, c := range classes {
		if c.name == name {
			return c.class
		}
	}
	for _, c := range classes {
		if c.status == status {
			return c.class
		}
	}
	return nil
}

// StatusOf is the HTTP status of err: its class's, 500 without a class.
func StatusOf(err error) int {
	for _, c := range classes {
		if errors.Is(err, c.class) {
			return c.status
		}
	}
	return http.StatusInternalServerError
}

// Failure is an error of a class, with what the operator can do about it.
// Its message is Err's alone.
type Failure struct {
	Class error // one of the classes above
	Err   error
	Hint  string
}

// Fail returns a Failure of class with hint and a formatted message.
func Fail(class error, hint, format string, a ...any) error {
	return &Failure{Class: class, Err: fmt.Errorf(format, a...), Hint: hint}
}

// Remote is the error another host answered: its message, class (by wire
// name, or by HTTP status for an older daemon) and hint.
func Remote(msg, class string, status int, hint string) error {
	return &Failure{Class: classOf(class, status), Err: errors.New(msg), Hint: hint}
}

func (f *Failure) Error() string { return f.Err.Error() }

// Is reports whether target is f's class.
func (f *Failure) Is(target error) bool { return target != nil && target == f.Class }

func (f *Failure) Unwrap() error { return f.Err }

// HintOf is the hint of the Failure in err's chain, "" if none.
func HintOf(err error) string {
	var f *Failure
	if errors.As(err, &f) {
		return f.Hint
	}
	return ""
}

// ErrorBody is err as the daemon answers it: an HTTP status and the body.
func ErrorBody(err error) (int, Error) {
	return StatusOf(err), Error{Error: err.Error(), Hint: HintOf(err), Class: ClassName(err)}
}

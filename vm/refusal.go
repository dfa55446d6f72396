package vm

import (
	"errors"
	"fmt"
)

// Classes of a Refusal, tested with errors.Is; the daemon answers them
// with 409, 403 and 400.
var (
	// ErrConflict: not now, in this state (a host not in maintenance, a
	// VM still running there).
	ErrConflict = errors.New("conflict with the current state")
	// ErrForbidden: this host's configuration does not allow it.
	ErrForbidden = errors.New("forbidden by this host's configuration")
	// ErrInvalid: the request itself is wrong.
	ErrInvalid = errors.New("invalid request")
)

// Refusal is a request that the features of vm and its subpackages turn
// down, with what the operator can do about it. Its message is Err's alone.
type Refusal struct {
	Class error // ErrConflict, ErrForbidden or ErrInvalid
	Err   error
	Hint  string
}

// Refuse returns a Refusal of class with hint and a formatted message.
func Refuse(class error, hint, format string, a ...any) error {
	return &Refusal{Class: class, Err: fmt.Errorf(format, a...), Hint: hint}
}

func (r *Refusal) Error() string { return r.Err.Error() }

// Is reports whether target is r's class.
func (r *Refusal) Is(target error) bool { return target == r.Class }

func (r *Refusal) Unwrap() error { return r.Err }

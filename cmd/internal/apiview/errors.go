package apiview

import (
	"cmp"
	"context"
	"errors"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/notify"
	"github.com/wingmanha/wingman/vm/plan"
)

// classes are the api class of each sentinel error of the library
// packages, tested in this order.
var classes = []struct {
	class error
	errs  []error
}{
	{api.ErrNotFound, []error{vm.ErrNotFound, storage.ErrNotFound, hypervisor.ErrNotFound, notify.ErrNoTarget}},
	{api.ErrNoQuorum, []error{vm.ErrNoQuorum}},
	{api.ErrConflict, []error{quorum.ErrDisarmRefused, quorum.ErrConfirmRefused, vm.ErrNotOwner, vm.ErrDiskUnreachable, storage.ErrLeaseHeld, storage.ErrContended, storage.ErrConflict, storage.ErrNoFreeVMRecord,
		hypervisor.ErrNotRunning, hypervisor.ErrAlreadyRunning, hypervisor.ErrNoMigration}},
	{api.ErrInvalid, []error{quorum.ErrDisarmInvalid, plan.ErrInvalidPolicy, vm.ErrUnsafeDisk, storage.ErrInvalid, storage.ErrTooLarge, hypervisor.ErrBadDomainXML, notify.ErrInvalidTarget}},
	// A write refused because an earlier one to the same block is still in
	// flight (it outlived io_timeout), and a record read torn while its
	// owner rewrote it, are the storage path's state, not a bug: they
	// answered 500 during bursts of concurrent policy changes.
	{api.ErrUnavailable, []error{storage.ErrIOTimeout, storage.ErrIOPending, storage.ErrCorrupt,
		hypervisor.ErrConnection, hypervisor.ErrClosed, hypervisor.ErrDestinationUnreachable, context.DeadlineExceeded}},
}

// Classify gives an error of the library packages its api class (and a
// vm.Refusal's hint), so that it keeps them through forwarding and the
// HTTP API; an error that has a class already, or none to give, is
// returned as it is.
func Classify(err error) error {
	if err == nil || api.ClassName(err) != "" {
		return err
	}
	var rf *vm.Refusal
	if errors.As(err, &rf) {
		class := map[error]error{vm.ErrConflict: api.ErrConflict, vm.ErrForbidden: api.ErrForbidden}[rf.Class]
		return &api.Failure{Class: cmp.Or(class, api.ErrInvalid), Err: err, Hint: rf.Hint}
	}
	for _, c := range classes {
		for _, e := range c.errs {
			if errors.Is(err, e) {
				return &api.Failure{Class: c.class, Err: err, Hint: hints[e]}
			}
		}
	}
	return err
}

// hints say what to do about a sentinel error, where its message does not.
var hints = map[error]string{
	vm.ErrDiskUnreachable: "or protect it anyway with --force: those hosts then cannot start it after a failure, and 'wingman drill' reports it until they can",
}

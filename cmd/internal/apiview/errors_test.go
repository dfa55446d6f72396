package apiview

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/plan"
)

// The library packages' errors get their api class, its HTTP status and
// their hint, as the daemon answered them before the classes (except an
// invalid policy, 409 before, and an unreachable libvirt, 500 before); the
// message and the library sentinel stay.
func TestClassifyKeepsTheStatusesAndHints(t *testing.T) {
	for _, tc := range []struct {
		err    error
		class  error
		status int
		hint   string
	}{
		{fmt.Errorf("VM %q: %w", "x", vm.ErrNotFound), api.ErrNotFound, 404, ""},
		{fmt.Errorf("lookup: %w", hypervisor.ErrNotFound), api.ErrNotFound, 404, ""},
		{fmt.Errorf("read: %w", storage.ErrNotFound), api.ErrNotFound, 404, ""},
		{fmt.Errorf("start: %w", vm.ErrNotOwner), api.ErrConflict, 409, ""},
		{fmt.Errorf("start: %w", vm.ErrNoQuorum), api.ErrNoQuorum, 409, ""},
		{vm.Refuse(vm.ErrConflict, "enter maintenance first", "not in maintenance"), api.ErrConflict, 409, "enter maintenance first"},
		{vm.Refuse(vm.ErrForbidden, "set allow_exec", "exec is off"), api.ErrForbidden, 403, "set allow_exec"},
		{vm.Refuse(vm.ErrInvalid, "name a host", "no room"), api.ErrInvalid, 400, "name a host"},
		{fmt.Errorf("protect: %w", vm.ErrUnsafeDisk), api.ErrInvalid, 400, ""},
		{fmt.Errorf("protect: %w", vm.ErrDiskUnreachable), api.ErrConflict, 409, hints[vm.ErrDiskUnreachable]},
		{fmt.Errorf("policy: %w", plan.ErrInvalidPolicy), api.ErrInvalid, 400, ""},
		{fmt.Errorf("libvirt: %w", hypervisor.ErrConnection), api.ErrUnavailable, 502, ""},
		{fmt.Errorf("write config: %w", &storage.BlockError{What: "VM record 0 config B", Err: storage.ErrIOPending}), api.ErrUnavailable, 502, ""},
		{fmt.Errorf("read: %w", &storage.BlockError{What: "VM record 0 config A", Err: storage.ErrCorrupt}), api.ErrUnavailable, 502, ""},
		{fmt.Errorf("ask: %w", context.DeadlineExceeded), api.ErrUnavailable, 502, ""},
		{api.Fail(api.ErrConflict, "h", "already classed"), api.ErrConflict, 409, "h"},
		{errors.New("something else"), nil, 500, ""},
	} {
		got := Classify(tc.err)
		if got.Error() != tc.err.Error() || (tc.class != nil && !errors.Is(got, tc.class)) || api.StatusOf(got) != tc.status || api.HintOf(got) != tc.hint {
			t.Errorf("Classify(%v) = %v: status %d hint %q, want %v, %d, %q", tc.err, got, api.StatusOf(got), api.HintOf(got), tc.class, tc.status, tc.hint)
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("Classify(%v) lost the error itself", tc.err)
		}
	}
}

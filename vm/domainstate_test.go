package vm_test

import (
	"testing"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/reconcile"
)

// TestDomainStateOfShutoff: libvirt's shutoff reasons tell a guest shut down on purpose from one
// that crashed and from one whose host went down under it (found off, reason unknown, when
// libvirtd started after a power loss): only the first stays down under restart on-failure.
func TestDomainStateOfShutoff(t *testing.T) {
	for reason, want := range map[string]reconcile.DomainState{
		"shutdown":  reconcile.DomainShutoff,
		"destroyed": reconcile.DomainShutoff,
		"crashed":   reconcile.DomainCrashed,
		"failed":    reconcile.DomainCrashed,
		"unknown":   reconcile.DomainLost,
	} {
		if got := vm.DomainState(hypervisor.Domain{State: hypervisor.StateShutoff, Reason: reason}); got != want {
			t.Errorf("shutoff (%s): %s, want %s", reason, got, want)
		}
	}
}

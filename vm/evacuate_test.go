package vm_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/plan"
)

// evacuateFixture: host 2 owns the test driver's running guest "test" and
// is being emptied; host 1 is alive. The test driver cannot migrate, so
// every live migration fails.
func evacuateFixture(t *testing.T) (*vm.Manager, *heldStarts, quorum.Decision) {
	m, hv, _ := failoverFixture(t, 0)
	close(hv.hold)
	if _, err := m.Protect(context.Background(), quorum.Decision{}, "test", vm.RecordPolicy{Policy: plan.DefaultPolicy()}, vm.ProtectOptions{}); err != nil {
		t.Fatal(err)
	}
	dec := quorum.Decision{Quorate: true, MayRunVMs: true,
		Hosts: []quorum.Host{{ID: 1, Name: "kvm1", Gen: 1, State: quorum.StateAlive}, {ID: 2, Name: "kvm2", Gen: 1, State: quorum.StateMaintenance}}}
	return m, hv, dec
}

func guestRunning(t *testing.T, hv *heldStarts, name string) bool {
	t.Helper()
	doms, err := hv.ListDomains(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range doms {
		if d.Name == name {
			return d.State == hypervisor.StateRunning
		}
	}
	return false
}

// owned is the number of VMs this host still owns and would evacuate.
func owned(t *testing.T, m *vm.Manager, dec quorum.Decision) int {
	t.Helper()
	moves, unplaced, err := m.EvacuationPlan(context.Background(), dec)
	if err != nil {
		t.Fatal(err)
	}
	return len(moves) + len(unplaced)
}

func TestEvacuateReportsAFailedMigration(t *testing.T) {
	m, hv, dec := evacuateFixture(t)
	var done []vm.Move
	err := m.Evacuate(context.Background(), dec, vm.EvacuateOptions{Parallel: 2, Done: func(mv vm.Move, _ hypervisor.MigrationResult, err error) {
		if err == nil {
			t.Errorf("%s: the migration cannot succeed on the test driver", mv.Name)
		}
		done = append(done, mv)
	}})
	if err == nil || len(done) != 1 || done[0].Cold {
		t.Fatalf("evacuate: %v, moves %+v; want the failure reported and the VM left", err, done)
	}
	if !guestRunning(t, hv, "test") {
		t.Error("the guest stopped after a failed migration without cold move")
	}
	if n := owned(t, m, dec); n != 1 {
		t.Errorf("host 2 owns %d VMs after the failed migration, want 1 (it stays and is reported)", n)
	}
}

func TestEvacuateColdMovesAfterAFailedMigration(t *testing.T) {
	m, hv, dec := evacuateFixture(t)
	var done []vm.Move
	err := m.Evacuate(context.Background(), dec, vm.EvacuateOptions{Parallel: 2, ColdMove: true, Done: func(mv vm.Move, _ hypervisor.MigrationResult, err error) {
		if err != nil {
			t.Errorf("%s: %v", mv.Name, err)
		}
		done = append(done, mv)
	}})
	if err != nil || len(done) != 1 || !done[0].Cold {
		t.Fatalf("evacuate: %v, moves %+v; want one cold move", err, done)
	}
	if guestRunning(t, hv, "test") {
		t.Error("the cold-moved guest still runs here")
	}
	if n := owned(t, m, dec); n != 0 {
		t.Errorf("host 2 owns %d VMs after the cold move, want 0 (released for another host)", n)
	}
	if !errors.Is(m.ColdMove(context.Background(), "test", "again"), vm.ErrNotOwner) {
		t.Error("a second cold move of a released VM must say this host is not its owner")
	}
}

// With Unprotected, the evacuation also moves this host's running domains
// that are not protected, through the manager (here every migration fails
// on the test driver, and the error names each); without it, it leaves
// them alone.
func TestEvacuateUnprotectedGoesThroughTheManager(t *testing.T) {
	m, hv, dec := evacuateFixture(t)
	ctx := context.Background()
	if _, err := hv.Define(ctx, "<domain type='test'><name>spare</name><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>"); err != nil {
		t.Fatal(err)
	}
	if err := hv.Start(ctx, "spare"); err != nil {
		t.Fatal(err)
	}
	err := m.Evacuate(ctx, dec, vm.EvacuateOptions{Parallel: 1})
	if err == nil || strings.Contains(err.Error(), "spare") {
		t.Errorf("without Unprotected: %v, want only the protected VM's failure", err)
	}
	current := false
	err = m.Evacuate(ctx, quorum.Decision{}, vm.EvacuateOptions{Parallel: 1, Unprotected: true,
		Current: func() quorum.Decision { current = true; return dec }})
	if err == nil || !strings.Contains(err.Error(), "unprotected spare") || strings.Contains(err.Error(), "unprotected test") {
		t.Errorf("with Unprotected: %v, want the failure of spare's migration and not of the protected test", err)
	}
	if !current {
		t.Error("the unprotected domains were not placed on the current cluster view")
	}
	if !guestRunning(t, hv, "spare") {
		t.Error("a failed migration stopped spare")
	}
}

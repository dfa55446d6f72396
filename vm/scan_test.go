package vm_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/plan"
	"github.com/wingmanha/wingman/vm/reconcile"
)

// TestStepAtRestReadsOnlyRecordsInUse: between full scans a step reads only
// the records in use at the last one, and still acts at once on a change to
// them (here another host releases its VM). A VM another host protects in a
// blank record is picked up by the full scan that a change of the decision
// forces (its owner dead), and every FullScanEvery.
func TestStepAtRestReadsOnlyRecordsInUse(t *testing.T) {
	ctx := context.Background()
	g, lun, protect := scanLUN(t, "scan", 6)
	a := protect(1)
	m, err := vm.NewManager(vm.Config{Host: 2, Gen: 1}, lun, dialKVM2(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	alive := quorum.Decision{Quorate: true, MayRunVMs: true,
		Hosts: []quorum.Host{{ID: 1, Name: "kvm1", Gen: 1, State: quorum.StateAlive}, {ID: 2, Name: "kvm2", Gen: 1, State: quorum.StateAlive}}}
	dead := quorum.Decision{Quorate: true, MayRunVMs: true, Verdicts: []quorum.Verdict{{ID: 1, Gen: 1}},
		Hosts: []quorum.Host{{ID: 1, Name: "kvm1", Gen: 1, State: quorum.StateDead}, {ID: 2, Name: "kvm2", Gen: 1, State: quorum.StateAlive}}}

	step := scanSteps(t, m, lun)
	full := uint64(2 * g.MaxVMs) // two config copies of every record, at least

	if started, reads := step(alive, 0); len(started) != 0 || reads < full {
		t.Fatalf("first step: started %v with %d reads; want nothing started, and a full scan (>= %d reads)", started, reads, full)
	}
	if started, reads := step(alive, time.Second); len(started) != 0 || reads > 3 {
		t.Fatalf("step at rest: started %v with %d reads; want nothing, with at most 3 reads (record %d's two copies and lease)", started, reads, a)
	}

	protect(2) // in a record that was blank at the last full scan
	if started, reads := step(alive, 2*time.Second); len(started) != 0 || reads > 3 {
		t.Fatalf("step at rest after another host protected a VM: started %v with %d reads; want nothing, with at most 3 reads", started, reads)
	}

	rec, err := lun.ReadVM(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := lun.ReleaseLease(ctx, a, rec.Lease); err != nil { // host 1 hands scan-01 over (a cold move)
		t.Fatal(err)
	}
	if started, _ := step(alive, 3*time.Second); len(started) != 1 || started[0] != "scan-01" {
		t.Fatalf("step after host 1 released scan-01: started %v, want [scan-01] at once", started)
	}

	if started, reads := step(dead, 4*time.Second); len(started) != 1 || started[0] != "scan-02" || reads < full {
		t.Fatalf("step after host 1 was declared dead: started %v with %d reads; want [scan-02] from a full scan (>= %d reads)", started, reads, full)
	}
	if _, reads := step(dead, 5*time.Second); reads < full {
		t.Errorf("step after scan-02 started here: %d reads, want a full scan for the new local guest (>= %d reads)", reads, full)
	}
	if _, reads := step(dead, 6*time.Second); reads > 6 {
		t.Errorf("step at rest: %d reads, want at most 6 (two records in use)", reads)
	}
	if _, reads := step(dead, 5*time.Second+vm.FullScanEvery); reads < full {
		t.Errorf("step %v after the last full scan: %d reads, want a full scan (>= %d reads)", vm.FullScanEvery, reads, full)
	}
}

// TestRecordsCounterForcesFullScan: a VM another host protects in a blank
// record is seen, and its release acted on at once, when that host's
// VM-records counter changes; an unchanged counter reads only the records
// in use.
func TestRecordsCounterForcesFullScan(t *testing.T) {
	ctx := context.Background()
	g, lun, protect := scanLUN(t, "ctr", 7)
	protect(1)
	m, err := vm.NewManager(vm.Config{Host: 2, Gen: 1}, lun, dialKVM2(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	alive := func(records uint32) quorum.Decision {
		return quorum.Decision{Quorate: true, MayRunVMs: true, Hosts: []quorum.Host{
			{ID: 1, Name: "kvm1", Gen: 1, State: quorum.StateAlive, Records: records},
			{ID: 2, Name: "kvm2", Gen: 1, State: quorum.StateAlive}}}
	}
	step := scanSteps(t, m, lun)
	full := uint64(2 * g.MaxVMs)

	step(alive(5), 0) // the first, full, scan
	b := protect(2)   // in a record that was blank at that scan
	if _, reads := step(alive(5), time.Second); reads > 3 {
		t.Fatalf("step with host 1's counter unchanged: %d reads, want at most 3 (the record in use)", reads)
	}
	if _, reads := step(alive(6), 2*time.Second); reads < full {
		t.Fatalf("step after host 1's counter changed: %d reads, want a full scan (>= %d reads)", reads, full)
	}
	if _, reads := step(alive(6), 3*time.Second); reads > 6 {
		t.Fatalf("step at rest after the full scan: %d reads, want at most 6 (two records in use)", reads)
	}
	rec, err := lun.ReadVM(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := lun.ReleaseLease(ctx, b, rec.Lease); err != nil { // host 1 hands ctr-02 over
		t.Fatal(err)
	}
	if started, _ := step(alive(7), 4*time.Second); len(started) != 1 || started[0] != "ctr-02" {
		t.Fatalf("step after host 1 released ctr-02: started %v, want [ctr-02] at once", started)
	}
}

// scanSteps returns a function that runs one step of m at a time after
// now+at and returns the VMs it started and the LUN reads it made.
func scanSteps(t *testing.T, m *vm.Manager, lun *storage.LUN) func(quorum.Decision, time.Duration) ([]string, uint64) {
	t0 := time.Now()
	return func(dec quorum.Decision, at time.Duration) (started []string, reads uint64) {
		t.Helper()
		before := lun.IOStats().Reads
		acts, err := m.Step(context.Background(), dec, t0.Add(at))
		if err != nil {
			t.Fatalf("step at +%v: %v", at, err)
		}
		for _, act := range acts {
			if act.Kind == reconcile.TakeAndStart {
				started = append(started, act.Name)
			}
		}
		return started, lun.IOStats().Reads - before
	}
}

// scanLUN returns a fresh LUN of 16 VM records and a function by which
// host 1 protects VM i ("name-0i"), which runs there; tag tells the UUIDs
// of one test from another's.
func scanLUN(t *testing.T, name string, tag int) (storage.Geometry, *storage.LUN, func(int) int) {
	g := storage.Geometry{MaxHosts: 4, MaxVMs: 16, EventBlocks: 8, ConfigBlks: 2}
	lun := freshLUN(t, name, g)
	return g, lun, func(i int) int {
		return protectTestVM(t, lun, fmt.Sprintf("%s-%02d", name, i), fmt.Sprintf("00000000-0000-0000-0000-000000000%d%02d", tag, i), plan.DefaultPolicy())
	}
}

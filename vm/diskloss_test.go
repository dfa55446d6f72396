package vm_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/plan"
	"github.com/wingmanha/wingman/vm/reconcile"
)

// ioErrorHV is the test:/// driver with a switch that shows every active
// domain paused on an I/O error, as QEMU does when its disk path is lost.
type ioErrorHV struct {
	*hypervisor.Conn
	lost atomic.Bool
}

func (h *ioErrorHV) ListDomains(ctx context.Context) ([]hypervisor.Domain, error) {
	doms, err := h.Conn.ListDomains(ctx)
	for i, d := range doms {
		if h.lost.Load() && d.Active() {
			doms[i].State, doms[i].Reason, doms[i].ReasonCode = hypervisor.StatePaused, "ioerror", int(libvirt.DOMAIN_PAUSED_IOERROR)
		}
	}
	return doms, err
}

// kinds are the kinds of the events, in order.
func (l *eventList) kinds() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.Kind)
	}
	return out
}

// diskLossFixture: a protected VM of dead host 1, and host 2's manager
// (configured by cfg) on the test:/// driver with an I/O-error switch.
func diskLossFixture(t *testing.T, name, uuid string, cfg vm.Config, events vm.Events) (*vm.Manager, *ioErrorHV, *storage.LUN, int, quorum.Decision) {
	t.Helper()
	lun := freshLUN(t, "diskloss", storage.Geometry{MaxHosts: 4, MaxVMs: 16, EventBlocks: 8, ConfigBlks: 2})
	idx := protectTestVM(t, lun, name, uuid, plan.DefaultPolicy())
	hv := &ioErrorHV{Conn: dialKVM2(t)}
	cfg.Host, cfg.Gen = 2, 1
	m, err := vm.NewManager(cfg, lun, hv, events)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	dec := quorum.Decision{Quorate: true, MayRunVMs: true, Verdicts: []quorum.Verdict{{ID: 1, Gen: 1}},
		Hosts: []quorum.Host{{ID: 1, Name: "kvm1", Gen: 1, State: quorum.StateDead}, {ID: 2, Name: "kvm2", Gen: 1, State: quorum.StateAlive}}}
	return m, hv, lun, idx, dec
}

// TestDiskLossReleasesAfterGrace: host 2 runs a protected VM that pauses on
// an I/O error. Within the grace it is only reported; at the grace, host 2
// destroys it, sees it gone, marks itself on the record as unable to reach
// its disks and releases the lease; its next step does not take it back.
func TestDiskLossReleasesAfterGrace(t *testing.T) {
	ctx := context.Background()
	events := &eventList{}
	grace := reconcile.MinDiskLossGrace
	m, hv, lun, idx, dec := diskLossFixture(t, "dl-1", "00000000-0000-0000-0000-000000000601",
		vm.Config{DiskLoss: func() reconcile.DiskLossPolicy { return reconcile.DiskLossPolicy{Restart: true, Grace: grace} }}, events)
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	step := func(at time.Time) []reconcile.Action {
		t.Helper()
		acts, err := m.Step(ctx, dec, at)
		if err != nil {
			t.Fatalf("step at %v: %v", at.Sub(t0), err)
		}
		return acts
	}
	step(t0) // failover: host 2 takes the VM of dead host 1 and starts it
	if d, err := findDomain(ctx, hv.Conn, "dl-1"); err != nil || !d.Active() {
		t.Fatalf("after the failover: %+v, %v; want dl-1 running", d, err)
	}

	hv.lost.Store(true)
	paused := t0.Add(time.Second)
	if acts := step(paused); len(acts) != 1 || acts[0].Kind != reconcile.Notice {
		t.Fatalf("paused on an I/O error: %v, want one notice", acts)
	}
	if acts := step(paused.Add(grace - time.Millisecond)); len(acts) != 1 || acts[0].Kind != reconcile.Notice {
		t.Fatalf("just within the grace: %v, want the notice only", acts)
	}
	acts := step(paused.Add(grace))
	if len(acts) != 1 || acts[0].Kind != reconcile.Release || !acts[0].DiskLost {
		t.Fatalf("at the grace: %v, want a disk-loss release", acts)
	}
	if d, err := findDomain(ctx, hv.Conn, "dl-1"); err != nil || d.Active() {
		t.Fatalf("after the release: %+v, %v; want dl-1 inactive", d, err)
	}
	r, err := lun.ReadVM(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := vm.UnmarshalRecordPolicy(r.Config.Policy)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Lease.Released || rp.DiskLost == nil || !slices.Equal(rp.DiskLost.Hosts, []int{2}) {
		t.Fatalf("record after the release: lease %+v, mark %+v; want released, host 2 marked", r.Lease, rp.DiskLost)
	}
	want := []string{"planned", "lease-acquired", "started", "paused-io-error", "disk-loss-grace-expired", "destroyed-paused-copy", "released"}
	if got := events.kinds(); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}

	// Host 2 is the only alive host and cannot reach the disks: it does
	// not take the VM back, it says why.
	hv.lost.Store(false)
	for _, a := range step(paused.Add(grace + time.Second)) {
		if a.Starts() || a.TakesLease() {
			t.Fatalf("after its own disk-loss release host 2 %v", a)
		}
		if a.Kind == reconcile.Notice && !strings.Contains(a.Reason, "unplaced") {
			t.Errorf("notice %q, want it unplaced", a.Reason)
		}
	}
}

// TestDiskLossResumedWithinGrace: a guest whose path comes back within the
// grace runs on; nothing is destroyed or released.
func TestDiskLossResumedWithinGrace(t *testing.T) {
	ctx := context.Background()
	m, hv, lun, idx, dec := diskLossFixture(t, "dl-2", "00000000-0000-0000-0000-000000000602", vm.Config{}, nil)
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for i, at := range []time.Duration{0, time.Second, 30 * time.Second, 2 * time.Minute} {
		hv.lost.Store(i == 1 || i == 2) // paused for 29 s of the default minute
		acts, err := m.Step(ctx, dec, t0.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acts {
			if a.Kind == reconcile.Release {
				t.Fatalf("step %d: %v", i, a)
			}
		}
	}
	if r, err := lun.ReadVM(ctx, idx); err != nil || r.Lease.Released || r.Lease.Owner.Host != 2 {
		t.Fatalf("lease %+v, %v; want held by host 2", r.Lease, err)
	}
}

func findDomain(ctx context.Context, hv *hypervisor.Conn, name string) (hypervisor.Domain, error) {
	doms, err := hv.ListDomains(ctx)
	for _, d := range doms {
		if d.Name == name {
			return d, err
		}
	}
	return hypervisor.Domain{}, err
}

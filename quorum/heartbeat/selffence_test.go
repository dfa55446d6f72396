package heartbeat

import (
	"context"
	"sync"
	"testing"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
)

// TestSelfFenceDestroysBeforeItReports: the self-fence event goes to the
// daemon, which writes it to the LUN, the very storage that may be hanging.
// The guests must be gone before that write is even tried: a hung LUN would
// otherwise keep them running for io_timeout after F.
func TestSelfFenceDestroysBeforeItReports(t *testing.T) {
	lun, faults, slot := oneHost(t)
	ctx := context.Background()

	v := &vms{}
	var mu sync.Mutex
	reported, destroyedFirst := false, false
	net := &network{group: map[int]int{}, up: map[int]bool{1: true}, loops: map[int]*Loop{}}
	loop, err := New(Config{Timings: quorumTimings(lun.Header().Timings), Slot: slot, LUN: lun,
		Serf: member{n: net, self: 1}, VMs: v,
		OnEvent: func(e Event) {
			if e.Kind != "self-fence" {
				return
			}
			f, _ := v.counts()
			mu.Lock()
			reported, destroyedFirst = true, f > 0
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- loop.Run(lctx) }()
	defer func() { cancel(); <-done }()

	faults.Inject("kvm1", storagetest.Fault{Op: storagetest.AllIO, EIO: true})
	waitFor(t, "the self-fence event", func() bool { mu.Lock(); defer mu.Unlock(); return reported })
	mu.Lock()
	defer mu.Unlock()
	if !destroyedFirst {
		t.Error("the self-fence was reported before the protected VMs were destroyed")
	}
}

// oneHost formats a LUN with fault injection for kvm1 and acquires its slot, alive.
func oneHost(t *testing.T) (*storage.LUN, *storagetest.Controller, *storage.Heartbeat) {
	t.Helper()
	lun, faults := storagetest.FaultLUN(t, "kvm1", storage.FormatOptions{ClusterName: "hb", Timings: testTimings(),
		Geometry: storage.Geometry{MaxHosts: 2, MaxVMs: 2, EventBlocks: 1, ConfigBlks: 2}})
	slot, err := lun.AcquireSlot(context.Background(), storage.AcquireOptions{HostName: "kvm1", HostID: 1})
	if err != nil {
		t.Fatal(err)
	}
	slot.SetState(storage.SlotAlive)
	return lun, faults, slot
}

package vm_test

import (
	"context"
	"testing"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/plan"
)

// TestSelfFenceDoesNotWaitForAHungLUN: a host whose LUN hangs fences itself;
// the VM records it would read to spare unprotected guests cannot come. It
// must destroy its guests without waiting io_timeout per record read.
func TestSelfFenceDoesNotWaitForAHungLUN(t *testing.T) { selfFenceOnHungLUN(t, false) }

// TestSelfFenceDoesNotWaitForItsEvents: the same with the event ring on the
// hung LUN, as in the daemon: the self-fence reports each destroyed guest
// there, and must not make the heartbeat loop wait the two I/Os of
// io_timeout each event write takes.
func TestSelfFenceDoesNotWaitForItsEvents(t *testing.T) { selfFenceOnHungLUN(t, true) }

func selfFenceOnHungLUN(t *testing.T, withEvents bool) {
	ctx := context.Background()
	timings := storage.DefaultTimings()
	lun, faults := storagetest.FaultLUN(t, "kvm2", storage.FormatOptions{ClusterName: "fence", Timings: timings,
		Geometry: storage.Geometry{MaxHosts: 4, MaxVMs: 16, EventBlocks: 8, ConfigBlks: 2}})

	hcfg := hypervisor.DefaultConfig()
	hcfg.URI, hcfg.HostName = "test:///default", "kvm2"
	conn, err := hypervisor.Dial(ctx, hcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const uuid = "00000000-0000-0000-0000-000000000601"
	xml := "<domain type='test'><name>fenced-1</name><uuid>" + uuid + "</uuid><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>"
	if _, err := conn.Define(ctx, xml); err != nil {
		t.Fatal(err)
	}
	if err := conn.Start(ctx, "fenced-1"); err != nil {
		t.Fatal(err)
	}
	id, _ := storage.ParseUUID(uuid)
	pol, err := vm.RecordPolicy{Policy: plan.DefaultPolicy()}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := lun.ProtectVM(ctx, storage.Owner{Host: 2, Gen: 1, Nonce: 1}, storage.VMConfig{UUID: id, Name: "fenced-1", Policy: pol, XML: []byte(xml)}); err != nil {
		t.Fatal(err)
	}
	var events vm.Events
	if withEvents {
		if events, err = lun.EventLog(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	m, err := vm.NewManager(vm.Config{Host: 2, Gen: 1}, lun, conn, events)
	if err != nil {
		t.Fatal(err)
	}

	faults.Inject("kvm2", storagetest.Fault{Op: storagetest.AllIO, Hang: true})
	defer faults.Clear("kvm2")
	t0 := time.Now()
	if err := m.SelfFence(ctx, "test: LUN hangs"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	doms, err := conn.ListDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range doms {
		if d.Name == "fenced-1" && d.State.Active() {
			t.Fatalf("the protected guest still runs after the self-fence")
		}
	}
	// The reads and event writes on the hung LUN time out only after
	// io_timeout each.
	if took >= timings.IOTimeout {
		t.Errorf("the self-fence took %v with the LUN hung: it waited for the records or its events (io_timeout %v)", took, timings.IOTimeout)
	}
	if faults.Stats("kvm2").Hung == 0 {
		t.Error("the self-fence did not try the LUN: the test no longer covers the hang")
	}
}

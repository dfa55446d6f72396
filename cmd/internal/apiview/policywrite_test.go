package apiview

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/plan"
)

// TestPolicyWriteBehindAStalledOneIsUnavailable reproduces how a policy
// change answered 500 in a burst: one write of the VM's record outlives
// io_timeout (the LUN stalls under the burst) and stays in flight; the
// next change, serialised behind it, reads the same newest copy, writes
// the same older copy, and the LUN refuses the overlapping write with
// storage.ErrIOPending, an error without an API class. It is the storage
// path's state: 502 unavailable, with the hint to retry.
func TestPolicyWriteBehindAStalledOneIsUnavailable(t *testing.T) {
	ctx := context.Background()
	timings := storage.Timings{Renew: 100 * time.Millisecond, IOTimeout: 300 * time.Millisecond, SelfFence: time.Second, Watchdog: time.Second, PowerFence: time.Second}
	timings.Dead = timings.MinDead()
	lun, faults := storagetest.FaultLUN(t, "kvm1", storage.FormatOptions{ClusterName: "burst", Timings: timings,
		Geometry: storage.Geometry{MaxHosts: 4, MaxVMs: 8, EventBlocks: 4, ConfigBlks: 2}})

	hcfg := hypervisor.DefaultConfig()
	hcfg.URI, hcfg.HostName = "test:///default", "kvm1"
	conn, err := hypervisor.Dial(ctx, hcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const uuid = "00000000-0000-0000-0000-000000000701"
	xml := "<domain type='test'><name>burst-1</name><uuid>" + uuid + "</uuid><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>"
	if _, err := conn.Define(ctx, xml); err != nil {
		t.Fatal(err)
	}
	id, _ := storage.ParseUUID(uuid)
	pol, _ := vm.RecordPolicy{Policy: plan.DefaultPolicy()}.Marshal()
	owner := storage.Owner{Host: 1, Gen: 1, Nonce: 1}
	if _, _, err := lun.ProtectVM(ctx, owner, storage.VMConfig{UUID: id, Name: "burst-1", Policy: pol, XML: []byte(xml)}); err != nil {
		t.Fatal(err)
	}
	m, err := vm.NewManager(vm.Config{Host: 1, Gen: 1}, lun, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	change := func(p string) error {
		_, err := m.SetPolicy(ctx, "burst-1", func(rp vm.RecordPolicy) (vm.RecordPolicy, error) {
			rp.Policy, err = ApplyPolicy(rp.Policy, api.Policy{AntiAffinity: p})
			return rp, err
		})
		return Classify(err)
	}

	faults.Inject("kvm1", storagetest.Fault{Op: storagetest.Writes, Hang: true, Count: 1})
	first := change("a")
	if !errors.Is(first, storage.ErrIOTimeout) || api.StatusOf(first) != 502 {
		t.Fatalf("the stalled write: %v (status %d), want an io_timeout, 502", first, api.StatusOf(first))
	}
	second := change("b")
	if !errors.Is(second, storage.ErrIOPending) {
		t.Fatalf("the write behind it: %v, want storage.ErrIOPending (this test no longer reproduces the 500)", second)
	}
	if api.StatusOf(second) != 502 || api.ClassName(second) != "unavailable" || !strings.Contains(second.Error(), "retry after the earlier write completes") {
		t.Errorf("the write behind a stalled one answers %d %q: %v, want 502 unavailable with the hint to retry", api.StatusOf(second), api.ClassName(second), second)
	}
	faults.Release()
	if err := change("c"); err != nil {
		t.Errorf("once the stalled write landed, a change: %v", err)
	}
}

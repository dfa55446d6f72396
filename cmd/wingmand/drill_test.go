package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/drill"
	"github.com/wingmanha/wingman/vm/plan"
)

// TestDrillOverSerf: kvm1 runs web1 (whose disk goes away after it is
// protected), app1 (its disk is a real file) and fast1 (stopped by the
// operator, stored with cache='unsafe'); a drill from kvm1 asks kvm2, over serf, whether it
// could start them: web1 fails there, app1 passes, fast1 fails for its
// definition only, and the drill says so per VM and per host, in an event
// too.
func TestDrillOverSerf(t *testing.T) {
	a, b := twoDaemons(t)
	ctx := context.Background()
	disk := filepath.Join(t.TempDir(), "app1.img")
	if err := os.WriteFile(disk, make([]byte, 512), 0o600); err != nil {
		t.Fatal(err)
	}
	xml := fmt.Sprintf(`<domain type='test'><name>app1</name><uuid>3f6b1c0e-9a51-4c1e-8d2a-0000000000a1</uuid>
<memory unit='MiB'>128</memory><os><type>hvm</type></os><devices><disk type='file' device='disk'>
<source file='%s'/><target dev='vda'/></disk></devices></domain>`, disk)
	if _, err := a.d.hv.Define(ctx, xml); err != nil {
		t.Fatal(err)
	}
	if err := a.d.hv.Start(ctx, "app1"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web1", "app1"} {
		if _, err := a.client.Protect(ctx, name, api.ProtectRequest{}); err != nil {
			t.Fatalf("protect %s: %v", name, err)
		}
	}
	web1Disk := sharedDisk(filepath.Dir(a.d.cfg.LUN[0]))
	if err := os.Remove(web1Disk); err != nil {
		t.Fatal(err)
	}
	// Protect refuses cache='unsafe': a record from before that check.
	pol, _ := vm.RecordPolicy{Policy: plan.DefaultPolicy(), Stopped: true}.Marshal()
	fastID, _ := storage.ParseUUID("3f6b1c0e-9a51-4c1e-8d2a-0000000000a2")
	fastXML := strings.NewReplacer("<name>app1<", "<name>fast1<", "0000000000a1", "0000000000a2", "<source", "<driver cache='unsafe'/><source").Replace(xml)
	if _, _, err := a.d.lun.ProtectVM(ctx, storage.Owner{Host: 1, Gen: a.d.slot.Generation(), Nonce: 7},
		storage.VMConfig{UUID: fastID, Name: "fast1", Policy: pol, XML: []byte(fastXML)}); err != nil {
		t.Fatal(err)
	}

	rep, err := a.client.Drill(ctx, api.DrillRequest{Host: "kvm1"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pass || strings.Join(rep.Lost, ",") != "kvm1" || len(rep.VMs) != 3 {
		t.Fatalf("drill of kvm1 = %+v, want a failure with app1, fast1 and web1", rep)
	}
	for _, v := range rep.VMs {
		if len(v.Checks) != 1 || v.Checks[0].Host != "kvm2" || !v.Checks[0].Planned || v.Target != "kvm2" {
			t.Errorf("%s: checks %+v target %q, want one planned check on kvm2", v.Name, v.Checks, v.Target)
			continue
		}
		switch v.Name {
		case "app1":
			if !v.Pass || v.Checks[0].Problem != "" || len(v.Problems) != 0 {
				t.Errorf("app1 = %+v, want a pass", v)
			}
		case "web1":
			if v.Pass || v.Checks[0].Problem != "disk vda: "+web1Disk+": no such file or directory" {
				t.Errorf("web1 = %+v, want its missing disk reported on kvm2", v)
			}
		case "fast1":
			if v.Pass || v.Checks[0].Problem != "" || len(v.Problems) != 1 || !strings.HasPrefix(v.Problems[0], "disk vda has cache='unsafe'") {
				t.Errorf("fast1 = %+v, want its definition failing and kvm2 able to start it", v)
			}
		}
	}
	for _, h := range rep.Hosts {
		switch h.Name {
		case "kvm1":
			if !h.Drilled || h.VMs != 3 || h.Placed != 3 || h.Checked != 0 || !h.Pass {
				t.Errorf("kvm1 = %+v, want drilled, 3 VMs placed, passing as a lost host", h)
			}
		case "kvm2":
			if h.Drilled || h.Checked != 3 || h.CheckFailures != 1 || h.Pass {
				t.Errorf("kvm2 = %+v, want 3 checks, 1 failure", h)
			}
		}
	}
	// The event is visible from the other host too.
	evs, err := b.client.Events(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		if e.Kind == "drill-failed" && strings.Contains(e.Message, "failover drill of kvm1 failed") && strings.Contains(e.Message, "web1") {
			found = true
		}
	}
	if !found {
		t.Errorf("no drill-failed event naming web1 in %+v", evs)
	}

	// Every host in turn: kvm2 owns nothing, so only kvm1's VMs are checked.
	rep, err = b.client.Drill(ctx, api.DrillRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pass || strings.Join(rep.Lost, ",") != "kvm1,kvm2" || len(rep.VMs) != 3 {
		t.Errorf("drill of every host = %+v, want kvm1 and kvm2 drilled, 3 VMs, a failure", rep)
	}

	// Bad input is a clear 4xx.
	_, err = a.client.Drill(ctx, api.DrillRequest{Host: "kvm9"})
	if !api.IsNotFound(err) || !strings.Contains(err.Error(), "hosts are kvm1, kvm2") {
		t.Errorf("drill of an unknown host: %v, want a 404 listing the hosts", err)
	}
}

// TestDrillLiveLeavesNothingBehind: the test driver cannot migrate, so each
// hop fails; the report says so and no throwaway guest is left anywhere.
func TestDrillLiveLeavesNothingBehind(t *testing.T) {
	a, b := twoDaemons(t)
	ctx := context.Background()
	rep, err := a.client.Drill(ctx, api.DrillRequest{Live: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pass || len(rep.Hops) != 2 {
		t.Fatalf("live drill = %+v, want two failed hops", rep)
	}
	for i, want := range [][2]string{{"kvm1", "kvm2"}, {"kvm2", "kvm1"}} {
		h := rep.Hops[i]
		t.Logf("hop %s->%s: %s", h.From, h.To, h.Error)
		if h.From != want[0] || h.To != want[1] || h.Pass || h.Error == "" || h.Guest != "wingman-drill-"+want[0] {
			t.Errorf("hop %d = %+v, want a failed hop %s->%s with the reason", i, h, want[0], want[1])
		}
	}
	for _, d := range []*testDaemon{a, b} {
		doms, err := d.d.hv.ListDomains(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, dm := range doms {
			if strings.HasPrefix(dm.Name, drill.GuestPrefix) {
				t.Errorf("%s still has %s (%v)", d.d.cfg.HostName, dm.Name, dm.State)
			}
		}
	}
}

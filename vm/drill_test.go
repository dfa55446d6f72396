package vm_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/plan"
)

// drillInput: three alive hosts of 4 GiB (1 GiB reserved) and one in
// maintenance; kvm1 runs web (1 GiB) and big (3 GiB, fits nowhere once kvm1
// is lost because kvm2 and kvm3 are full enough), kvm2 runs db (2 GiB),
// kvm3 runs batch (2 GiB, stopped by the operator).
func drillInput() plan.Input {
	const gib = 1 << 30
	in := plan.Input{Config: plan.DefaultConfig(), Now: time.Unix(1e9, 0)}
	for i, name := range []string{"kvm1", "kvm2", "kvm3", "kvm4"} {
		st := plan.HostAlive
		if name == "kvm4" {
			st = plan.HostMaintenance
		}
		in.Hosts = append(in.Hosts, plan.Host{ID: i + 1, Name: name, State: st, Memory: 4 * gib, CPUs: 8})
	}
	vmOf := func(uuid, name string, owner int, mem uint64, running bool) plan.VM {
		return plan.VM{UUID: uuid, Name: name, Owner: owner, Memory: mem, VCPUs: 1, Running: running, Policy: plan.DefaultPolicy()}
	}
	in.VMs = []plan.VM{
		vmOf("00000000-0000-0000-0000-000000000001", "web", 1, 1*gib, true),
		vmOf("00000000-0000-0000-0000-000000000002", "big", 1, 3*gib, true),
		vmOf("00000000-0000-0000-0000-000000000003", "db", 2, 2*gib, true),
		vmOf("00000000-0000-0000-0000-000000000004", "batch", 3, 2*gib, true),
	}
	in.VMs[3].Policy.Restart = plan.RestartNever
	return in
}

func TestDrillPlanChecksAndVerdict(t *testing.T) {
	in := drillInput()
	dp, err := vm.PlanDrill(in, nil, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	// Only kvm1's VMs, checked on every alive host but kvm1; kvm4 is in maintenance.
	checks := dp.Checks()
	if len(checks) != 2 || checks[0].HostName != "kvm2" || checks[1].HostName != "kvm3" ||
		strings.Join(checks[0].VMs, ",") != "00000000-0000-0000-0000-000000000002,00000000-0000-0000-0000-000000000001" {
		t.Fatalf("Checks() = %+v, want big and web on kvm2 and kvm3", checks)
	}
	d := dp.Verdict(map[int]vm.DrillResult{
		2: {},
		3: {Problems: map[string]string{"00000000-0000-0000-0000-000000000001": "disk vda: /x.img: no such file or directory"}},
	})
	if d.Pass {
		t.Error("drill passed, want a failure (big fits nowhere, web cannot start on kvm3)")
	}
	byName := map[string]vm.DrillVM{}
	for _, v := range d.VMs {
		byName[v.Name] = v
	}
	if len(d.VMs) != 2 {
		t.Fatalf("VMs = %+v, want web and big only", d.VMs)
	}
	web, big := byName["web"], byName["big"]
	if web.Pass || web.FailureCount != 1 || web.FailureSummary != "kvm3: disk vda: /x.img: no such file or directory" || web.TargetName == "" {
		t.Errorf("web = %+v, want one failure on kvm3 and a planned target", web)
	}
	for _, c := range web.Cells {
		if (c.HostName == "kvm3") != (c.Problem != "") {
			t.Errorf("web on %s: problem %q, want a failure on kvm3 only", c.HostName, c.Problem)
		}
	}
	if big.Pass || big.Unplaced == "" || !strings.HasPrefix(big.FailureSummary, "no host for it: no capacity") {
		t.Errorf("big = %+v, want unplaced for lack of capacity", big)
	}
	hosts := map[string]vm.DrillHost{}
	for _, h := range d.Hosts {
		hosts[h.Name] = h
	}
	if h := hosts["kvm1"]; h.Pass || !h.Drilled || h.VMs != 2 || h.Placed != 1 || h.Unplaced != 1 {
		t.Errorf("kvm1 = %+v, want drilled, 2 VMs, 1 placed, 1 unplaced, failing", h)
	}
	if h := hosts["kvm2"]; !h.Pass || h.Checked != 2 || h.CheckFailures != 0 {
		t.Errorf("kvm2 = %+v, want 2 checks passed", h)
	}
	if h := hosts["kvm3"]; h.Pass || h.CheckFailures != 1 {
		t.Errorf("kvm3 = %+v, want 1 check failure", h)
	}
	if h := hosts["kvm4"]; !h.Pass || h.Target || h.Checked != 0 {
		t.Errorf("kvm4 = %+v, want no checks (maintenance)", h)
	}
}

func TestDrillEveryHost(t *testing.T) {
	in := drillInput()
	in.VMs = in.VMs[:1] // only web: everything fits
	dp, err := vm.PlanDrill(in, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(dp.Lost) != 4 {
		t.Errorf("Lost = %v, want every host", dp.Lost)
	}
	d := dp.Verdict(map[int]vm.DrillResult{2: {}}) // kvm3 does not answer
	if d.Pass || len(d.VMs) != 1 {
		t.Fatalf("drill = %+v, want one VM and a failure", d)
	}
	for _, h := range d.Hosts {
		if h.Name == "kvm3" && (h.Pass || h.Problem == "") {
			t.Errorf("kvm3 = %+v, want a failure for not answering", h)
		}
	}
	if c := d.VMs[0].Cells; len(c) != 2 || c[1].Problem != "not checked: did not answer the drill's checks" {
		t.Errorf("web cells = %+v, want kvm2 passing and kvm3 not checked", c)
	}
	d = dp.Verdict(map[int]vm.DrillResult{2: {}, 3: {}})
	if !d.Pass {
		t.Errorf("drill = %+v, want a pass", d)
	}
}

// TestDrillReportsDefinitions: a VM whose stored definition would lose
// acknowledged writes fails the drill even where every host could start
// it; its hosts do not fail for it.
func TestDrillReportsDefinitions(t *testing.T) {
	in := drillInput()
	in.VMs = in.VMs[:1] // only web: everything fits
	defs := map[string][]string{"00000000-0000-0000-0000-000000000001": {"disk vda has cache='unsafe'", "disk vdb has no source"}}
	dp, err := vm.PlanDrill(in, defs, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	d := dp.Verdict(map[int]vm.DrillResult{2: {}, 3: {}})
	if d.Pass || len(d.VMs) != 1 {
		t.Fatalf("drill = %+v, want web failing", d)
	}
	web := d.VMs[0]
	if web.Pass || web.FailureCount != 2 || web.FailureSummary != "disk vda has cache='unsafe'" ||
		strings.Join(web.Definition, "|") != "disk vda has cache='unsafe'|disk vdb has no source" || web.TargetName == "" {
		t.Errorf("web = %+v, want its two definition problems and a target", web)
	}
	for _, c := range web.Cells {
		if c.Problem != "" {
			t.Errorf("web on %s: %q, want a pass: the hosts can start it", c.HostName, c.Problem)
		}
	}
	for _, h := range d.Hosts {
		if !h.Pass {
			t.Errorf("host %s = %+v, want a pass: the definition is not the host's fault", h.Name, h)
		}
	}
}

func TestPlanDrillRefusesBadHosts(t *testing.T) {
	in := drillInput()
	if _, err := vm.PlanDrill(in, nil, []int{9}); err == nil || !strings.Contains(err.Error(), "unknown host") {
		t.Errorf("PlanDrill(host 9) = %v, want an unknown host error", err)
	}
	in.Hosts[1].State = plan.HostDead
	if _, err := vm.PlanDrill(in, nil, []int{2}); err == nil || !strings.Contains(err.Error(), "already dead") {
		t.Errorf("PlanDrill(dead host) = %v, want a refusal", err)
	}
}

// TestCheckVMs: the definitions come from a real LUN file, the checks from
// libvirt's test driver.
func TestCheckVMs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	lunPath := filepath.Join(dir, "lun.img")
	if err := os.WriteFile(lunPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(lunPath, 8<<20); err != nil {
		t.Fatal(err)
	}
	dev, err := storage.OpenFile(lunPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storage.Format(ctx, dev, storage.FormatOptions{ClusterName: "drill",
		Geometry: storage.Geometry{MaxHosts: 4, MaxVMs: 8, EventBlocks: 8, ConfigBlks: 4}}); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	lun, err := storage.OpenPath(ctx, lunPath, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lun.Close()
	hcfg := hypervisor.DefaultConfig()
	hcfg.URI, hcfg.HostName = "test:///default", "kvm2"
	hv, err := hypervisor.Dial(ctx, hcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer hv.Close()
	m, err := vm.NewManager(vm.Config{Host: 2, Gen: 1}, lun, hv, nil)
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "ok.img")
	if err := os.WriteFile(disk, make([]byte, 512), 0o600); err != nil {
		t.Fatal(err)
	}
	protect := func(uuid, name, diskPath string) {
		t.Helper()
		id, err := storage.ParseUUID(uuid)
		if err != nil {
			t.Fatal(err)
		}
		xml := "<domain type='test'><name>" + name + "</name><uuid>" + uuid + "</uuid><memory unit='MiB'>64</memory>" +
			"<os><type>hvm</type></os><devices><disk type='file' device='disk'><source file='" + diskPath +
			"'/><target dev='vda'/></disk><interface type='network'><source network='default'/></interface></devices></domain>"
		if _, _, err := lun.ProtectVM(ctx, storage.Owner{Host: 1, Gen: 1, Nonce: 1}, storage.VMConfig{UUID: id, Name: name, XML: []byte(xml)}); err != nil {
			t.Fatal(err)
		}
	}
	protect("00000000-0000-0000-0000-0000000000a1", "good", disk)
	protect("00000000-0000-0000-0000-0000000000a2", "lost-disk", filepath.Join(dir, "missing.img"))
	got, err := m.CheckVMs(ctx, []string{"00000000-0000-0000-0000-0000000000a1", "00000000-0000-0000-0000-0000000000a2",
		"00000000-0000-0000-0000-0000000000ff"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"00000000-0000-0000-0000-0000000000a2": "disk vda: " + filepath.Join(dir, "missing.img") + ": no such file or directory",
		"00000000-0000-0000-0000-0000000000ff": "no protected VM record with this UUID on the LUN",
	}
	if len(got) != len(want) {
		t.Fatalf("CheckVMs = %q, want %q", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("CheckVMs[%s] = %q, want %q", id, got[id], w)
		}
	}

	// The drill's input carries the problems of the stored definitions.
	id, _ := storage.ParseUUID("00000000-0000-0000-0000-0000000000a3")
	xml := "<domain type='test'><name>fast</name><uuid>" + id.String() + "</uuid><memory unit='MiB'>64</memory><devices>" +
		"<disk type='file' device='disk'><driver cache='unsafe'/><source file='" + disk + "'/><target dev='vda'/></disk></devices></domain>"
	if _, _, err := lun.ProtectVM(ctx, storage.Owner{Host: 1, Gen: 1, Nonce: 1}, storage.VMConfig{UUID: id, Name: "fast", XML: []byte(xml)}); err != nil {
		t.Fatal(err)
	}
	dec := quorum.Decision{Quorate: true, Hosts: []quorum.Host{{ID: 1, Name: "kvm1", Gen: 1, State: quorum.StateAlive}, {ID: 2, Name: "kvm2", Gen: 1, State: quorum.StateAlive}}}
	in, defs, err := m.DrillInput(ctx, dec)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.VMs) != 3 || len(defs) != 1 || len(defs[id.String()]) != 1 || !strings.HasPrefix(defs[id.String()][0], "disk vda has cache='unsafe'") {
		t.Errorf("DrillInput: %d VMs, definitions %q; want 3 VMs and fast's unsafe cache", len(in.VMs), defs)
	}
}

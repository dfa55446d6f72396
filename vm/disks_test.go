package vm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/plan"
)

func TestDiskDefinitionProblems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		disks string // <disk> elements
		want  []string
	}{
		{"no disks", "", nil},
		{"cache none", `<disk type='file' device='disk'><driver name='qemu' cache='none'/><source file='/srv/a.img'/><target dev='vda'/></disk>`, nil},
		{"cache writethrough", `<disk type='block' device='disk'><driver cache='writethrough'/><source dev='/dev/mapper/a'/><target dev='vda'/></disk>`, nil},
		{"cache directsync", `<disk type='block' device='lun'><driver cache='directsync'/><source dev='/dev/mapper/a'/><target dev='sda'/></disk>`, nil},
		// Safe for a guest that flushes, like a physical disk with a write cache.
		{"cache writeback", `<disk type='file' device='disk'><driver cache='writeback'/><source file='/srv/a.img'/><target dev='vda'/></disk>`, nil},
		{"default cache", `<disk type='file' device='disk'><source file='/srv/a.img'/><target dev='vda'/></disk>`, nil},
		{"cache unsafe", `<disk type='file' device='disk'><driver cache='unsafe'/><source file='/srv/a.img'/><target dev='vda'/></disk>`,
			[]string{"disk vda has cache='unsafe', which ignores the guest's flushes: writes the guest was told are on disk are lost when its host " +
				"loses power, and a failover restarts the VM from what reached the disk; set cache='none' (or writethrough or directsync) on disk vda"}},
		{"unsafe network disk", `<disk type='network' device='disk'><driver cache='unsafe'/><source protocol='rbd' name='pool/a'/><target dev='vdb'/></disk>`,
			[]string{"disk vdb has cache='unsafe'"}},
		// Nothing is written to them: the cache mode loses nothing.
		{"unsafe read-only disk", `<disk type='file' device='disk'><driver cache='unsafe'/><source file='/srv/base.img'/><target dev='vdb'/><readonly/></disk>`, nil},
		{"unsafe cdrom", `<disk type='file' device='cdrom'><driver cache='unsafe'/><source file='/srv/a.iso'/><target dev='hdc'/></disk>`, nil},
		{"empty cdrom", `<disk type='file' device='cdrom'><target dev='hdc'/></disk>`, nil},
		{"empty floppy", `<disk type='file' device='floppy'><target dev='fda'/></disk>`, nil},
		{"disk without source", `<disk type='file' device='disk'><target dev='vdb'/></disk>`,
			[]string{"disk vdb has no source, so a host restarting the VM has nothing to attach; give it a source on storage every host reaches, or remove the disk"}},
		{"lun without source", `<disk type='block' device='lun'><target dev='sda'/></disk>`, []string{"disk sda has no source"}},
		{"nvme", `<disk type='nvme' device='disk'><source type='pci' managed='yes' namespace='1'><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source><target dev='vdc'/></disk>`,
			[]string{"disk vdc is an NVMe namespace of a PCI controller of this host, which no other host has"}},
		{"one problem per disk", `<disk type='file' device='disk'><driver cache='unsafe'/><source file='/srv/a.img'/><target dev='vda'/></disk>` +
			`<disk type='file' device='disk'><driver cache='none'/><source file='/srv/b.img'/><target dev='vdb'/></disk>` +
			`<disk type='file' device='disk'><driver cache='unsafe'/><target dev='vdc'/></disk>`,
			[]string{"disk vda has cache='unsafe'", "disk vdc has no source"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := hypervisor.ParseDomainXML("<domain type='kvm'><name>web1</name><memory unit='MiB'>64</memory><devices>" + tc.disks + "</devices></domain>")
			if err != nil {
				t.Fatal(err)
			}
			got := vm.DiskDefinitionProblems(spec)
			if len(got) != len(tc.want) {
				t.Fatalf("problems = %q, want %d starting with %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %d = %q, want it to start with %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// protectFixture is a manager for host 1 on a fresh LUN and the test
// driver's default host (its running domain "test" has the file disk
// /guest/diskimage1), whose other hosts answer the disk check through ask.
func protectFixture(t *testing.T, ask func(ctx context.Context, host int, disks []hypervisor.DiskSpec) ([]string, error)) (*vm.Manager, *hypervisor.Conn, *storage.LUN) {
	t.Helper()
	ctx := context.Background()
	lun := freshLUN(t, "protect", storage.Geometry{MaxHosts: 8, MaxVMs: 8, EventBlocks: 8, ConfigBlks: 2})
	ev, err := lun.EventLog(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	hcfg := hypervisor.DefaultConfig()
	hcfg.URI, hcfg.HostName = "test:///default", "kvm1"
	hv, err := hypervisor.Dial(ctx, hcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hv.Close() })
	m, err := vm.NewManager(vm.Config{Host: 1, Gen: 1, CheckDisksOn: ask, DiskCheckTimeout: 300 * time.Millisecond}, lun, hv, ev)
	if err != nil {
		t.Fatal(err)
	}
	return m, hv, lun
}

// fiveHosts: kvm1 (this host) to kvm4 alive, kvm5 in maintenance, kvm6 dead.
func fiveHosts() quorum.Decision {
	dec := quorum.Decision{Quorate: true, MayRunVMs: true}
	for i, st := range []quorum.HostState{quorum.StateAlive, quorum.StateAlive, quorum.StateAlive, quorum.StateAlive, quorum.StateMaintenance, quorum.StateDead} {
		dec.Hosts = append(dec.Hosts, quorum.Host{ID: i + 1, Name: "kvm" + string(rune('1'+i)), Gen: 1, State: st})
	}
	return dec
}

func protected(t *testing.T, lun *storage.LUN) []string {
	t.Helper()
	recs, errs := lun.ReadVMs(context.Background())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var names []string
	for _, r := range recs {
		if r.Protected() {
			names = append(names, r.Config.Name)
		}
	}
	return names
}

// TestProtectAsksEveryAliveHost: kvm2 reaches the disk, kvm3 does not,
// kvm4 never answers; kvm5 (maintenance) and kvm6 (dead) are not asked.
// Protect refuses, naming kvm3, the disk and what to do, within the
// timeout; with Force it protects and reports what it accepted and whom it
// could not ask.
func TestProtectAsksEveryAliveHost(t *testing.T) {
	var mu sync.Mutex
	var asked []int
	m, _, lun := protectFixture(t, func(ctx context.Context, host int, disks []hypervisor.DiskSpec) ([]string, error) {
		mu.Lock()
		asked = append(asked, host)
		mu.Unlock()
		if len(disks) != 1 || disks[0].Path != "/guest/diskimage1" || disks[0].Target != "vda" {
			t.Errorf("host %d asked about %+v, want vda /guest/diskimage1", host, disks)
		}
		switch host {
		case 2:
			return []string{""}, nil
		case 3:
			return []string{"/guest/diskimage1: no such file or directory"}, nil
		}
		<-ctx.Done() // kvm4: a host that does not answer
		return nil, ctx.Err()
	})
	ctx := context.Background()
	pol := vm.RecordPolicy{Policy: plan.DefaultPolicy()}

	start := time.Now()
	_, err := m.Protect(ctx, fiveHosts(), "test", pol, vm.ProtectOptions{})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("protect took %v: it must not wait for a silent host beyond its timeout", took)
	}
	want := `protect "test": disk not reachable from every host: kvm3: disk vda: /guest/diskimage1: no such file or directory; ` +
		`put disk vda on shared storage that every host mounts at the same path, or in a libvirt storage pool that is defined and active on every host`
	if !errors.Is(err, vm.ErrDiskUnreachable) || err.Error() != want {
		t.Fatalf("protect = %v\nwant %s", err, want)
	}
	slices.Sort(asked)
	if !slices.Equal(asked, []int{2, 3, 4}) {
		t.Errorf("asked hosts %v, want the alive others 2, 3, 4", asked)
	}
	if got := protected(t, lun); len(got) != 0 {
		t.Errorf("protected after a refusal: %v", got)
	}

	rep, err := m.Protect(ctx, fiveHosts(), "test", pol, vm.ProtectOptions{Force: true})
	if err != nil {
		t.Fatalf("protect --force: %v", err)
	}
	wantRep := vm.ProtectReport{
		Reached: []string{"kvm2"},
		Unchecked: []vm.HostNote{{Host: "kvm4", Reason: "did not answer within 300ms"}, {Host: "kvm5", Reason: "it is in maintenance"},
			{Host: "kvm6", Reason: "it is dead"}},
		Unreachable: []string{"kvm3: disk vda: /guest/diskimage1: no such file or directory"},
	}
	if !slices.Equal(rep.Reached, wantRep.Reached) || !slices.Equal(rep.Unchecked, wantRep.Unchecked) || !slices.Equal(rep.Unreachable, wantRep.Unreachable) {
		t.Errorf("report = %+v\nwant %+v", rep, wantRep)
	}
	if got := protected(t, lun); !slices.Equal(got, []string{"test"}) {
		t.Errorf("protected = %v, want test", got)
	}
	evs, err := lun.ReadEvents(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		if e.Kind == "protected" && e.Severity == storage.SevWarning && strings.Contains(e.Message, "forced although kvm3: disk vda") {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning event saying protect was forced in %+v", evs)
	}
}

// TestProtectWithoutOtherHosts: alone (or with the others down) there is
// nobody to ask; protect goes on and says whom it could not ask.
func TestProtectWithoutOtherHosts(t *testing.T) {
	m, _, _ := protectFixture(t, func(context.Context, int, []hypervisor.DiskSpec) ([]string, error) {
		t.Error("a host that is not alive was asked")
		return nil, nil
	})
	dec := fiveHosts()
	for i := 1; i < len(dec.Hosts); i++ {
		dec.Hosts[i].State = quorum.StateSuspect
	}
	rep, err := m.Protect(context.Background(), dec, "test", vm.RecordPolicy{Policy: plan.DefaultPolicy()}, vm.ProtectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Reached) != 0 || len(rep.Unchecked) != 5 || rep.Unchecked[0] != (vm.HostNote{Host: "kvm2", Reason: "it is suspect"}) {
		t.Errorf("report = %+v, want the 5 others unchecked", rep)
	}
}

// TestProtectRefusesUnsafeCache: the definition is checked before any host
// is asked, and Force does not override it.
func TestProtectRefusesUnsafeCache(t *testing.T) {
	m, hv, lun := protectFixture(t, func(context.Context, int, []hypervisor.DiskSpec) ([]string, error) {
		t.Error("hosts asked about a VM whose definition is refused")
		return nil, nil
	})
	ctx := context.Background()
	x := `<domain type='test'><name>fast</name><uuid>00000000-0000-0000-0000-0000000000c1</uuid><memory unit='MiB'>64</memory>
<os><type>hvm</type></os><devices><disk type='file' device='disk'><driver name='qemu' type='raw' cache='unsafe'/>
<source file='/guest/fast.img'/><target dev='vda' bus='virtio'/></disk></devices></domain>`
	if _, err := hv.Define(ctx, x); err != nil {
		t.Fatal(err)
	}
	_, err := m.Protect(ctx, fiveHosts(), "fast", vm.RecordPolicy{Policy: plan.DefaultPolicy()}, vm.ProtectOptions{Force: true})
	want := `protect "fast": disk not safe for failover: disk vda has cache='unsafe', which ignores the guest's flushes: ` +
		`writes the guest was told are on disk are lost when its host loses power, and a failover restarts the VM from what reached the disk; ` +
		`set cache='none' (or writethrough or directsync) on disk vda; change the definition ('virsh edit fast'), ` +
		`shut the guest down and start it again, then protect it`
	if !errors.Is(err, vm.ErrUnsafeDisk) || err.Error() != want {
		t.Fatalf("protect = %v\nwant %s", err, want)
	}
	if got := protected(t, lun); len(got) != 0 {
		t.Errorf("protected after a refusal: %v", got)
	}
}

// TestCheckDisksHere: the answering side runs the hypervisor's check.
func TestCheckDisksHere(t *testing.T) {
	m, _, _ := protectFixture(t, nil)
	disk := filepath.Join(t.TempDir(), "a.img")
	if err := os.WriteFile(disk, make([]byte, 512), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := m.CheckDisks(context.Background(), []hypervisor.DiskSpec{{Target: "vda", Path: disk}, {Target: "vdb", Path: "/guest/diskimage1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"", "/guest/diskimage1: no such file or directory"}) {
		t.Errorf("CheckDisks = %q", got)
	}
}

package hypervisor

import (
	"context"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkXML is a domain for the test driver with one disk per path and one
// interface per element of ifaces (raw XML).
func checkXML(typ, arch, emulator string, disks []string, ifaces ...string) string {
	var b strings.Builder
	b.WriteString("<domain type='" + typ + "'><name>drill</name><memory unit='MiB'>64</memory>")
	b.WriteString("<os><type")
	if arch != "" {
		b.WriteString(" arch='" + arch + "'")
	}
	b.WriteString(">hvm</type></os><devices>")
	if emulator != "" {
		b.WriteString("<emulator>" + emulator + "</emulator>")
	}
	for i, d := range disks {
		b.WriteString("<disk type='file' device='disk'><source file='" + d + "'/><target dev='vd" + string(rune('a'+i)) + "'/></disk>")
	}
	b.WriteString("<disk type='file' device='cdrom'><target dev='hdc'/></disk>")
	for _, i := range ifaces {
		b.WriteString(i)
	}
	b.WriteString("</devices></domain>")
	return b.String()
}

func TestCheckDomainXML(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	emu := filepath.Join(dir, "qemu")
	if err := os.WriteFile(emu, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(dir, "plain")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Networks of this connection's private copy of the host: one active, one defined only.
	lc, _, err := c.acquire("test")
	if err != nil {
		t.Fatal(err)
	}
	n, err := lc.NetworkCreateXML("<network><name>prod</name><bridge name='virbr7'/></network>")
	if err != nil {
		t.Fatal(err)
	}
	n.Free()
	n, err = lc.NetworkDefineXML("<network><name>idle</name><bridge name='virbr8'/></network>")
	if err != nil {
		t.Fatal(err)
	}
	n.Free()
	lc.Close()
	lo := "lo" // exists in every network namespace, and is not a bridge

	for _, tc := range []struct {
		name string
		xml  string
		want []string // substrings, one per expected problem, in order
	}{
		{"all good", checkXML("test", "", emu, []string{disk}, "<interface type='network'><source network='prod'/></interface>", "<interface type='user'/>"), nil},
		{"arch matches", checkXML("test", "i686", "", []string{disk}), nil},
		{"missing disk", checkXML("test", "", "", []string{disk, filepath.Join(dir, "gone.img")}),
			[]string{"disk vdb: " + filepath.Join(dir, "gone.img") + ": no such file or directory"}},
		{"disk is a directory", checkXML("test", "", "", []string{dir}), []string{"disk vda: " + dir + ": is a directory"}},
		{"missing emulator", checkXML("test", "", filepath.Join(dir, "nope"), nil), []string{"emulator " + filepath.Join(dir, "nope") + ": " + filepath.Join(dir, "nope") + ": no such file"}},
		{"emulator not executable", checkXML("test", "", notExec, nil), []string{"not an executable file"}},
		{"wrong arch", checkXML("test", "aarch64", "", nil), []string{`no hvm guest of architecture "aarch64" here`}},
		{"wrong domain type", checkXML("kvm", "", "", nil), []string{`domain type "kvm" is not available here for i686`}},
		{"undefined network", checkXML("test", "", "", nil, "<interface type='network'><source network='dmz'/></interface>"),
			[]string{`interface network: libvirt network "dmz" is not defined here`}},
		{"inactive network", checkXML("test", "", "", nil, "<interface type='network'><source network='idle'/></interface>"),
			[]string{`libvirt network "idle" is not active here`}},
		{"missing bridge", checkXML("test", "", "", nil, "<interface type='bridge'><source bridge='br-nowhere'/></interface>"),
			[]string{`interface bridge: bridge "br-nowhere" does not exist here`}},
		{"not a bridge", checkXML("test", "", "", nil, "<interface type='bridge'><source bridge='"+lo+"'/></interface>"),
			[]string{`"lo" is not a bridge here`}},
		{"missing direct device", checkXML("test", "", "", nil, "<interface type='direct'><source dev='eth-nowhere'/></interface>"),
			[]string{`device "eth-nowhere" does not exist here`}},
		{"several problems", checkXML("kvm", "", "", []string{"/nonexistent/a.img"}, "<interface type='network'><source network='dmz'/></interface>"),
			[]string{"disk vda", "domain type", "dmz"}},
		// libvirt starts the domain without an optional medium that is missing.
		{"optional medium missing", strings.Replace(checkXML("test", "", "", nil), "<target dev='hdc'/>",
			"<source file='/nonexistent/a.iso' startupPolicy='optional'/><target dev='hdc'/>", 1), nil},
		{"mandatory medium missing", strings.Replace(checkXML("test", "", "", nil), "<target dev='hdc'/>",
			"<source file='/nonexistent/a.iso'/><target dev='hdc'/>", 1), []string{"disk hdc: /nonexistent/a.iso: no such file or directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.CheckDomainXML(ctx, tc.xml)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems = %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestCheckDomainXMLBadInput(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	_, err := c.CheckDomainXML(testCtx(t), "<domain><name>x")
	if !errors.Is(err, ErrInvalidXML) {
		t.Fatalf("CheckDomainXML(truncated XML) = %v, want an %v error", err, ErrInvalidXML)
	}
}

// TestCPUProblem: the CPU verdict from domain capabilities (which the test
// driver lacks), on an excerpt of a real QEMU 7.2 host's answer.
func TestCPUProblem(t *testing.T) {
	var dc domainCapabilities
	if err := xml.Unmarshal([]byte(`<domainCapabilities><cpu>
  <mode name='host-passthrough' supported='yes'/>
  <mode name='maximum' supported='no'/>
  <mode name='custom' supported='yes'>
    <model usable='no' vendor='AMD'>qemu64</model>
    <model usable='yes' vendor='Intel'>Skylake-Client</model>
    <model usable='no' vendor='Intel'>Icelake-Server</model>
  </mode>
</cpu></domainCapabilities>`), &dc); err != nil {
		t.Fatal(err)
	}
	cpu := func(x string) *checkCPU {
		var d checkDomain
		if err := xml.Unmarshal([]byte("<domain>"+x+"</domain>"), &d); err != nil {
			t.Fatal(err)
		}
		return d.CPU
	}
	for _, tc := range []struct{ cpu, want string }{
		{"", ""},
		{"<cpu mode='host-passthrough'/>", ""},
		{"<cpu mode='maximum'/>", "CPU mode maximum is not supported here"},
		{"<cpu mode='custom' match='exact'><model>Skylake-Client</model></cpu>", ""},
		{"<cpu><model>Icelake-Server</model></cpu>", "CPU model Icelake-Server is not usable on this host's CPU"},
		{"<cpu mode='custom'><model fallback='allow'>Icelake-Server</model></cpu>", ""},
		{"<cpu mode='custom'><model>Z80</model></cpu>", "CPU model Z80 is unknown here"},
		// libvirt's default for a KVM guest without <cpu>: libvirt checks nothing, nor do we.
		{"<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>", ""},
	} {
		if got := dc.cpuProblem(cpu(tc.cpu)); got != tc.want {
			t.Errorf("cpu %q: %q, want %q", tc.cpu, got, tc.want)
		}
	}
}

// TestCheckDisks: the check protect asks of the other hosts, one answer per
// disk, on real files and the test driver's storage pools.
func TestCheckDisks(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	lc, _, err := c.acquire("test")
	if err != nil {
		t.Fatal(err)
	}
	p, err := lc.StoragePoolCreateXML("<pool type='dir'><name>shared</name><target><path>/shared</path></target></pool>", 0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.StorageVolCreateXML("<volume><name>web1.qcow2</name><capacity>1048576</capacity></volume>", 0)
	if err != nil {
		t.Fatal(err)
	}
	v.Free()
	p.Free()
	lc.Close()

	disks := []DiskSpec{
		{Target: "vda", Path: disk},
		{Target: "vdb", Path: filepath.Join(dir, "gone.img")},
		{Target: "vdc", Pool: "shared", Volume: "web1.qcow2"},
		{Target: "vdd", Pool: "shared", Volume: "gone.qcow2"},
		{Target: "vde", Pool: "elsewhere", Volume: "x"},
		{Target: "vdf", Source: "nbd:export1"},                                                  // network: not checked from a host
		{Target: "hdc", Device: "cdrom", Empty: true},                                           // empty drive
		{Target: "hdd", Device: "cdrom", Path: "/nonexistent/a.iso", StartupPolicy: "optional"}, // dropped if missing
	}
	got, err := c.CheckDisks(ctx, disks)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", filepath.Join(dir, "gone.img") + ": no such file or directory", "",
		`volume "gone.qcow2" is not in storage pool "shared" here`, `storage pool "elsewhere" is not defined here`, "", "", ""}
	if !slices.Equal(got, want) {
		t.Errorf("CheckDisks =\n%q\nwant\n%q", got, want)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.CheckDisks(cctx, disks[:1]); !errors.Is(err, context.Canceled) {
		t.Errorf("CheckDisks with a cancelled context = %v, want context.Canceled", err)
	}
}

package hypervisor

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseDomainXML(t *testing.T) {
	const full = `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name> web1 </name>
  <uuid>3F6B1C0E-9A51-4C1E-8D2A-000000000001</uuid>
  <metadata><wingman:vm xmlns:wingman='https://wingman.example/1'/></metadata>
  <memory unit='GiB'>4</memory>
  <currentMemory unit='MiB'>2048</currentMemory>
  <vcpu placement='static' current='2'>8</vcpu>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='/shared/web1.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='lun'>
      <source dev='/dev/mapper/lun7'/>
      <target dev='sda' bus='scsi'/>
      <shareable/>
    </disk>
    <disk type='network'>
      <source protocol='nbd' name='export1'><host name='10.0.0.1' port='10809'/></source>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='volume' device='cdrom'>
      <source pool='isos' volume='debian.iso' startupPolicy='optional'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdd' bus='ide'/>
    </disk>
  </devices>
</domain>`
	got, err := ParseDomainXML(full)
	if err != nil {
		t.Fatal(err)
	}
	want := DomainSpec{
		Name: "web1", UUID: "3f6b1c0e-9a51-4c1e-8d2a-000000000001", Type: "kvm",
		MemoryBytes: 4 << 30, CurrentMemoryBytes: 2 << 30, VCPUs: 2,
		Disks: []DiskSpec{
			{Type: "file", Device: "disk", Target: "vda", Bus: "virtio", Source: "/shared/web1.img", Path: "/shared/web1.img", Cache: "none"},
			{Type: "block", Device: "lun", Target: "sda", Bus: "scsi", Source: "/dev/mapper/lun7", Path: "/dev/mapper/lun7", Shareable: true},
			{Type: "network", Device: "disk", Target: "vdb", Bus: "virtio", Source: "nbd:export1"},
			{Type: "volume", Device: "cdrom", Target: "hdc", Bus: "ide", Source: "isos/debian.iso", Pool: "isos", Volume: "debian.iso",
				StartupPolicy: "optional", ReadOnly: true},
			{Type: "file", Device: "cdrom", Target: "hdd", Bus: "ide", Empty: true}, // empty drive
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseDomainXML =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseDomainXMLSizes(t *testing.T) {
	for _, tc := range []struct {
		memory, current string // element XML
		vcpu            string
		wantMem         uint64
		wantCur         uint64
		wantVCPUs       int
	}{
		{"<memory>1024</memory>", "", "", 1 << 20, 1 << 20, 1}, // KiB, current = max, 1 vCPU
		{"<memory unit='KiB'>1024</memory>", "", "<vcpu>4</vcpu>", 1 << 20, 1 << 20, 4},
		{"<memory unit='k'>1</memory>", "", "", 1024, 1024, 1},
		{"<memory unit='KB'>1</memory>", "", "", 1000, 1000, 1},
		{"<memory unit='b'>4096</memory>", "", "", 4096, 4096, 1},
		{"<memory unit='bytes'>4096</memory>", "", "", 4096, 4096, 1},
		{"<memory unit='M'>64</memory>", "<currentMemory unit='M'>32</currentMemory>", "", 64 << 20, 32 << 20, 1},
		{"<memory unit='MB'>1</memory>", "", "", 1000 * 1000, 1000 * 1000, 1},
		{"<memory unit='G'>1</memory>", "", "", 1 << 30, 1 << 30, 1},
		{"<memory unit='GB'>1</memory>", "", "", 1e9, 1e9, 1},
		{"<memory unit='T'>1</memory>", "", "", 1 << 40, 1 << 40, 1},
		{"<memory unit='TB'>1</memory>", "", "", 1e12, 1e12, 1},
		{"<memory unit='PiB'>1</memory>", "", "", 1 << 50, 1 << 50, 1},
		{"<memory unit='PB'>1</memory>", "", "", 1e15, 1e15, 1},
		{"<memory unit='EiB'>1</memory>", "", "", 1 << 60, 1 << 60, 1},
		{"<memory unit='E'>15</memory>", "", "", 15 << 60, 15 << 60, 1},
		{"<memory unit='EB'>1</memory>", "", "", 1e18, 1e18, 1},
		{"<memory>\n  2048\n</memory>", "", "<vcpu current=' 3 '>\n8\n</vcpu>", 2 << 20, 2 << 20, 3},
	} {
		doc := "<domain type='kvm'><name>x</name>" + tc.memory + tc.current + tc.vcpu + "</domain>"
		spec, err := ParseDomainXML(doc)
		if err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		if spec.MemoryBytes != tc.wantMem || spec.CurrentMemoryBytes != tc.wantCur || spec.VCPUs != tc.wantVCPUs {
			t.Errorf("%s: memory %d current %d vcpus %d, want %d %d %d",
				doc, spec.MemoryBytes, spec.CurrentMemoryBytes, spec.VCPUs, tc.wantMem, tc.wantCur, tc.wantVCPUs)
		}
	}
}

func TestParseDomainXMLUUID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"3f6b1c0e-9a51-4c1e-8d2a-000000000001", "3f6b1c0e-9a51-4c1e-8d2a-000000000001"},
		{" 3F6B1C0E-9A51-4C1E-8D2A-000000000001 ", "3f6b1c0e-9a51-4c1e-8d2a-000000000001"},
		// libvirt accepts UUIDs without dashes and lists them with dashes:
		// the spec must compare equal to what ListDomains reports.
		{"4dea22b31d52d8f32516782e98ab3fa0", "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"},
		{"", ""},
		{"Not-A-UUID", "not-a-uuid"}, // left for libvirt to reject
	} {
		spec, err := ParseDomainXML("<domain><name>x</name><uuid>" + tc.in + "</uuid><memory>1</memory></domain>")
		if err != nil {
			t.Fatal(err)
		}
		if spec.UUID != tc.want {
			t.Errorf("UUID %q parsed as %q, want %q", tc.in, spec.UUID, tc.want)
		}
	}
}

func TestParseDomainXMLErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not XML", "<domain", "parse domain XML: bad domain XML"},
		{"empty", "", "parse domain XML: bad domain XML"},
		{"not a domain", "<network><name>x</name></network>", "bad domain XML"},
		{"no name", "<domain><memory>1</memory></domain>", "<name> is missing"},
		{"blank name", "<domain><name>  </name><memory>1</memory></domain>", "<name> is missing"},
		{"no memory", "<domain><name>x</name></domain>", `domain XML of "x": bad domain XML: <memory> is missing`},
		{"bad unit", "<domain><name>x</name><memory unit='furlong'>1</memory></domain>", `<memory>: bad domain XML: unknown unit "furlong"`},
		{"not a number", "<domain><name>x</name><memory>lots</memory></domain>", `"lots" is not a size`},
		{"negative", "<domain><name>x</name><memory>-1</memory></domain>", `"-1" is not a size`},
		{"overflow", "<domain><name>x</name><memory unit='EiB'>16</memory></domain>", "16 EiB overflows"},
		{"bad current", "<domain><name>x</name><memory>1</memory><currentMemory>x</currentMemory></domain>", "<currentMemory>"},
		{"zero vcpus", "<domain><name>x</name><memory>1</memory><vcpu>0</vcpu></domain>", `<vcpu> "0" is not a positive number`},
		{"bad current vcpus", "<domain><name>x</name><memory>1</memory><vcpu current='two'>4</vcpu></domain>", `<vcpu> "two"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDomainXML(tc.doc)
			wantErrIs(t, err, ErrBadDomainXML)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

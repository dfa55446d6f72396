package cluster

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// GuestSpec describes a tiny guest: no OS, it runs the boot sector that CreateDisk writes, in
// SeaBIOS, which is a real QEMU process with real disk I/O, enough for failover and migration.
type GuestSpec struct {
	Name      string // domain name, required
	UUID      string // domain UUID; "" lets libvirt choose one
	Type      string // "kvm" or "qemu" (TCG); "" means DefaultDomainType()
	MemoryMiB int    // 0 means 64
	VCPUs     int    // 0 means 1
	// Disk is the raw image file of the guest's only disk (virtio, cache='none'), normally in
	// the cluster's shared directory. Exactly one of Disk, Block and NBDSocket must be set.
	Disk string
	// Block is a block device (e.g. Host.LoopDisk's path) used as the guest's only disk.
	Block string
	// NBDSocket is the Unix socket of an NBD server (NBDServer.Socket) serving the guest's disk
	// as export NBDExport.
	NBDSocket string
	// Shareable marks the disk <shareable/>: QEMU then takes no exclusive write lock on it. All
	// hosts of the test cluster share one kernel, so the lock would stop a second copy of a guest
	// that real hosts could not stop; end-to-end tests set it so that only Wingman stands between
	// a guest and a second copy of it.
	Shareable bool

	// Kernel, when set, boots a Linux kernel directly (a real guest OS, package
	// test/realguest) with Initrd and Cmdline, instead of the boot sector.
	Kernel, Initrd, Cmdline string
	// MAC, when set, gives the guest a virtio NIC with this fixed address on its host's bridge
	// br0, so it keeps its identity on the test network from whichever host runs it.
	MAC string
	// Agent adds the virtio-serial channel of the QEMU guest agent (org.qemu.guest_agent.0).
	Agent bool
	// Panic adds a pvpanic device: a guest kernel panic is reported to libvirt (on_crash).
	Panic bool
	// Console, when set, is a file the guest's serial console is appended to.
	Console string
	// OnCrash is libvirt's on_crash action for a guest kernel panic reported by pvpanic:
	// "destroy" (the default; libvirt then shows the domain shut off, reason crashed) or
	// "preserve" (libvirt keeps it in state crashed, reason panicked).
	OnCrash string
}

// XML returns the libvirt domain XML of the guest. Disk errors stop the guest (paused, reason
// I/O error) rather than being passed to it.
func (s GuestSpec) XML() (string, error) {
	if s.Name == "" {
		return "", fmt.Errorf("guest xml: Name is empty")
	}
	if n := btoi(s.Disk != "") + btoi(s.Block != "") + btoi(s.NBDSocket != ""); n != 1 {
		return "", fmt.Errorf("guest xml for %q: set exactly one of Disk, Block and NBDSocket, not %d", s.Name, n)
	}
	typ := s.Type
	if typ == "" {
		typ = DefaultDomainType()
	}
	if typ != "kvm" && typ != "qemu" {
		return "", fmt.Errorf("guest xml for %q: Type %q: use \"kvm\" or \"qemu\"", s.Name, typ)
	}
	mem, vcpus := s.MemoryMiB, s.VCPUs
	if mem == 0 {
		mem = 64
	}
	if vcpus == 0 {
		vcpus = 1
	}
	onCrash := s.OnCrash
	if onCrash == "" {
		onCrash = "destroy"
	}
	if onCrash != "destroy" && onCrash != "preserve" {
		return "", fmt.Errorf("guest xml for %q: OnCrash %q: use \"destroy\" or \"preserve\"", s.Name, onCrash)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<domain type='%s'>\n  <name>%s</name>\n", typ, esc(s.Name))
	if s.UUID != "" {
		fmt.Fprintf(&b, "  <uuid>%s</uuid>\n", esc(s.UUID))
	}
	fmt.Fprintf(&b, `  <memory unit='MiB'>%d</memory>
  <vcpu>%d</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
%s  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>%s</on_crash>
  <devices>
`, mem, vcpus, s.boot(), onCrash)
	if s.Disk != "" || s.Block != "" {
		typ, attr, path := "file", "file", s.Disk
		if s.Block != "" {
			typ, attr, path = "block", "dev", s.Block
		}
		fmt.Fprintf(&b, `    <disk type='%s' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='native' error_policy='stop' rerror_policy='stop'/>
      <source %s='%s'/>
      <target dev='vda' bus='virtio'/>%s
    </disk>
`, typ, attr, esc(path), shareable(s.Shareable))
	} else {
		fmt.Fprintf(&b, `    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none' error_policy='stop' rerror_policy='stop'/>
      <source protocol='nbd' name='%s'>
        <host transport='unix' socket='%s'/>
      </source>
      <target dev='vda' bus='virtio'/>
    </disk>
`, NBDExport, esc(s.NBDSocket))
	}
	if s.MAC != "" {
		fmt.Fprintf(&b, `    <interface type='bridge'>
      <mac address='%s'/>
      <source bridge='br0'/>
      <model type='virtio'/>
    </interface>
`, esc(s.MAC))
	}
	if s.Agent {
		b.WriteString(`    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
`)
	}
	if s.Console != "" {
		fmt.Fprintf(&b, `    <serial type='file'>
      <source path='%s' append='on'/>
      <target port='0'/>
    </serial>
`, esc(s.Console))
	}
	if s.Panic {
		b.WriteString("    <panic model='isa'/>\n")
	}
	b.WriteString(`    <memballoon model='none'/>
  </devices>
</domain>
`)
	return b.String(), nil
}

func (s GuestSpec) boot() string {
	if s.Kernel == "" {
		return "    <boot dev='hd'/>\n  </os>\n"
	}
	// ACPI: libvirt's shutdown presses the power button, which the guest's init handles.
	return fmt.Sprintf("    <kernel>%s</kernel>\n    <initrd>%s</initrd>\n    <cmdline>%s</cmdline>\n  </os>\n  <features><acpi/></features>\n",
		esc(s.Kernel), esc(s.Initrd), esc(s.Cmdline))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func shareable(on bool) string {
	if on {
		return "\n      <shareable/>"
	}
	return ""
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), "'", "&#39;")
}

// DefaultDomainType is "kvm" when /dev/kvm can be opened for writing, else "qemu" (TCG).
func DefaultDomainType() string {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "qemu"
	}
	f.Close()
	return "kvm"
}

// bootSector is a 512-byte MBR whose code, forever: reads sector 0 of the boot disk through the
// BIOS (int 13h), then halts with interrupts on until the second tick of the BIOS timer (18.2 Hz).
// So a guest does a little real disk I/O about nine times a second, and a dead disk pauses it
// with an I/O error. Halting matters: waiting with int 15h AH=86h instead made SeaBIOS spin and
// cost 12 % of a core per idle guest on a nested-KVM machine; halting costs 1.4 %.
var bootSector = func() []byte {
	code := []byte{
		0x31, 0xC0, // xor ax,ax
		0x8E, 0xC0, // mov es,ax
		// loop:
		0xB8, 0x01, 0x02, // mov ax,0x0201  read 1 sector
		0xBB, 0x00, 0x80, // mov bx,0x8000  to es:bx
		0xB9, 0x01, 0x00, // mov cx,0x0001  cylinder 0, sector 1
		0xB6, 0x00, // mov dh,0         head 0
		0xB2, 0x80, // mov dl,0x80      first hard disk
		0xCD, 0x13, // int 0x13
		0xFB,       // sti
		0xF4,       // hlt              until the next interrupt: the timer, 55 ms at most
		0xF4,       // hlt              and once more
		0xEB, 0xEC, // jmp loop
	}
	b := make([]byte, 512)
	copy(b, code)
	b[510], b[511] = 0x55, 0xAA
	return b
}()

// CreateDisk creates a sparse raw disk image of sizeMiB at path, holding the boot sector that
// makes a guest read its disk about nine times a second. It fails if path exists.
func CreateDisk(path string, sizeMiB int) error {
	if sizeMiB < 1 {
		return fmt.Errorf("create disk %s: size %d MiB: use at least 1", path, sizeMiB)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create disk: %w", err)
	}
	if _, err := f.Write(bootSector); err != nil {
		f.Close()
		return fmt.Errorf("create disk %s: %w", path, err)
	}
	if err := f.Truncate(int64(sizeMiB) << 20); err != nil {
		f.Close()
		return fmt.Errorf("create disk %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create disk %s: %w", path, err)
	}
	return nil
}

// NewGuest creates the disk <shared dir>/<name>.img (Config.GuestDiskMiB) and returns the spec
// of a guest using it, with a fresh UUID, Config.GuestMemoryMiB, one vCPU and the cluster's
// domain type. Define it on any host with spec.XML().
func (c *Cluster) NewGuest(name string) (GuestSpec, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return GuestSpec{}, fmt.Errorf("new guest %q: use a name without '/'", name)
	}
	uuid, err := newHostUUID()
	if err != nil {
		return GuestSpec{}, fmt.Errorf("new guest %q: %w", name, err)
	}
	disk := filepath.Join(c.sharedDir, name+".img")
	if err := CreateDisk(disk, c.cfg.GuestDiskMiB); err != nil {
		return GuestSpec{}, fmt.Errorf("new guest %q: %w", name, err)
	}
	return GuestSpec{
		Name:      name,
		UUID:      uuid,
		Type:      c.domainType,
		MemoryMiB: c.cfg.GuestMemoryMiB,
		VCPUs:     1,
		Disk:      disk,
	}, nil
}

package hypervisor

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DomainSpec is what Wingman needs to know about a domain definition without
// asking libvirt: identity, size for placement, and disks for the shared
// storage checks.
type DomainSpec struct {
	Name string
	UUID string
	// Type is the domain type attribute: "kvm", "qemu", "test".
	Type string
	// MemoryBytes is <memory> (the maximum) and CurrentMemoryBytes
	// <currentMemory> (what the guest starts with; equal to MemoryBytes when
	// absent).
	MemoryBytes        uint64
	CurrentMemoryBytes uint64
	VCPUs              int
	Disks              []DiskSpec
}

// DiskSpec is one <disk> of a domain.
type DiskSpec struct {
	// Type is the disk's source type: "file", "block", "network", "volume".
	Type string
	// Device is "disk", "cdrom", "floppy" or "lun".
	Device string
	// Target is the guest device name ("vda") and Bus its bus ("virtio").
	Target string
	Bus    string
	// Source is the file path, block device path, "protocol:name" for network
	// disks (e.g. "nbd:export" or "iscsi:iqn.../1"), or "pool/volume".
	Source string
	// Path is the file or block device a host opens for this disk ("" for
	// network, volume and empty disks); Pool and Volume name a volume
	// disk's libvirt storage pool and volume. These are what another host
	// must reach for the domain to start there.
	Path         string
	Pool, Volume string
	// Empty: the disk has no <source> at all (an empty CD-ROM or floppy
	// drive, or a disk without storage).
	Empty bool
	// StartupPolicy is the source's startupPolicy (CD-ROMs and floppies):
	// with "optional" libvirt starts the domain without a missing medium.
	StartupPolicy string
	// Cache is the <driver cache=...> mode ("": the hypervisor's default).
	Cache     string
	ReadOnly  bool
	Shareable bool
}

// ErrBadDomainXML is wrapped by ParseDomainXML's errors.
var ErrBadDomainXML = errors.New("bad domain XML")

type xmlDomain struct {
	XMLName       xml.Name  `xml:"domain"`
	Type          string    `xml:"type,attr"`
	Name          string    `xml:"name"`
	UUID          string    `xml:"uuid"`
	Memory        *xmlSize  `xml:"memory"`
	CurrentMemory *xmlSize  `xml:"currentMemory"`
	VCPU          *xmlVCPU  `xml:"vcpu"`
	Disks         []xmlDisk `xml:"devices>disk"`
}

type xmlSize struct {
	Unit  string `xml:"unit,attr"`
	Value string `xml:",chardata"`
}

type xmlVCPU struct {
	Current string `xml:"current,attr"`
	Value   string `xml:",chardata"`
}

type xmlDisk struct {
	Type   string `xml:"type,attr"`
	Device string `xml:"device,attr"`
	Driver struct {
		Cache string `xml:"cache,attr"`
	} `xml:"driver"`
	Source *struct {
		File     string `xml:"file,attr"`
		Dev      string `xml:"dev,attr"`
		Protocol string `xml:"protocol,attr"`
		Name     string `xml:"name,attr"`
		Pool     string `xml:"pool,attr"`
		Volume   string `xml:"volume,attr"`
		Startup  string `xml:"startupPolicy,attr"`
	} `xml:"source"`
	Target struct {
		Dev string `xml:"dev,attr"`
		Bus string `xml:"bus,attr"`
	} `xml:"target"`
	ReadOnly  *struct{} `xml:"readonly"`
	Shareable *struct{} `xml:"shareable"`
}

// ParseDomainXML reads the parts of a libvirt domain XML that Wingman uses.
// It does not validate the definition: libvirt does that at define time.
func ParseDomainXML(doc string) (DomainSpec, error) {
	var x xmlDomain
	if err := xml.Unmarshal([]byte(doc), &x); err != nil {
		return DomainSpec{}, fmt.Errorf("parse domain XML: %w: %w", ErrBadDomainXML, err)
	}
	spec := DomainSpec{Name: strings.TrimSpace(x.Name), UUID: canonicalUUID(x.UUID), Type: x.Type}
	if spec.Name == "" {
		return DomainSpec{}, fmt.Errorf("parse domain XML: %w: <name> is missing", ErrBadDomainXML)
	}
	if x.Memory == nil {
		return DomainSpec{}, fmt.Errorf("parse domain XML of %q: %w: <memory> is missing", spec.Name, ErrBadDomainXML)
	}
	var err error
	if spec.MemoryBytes, err = x.Memory.bytes(); err != nil {
		return DomainSpec{}, fmt.Errorf("parse domain XML of %q: <memory>: %w", spec.Name, err)
	}
	spec.CurrentMemoryBytes = spec.MemoryBytes
	if x.CurrentMemory != nil {
		if spec.CurrentMemoryBytes, err = x.CurrentMemory.bytes(); err != nil {
			return DomainSpec{}, fmt.Errorf("parse domain XML of %q: <currentMemory>: %w", spec.Name, err)
		}
	}
	spec.VCPUs = 1 // libvirt's default when <vcpu> is absent
	if x.VCPU != nil {
		// current= is the number of vCPUs online at boot; the element text is
		// the maximum. Placement cares about what runs.
		v := strings.TrimSpace(x.VCPU.Value)
		if c := strings.TrimSpace(x.VCPU.Current); c != "" {
			v = c
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return DomainSpec{}, fmt.Errorf("parse domain XML of %q: %w: <vcpu> %q is not a positive number", spec.Name, ErrBadDomainXML, v)
		}
		spec.VCPUs = n
	}
	for _, d := range x.Disks {
		spec.Disks = append(spec.Disks, d.spec())
	}
	return spec, nil
}

// spec is the DiskSpec of a parsed <disk>.
func (d xmlDisk) spec() DiskSpec {
	ds := DiskSpec{
		Type: d.Type, Device: d.Device, Target: d.Target.Dev, Bus: d.Target.Bus,
		Cache: d.Driver.Cache, ReadOnly: d.ReadOnly != nil, Shareable: d.Shareable != nil,
		Empty: d.Source == nil,
	}
	if ds.Device == "" {
		ds.Device = "disk"
	}
	if s := d.Source; s != nil {
		ds.StartupPolicy = s.Startup
		switch {
		case s.File != "":
			ds.Source, ds.Path = s.File, s.File
		case s.Dev != "":
			ds.Source, ds.Path = s.Dev, s.Dev
		case s.Protocol != "":
			ds.Source = s.Protocol + ":" + s.Name
		case s.Pool != "":
			ds.Source, ds.Pool, ds.Volume = s.Pool+"/"+s.Volume, s.Pool, s.Volume
		}
	}
	return ds
}

// unitBytes maps libvirt's memory units to bytes (formatdomain "Memory
// Allocation": k/KiB are 1024, KB is 1000, and so on; no unit means KiB).
var unitBytes = map[string]uint64{
	"b": 1, "bytes": 1,
	"kb": 1000, "k": 1 << 10, "kib": 1 << 10,
	"mb": 1000 * 1000, "m": 1 << 20, "mib": 1 << 20,
	"gb": 1000 * 1000 * 1000, "g": 1 << 30, "gib": 1 << 30,
	"tb": 1000 * 1000 * 1000 * 1000, "t": 1 << 40, "tib": 1 << 40,
	"pb": 1000 * 1000 * 1000 * 1000 * 1000, "p": 1 << 50, "pib": 1 << 50,
	"eb": 1000 * 1000 * 1000 * 1000 * 1000 * 1000, "e": 1 << 60, "eib": 1 << 60,
}

// canonicalUUID writes a UUID the way libvirt lists it (lowercase, dashed
// 8-4-4-4-12), so that a spec compares equal to Domain.UUID. libvirt also
// accepts the 32 hex digits without dashes in definitions. Anything that is
// not a UUID is returned trimmed and lowercased, for libvirt to reject.
func canonicalUUID(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	hex := strings.ReplaceAll(s, "-", "")
	if len(hex) != 32 || strings.Trim(hex, "0123456789abcdef") != "" {
		return s
	}
	return hex[:8] + "-" + hex[8:12] + "-" + hex[12:16] + "-" + hex[16:20] + "-" + hex[20:]
}

func (s xmlSize) bytes() (uint64, error) {
	unit := strings.ToLower(strings.TrimSpace(s.Unit))
	if unit == "" {
		unit = "kib"
	}
	mult, ok := unitBytes[unit]
	if !ok {
		return 0, fmt.Errorf("%w: unknown unit %q", ErrBadDomainXML, s.Unit)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s.Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not a size", ErrBadDomainXML, s.Value)
	}
	if v > ^uint64(0)/mult {
		return 0, fmt.Errorf("%w: %s %s overflows", ErrBadDomainXML, s.Value, s.Unit)
	}
	return v * mult, nil
}

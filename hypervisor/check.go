package hypervisor

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"libvirt.org/go/libvirt"
)

// CheckDomainXML answers, without defining or starting anything, whether
// this host could start the domain domainXML describes: every file or block
// disk source exists here and is readable (see CheckDisks); the emulator exists; the
// domain's type, architecture and machine type are ones this host's libvirt
// offers; a custom CPU model is usable here; every libvirt network the
// domain uses is defined and active and every host bridge or device exists.
// It is the failover drill's check on a would-be target host.
//
// It returns one short sentence per problem (nil: none found). Checks the
// driver cannot answer (domain capabilities on test:///) are skipped. The
// error is for a check that could not run at all: bad XML, libvirtd down.
func (c *Conn) CheckDomainXML(ctx context.Context, domainXML string) ([]string, error) {
	op := fmt.Sprintf("check domain XML on %s", c.host)
	var x checkDomain
	if err := xml.Unmarshal([]byte(domainXML), &x); err != nil {
		return nil, &opError{op: op, class: ErrInvalidXML, cause: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, &opError{op: op, cause: err}
	}
	lc, gen, err := c.acquire(op)
	if err != nil {
		return nil, err
	}
	defer lc.Close()
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	disks := make([]DiskSpec, len(x.Disks))
	for i, d := range x.Disks {
		disks[i] = d.spec()
	}
	diskProblems, err := checkDiskSources(ctx, lc, disks)
	if err != nil {
		return nil, &opError{op: op, cause: err}
	}
	for i, p := range diskProblems {
		if p != "" {
			add("disk %s: %s", disks[i].Target, p)
		}
	}
	if e := strings.TrimSpace(x.Emulator); e != "" {
		if p := checkExecutable(e); p != "" {
			add("emulator %s: %s", e, p)
		}
	}
	capsXML, err := lc.GetCapabilities()
	if err != nil {
		return nil, c.fail(lc, gen, op, err)
	}
	var caps capabilities
	if err := xml.Unmarshal([]byte(capsXML), &caps); err != nil {
		return nil, &opError{op: op, cause: fmt.Errorf("parse host capabilities: %w", err)}
	}
	if p := caps.check(x); p != "" {
		add("%s", p)
	}
	problems = append(problems, c.checkDomainCapabilities(lc, x)...)
	for _, i := range x.Interfaces {
		if p := checkInterface(lc, i); p != "" {
			add("interface %s: %s", i.Type, p)
		}
	}
	return problems, nil
}

// checkDomain is the part of a domain definition CheckDomainXML reads.
type checkDomain struct {
	Type string `xml:"type,attr"`
	OS   struct {
		Type struct {
			Arch    string `xml:"arch,attr"`
			Machine string `xml:"machine,attr"`
			Value   string `xml:",chardata"`
		} `xml:"type"`
	} `xml:"os"`
	CPU        *checkCPU           `xml:"cpu"`
	Emulator   string              `xml:"devices>emulator"`
	Disks      []xmlDisk           `xml:"devices>disk"`
	Interfaces []checkInterfaceXML `xml:"devices>interface"`
}

// checkCPU is a domain's <cpu>.
type checkCPU struct {
	Mode string `xml:"mode,attr"`
	// Check is libvirt's own check at start: "none" means none at all
	// (libvirt's default CPU for KVM guests without a <cpu>: qemu64).
	Check string `xml:"check,attr"`
	Model *struct {
		Fallback string `xml:"fallback,attr"`
		Value    string `xml:",chardata"`
	} `xml:"model"`
}

// checkInterfaceXML is a domain's <interface>.
type checkInterfaceXML struct {
	Type   string `xml:"type,attr"`
	Source struct {
		Network string `xml:"network,attr"`
		Bridge  string `xml:"bridge,attr"`
		Dev     string `xml:"dev,attr"`
	} `xml:"source"`
}

// CheckDisks answers whether this host reaches each of disks, as
// CheckDomainXML checks them: a file or block device opens and its first
// sector reads within diskReadTimeout, a volume is in a storage pool that is
// defined and active here. It returns one problem per disk, in order (""
// where the disk is reachable, or cannot be checked from a host: network
// disks, empty drives, media whose startupPolicy is optional). It is the
// check protect asks of every other host. The error is for a check that
// could not run: libvirtd down (asked only for volume disks), ctx done.
func (c *Conn) CheckDisks(ctx context.Context, disks []DiskSpec) ([]string, error) {
	op := fmt.Sprintf("check disks on %s", c.host)
	var lc *libvirt.Connect
	if slices.ContainsFunc(disks, func(d DiskSpec) bool { return d.Pool != "" }) {
		l, _, err := c.acquire(op)
		if err != nil {
			return nil, err
		}
		defer l.Close()
		lc = l
	}
	problems, err := checkDiskSources(ctx, lc, disks)
	if err != nil {
		return nil, &opError{op: op, cause: err}
	}
	return problems, nil
}

// diskReadTimeout bounds the read of one disk's first sector. Storage that
// takes longer counts as not answering: a hung NFS mount or a SAN LUN
// without paths would otherwise hold the check (and the drill or protect
// waiting for it) for minutes. The blocked read is left behind.
const diskReadTimeout = 5 * time.Second

// checkDiskSources returns what is wrong with each disk's source here (""
// if nothing), reading the files and devices in parallel so that one hung
// mount costs diskReadTimeout once. lc is used for volume disks only.
func checkDiskSources(ctx context.Context, lc *libvirt.Connect, disks []DiskSpec) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]string, len(disks))
	reads := make([]chan string, len(disks))
	for i, d := range disks {
		switch {
		case d.Empty, d.StartupPolicy == "optional":
			// An empty drive, or a medium libvirt leaves out when it is missing.
		case d.Path != "":
			reads[i] = make(chan string, 1)
			go func() { reads[i] <- readFirstSector(d.Path) }()
		case d.Pool != "" && lc != nil:
			out[i] = checkVolume(lc, d.Pool, d.Volume)
		}
	}
	timeout := time.NewTimer(diskReadTimeout)
	defer timeout.Stop()
	expired := false
	for i, ch := range reads {
		if ch == nil {
			continue
		}
		if !expired {
			select {
			case out[i] = <-ch:
				continue
			case <-timeout.C:
				expired = true // every read had the whole time: the rest answer now or never
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		select {
		case out[i] = <-ch:
		default:
			out[i] = fmt.Sprintf("%s: reading its first sector took more than %v: is its storage hung?", disks[i].Path, diskReadTimeout)
		}
	}
	return out, nil
}

// readFirstSector opens path and reads 512 bytes: reading proves the
// storage answers, not only that a name exists.
func readFirstSector(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return shortPathError(path, err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	if _, err := f.Read(buf); err != nil && !errors.Is(err, io.EOF) {
		return shortPathError(path, err)
	}
	return ""
}

// checkVolume says whether volume is in storage pool, defined and active
// here ("" if so).
func checkVolume(lc *libvirt.Connect, pool, volume string) string {
	p, err := lc.LookupStoragePoolByName(pool)
	if err != nil {
		return fmt.Sprintf("storage pool %q is not defined here", pool)
	}
	defer p.Free()
	if active, err := p.IsActive(); err == nil && !active {
		return fmt.Sprintf("storage pool %q is not active here", pool)
	}
	vol, err := p.LookupStorageVolByName(volume)
	if err != nil {
		return fmt.Sprintf("volume %q is not in storage pool %q here", volume, pool)
	}
	vol.Free()
	return ""
}

// shortPathError says what is wrong with path without os.PathError's
// repetition of the operation.
func shortPathError(path string, err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Sprintf("%s: %v", path, err)
}

func checkExecutable(path string) string {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return shortPathError(path, err)
	case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
		return "not an executable file"
	}
	return ""
}

// capabilities is the guest part of virConnectGetCapabilities.
type capabilities struct {
	Guests []struct {
		OSType string `xml:"os_type"`
		Arch   struct {
			Name     string       `xml:"name,attr"`
			Machines []capMachine `xml:"machine"`
			Domains  []struct {
				Type     string       `xml:"type,attr"`
				Machines []capMachine `xml:"machine"`
			} `xml:"domain"`
		} `xml:"arch"`
	} `xml:"guest"`
}

type capMachine struct {
	Canonical string `xml:"canonical,attr"`
	Name      string `xml:",chardata"`
}

// check says whether some guest of the capabilities offers the domain's OS
// type, architecture, domain type and machine type ("" if so).
func (caps capabilities) check(x checkDomain) string {
	osType, arch, machine := strings.TrimSpace(x.OS.Type.Value), x.OS.Type.Arch, x.OS.Type.Machine
	if osType == "" {
		osType = "hvm"
	}
	var arches []string
	for _, g := range caps.Guests {
		if g.OSType != osType || (arch != "" && g.Arch.Name != arch) {
			continue
		}
		arches = append(arches, g.Arch.Name)
		for _, d := range g.Arch.Domains {
			if d.Type != x.Type {
				continue
			}
			machines := append(slices.Clone(g.Arch.Machines), d.Machines...)
			if machine == "" || len(machines) == 0 || slices.ContainsFunc(machines, func(m capMachine) bool {
				return strings.TrimSpace(m.Name) == machine || m.Canonical == machine
			}) {
				return ""
			}
			return fmt.Sprintf("machine type %q is not offered here for %s/%s", machine, g.Arch.Name, x.Type)
		}
	}
	if len(arches) == 0 {
		return fmt.Sprintf("no %s guest of architecture %q here", osType, arch)
	}
	return fmt.Sprintf("domain type %q is not available here for %s (is /dev/kvm missing?)", x.Type, strings.Join(arches, ","))
}

// domainCapabilities is the CPU part of virConnectGetDomainCapabilities.
type domainCapabilities struct {
	Modes []struct {
		Name      string `xml:"name,attr"`
		Supported string `xml:"supported,attr"`
		Models    []struct {
			Usable string `xml:"usable,attr"`
			Name   string `xml:",chardata"`
		} `xml:"model"`
	} `xml:"cpu>mode"`
}

// checkDomainCapabilities asks libvirt whether this host's emulator runs
// the domain's architecture, machine and type, and offers its CPU. Drivers
// without domain capabilities (test:///) skip it.
func (c *Conn) checkDomainCapabilities(lc *libvirt.Connect, x checkDomain) []string {
	doc, err := lc.GetDomainCapabilities(strings.TrimSpace(x.Emulator), x.OS.Type.Arch, x.OS.Type.Machine, x.Type, 0)
	if err != nil {
		if libvirtCode(err) == libvirt.ERR_NO_SUPPORT {
			return nil
		}
		return []string{fmt.Sprintf("libvirt refuses %s/%s machine %q: %s", x.Type, x.OS.Type.Arch, x.OS.Type.Machine, causeText(err))}
	}
	var dc domainCapabilities
	if err := xml.Unmarshal([]byte(doc), &dc); err != nil {
		return nil
	}
	if p := dc.cpuProblem(x.CPU); p != "" {
		return []string{p}
	}
	return nil
}

// cpuProblem says whether this host offers cpu ("" if so, or if libvirt
// would not check it either).
func (dc domainCapabilities) cpuProblem(cpu *checkCPU) string {
	if cpu == nil || cpu.Check == "none" {
		return ""
	}
	mode := cpu.Mode
	if mode == "" {
		mode = "custom"
	}
	for _, m := range dc.Modes {
		if m.Name != mode {
			continue
		}
		if m.Supported != "yes" {
			return fmt.Sprintf("CPU mode %s is not supported here", mode)
		}
		if mode != "custom" || cpu.Model == nil || cpu.Model.Fallback == "allow" {
			return ""
		}
		model := strings.TrimSpace(cpu.Model.Value)
		for _, mm := range m.Models {
			if strings.TrimSpace(mm.Name) == model {
				if mm.Usable == "no" {
					return fmt.Sprintf("CPU model %s is not usable on this host's CPU", model)
				}
				return ""
			}
		}
		return fmt.Sprintf("CPU model %s is unknown here", model)
	}
	return ""
}

// checkInterface returns what is wrong with a network interface's source
// here ("" if nothing, or for types that need nothing on the host).
func checkInterface(lc *libvirt.Connect, i checkInterfaceXML) string {
	switch i.Type {
	case "network":
		n, err := lc.LookupNetworkByName(i.Source.Network)
		if err != nil {
			return fmt.Sprintf("libvirt network %q is not defined here", i.Source.Network)
		}
		defer n.Free()
		if active, err := n.IsActive(); err == nil && !active {
			return fmt.Sprintf("libvirt network %q is not active here", i.Source.Network)
		}
	case "bridge":
		if _, err := net.InterfaceByName(i.Source.Bridge); err != nil {
			return fmt.Sprintf("bridge %q does not exist here", i.Source.Bridge)
		}
		if _, err := os.Stat(filepath.Join("/sys/class/net", i.Source.Bridge, "bridge")); err != nil {
			return fmt.Sprintf("%q is not a bridge here", i.Source.Bridge)
		}
	case "direct":
		if _, err := net.InterfaceByName(i.Source.Dev); err != nil {
			return fmt.Sprintf("device %q does not exist here", i.Source.Dev)
		}
	}
	return ""
}

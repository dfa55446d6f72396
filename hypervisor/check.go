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

	"libvirt.org/go/libvirt"
)

// CheckDomainXML answers, without defining or starting anything, whether
// this host could start the domain domainXML describes: every file or block
// disk source exists here and is readable; the emulator exists; the
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

	for _, d := range x.Disks {
		if p := checkDiskSource(lc, d); p != "" {
			add("disk %s: %s", d.Target.Dev, p)
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

// checkDiskSource returns what is wrong with a disk's source here ("" if
// nothing, or if it cannot be checked from this host: network disks).
func checkDiskSource(lc *libvirt.Connect, d xmlDisk) string {
	if d.Source == nil {
		return "" // an empty CD-ROM drive
	}
	switch {
	case d.Source.File != "" || d.Source.Dev != "":
		path := d.Source.File
		if path == "" {
			path = d.Source.Dev
		}
		f, err := os.Open(path)
		if err != nil {
			return shortPathError(path, err)
		}
		defer f.Close()
		// Reading proves the storage answers, not only that a name exists.
		buf := make([]byte, 512)
		if _, err := f.Read(buf); err != nil && !errors.Is(err, io.EOF) {
			return shortPathError(path, err)
		}
		return ""
	case d.Source.Pool != "":
		pool, err := lc.LookupStoragePoolByName(d.Source.Pool)
		if err != nil {
			return fmt.Sprintf("storage pool %q is not defined here", d.Source.Pool)
		}
		defer pool.Free()
		if active, err := pool.IsActive(); err == nil && !active {
			return fmt.Sprintf("storage pool %q is not active here", d.Source.Pool)
		}
		vol, err := pool.LookupStorageVolByName(d.Source.Volume)
		if err != nil {
			return fmt.Sprintf("volume %q is not in storage pool %q here", d.Source.Volume, d.Source.Pool)
		}
		vol.Free()
	}
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

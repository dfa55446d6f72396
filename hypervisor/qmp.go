package hypervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/digitalocean/go-qemu/qemu"
	"github.com/digitalocean/go-qemu/qmp"
	"github.com/digitalocean/go-qemu/qmp/raw"
	"libvirt.org/go/libvirt"
)

// QMPDiagnostics is QEMU's own view of a running guest next to libvirt's,
// for an operator who asked for it ('wingman dominfo VM --qmp').
type QMPDiagnostics struct {
	Domain string
	// State, Reason and ReasonCode are libvirt's view, read just before
	// QEMU was asked.
	State      State
	Reason     string
	ReasonCode int
	// Status is QEMU's run state (QAPI RunState: "running", "paused",
	// "io-error", "guest-panicked", "internal-error", "shutdown", ...).
	Status string
	// Condition combines libvirt's and QEMU's view: the worse of the two,
	// so that QEMU in io-error shows even if libvirt missed the event.
	Condition Condition
	// QEMUVersion is the running QEMU's version, e.g. "7.2.0".
	QEMUVersion string
	// Disks are QEMU's block devices (query-block).
	Disks []QMPDisk
	// Errors are the queries after query-status that failed, with why; the
	// fields they fill are empty.
	Errors []string
}

// QMPDisk is one of QEMU's block devices.
type QMPDisk struct {
	// Device is QEMU's device name; with -blockdev (current libvirt) it is
	// empty and Node names the disk.
	Device string
	Node   string
	// File is the image the device reads and writes, empty for an empty drive.
	File string
	// IOStatus is "ok", "failed" or "nospace"; empty when the device does not
	// track it (its error policy neither stops nor reports ENOSPC).
	IOStatus string
	ReadOnly bool
}

// QMPDiagnostics asks the domain's QEMU over QMP for its run state, its
// version and its block devices with their I/O status (go-qemu's typed
// queries, over libvirt's QMP passthrough), and reports them next to
// libvirt's state. Everything together is bounded by Config.QMPTimeout; the
// queries run on their own goroutine, so that a QEMU whose monitor does not
// answer costs that goroutine and not the caller.
//
// It marks the domain tainted in libvirt: virDomainQemuMonitorCommand taints
// it "custom-monitor", logged once in the domain's qemu log ("Domain id=N is
// tainted: custom-monitor") and kept until QEMU exits. That is why it runs
// only when an operator asks (never from Health or any loop of the daemon)
// and only read-only queries are sent. An inactive domain gives
// ErrNotRunning without asking QEMU; a driver without QMP (test:///) gives
// ErrUnsupported.
func (c *Conn) QMPDiagnostics(ctx context.Context, name string) (QMPDiagnostics, error) {
	op := fmt.Sprintf("read QMP diagnostics of domain %q on %s", name, c.host)
	var out QMPDiagnostics
	err := c.withDomain(ctx, op, name, func(d *libvirt.Domain) error {
		state, reason, err := d.GetState()
		if err != nil {
			return err
		}
		lv := QMPDiagnostics{Domain: name, State: State(state), Reason: ReasonName(State(state), reason), ReasonCode: reason}
		if !lv.State.Active() {
			return &opError{op: op, class: ErrNotRunning}
		}
		var q QMPDiagnostics // written by the query goroutine, read only once it is done
		err = detached(ctx, d, c.cfg.QMPTimeout, "qmp", func(d *libvirt.Domain) error {
			var qerr error
			q, qerr = readQMP(newLibvirtMonitor(qmpPassthrough(d)), lv)
			return qerr
		})
		var g *gaveUp
		if errors.As(err, &g) {
			return &opError{op: op, class: g.class(), cause: err}
		}
		if err != nil {
			return err
		}
		out = q
		return nil
	})
	if err != nil {
		return QMPDiagnostics{}, err
	}
	return out, nil
}

// qmpPassthrough is the one call in Wingman that sends QMP through libvirt
// (virDomainQemuMonitorCommand), which taints the domain custom-monitor.
// test/guard keeps it that way: only QMPDiagnostics may reach it.
func qmpPassthrough(d *libvirt.Domain) func(cmd string) (string, error) {
	return func(cmd string) (string, error) {
		return d.QemuMonitorCommand(cmd, libvirt.DOMAIN_QEMU_MONITOR_COMMAND_DEFAULT)
	}
}

// readQMP fills in QEMU's view of the domain whose libvirt view is lv, with
// go-qemu's typed queries over m. query-status must answer; the other
// queries only add to the result.
func readQMP(m qmp.Monitor, lv QMPDiagnostics) (QMPDiagnostics, error) {
	dom, err := qemu.NewDomain(m, lv.Domain)
	if err != nil {
		return QMPDiagnostics{}, err
	}
	defer dom.Close()
	q := lv
	st, err := dom.Status()
	if err != nil {
		return QMPDiagnostics{}, err
	}
	q.Status = raw.RunState(st).String() // QAPI's name, e.g. "io-error"
	q.Condition = condition(q.State, q.ReasonCode, q.Status)
	if v, err := dom.Version(); err != nil {
		q.Errors = append(q.Errors, fmt.Sprintf("query-version: %v", err))
	} else {
		q.QEMUVersion = v
	}
	devs, err := dom.BlockDevices()
	if err != nil {
		q.Errors = append(q.Errors, fmt.Sprintf("query-block: %v", err))
	}
	for _, b := range devs {
		q.Disks = append(q.Disks, QMPDisk{Device: b.Device, Node: b.Inserted.NodeName, File: b.Inserted.File,
			IOStatus: b.IOStatus, ReadOnly: b.Inserted.ReadOnly})
	}
	return q, nil
}

// libvirtMonitor is go-qemu's qmp.Monitor over libvirt's QMP passthrough
// for one domain: libvirt owns QEMU's monitor socket, so there is nothing to
// connect, and QMP events reach Wingman as libvirt events instead.
type libvirtMonitor struct {
	run func(cmd string) (string, error)
}

var _ qmp.Monitor = (*libvirtMonitor)(nil)

func newLibvirtMonitor(run func(cmd string) (string, error)) *libvirtMonitor {
	return &libvirtMonitor{run: run}
}

// Connect does nothing: libvirt holds the monitor connection.
func (m *libvirtMonitor) Connect() error { return nil }

// Disconnect does nothing: libvirt holds the monitor connection.
func (m *libvirtMonitor) Disconnect() error { return nil }

// Events is not offered: Wingman follows the domain through libvirt's events.
func (m *libvirtMonitor) Events(context.Context) (<-chan qmp.Event, error) {
	return nil, qmp.ErrEventsNotSupported
}

// Run sends one QMP command and returns QEMU's reply. libvirt hands back
// QEMU's error replies as successful calls; Run turns them into errors, as
// go-qemu's own monitors do, so that go-qemu's queries never parse an error
// as an empty answer. libvirt's own errors (domain gone, no QMP in this
// driver) are returned as they are, for the caller to classify.
func (m *libvirtMonitor) Run(cmd []byte) ([]byte, error) {
	var c struct {
		Execute string `json:"execute"`
	}
	_ = json.Unmarshal(cmd, &c)
	out, err := m.run(string(cmd))
	if err != nil {
		return nil, err
	}
	var r struct {
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("qmp %s: bad reply %s: %w", c.Execute, clip(out), err)
	}
	switch {
	case r.Error != nil:
		return nil, fmt.Errorf("qmp %s: %s: %s", c.Execute, r.Error.Class, r.Error.Desc)
	case r.Return == nil:
		return nil, fmt.Errorf("qmp %s: reply %s has neither return nor error", c.Execute, clip(out))
	}
	return []byte(out), nil
}

// clip shortens a reply for an error message.
func clip(s string) string {
	const n = 200
	if len(s) <= n {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:n])
}

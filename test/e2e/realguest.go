package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/test/cluster"
	"github.com/wingmanha/wingman/test/realguest"
)

// RealGuest is a protected guest running Debian's cloud kernel and the ledger service
// (test/realguest), with its data on a shared ext4 disk and a fixed address on the test network.
type RealGuest struct {
	Guest
	Addr    string // its service, "ip:port", reached from the switch (Env.Dial)
	Disk    string // its data disk image
	Console string // its serial console log (appended to by every host that runs it)
}

var (
	imageOnce sync.Once
	image     realguest.Image
	imageErr  error
)

// GuestImage builds the real guest's image (once per process; cached between runs).
func GuestImage(ctx context.Context) (realguest.Image, error) {
	imageOnce.Do(func() {
		image, imageErr = realguest.Build(ctx, realguest.CacheDir(), nil)
	})
	return image, imageErr
}

// Dial opens a connection to addr from the switch, where the guests' users are.
func (e *Env) Dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	return e.C.DialSwitch(ctx, addr, timeout)
}

// NewRealGuest creates a real guest named name (DefineRealGuest), starts it on h, protects it
// through h's wingmand with p, and waits until its service answers.
func (e *Env) NewRealGuest(ctx context.Context, h *cluster.Host, name string, p Policy) (RealGuest, error) {
	g, err := e.DefineRealGuest(ctx, h, name)
	if err != nil {
		return g, err
	}
	c, err := e.conn(ctx, h)
	if err != nil {
		return g, err
	}
	if err := c.Start(ctx, g.Name); err != nil {
		return g, err
	}
	if _, err := e.Client(h).Protect(ctx, g.Name, ProtectRequest{Policy: p}); err != nil {
		return g, fmt.Errorf("protect %s on %s: %w", g.Name, h.Name(), err)
	}
	if _, err := realguest.WaitAnswering(ctx, e.Dial, g.Addr, 2*time.Minute); err != nil {
		return g, fmt.Errorf("real guest %s: %w (console: %s)", g.Name, err, tail(g.Console, 5))
	}
	return g, nil
}

// DefineRealGuest creates a real guest named name (disk in the shared directory, shareable so
// that only Wingman prevents a second copy; 128 MiB, one vCPU, guest agent, pvpanic, its own
// address and MAC) and defines it on h, neither started nor protected.
func (e *Env) DefineRealGuest(ctx context.Context, h *cluster.Host, name string) (RealGuest, error) {
	img, err := GuestImage(ctx)
	if err != nil {
		return RealGuest{}, err
	}
	e.mu.Lock()
	e.realGuests++
	n := e.realGuests
	e.mu.Unlock()
	ip, err := e.C.GuestAddr(n)
	if err != nil {
		return RealGuest{}, err
	}
	spec, err := e.C.NewGuest(name)
	if err != nil {
		return RealGuest{}, err
	}
	// NewGuest made a boot-sector disk: the real guest's is an ext4 file system instead.
	if err := os.Remove(spec.Disk); err != nil {
		return RealGuest{}, err
	}
	if err := realguest.CreateDataDisk(ctx, spec.Disk, 64); err != nil {
		return RealGuest{}, err
	}
	spec.Shareable = true
	spec.MemoryMiB = 128
	spec.Kernel, spec.Initrd = img.Kernel, img.Initrd
	spec.Cmdline = fmt.Sprintf("console=ttyS0 quiet panic=0 wingman.ip=%s/%d wingman.port=%d",
		ip, e.C.Config().Subnet.Bits(), realguest.Port)
	spec.MAC = cluster.GuestMAC(n)
	// A panic reported by pvpanic leaves the domain crashed/panicked, which Wingman tells from a
	// QEMU that died (with on_crash destroy both read as shut off, reason crashed).
	spec.Agent, spec.Panic, spec.OnCrash = true, true, "preserve"
	spec.Console = filepath.Join(e.C.SharedDir(), name+".console.log")
	g := RealGuest{
		Guest:   Guest{Name: spec.Name, UUID: strings.ToLower(spec.UUID), Spec: spec},
		Addr:    net.JoinHostPort(ip.String(), strconv.Itoa(realguest.Port)),
		Disk:    spec.Disk,
		Console: spec.Console,
	}
	c, err := e.conn(ctx, h)
	if err != nil {
		return g, err
	}
	x, err := spec.XML()
	if err != nil {
		return g, err
	}
	if _, err := c.Define(ctx, x); err != nil {
		return g, err
	}
	return g, nil
}

// Conn is the harness's libvirt connection to h.
func (e *Env) Conn(ctx context.Context, h *cluster.Host) (*hypervisor.Conn, error) {
	return e.conn(ctx, h)
}

// Writer starts a client that writes to g's ledger continuously from the switch.
func (e *Env) Writer(ctx context.Context, g RealGuest, ackTimeout time.Duration) *realguest.Writer {
	return realguest.StartWriter(ctx, realguest.WriterConfig{Addr: g.Addr, Dial: e.Dial, AckTimeout: ackTimeout})
}

// CheckLedger reads g's ledger back and checks every record the logs saw acknowledged.
func (e *Env) CheckLedger(ctx context.Context, g RealGuest, logs ...realguest.Log) (realguest.Verdict, error) {
	l, err := realguest.ReadLedger(ctx, e.Dial, g.Addr)
	if err != nil {
		return realguest.Verdict{}, err
	}
	var v realguest.Verdict
	for _, log := range logs {
		one := l.Check(log)
		v.Acked += one.Acked
		v.Lost = append(v.Lost, one.Lost...)
		v.Damaged = append(v.Damaged, one.Damaged...)
	}
	return v, nil
}

// GuestCommand sends a control command (HANG-AGENT, PANIC, HALT) to g's service.
func (e *Env) GuestCommand(ctx context.Context, g RealGuest, cmd string) error {
	_, err := realguest.Command(ctx, e.Dial, g.Addr, cmd)
	return err
}

// Tainted lists the "Domain id=N is tainted: REASON" lines in every host's QEMU logs: libvirt's
// record of a QMP or guest agent command passed through (custom-monitor, custom-ga-command).
func (e *Env) Tainted() ([]string, error) {
	var out []string
	for _, h := range e.Hosts() {
		logs, _ := filepath.Glob(filepath.Join(h.Dir(), "log", "qemu", "*.log"))
		for _, p := range logs {
			b, err := os.ReadFile(p)
			if err != nil {
				return out, err
			}
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "is tainted:") {
					out = append(out, fmt.Sprintf("%s %s: %s", h.Name(), filepath.Base(p), strings.TrimSpace(line)))
				}
			}
		}
	}
	return out, nil
}

// tail is the last n lines of the file at path, joined by " | " (a console log, for a message).
func tail(path string, n int) string { return realguest.Tail(path, n) }

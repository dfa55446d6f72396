// Command guestinit is PID 1 of the test cluster's real guest: a Debian cloud kernel boots it from
// an initramfs (built by package realguest). It mounts the kernel's file systems, loads the
// virtio, pvpanic and ACPI button modules, brings up the NIC with the address on the kernel
// command line and announces it (gratuitous ARP), mounts the data disk (/dev/vda, ext4) on /data,
// starts qemu-guest-agent on its virtio-serial port, and serves the ledger on TCP:
//
//	W <seq> <payload>  append "<seq> <payload>\n" to /data/ledger, fdatasync, answer "A <seq>"
//	R                  answer "L <line>" for every complete record, then "END <n> <torn bytes>"
//	PING               answer "PONG <boot id>" (random per boot: tells a restarted guest)
//	HANG-AGENT         stop qemu-ga (SIGSTOP): the agent channel stays open and never answers
//	PANIC              answer "OK", then panic the kernel (sysrq c)
//	HALT               answer "OK", then shut down cleanly (as on the ACPI power button)
//
// A record is acknowledged only after fdatasync returned: whatever the client saw acknowledged is
// on the disk. On the ACPI power button, on SIGTERM (qemu-ga's guest-shutdown runs /sbin/shutdown,
// which is this binary and signals PID 1) or on HALT it stops serving, syncs, unmounts /data (so
// the file system is clean) and powers off.
//
// Kernel command line keys: wingman.ip=A.B.C.D/N (required), wingman.port=P (default 7070).
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	dataDir    = "/data"
	ledgerPath = "/data/ledger"
	agentName  = "org.qemu.guest_agent.0"
)

func logf(format string, args ...any) {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	fmt.Fprintf(os.Stderr, "guestinit [%d.%03d] %s\n", ts.Sec, ts.Nsec/1e6, fmt.Sprintf(format, args...))
}

func main() {
	switch filepath.Base(os.Args[0]) {
	case "shutdown", "poweroff", "halt", "reboot":
		// qemu-ga's guest-shutdown runs /sbin/shutdown: ask PID 1 to shut down cleanly.
		if err := unix.Kill(1, unix.SIGTERM); err != nil {
			fmt.Fprintf(os.Stderr, "%s: signal init: %v\n", os.Args[0], err)
			os.Exit(1)
		}
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "guestinit: this is the guest's init; it runs as PID 1 inside the test guest")
		os.Exit(2)
	}
	g := &guest{}
	if err := g.boot(); err != nil {
		logf("boot failed: %v", err)
		g.powerOff()
	}
	g.run()
}

type guest struct {
	ip     string
	port   int
	bootID string

	mu     sync.Mutex // serialises ledger appends
	ledger *os.File
	agent  *exec.Cmd
	ln     net.Listener

	stopOnce sync.Once
	stopped  chan struct{}
}

func (g *guest) boot() error {
	g.stopped = make(chan struct{})
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/run", "tmpfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	// Only the applets used here: `busybox --install` makes ~400 links and costs a second of
	// boot under TCG.
	for _, a := range []string{"sh", "ip", "arping", "cat", "ls", "mount", "ps", "kill", "sync"} {
		_ = os.Symlink("busybox", "/bin/"+a)
	}
	os.Setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
	// The kernel's boot id, not crypto/rand: getrandom blocks until the entropy pool is ready,
	// which takes a second of boot on a TCG guest without a virtio-rng device.
	id, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return fmt.Errorf("boot id: %w", err)
	}
	g.bootID = strings.ReplaceAll(strings.TrimSpace(string(id)), "-", "")[:16]
	// A task stuck in the kernel (a mount waiting on its disk, say) prints its stack on the
	// console after 20 s instead of 120 s: a test that waits minutes for the guest then shows why.
	_ = os.WriteFile("/proc/sys/kernel/hung_task_timeout_secs", []byte("20"), 0)
	logf("init")
	if err := loadModules("/lib/modules/order"); err != nil {
		return err
	}
	logf("modules loaded")
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	g.port = 7070
	for _, f := range strings.Fields(string(cmdline)) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "wingman.ip":
			g.ip = v
		case "wingman.port":
			if p, err := strconv.Atoi(v); err == nil {
				g.port = p
			}
		}
	}
	if g.ip == "" {
		return fmt.Errorf("no wingman.ip=A.B.C.D/N on the kernel command line")
	}
	if err := g.network(); err != nil {
		return err
	}
	logf("network up: %s", g.ip)
	if err := g.mountData(); err != nil {
		return err
	}
	logf("data mounted")
	g.startAgent()
	go g.watchPowerButton()
	return nil
}

// loadModules loads each module listed (one file name a line, dependencies first).
func loadModules(order string) error {
	b, err := os.ReadFile(order)
	if err != nil {
		return fmt.Errorf("read module list: %w", err)
	}
	for _, name := range strings.Fields(string(b)) {
		f, err := os.Open(filepath.Join("/lib/modules", name))
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && err != unix.EEXIST {
			logf("load module %s: %v", name, err) // a missing device's driver may refuse; go on
		}
	}
	return nil
}

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// network brings eth0 up with the guest's address and announces it, so that the switch learns
// where the address lives now (after a failover the same address answers from another host).
func (g *guest) network() error {
	var err error
	for i := 0; i < 100; i++ { // the NIC appears once virtio_net probed it
		if _, err = os.Stat("/sys/class/net/eth0"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("no eth0: %w", err)
	}
	_ = os.WriteFile("/proc/sys/net/ipv4/conf/all/arp_notify", []byte("1"), 0)
	for _, c := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "add", g.ip, "dev", "eth0"},
		{"ip", "link", "set", "eth0", "up"},
	} {
		if err := sh(c...); err != nil {
			return err
		}
	}
	addr, _, _ := strings.Cut(g.ip, "/")
	go func() { _ = sh("arping", "-U", "-c", "3", "-w", "3", "-I", "eth0", addr) }()
	return nil
}

func (g *guest) mountData() error {
	var err error
	for i := 0; i < 200; i++ {
		if err = unix.Mount("/dev/vda", dataDir, "ext4", 0, ""); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("mount /dev/vda on %s: %w", dataDir, err)
	}
	g.ledger, err = os.OpenFile(ledgerPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	return nil
}

// startAgent runs qemu-ga on the virtio-serial port libvirt names org.qemu.guest_agent.0 (no
// udev here, so no /dev/virtio-ports link: the port's name is in sysfs).
func (g *guest) startAgent() {
	ports, _ := filepath.Glob("/sys/class/virtio-ports/vport*")
	for _, p := range ports {
		name, _ := os.ReadFile(filepath.Join(p, "name"))
		if strings.TrimSpace(string(name)) != agentName {
			continue
		}
		dev := "/dev/" + filepath.Base(p)
		cmd := exec.Command("/usr/sbin/qemu-ga", "-m", "virtio-serial", "-p", dev, "-t", "/run")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			logf("start qemu-ga: %v", err)
			return
		}
		g.agent = cmd
		logf("qemu-ga on %s", dev)
		return
	}
	logf("no %s port: no guest agent", agentName)
}

// watchPowerButton shuts the guest down on the ACPI power button (libvirt's default shutdown).
func (g *guest) watchPowerButton() {
	var devs []string
	for i := 0; i < 40 && len(devs) == 0; i++ {
		names, _ := filepath.Glob("/sys/class/input/event*/device/name")
		for _, n := range names {
			b, _ := os.ReadFile(n)
			if strings.Contains(string(b), "Power Button") {
				devs = append(devs, "/dev/input/"+filepath.Base(filepath.Dir(filepath.Dir(n))))
			}
		}
		if len(devs) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, d := range devs {
		go func() {
			f, err := os.Open(d)
			if err != nil {
				logf("open %s: %v", d, err)
				return
			}
			ev := make([]byte, 24) // struct input_event on 64-bit: timeval, type, code, value
			for {
				if _, err := f.Read(ev); err != nil {
					return
				}
				typ, code, val := binary.LittleEndian.Uint16(ev[16:]), binary.LittleEndian.Uint16(ev[18:]), int32(binary.LittleEndian.Uint32(ev[20:]))
				if typ == 1 && code == 116 && val == 1 { // EV_KEY, KEY_POWER, pressed
					logf("power button")
					g.shutdown()
				}
			}
		}()
	}
}

func (g *guest) run() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGCHLD)
	go func() {
		for s := range sigs {
			if s == unix.SIGCHLD {
				continue // reaped below
			}
			g.shutdown()
		}
	}()
	go reap()
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", g.port))
	if err != nil {
		logf("listen: %v", err)
		g.powerOff()
	}
	g.ln = ln
	logf("serving the ledger on port %d (boot %s)", g.port, g.bootID)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go g.serve(c)
		}
	}()
	<-g.stopped
	select {} // powerOff does not return; the kernel stops us
}

// reap waits for orphans (busybox children, qemu-ga) forever: PID 1 must.
func reap() {
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (g *guest) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriter(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch cmd {
		case "W":
			seq, _, _ := strings.Cut(arg, " ")
			if err := g.append(arg); err != nil {
				fmt.Fprintf(w, "E %s %v\n", seq, err)
			} else {
				fmt.Fprintf(w, "A %s\n", seq)
			}
		case "R":
			g.readBack(w)
		case "PING":
			fmt.Fprintf(w, "PONG %s\n", g.bootID)
		case "HANG-AGENT":
			if g.agent == nil || g.agent.Process == nil {
				fmt.Fprintln(w, "E no guest agent")
			} else if err := g.agent.Process.Signal(unix.SIGSTOP); err != nil {
				fmt.Fprintf(w, "E %v\n", err)
			} else {
				logf("guest agent stopped (SIGSTOP)")
				fmt.Fprintln(w, "OK")
			}
		case "PANIC":
			fmt.Fprintln(w, "OK")
			w.Flush()
			logf("panic requested")
			time.Sleep(100 * time.Millisecond)
			_ = os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0)
		case "HALT":
			fmt.Fprintln(w, "OK")
			w.Flush()
			g.shutdown()
			return
		default:
			fmt.Fprintf(w, "E unknown command %q\n", cmd)
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

func (g *guest) append(rec string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ledger == nil {
		return fmt.Errorf("shutting down")
	}
	if _, err := g.ledger.WriteString(rec + "\n"); err != nil {
		return err
	}
	return unix.Fdatasync(int(g.ledger.Fd()))
}

func (g *guest) readBack(w *bufio.Writer) {
	g.mu.Lock()
	b, err := os.ReadFile(ledgerPath)
	g.mu.Unlock()
	if err != nil {
		fmt.Fprintf(w, "E %v\n", err)
		return
	}
	n := 0
	for len(b) > 0 {
		i := strings.IndexByte(string(b), '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(w, "L %s\n", b[:i])
		b = b[i+1:]
		n++
	}
	fmt.Fprintf(w, "END %d %d\n", n, len(b))
}

// shutdown stops serving, closes the ledger, unmounts /data and powers off.
func (g *guest) shutdown() {
	g.stopOnce.Do(func() {
		logf("shutting down")
		if g.ln != nil {
			g.ln.Close()
		}
		g.mu.Lock()
		if g.ledger != nil {
			g.ledger.Close()
			g.ledger = nil
		}
		g.mu.Unlock()
		unix.Sync()
		if err := unix.Unmount(dataDir, 0); err != nil {
			logf("unmount %s: %v", dataDir, err)
		}
		close(g.stopped)
		g.powerOff()
	})
}

func (g *guest) powerOff() {
	unix.Sync()
	logf("power off")
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

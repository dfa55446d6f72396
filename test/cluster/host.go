package cluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LibvirtdTCPPort is the port every host's libvirtd listens on at its address (qemu+tcp).
const LibvirtdTCPPort = 16509

// Host is one simulated machine of the cluster: its own network, mount, UTS, IPC and PID
// namespaces, its own libvirtd, and a directory holding what a real host keeps in /etc/libvirt,
// /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt.
//
// The name, address, URIs and directory never change; faults are injected through the Cluster.
type Host struct {
	c        *Cluster
	index    int // 1-based
	name     string
	addr     netip.Addr
	dir      string
	hostUUID string

	mu           sync.Mutex
	on           bool
	init         *exec.Cmd
	initDone     <-chan struct{}
	pidNS        string // nsLink of the host's PID namespace while on, or of the last one
	netNS        string
	libvirtd     *exec.Cmd
	libvirtdDone <-chan struct{}
	partitioned  bool
	wingmand     *wingmandProc
	rebooting    bool // the harness is rebooting it for its wingmand (reboot.go)
	reboots      int
}

// Name is the host's name and hostname, e.g. "kvm1".
func (h *Host) Name() string { return h.name }

// Index is the host's number, 1 for the first host.
func (h *Host) Index() int { return h.index }

// Addr is the host's address on the test network, e.g. 10.77.0.1.
func (h *Host) Addr() netip.Addr { return h.addr }

// Dir is the host's directory; etc, run, lib, log and cache in it are, inside the host,
// /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt.
// libvirtd's log is log/libvirtd.log, its stdout and stderr log/libvirtd.out, guest logs log/qemu/.
func (h *Host) Dir() string { return h.dir }

// URI is the libvirt URI of the host's daemon as seen from the harness (through its socket file).
func (h *Host) URI() string {
	return "qemu+unix:///system?socket=" + filepath.Join(h.dir, "run", "libvirt-sock")
}

// MigrationURI is the libvirt URI of the host's daemon as seen from another host of the cluster,
// the destination URI of a peer-to-peer migration: qemu+tcp://<addr>/system.
func (h *Host) MigrationURI() string {
	return fmt.Sprintf("qemu+tcp://%s/system", h.addr)
}

// HostUUID is the host_uuid of the host's libvirtd (distinct per host, else libvirt refuses to
// migrate between them).
func (h *Host) HostUUID() string { return h.hostUUID }

// On reports whether the host is powered on.
func (h *Host) On() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.on
}

// InitPID is the harness-side PID of the host's init (PID 1 inside the host), 0 when off.
func (h *Host) InitPID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.on {
		return 0
	}
	return h.init.Process.Pid
}

// PIDNamespace identifies the host's PID namespace, e.g. "pid:[4026532301]" (of the last power-on
// when off): compare it with the readlink of /proc/<pid>/ns/pid.
func (h *Host) PIDNamespace() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pidNS
}

// Command returns a command that runs name inside all of the host's namespaces (through nsenter):
// it sees the host's network, hostname, /proc and libvirt directories. Cancelling ctx kills the
// command and its descendants; cmd.Process is nsenter, so prefer ctx over cmd.Process.Kill.
// On a powered-off host the command fails to start.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return h.nsCommand(ctx, []string{"--mount", "--uts", "--ipc", "--net", "--pid"}, name, args...)
}

// Run runs name inside the host (see Command) and returns its combined output.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("run %s on %s: %w: %s", name, h.name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (h *Host) nsCommand(ctx context.Context, nsFlags []string, name string, args ...string) *exec.Cmd {
	pid := h.InitPID()
	a := append([]string{"--target", strconv.Itoa(pid)}, nsFlags...)
	a = append(a, "--", name)
	a = append(a, args...)
	cmd := exec.CommandContext(ctx, "nsenter", a...)
	cmd.Cancel = func() error {
		killTree(cmd.Process.Pid)
		return nil
	}
	return cmd
}

// Processes lists the processes of the host (every process in its PID namespace); none when off.
func (h *Host) Processes() ([]Process, error) {
	if !h.On() {
		return nil, nil
	}
	return processesIn(h.PIDNamespace())
}

// Reach tries a TCP connection from inside the host to the given address within ctx's deadline
// (at most 2 s), and returns nil if it was accepted. Use it as ping (which Debian's base image
// lacks), e.g. h1.Reach(ctx, h2.LibvirtdAddrPort()).
func (h *Host) Reach(ctx context.Context, to netip.AddrPort) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	secs := "2"
	if dl, ok := ctx.Deadline(); ok {
		secs = strconv.FormatFloat(time.Until(dl).Seconds(), 'f', 2, 64)
	}
	script := fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", to.Addr(), to.Port())
	cmd := h.nsCommand(ctx, []string{"--net"}, "timeout", secs, "bash", "-c", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("connect from %s to %s: %w: %s", h.name, to, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// LibvirtdAddrPort is where the host's libvirtd listens for TCP, as seen from other hosts.
func (h *Host) LibvirtdAddrPort() netip.AddrPort {
	return netip.AddrPortFrom(h.addr, LibvirtdTCPPort)
}

// LibvirtdRunning reports whether the host's libvirtd process is alive (false when off).
func (h *Host) LibvirtdRunning() bool { return (libvirtd{h}).libvirtdRunning() }

// libvirtdRunning reports whether the host's libvirtd process is alive.
func (h libvirtd) libvirtdRunning() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.libvirtdDone == nil {
		return false
	}
	select {
	case <-h.libvirtdDone:
		return false
	default:
		return true
	}
}

// prepareDirs creates the host's directories and writes its libvirt configuration. A power-on
// empties run/, as a reboot empties the tmpfs /run.
func (h *Host) prepareDirs() error {
	if err := os.RemoveAll(filepath.Join(h.dir, "run")); err != nil {
		return fmt.Errorf("empty run dir of %s: %w", h.name, err)
	}
	for _, d := range fixedLibvirtDirs {
		if err := os.MkdirAll(filepath.Join(h.dir, d.sub), 0o755); err != nil {
			return fmt.Errorf("create dir of %s: %w", h.name, err)
		}
	}
	cfg := h.c.cfg
	portMin := cfg.MigrationPortBase + (h.index-1)*64
	libvirtdConf := fmt.Sprintf(`# Written by wingman's test/cluster for host %[1]s. Test network only: no authentication.
listen_tls = 0
listen_tcp = 1
listen_addr = "%[2]s"
auth_tcp = "none"
auth_unix_ro = "none"
auth_unix_rw = "none"
host_uuid = "%[3]s"
log_outputs = "%[4]d:file:/var/log/libvirt/libvirtd.log"
`, h.name, h.addr, h.hostUUID, cfg.LibvirtdLogLevel)
	qemuConf := fmt.Sprintf(`# Written by wingman's test/cluster for host %[1]s.
user = "root"
group = "root"
security_driver = "none"
dynamic_ownership = 0
remember_owner = 0
cgroup_controllers = [ ]
stdio_handler = "file"
migration_address = "%[2]s"
migration_host = "%[2]s"
migration_port_min = %[3]d
migration_port_max = %[4]d
`, h.name, h.addr, portMin, portMin+63)
	files := map[string]string{"libvirtd.conf": libvirtdConf, "qemu.conf": qemuConf}
	if cfg.LockManager {
		files["qemu.conf"] += "lock_manager = \"lockd\"\n"
		files["qemu-lockd.conf"] = fmt.Sprintf(`# Written by wingman's test/cluster for host %[1]s: a lease on every disk, named after
# the disk's path, in a lockspace all hosts share.
auto_disk_leases = 1
require_lease_for_disks = 1
file_lockspace_dir = "%[2]s"
`, h.name, filepath.Join(h.c.sharedDir, LockspaceSubdir))
		files["virtlockd.conf"] = "log_outputs = \"3:file:/var/log/libvirt/virtlockd.log\"\n"
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(h.dir, "etc", name), []byte(text), 0o644); err != nil {
			return fmt.Errorf("write %s of %s: %w", name, h.name, err)
		}
	}
	return nil
}

// powerOn starts the host's init in new namespaces, wires it to the switch and starts libvirtd.
func (h *Host) powerOn(ctx context.Context) error {
	if h.On() {
		return fmt.Errorf("power on %s: it is already on", h.name)
	}
	if err := h.prepareDirs(); err != nil {
		return err
	}
	// A power-on is the BMC's "on": the fence agent's status reads ON again.
	if err := os.Remove(h.FenceStateFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("power on %s: reset fence state: %w", h.name, err)
	}
	spec := initSpec{Hostname: h.name}
	for _, d := range fixedLibvirtDirs {
		spec.Binds = append(spec.Binds, bindMount{Source: filepath.Join(h.dir, d.sub), Target: d.target})
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("power on %s: %w", h.name, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("power on %s: find own executable to run as host init: %w", h.name, err)
	}
	readR, readW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("power on %s: %w", h.name, err)
	}
	defer readR.Close()
	logf, err := os.OpenFile(filepath.Join(h.dir, "log", "init.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		readW.Close()
		return fmt.Errorf("power on %s: %w", h.name, err)
	}
	defer logf.Close()
	cmd := exec.Command(exe)
	cmd.Args = []string{"wingman-host-init:" + h.name}
	cmd.Env = append(os.Environ(), roleEnv+"="+roleHost, hostSpecEnv+"="+string(specJSON))
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{readW}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC |
			syscall.CLONE_NEWPID | syscall.CLONE_NEWNET,
	}
	err = startBound(cmd)
	readW.Close()
	if err != nil {
		return fmt.Errorf("power on %s: start host init in new namespaces (needs root): %w", h.name, err)
	}
	done := waited(cmd)
	h.mu.Lock()
	h.init, h.initDone, h.on = cmd, done, true
	h.libvirtd, h.libvirtdDone, h.partitioned, h.wingmand = nil, nil, false, nil
	h.mu.Unlock()

	fail := func(err error) error {
		_ = h.powerOff()
		return err
	}
	// The init answers "ok" or an error on the pipe, then closes it.
	msg := make(chan string, 1)
	go func() {
		b := make([]byte, 512)
		n, _ := readR.Read(b)
		msg <- strings.TrimSpace(string(b[:n]))
	}()
	timer := time.NewTimer(h.c.cfg.StartTimeout)
	defer timer.Stop()
	select {
	case m := <-msg:
		if m != "ok" {
			return fail(fmt.Errorf("power on %s: host init failed: %q", h.name, m))
		}
	case <-timer.C:
		return fail(fmt.Errorf("power on %s: host init did not report ready within %v", h.name, h.c.cfg.StartTimeout))
	}
	pid := cmd.Process.Pid
	pidNS, err := nsLink(pid, "pid")
	if err != nil {
		return fail(fmt.Errorf("power on %s: %w", h.name, err))
	}
	netNS, err := nsLink(pid, "net")
	if err != nil {
		return fail(fmt.Errorf("power on %s: %w", h.name, err))
	}
	h.mu.Lock()
	h.pidNS, h.netNS = pidNS, netNS
	h.mu.Unlock()
	if err := (lanSwitch{h.c}).plugIn(ctx, h); err != nil {
		return fail(err)
	}
	if err := (libvirtd{h}).startLibvirtd(ctx); err != nil {
		return fail(err)
	}
	return nil
}

// powerOff kills the host's init, which kills every process of the host, and waits until the
// namespace is empty. It does nothing on a host that is off.
func (h *Host) powerOff() error {
	h.mu.Lock()
	if !h.on {
		h.mu.Unlock()
		return nil
	}
	init, initDone, libvirtdDone, pidNS := h.init, h.initDone, h.libvirtdDone, h.pidNS
	h.mu.Unlock()

	timeout := h.c.cfg.StopTimeout
	// A frozen host (every process SIGSTOPped) must die too: kill each of
	// its processes and wake them, then its init. The nsenter parents of
	// libvirtd and wingmand stopped themselves with their child: wake them
	// so that they reap it (see outsideParents).
	if pidNS != "" {
		if procs, err := processesIn(pidNS); err == nil {
			for _, p := range procs {
				_ = syscall.Kill(p.PID, syscall.SIGKILL)
				_ = syscall.Kill(p.PID, syscall.SIGCONT)
			}
			for _, pid := range outsideParents(procs) {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
	}
	if err := init.Process.Signal(syscall.SIGKILL); err != nil && !isNotRunning(err) {
		return fmt.Errorf("power off %s: kill init %d: %w", h.name, init.Process.Pid, err)
	}
	if !waitDone(initDone, timeout) {
		return fmt.Errorf("power off %s: init %d still there after %v", h.name, init.Process.Pid, timeout)
	}
	if libvirtdDone != nil && !waitDone(libvirtdDone, timeout) {
		return fmt.Errorf("power off %s: libvirtd's nsenter still there after %v", h.name, timeout)
	}
	if pidNS != "" {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var left []Process
		err := pollUntil(ctx, 10*time.Millisecond, func() (bool, error) {
			var err error
			left, err = processesIn(pidNS)
			return len(left) == 0, err
		})
		if err != nil {
			return fmt.Errorf("power off %s: %d processes still in its PID namespace (first: %+v): %w", h.name, len(left), left, err)
		}
	}
	h.mu.Lock()
	h.on = false
	h.mu.Unlock()
	return nil
}

// startLibvirtd starts libvirtd inside the host and waits until it answers.
func (h libvirtd) startLibvirtd(ctx context.Context) error {
	if h.libvirtdRunning() {
		return fmt.Errorf("start libvirtd on %s: it is already running", h.name)
	}
	out, err := os.OpenFile(filepath.Join(h.dir, "log", "libvirtd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start libvirtd on %s: %w", h.name, err)
	}
	defer out.Close()
	if h.c.cfg.LockManager {
		if err := h.startVirtlockd(ctx, out); err != nil {
			return err
		}
	}
	// --pid-file in the host's own run dir: the default /run/libvirtd.pid is shared by all hosts
	// and locked by the first libvirtd.
	cmd := h.Command(context.Background(), "libvirtd", "--listen",
		"--pid-file", "/run/libvirt/libvirtd.pid", "--config", "/etc/libvirt/libvirtd.conf")
	cmd.Stdout, cmd.Stderr = out, out
	if err := startBound(cmd); err != nil {
		return fmt.Errorf("start libvirtd on %s: %w", h.name, err)
	}
	done := waited(cmd)
	h.mu.Lock()
	h.libvirtd, h.libvirtdDone = cmd, done
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, h.c.cfg.StartTimeout)
	defer cancel()
	var lastErr error
	err = pollUntil(ctx, 50*time.Millisecond, func() (bool, error) {
		select {
		case <-done:
			return false, fmt.Errorf("libvirtd exited")
		default:
		}
		vctx, vcancel := context.WithTimeout(ctx, 10*time.Second)
		defer vcancel()
		b, err := exec.CommandContext(vctx, "virsh", "-c", h.URI(), "hostname").CombinedOutput()
		if err != nil {
			lastErr = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(b)))
			return false, nil
		}
		if got := strings.TrimSpace(string(b)); got != h.name {
			return false, fmt.Errorf("libvirtd at %s says its hostname is %q, not %q", h.URI(), got, h.name)
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("start libvirtd on %s: %w (last virsh error: %v); see %s and %s:\n%s\n%s",
			h.name, err, lastErr, filepath.Join(h.dir, "log", "libvirtd.out"), filepath.Join(h.dir, "log", "libvirtd.log"),
			tail(filepath.Join(h.dir, "log", "libvirtd.out"), 10), tail(filepath.Join(h.dir, "log", "libvirtd.log"), 10))
	}
	return nil
}

// startVirtlockd starts the host's virtlockd (Config.LockManager), unless it runs already (a
// restarted libvirtd finds it, as under systemd), and waits for its socket: a root libvirtd does
// not start virtlockd itself. It lives in the host's PID namespace, so a power loss ends it.
func (h libvirtd) startVirtlockd(ctx context.Context, out *os.File) error {
	sock := filepath.Join(h.dir, "run", "virtlockd-sock")
	if _, err := os.Stat(sock); err == nil {
		return nil
	}
	cmd := h.Command(context.Background(), "virtlockd",
		"--pid-file", "/run/libvirt/virtlockd.pid", "--config", "/etc/libvirt/virtlockd.conf")
	cmd.Stdout, cmd.Stderr = out, out
	if err := startBound(cmd); err != nil {
		return fmt.Errorf("start virtlockd on %s: %w", h.name, err)
	}
	done := waited(cmd)
	ctx, cancel := context.WithTimeout(ctx, h.c.cfg.StartTimeout)
	defer cancel()
	err := pollUntil(ctx, 20*time.Millisecond, func() (bool, error) {
		select {
		case <-done:
			return false, fmt.Errorf("virtlockd exited")
		default:
		}
		_, err := os.Stat(sock)
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("start virtlockd on %s: %w; see %s", h.name, err, filepath.Join(h.dir, "log", "libvirtd.out"))
	}
	return nil
}

// stopLibvirtd sends sig to the host's libvirtd and waits until it is gone.
func (h libvirtd) stopLibvirtd(sig syscall.Signal) error {
	h.mu.Lock()
	cmd, done, pidNS, on := h.libvirtd, h.libvirtdDone, h.pidNS, h.on
	h.mu.Unlock()
	if !on {
		return fmt.Errorf("stop libvirtd on %s: the host is powered off", h.name)
	}
	if cmd == nil || !h.libvirtdRunning() {
		return fmt.Errorf("stop libvirtd on %s: it is not running", h.name)
	}
	procs, err := processesIn(pidNS)
	if err != nil {
		return fmt.Errorf("stop libvirtd on %s: %w", h.name, err)
	}
	found := false
	for _, p := range procs {
		if p.PPID == cmd.Process.Pid && p.Comm == "libvirtd" {
			found = true
			if err := syscall.Kill(p.PID, sig); err != nil && !isNotRunning(err) {
				return fmt.Errorf("stop libvirtd on %s: signal %d: %w", h.name, p.PID, err)
			}
		}
	}
	if !found {
		return fmt.Errorf("stop libvirtd on %s: no libvirtd child of nsenter %d found", h.name, cmd.Process.Pid)
	}
	if !waitDone(done, h.c.cfg.StopTimeout) {
		return fmt.Errorf("stop libvirtd on %s: still running %v after %v", h.name, h.c.cfg.StopTimeout, sig)
	}
	return nil
}

// newHostUUID returns a random RFC 4122 version 4 UUID.
func newHostUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// libvirtd is a host's libvirt daemon.
type libvirtd struct{ *Host }

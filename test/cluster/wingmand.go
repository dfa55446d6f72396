package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wingmanha/wingman/quorum/gossip"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/maintenance"
)

// WingmanClusterName is the cluster name of the heartbeat LUN that the harness formats.
const WingmanClusterName = "testcluster"

// SerfPort is where each host's wingmand gossips, on the host's address.
const SerfPort = 7946

// WingmandOptions says how to run wingmand on a host. The first StartWingmand of a cluster
// formats the heartbeat LUN with Profile's timings; later calls must ask for the same Profile.
type WingmandOptions struct {
	// Profile is the timing profile: "default" (LUN formatted with storage.DefaultTimings, serf
	// profile default) or "fast" (storage.FastTimings, serf profile fast). "" means "default".
	Profile string
	// LeaseCeiling is the LUN's network-lease ceiling (lun format --lease-ceiling); 0 keeps
	// the profile's (60 s). Like Profile, it is set by the first StartWingmand of a cluster.
	LeaseCeiling time.Duration
	// Fence configures the test fence agent (test/fenceagent) for every other host. The agent
	// records OFF in the target's state file (Host.FenceStateFile); the harness watches those
	// files like a BMC and powers the host off when one says OFF, then writes ON again at the
	// next PowerOn. The agent's kill_pid cannot reach a process of another host's PID namespace.
	Fence bool
	// FenceLevels, with Fence, gives every other host fencing levels instead of the single
	// agent: one [fence_device] per entry, in order, each the test agent with the entry's
	// extra parameters (delay=1h hangs, fail=1 fails, confirm=never keeps reporting on; none:
	// it confirms) and timeout.
	FenceLevels []FenceDevice
	// ShutdownPolicy is shutdown.policy (migrate, failover, freeze, keep); "" means migrate. It
	// applies at Host.ShutdownWingmand and at a reboot, not at StopWingmand.
	ShutdownPolicy string
	// LogLevel is wingmand's --log-level; "" means debug.
	LogLevel string
	// HardwareWatchdog gives wingmand an emulated hardware watchdog
	// (watchdog.mode file): the harness, playing the hardware, powers the
	// host off when wingmand has not petted it for W, also while every
	// process of the host is frozen. Without it wingmand uses the software
	// watchdog, which cannot reset a frozen host.
	HardwareWatchdog bool
	// CPUOvercommit is placement.cpu_overcommit, the guest vCPUs each host takes per
	// logical CPU; 0 leaves wingmand's default (4). All test hosts share this machine's
	// cores, so a failover of more than 4 vCPUs per core per survivor needs more.
	CPUOvercommit float64
	// GuestAgentWait is failover.guest_agent_wait; 0 leaves wingmand's default (5m).
	GuestAgentWait time.Duration
	// Keyring is serf's keyring file; "" is the cluster's (one key for every host). Another
	// file plays a host configured with the wrong key.
	Keyring string
	// IsolationAddresses are isolation.addresses (IP addresses or host names); none: the
	// section is left out. The switch's own address, ClientAddr, plays the gateway.
	IsolationAddresses []string
	// Binary is the wingmand binary to run; "" is this tree's build. A build of an older
	// commit (BuildCommit) plays a host not yet upgraded.
	Binary string
}

// FenceDevice is one fencing level of WingmandOptions.FenceLevels.
type FenceDevice struct {
	Params  map[string]string
	Timeout time.Duration
}

// wingmanSetup is what every host's wingmand shares: the LUN, the keyring, the binaries.
type wingmanSetup struct {
	once    sync.Once
	err     error
	profile string
	ceiling time.Duration
	luns    []string
	keyring string
	bin     string
	fence   string // fence agent binary

	bmcOnce sync.Once
	bmcStop chan struct{}
	bmcDone chan struct{}
	reboots sync.WaitGroup // reboots in progress (reboot.go)
}

// wingmandProc is a running wingmand of a host.
type wingmandProc struct {
	cmd  *exec.Cmd // nsenter; wingmand is its child
	done <-chan struct{}
	opts WingmandOptions // to start it again after a reboot
}

// LUNs are the heartbeat LUNs of the cluster's wingmand.
func (c *Cluster) LUNs() LUNs { return LUNs{c} }

// LUNs are the heartbeat LUNs of a cluster's wingmand: their files and each host's path to each.
type LUNs struct{ c *Cluster }

// Paths are the heartbeat LUN files (in the cluster directory, which every host sees: a file LUN
// on ext4 with O_DIRECT is shared storage here): lun.img, and with Config.HeartbeatLUNs 3,
// lun2.img and lun3.img beside it, in the order every host names them.
func (l LUNs) Paths() []string {
	paths := []string{filepath.Join(l.c.dir, "lun.img")}
	for m := 2; m <= l.c.cfg.HeartbeatLUNs; m++ {
		paths = append(paths, filepath.Join(l.c.dir, fmt.Sprintf("lun%d.img", m)))
	}
	return paths
}

// WingmanDir is the host's wingmand directory: wingman.toml, state/, the API socket and the log.
func (h *Host) WingmanDir() string { return filepath.Join(h.dir, "wingman") }

// APISocket is the unix socket of the host's wingmand API, reachable from the harness (use
// api.NewClient).
func (h *Host) APISocket() string { return filepath.Join(h.WingmanDir(), "api.sock") }

// WingmandLog is the file that gets the host's wingmand's stdout and stderr.
func (h *Host) WingmandLog() string { return filepath.Join(h.dir, "log", "wingmand.log") }

// FenceStateFile is where the test fence agent records the host's power state (ON or OFF).
func (h *Host) FenceStateFile() string { return filepath.Join(h.c.dir, "fence", h.name+".state") }

// setupWingman formats the LUN (once per cluster), writes the serf keyring, builds wingmand and
// the fence agent, and registers every host's slot on the LUN so that each wingmand knows all
// hosts by name from its first start (fence agents are keyed by host name and apply only to
// hosts with a slot).
func (c *Cluster) setupWingman(ctx context.Context, profile string, ceiling time.Duration) error {
	s := &c.wingman
	s.once.Do(func() {
		s.profile, s.ceiling = profile, ceiling
		s.err = c.doSetupWingman(ctx, profile, ceiling)
	})
	if s.err != nil {
		return s.err
	}
	if s.profile != profile {
		return fmt.Errorf("start wingmand with profile %q: the cluster's LUN was formatted with profile %q", profile, s.profile)
	}
	if s.ceiling != ceiling {
		return fmt.Errorf("start wingmand with lease ceiling %v: the cluster's LUN was formatted with %v", ceiling, s.ceiling)
	}
	return nil
}

func (c *Cluster) doSetupWingman(ctx context.Context, profile string, ceiling time.Duration) error {
	s := &c.wingman
	timings, err := storage.TimingsProfile(profile)
	if err != nil {
		return err
	}
	if ceiling != 0 {
		timings.LeaseCeiling = ceiling
	}
	if s.bin, err = BuildBinary(ctx, "./cmd/wingmand", false, WingmandTestTags...); err != nil {
		return err
	}
	if s.fence, err = BuildBinary(ctx, "./test/fenceagent", false); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(c.dir, "fence"), 0o755); err != nil {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	s.keyring = filepath.Join(c.dir, "keyring.json")
	if err := gossip.WriteKeyringFile(s.keyring, base64.StdEncoding.EncodeToString(key)); err != nil {
		return err
	}
	s.luns = c.LUNs().Paths()
	geo := storage.DefaultGeometry()
	if geo.MaxHosts < len(c.hosts) {
		geo.MaxHosts = len(c.hosts)
	}
	if err := formatLUNs(ctx, s.luns, storage.FormatOptions{ClusterName: WingmanClusterName, Timings: timings, Geometry: geo}); err != nil {
		return err
	}
	lun, err := openLUNs(ctx, s.luns, storage.OpenOptions{ClusterName: WingmanClusterName})
	if err != nil {
		return fmt.Errorf("open LUN: %w", err)
	}
	defer lun.Close()
	// Register every host's slot as left: acquiring waits a few heartbeat intervals, so all at once.
	errs := make([]error, len(c.hosts))
	var wg sync.WaitGroup
	for i, h := range c.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hb, err := lun.AcquireSlot(ctx, storage.AcquireOptions{HostName: h.name, HostID: h.index})
			if err == nil {
				err = hb.Release(ctx, storage.SlotLeft)
			}
			if err != nil {
				errs[i] = fmt.Errorf("register slot %d for %s: %w", h.index, h.name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeWingmanConfig writes the host's wingman.toml and returns its path.
func (c *Cluster) writeWingmanConfig(h *Host, o WingmandOptions) (string, error) {
	s := &c.wingman
	dir := h.WingmanDir()
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o750); err != nil {
		return "", err
	}
	var join []string
	for _, o := range c.hosts {
		if o != h {
			join = append(join, strconv.Quote(fmt.Sprintf("%s:%d", o.addr, SerfPort)))
		}
	}
	policy := o.ShutdownPolicy
	if policy == "" {
		policy = "migrate"
	}
	keyring := s.keyring
	if o.Keyring != "" {
		keyring = o.Keyring
	}
	wdMode := "software"
	if o.HardwareWatchdog {
		wdMode = "file"
		c.startBMC()
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by wingman's test/cluster for host %[1]s.
cluster = %[2]q
lun = [%[3]s]
host_name = %[1]q
host_id = %[4]d
state_dir = %[5]q

[libvirt]
uri = "qemu:///system"
migration_uri = "qemu+tcp://{addr}/system"
unsafe_migration = true

[serf]
bind = "%[6]s:%[7]d"
join = [%[8]s]
keyring = %[9]q
profile = %[10]q

[api]
socket = %[11]q
group = "wingman"

[watchdog]
mode = %[13]q
device = %[14]q

[shutdown]
policy = %[12]q
timeout = "2m"

[maintenance]
reboot_command = %[15]q
`, h.name, WingmanClusterName, quoteAll(s.luns), h.index, filepath.Join(dir, "state"), h.addr, SerfPort,
		strings.Join(join, ", "), keyring, s.profile, h.APISocket(), policy, wdMode, h.WatchdogFile(), h.rebootCommand())
	if o.CPUOvercommit != 0 {
		fmt.Fprintf(&b, "\n[placement]\ncpu_overcommit = %g\n", o.CPUOvercommit)
	}
	if o.GuestAgentWait != 0 {
		fmt.Fprintf(&b, "\n[failover]\nguest_agent_wait = %q\n", o.GuestAgentWait.String())
	}
	if len(o.IsolationAddresses) > 0 {
		fmt.Fprintf(&b, "\n[isolation]\naddresses = [\"%s\"]\n", strings.Join(o.IsolationAddresses, `", "`))
	}
	if o.Fence {
		for _, t := range c.hosts {
			if t == h {
				continue
			}
			if len(o.FenceLevels) == 0 {
				fmt.Fprintf(&b, `
[fence.%[1]s]
agent = %[2]q
timeout = "20s"
params = { state_file = %[3]q, plug = %[1]q }
`, t.name, s.fence, t.FenceStateFile())
				continue
			}
			var levels []string
			for i, d := range o.FenceLevels {
				name := fmt.Sprintf("%s-%d", t.name, i+1)
				levels = append(levels, strconv.Quote(name))
				params := fmt.Sprintf("state_file = %q, plug = %q", t.FenceStateFile(), t.name)
				for _, k := range slices.Sorted(maps.Keys(d.Params)) {
					params += fmt.Sprintf(", %s = %q", k, d.Params[k])
				}
				fmt.Fprintf(&b, "\n[fence_device.%s]\nagent = %q\ntimeout = %q\nparams = { %s }\n", name, s.fence, d.Timeout.String(), params)
			}
			fmt.Fprintf(&b, "\n[fence.%s]\nlevels = [%s]\n", t.name, strings.Join(levels, ", "))
		}
	}
	p := filepath.Join(dir, "wingman.toml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// StartWingmand writes h's wingman.toml and starts wingmand inside h (all its namespaces), with
// its output appended to h.WingmandLog(). It returns once the API socket answers, which the
// daemon opens after it has joined (slot acquired, serf started, first heartbeat written). The
// first call of a cluster formats the LUN and builds the binaries.
func (c *Cluster) StartWingmand(ctx context.Context, h *Host, o WingmandOptions) error {
	if o.Profile == "" {
		o.Profile = "default"
	}
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	if !h.On() {
		return fmt.Errorf("start wingmand on %s: the host is powered off", h.name)
	}
	if h.WingmandRunning() {
		return fmt.Errorf("start wingmand on %s: it is already running", h.name)
	}
	if err := c.setupWingman(ctx, o.Profile, o.LeaseCeiling); err != nil {
		return fmt.Errorf("start wingmand on %s: %w", h.name, err)
	}
	c.startBMC() // fences, the emulated watchdog, reboots
	cfgPath, err := c.writeWingmanConfig(h, o)
	if err != nil {
		return fmt.Errorf("start wingmand on %s: %w", h.name, err)
	}
	logf, err := os.OpenFile(h.WingmandLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start wingmand on %s: %w", h.name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== test cluster: starting wingmand at %s\n", time.Now().Format(time.RFC3339Nano))
	os.Remove(h.APISocket()) // a stale socket from a killed daemon would answer nothing
	bin := c.wingman.bin
	if o.Binary != "" {
		bin = o.Binary
	}
	cmd := h.Command(context.Background(), bin, "--config", cfgPath, "--log-level", o.LogLevel)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := startBound(cmd); err != nil {
		return fmt.Errorf("start wingmand on %s: %w", h.name, err)
	}
	done := waited(cmd)
	h.mu.Lock()
	h.wingmand = &wingmandProc{cmd: cmd, done: done, opts: o}
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	err = pollUntil(ctx, 50*time.Millisecond, func() (bool, error) {
		select {
		case <-done:
			return false, fmt.Errorf("wingmand exited")
		default:
		}
		return apiAnswers(h.APISocket()), nil
	})
	if err != nil {
		return fmt.Errorf("start wingmand on %s: %w; end of %s:\n%s", h.name, err, h.WingmandLog(), tail(h.WingmandLog(), 20))
	}
	return nil
}

// apiAnswers reports whether a unix socket accepts a connection.
func apiAnswers(socket string) bool {
	conn, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// WingmandRunning reports whether wingmand runs on h.
func (h *Host) WingmandRunning() bool {
	h.mu.Lock()
	w := h.wingmand
	h.mu.Unlock()
	if w == nil {
		return false
	}
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// WingmandPID is the harness-side PID of h's wingmand, 0 if it does not run.
func (h *Host) WingmandPID() int {
	h.mu.Lock()
	w, pidNS := h.wingmand, h.pidNS
	h.mu.Unlock()
	if w == nil || !h.WingmandRunning() {
		return 0
	}
	procs, _ := processesIn(pidNS)
	for _, p := range procs {
		if p.PPID == w.cmd.Process.Pid {
			return p.PID
		}
	}
	return 0
}

// StopWingmand sends SIGTERM to h's wingmand and waits until it has exited, at most timeout.
// Only the service stops (a restart, an upgrade): the guests stay, and shutdown.policy does not
// apply, since no systemd here says the host is going down (see Host.ShutdownWingmand).
func (c *Cluster) StopWingmand(h *Host, timeout time.Duration) error {
	return h.signalWingmand(syscall.SIGTERM, timeout)
}

// ShutdownWingmand stops h's wingmand as the host's own shutdown or reboot does: the
// host-shutdown file in its runtime directory (maintenance.HostShutdownFile, which stands in for
// systemd's shutdown job here) tells it the host is going down, so its shutdown policy runs; then
// SIGTERM, and a wait of at most timeout.
func (h *Host) ShutdownWingmand(timeout time.Duration) error {
	if err := os.WriteFile(filepath.Join(h.WingmanDir(), maintenance.HostShutdownFile), nil, 0o600); err != nil {
		return fmt.Errorf("shut down wingmand on %s: %w", h.name, err)
	}
	return h.signalWingmand(syscall.SIGTERM, timeout)
}

// KillWingmand kills h's wingmand with SIGKILL (a daemon crash) and waits until it is gone. The
// host's guests and libvirtd keep running.
func (c *Cluster) KillWingmand(h *Host) error {
	return h.signalWingmand(syscall.SIGKILL, c.cfg.StopTimeout)
}

func (h *Host) signalWingmand(sig syscall.Signal, timeout time.Duration) error {
	h.mu.Lock()
	w := h.wingmand
	h.mu.Unlock()
	if w == nil || !h.WingmandRunning() {
		return fmt.Errorf("signal wingmand on %s: it is not running", h.name)
	}
	pid := h.WingmandPID()
	if pid == 0 {
		return fmt.Errorf("signal wingmand on %s: no wingmand child of nsenter %d", h.name, w.cmd.Process.Pid)
	}
	if err := syscall.Kill(pid, sig); err != nil && !isNotRunning(err) {
		return fmt.Errorf("signal wingmand on %s: %w", h.name, err)
	}
	if !waitDone(w.done, timeout) {
		return fmt.Errorf("signal wingmand on %s: still running %v after %v", h.name, timeout, sig)
	}
	return nil
}

// Freeze stops every process of h with SIGSTOP (init, libvirtd, QEMU, wingmand): the whole
// host hangs, as a machine stalled by the hypervisor below it or a kernel hiccup. It repeats
// until no process of the host is left running (a process forked meanwhile is stopped too).
func (c *Cluster) Freeze(h *Host) error {
	if !h.On() {
		return fmt.Errorf("freeze %s: the host is powered off", h.name)
	}
	for range 50 {
		procs, err := processesIn(h.PIDNamespace())
		if err != nil {
			return fmt.Errorf("freeze %s: %w", h.name, err)
		}
		all := true
		for _, p := range procs {
			if processState(p.PID) != 'T' {
				all = false
				_ = syscall.Kill(p.PID, syscall.SIGSTOP)
			}
		}
		if all {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("freeze %s: processes keep running after SIGSTOP", h.name)
}

// Thaw resumes every process of h with SIGCONT, after Freeze, and repeats until none is left
// stopped.
func (c *Cluster) Thaw(h *Host) error {
	for range 50 {
		procs, err := processesIn(h.PIDNamespace())
		if err != nil {
			return fmt.Errorf("thaw %s: %w", h.name, err)
		}
		stopped := false
		for _, p := range procs {
			if processState(p.PID) == 'T' {
				stopped = true
				_ = syscall.Kill(p.PID, syscall.SIGCONT)
			}
		}
		// The nsenter parents of libvirtd and wingmand stopped with them;
		// left stopped they would never reap their child.
		for _, pid := range outsideParents(procs) {
			if processState(pid) == 'T' {
				stopped = true
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		if !stopped {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("thaw %s: processes stay stopped after SIGCONT", h.name)
}

// processState is the state letter of /proc/<pid>/stat (R, S, D, T, t, Z, ...), 0 if gone.
func processState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// ProcessState is the state letter of a process of the machine (R, S, D, T for stopped, Z), 0
// if it is gone.
func ProcessState(pid int) byte { return processState(pid) }

// startBMC starts the harness's "baseboard management controller": it watches every host's
// fence state file and powers the host off when the fence agent has written OFF there.
func (c *Cluster) startBMC() {
	s := &c.wingman
	s.bmcOnce.Do(func() {
		s.bmcStop, s.bmcDone = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(s.bmcDone)
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-s.bmcStop:
					return
				case <-t.C:
				}
				for _, h := range c.hosts {
					(rebooter{c}).checkRebootRequest(h)
					// The emulated hardware watchdog: reset a host whose
					// wingmand has not petted it for W.
					if st, err := os.Stat(h.WatchdogFile()); err == nil && h.On() && time.Since(st.ModTime()) > s.watchdogTimeout() {
						fmt.Fprintf(os.Stderr, "test cluster: watchdog of %s not petted for %v: resetting it\n", h.name, time.Since(st.ModTime()).Round(time.Millisecond))
						os.Remove(h.WatchdogFile())
						if err := h.powerOff(); err != nil {
							fmt.Fprintf(os.Stderr, "test cluster: watchdog reset of %s: %v\n", h.name, err)
						}
						continue
					}
					b, err := os.ReadFile(h.FenceStateFile())
					if err != nil || strings.TrimSpace(string(b)) != "OFF" || !h.On() {
						continue
					}
					if err := h.powerOff(); err != nil {
						fmt.Fprintf(os.Stderr, "test cluster: fence %s: %v\n", h.name, err)
					}
				}
			}
		}()
	})
}

// WatchdogFile is the file wingmand pets with an emulated hardware watchdog.
func (h *Host) WatchdogFile() string { return filepath.Join(h.dir, "watchdog") }

// watchdogTimeout is W of the cluster's timing profile.
func (s *wingmanSetup) watchdogTimeout() time.Duration {
	if s.profile == "fast" {
		return storage.FastTimings().Watchdog
	}
	return storage.DefaultTimings().Watchdog
}

// stopBMC ends the fence watcher, if it runs.
func (c *Cluster) stopBMC() {
	s := &c.wingman
	if s.bmcStop != nil {
		select {
		case <-s.bmcStop:
		default:
			close(s.bmcStop)
		}
		<-s.bmcDone
		s.reboots.Wait()
	}
}

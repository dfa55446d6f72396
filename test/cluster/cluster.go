package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrPrerequisite marks errors saying that this machine cannot run a cluster (not root, a
// program or the libvirt-qemu user missing). New skips the test on it, unless CI is set.
var ErrPrerequisite = errors.New("test cluster prerequisite missing")

// maxSocketPath is the longest path a Unix socket can have on Linux (sun_path less its NUL).
const maxSocketPath = 107

// dirPrefix starts the name of every cluster directory; the owner's PID follows.
const dirPrefix = "wingman-cluster-"

// Cluster is a running set of hosts on a private switch, with a directory shared by all hosts for
// guest disks. All its methods are safe for concurrent use.
type Cluster struct {
	cfg        Config
	dir        string
	sharedDir  string
	domainType string
	hosts      []*Host

	sw     *exec.Cmd // holds the switch's network namespace
	swDone <-chan struct{}

	mu        sync.Mutex
	nbd       map[*NBDServer]struct{}
	nbdCount  int
	closeOnce sync.Once
	closeErr  error

	wingman wingmanSetup
}

// New starts a cluster for a test and closes it when the test ends (also when it fails or
// panics). It skips the test in -short mode and when the machine lacks a prerequisite (see
// Prerequisites), except when the environment variable CI is set: there it fails, so that CI
// never passes by skipping. Any other error fails the test.
func New(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("test cluster: skipped in -short mode (it starts real libvirtd and QEMU)")
	}
	c, err := Start(context.Background(), cfg)
	if err != nil {
		if errors.Is(err, ErrPrerequisite) && os.Getenv("CI") == "" {
			t.Skipf("test cluster: %v", err)
		}
		t.Fatalf("test cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.LogTails(t)
		}
		if err := c.Close(); err != nil {
			t.Errorf("test cluster: close: %v", err)
		}
	})
	return c
}

// Start brings up a cluster: the switch, then every host (namespaces, network, libvirtd
// answering). On error everything started so far is torn down. The caller must Close the
// cluster; if the process dies instead, the kernel kills every host with it, and the next Start
// removes the directory left behind.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := Prerequisites(); err != nil {
		return nil, err
	}
	domainType := cfg.DomainType
	if domainType == "" {
		domainType = DefaultDomainType()
	}
	removeStaleDirs(cfg.BaseDir)
	// A root libvirtd always uses these paths; each host bind-mounts its own directory over them,
	// and a bind mount needs its target to exist.
	for _, d := range fixedLibvirtDirs {
		if err := os.MkdirAll(d.target, 0o755); err != nil {
			return nil, fmt.Errorf("create %s to bind-mount over it: %w", d.target, err)
		}
	}
	if err := os.MkdirAll(cfg.BaseDir, 0o755); err != nil {
		return nil, fmt.Errorf("create base dir: %w", err)
	}
	dir, err := os.MkdirTemp(cfg.BaseDir, fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("create cluster dir in %s: %w", cfg.BaseDir, err)
	}
	// The harness reaches each libvirtd by its socket file in the host's run dir, and a Unix
	// socket path has at most 107 bytes: past that, libvirtd would start but never answer.
	if sock := filepath.Join(dir, "hosts", cfg.NamePrefix+strconv.Itoa(cfg.Hosts), "run", "libvirt-sock"); len(sock) > maxSocketPath {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("config: BaseDir %s is too long: the libvirtd socket %s would have %d bytes, over the %d of a Unix socket path: use a shorter BaseDir or NamePrefix",
			cfg.BaseDir, sock, len(sock), maxSocketPath)
	}
	c := &Cluster{
		cfg:        cfg,
		dir:        dir,
		sharedDir:  filepath.Join(dir, "shared"),
		domainType: domainType,
		nbd:        map[*NBDServer]struct{}{},
	}
	register(c)
	if err := os.MkdirAll(filepath.Join(c.sharedDir, LockspaceSubdir), 0o755); err != nil {
		c.Close()
		return nil, fmt.Errorf("create shared dir: %w", err)
	}
	if err := (lanSwitch{c}).startSwitch(ctx); err != nil {
		c.Close()
		return nil, err
	}
	for n := 1; n <= cfg.Hosts; n++ {
		uuid, err := newHostUUID()
		if err != nil {
			c.Close()
			return nil, err
		}
		name := cfg.NamePrefix + strconv.Itoa(n)
		c.hosts = append(c.hosts, &Host{
			c:        c,
			index:    n,
			name:     name,
			addr:     cfg.hostAddr(n),
			dir:      filepath.Join(dir, "hosts", name),
			hostUUID: uuid,
		})
	}
	// Hosts come up in parallel: most of a cold libvirtd start is probing QEMU.
	errs := make([]error, len(c.hosts))
	var wg sync.WaitGroup
	for i, h := range c.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.powerOn(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, fmt.Errorf("start cluster in %s: %w", dir, err)
	}
	return c, nil
}

// Prerequisites reports, wrapped in ErrPrerequisite, what this machine lacks to run a cluster.
func Prerequisites() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: must run as root (namespaces, mounts, libvirtd): run the tests with sudo", ErrPrerequisite)
	}
	var missing []string
	for _, p := range []string{"libvirtd", "virtlockd", "losetup", "virsh", "qemu-system-x86_64", "qemu-nbd", "nsenter", "ip", "bash", "timeout", "sleep"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: programs not found: %s: run `make deps` (Debian packages libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils iproute2)",
			ErrPrerequisite, strings.Join(missing, ", "))
	}
	// libvirtd resolves its built-in default QEMU user before it reads qemu.conf.
	if _, err := user.Lookup("libvirt-qemu"); err != nil {
		return fmt.Errorf("%w: user libvirt-qemu does not exist (libvirtd's QEMU driver refuses to start without it): run `make deps`", ErrPrerequisite)
	}
	return nil
}

// Hosts returns the hosts, the first (kvm1) first.
func (c *Cluster) Hosts() []*Host { return append([]*Host(nil), c.hosts...) }

// Host returns the host with the given name, or nil.
func (c *Cluster) Host(name string) *Host {
	for _, h := range c.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

// Config returns the configuration the cluster was started with.
func (c *Cluster) Config() Config { return c.cfg }

// Dir is the cluster's directory: hosts/<name>/ for each host, shared/ for guest disks.
func (c *Cluster) Dir() string { return c.dir }

// SharedDir is the directory every host sees at the same path, for guest disks (plain ext4 or
// whatever BaseDir is on: libvirt calls migration with it unsafe, so pass the unsafe flag).
func (c *Cluster) SharedDir() string { return c.sharedDir }

// DomainType is the domain type of the guests made by NewGuest: "kvm" or "qemu".
func (c *Cluster) DomainType() string { return c.domainType }

// PowerOff cuts the power of h: it kills the init of h's PID namespace, so the kernel kills
// libvirtd, every QEMU and whatever else runs in h at once, and waits until all are gone. h's
// network namespace and its veth go with it. Nothing is shut down cleanly. Powering off a host
// that is off does nothing.
func (c *Cluster) PowerOff(h *Host) error { return h.powerOff() }

// PowerOn boots h again after PowerOff: new namespaces, run/ emptied (as a reboot empties /run),
// a new veth on the switch (healed), libvirtd started and answering. Persistent guest definitions
// in lib/ survive; guests do not run (nothing autostarts unless marked so in libvirt).
func (c *Cluster) PowerOn(ctx context.Context, h *Host) error { return h.powerOn(ctx) }

// KillLibvirtd kills h's libvirtd with SIGKILL (a daemon crash) and waits until it is gone. Its
// guests keep running.
func (c *Cluster) KillLibvirtd(h *Host) error { return (libvirtd{h}).stopLibvirtd(syscall.SIGKILL) }

// RestartLibvirtd starts h's libvirtd again inside h's namespaces (libvirt records
// namespace-relative PIDs, so it must see the same /proc) and waits until it answers; a running
// libvirtd is first stopped with SIGTERM, as a service restart does. Running guests are picked
// up again by the new daemon.
func (c *Cluster) RestartLibvirtd(ctx context.Context, h *Host) error {
	if !h.On() {
		return fmt.Errorf("restart libvirtd on %s: the host is powered off: use PowerOn", h.name)
	}
	if (libvirtd{h}).libvirtdRunning() {
		if err := (libvirtd{h}).stopLibvirtd(syscall.SIGTERM); err != nil {
			return fmt.Errorf("restart libvirtd: %w", err)
		}
	}
	return (libvirtd{h}).startLibvirtd(ctx)
}

// Close powers off every host, stops the NBD servers and the switch, and removes the cluster's
// directory unless Config.KeepDir. It is safe to call more than once and returns the first
// result each time.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.stopBMC()
		var errs []error
		var wg sync.WaitGroup
		herrs := make([]error, len(c.hosts))
		for i, h := range c.hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				herrs[i] = h.powerOff()
			}()
		}
		wg.Wait()
		errs = append(errs, herrs...)
		c.mu.Lock()
		servers := make([]*NBDServer, 0, len(c.nbd))
		for s := range c.nbd {
			servers = append(servers, s)
		}
		c.mu.Unlock()
		for _, s := range servers {
			errs = append(errs, c.KillNBD(s))
		}
		if c.sw != nil {
			_ = c.sw.Process.Signal(syscall.SIGKILL)
			if !waitDone(c.swDone, c.cfg.StopTimeout) {
				errs = append(errs, fmt.Errorf("switch process %d still there after %v", c.sw.Process.Pid, c.cfg.StopTimeout))
			}
		}
		unregister(c)
		if !c.cfg.KeepDir {
			if err := os.RemoveAll(c.dir); err != nil {
				errs = append(errs, fmt.Errorf("remove cluster dir: %w", err))
			}
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// LogTails writes the end of each host's libvirtd log to the test log, to explain a failure. New
// calls it when the test failed; tests sharing a cluster started with Start call it themselves.
func (c *Cluster) LogTails(t testing.TB) {
	for _, h := range c.hosts {
		for _, f := range []string{"libvirtd.out", "libvirtd.log", "wingmand.log"} {
			p := filepath.Join(h.dir, "log", f)
			n := 20
			if f == "wingmand.log" {
				n = 60
			}
			if s := tail(p, n); s != "" {
				t.Logf("test cluster: end of %s:\n%s", p, s)
			}
		}
	}
}

// live holds the clusters not yet closed, for the signal handler.
var live struct {
	mu       sync.Mutex
	clusters map[*Cluster]struct{}
	once     sync.Once
}

// register records c and, once per process, installs a handler that closes every cluster on
// SIGINT, SIGTERM or SIGHUP and then dies of that signal. A SIGKILL or a crash cannot be handled:
// then the parent-death signal of the host inits kills the hosts.
func register(c *Cluster) {
	live.mu.Lock()
	defer live.mu.Unlock()
	if live.clusters == nil {
		live.clusters = map[*Cluster]struct{}{}
	}
	live.clusters[c] = struct{}{}
	live.once.Do(func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		go func() {
			s := <-sigs
			live.mu.Lock()
			var all []*Cluster
			for c := range live.clusters {
				all = append(all, c)
			}
			live.mu.Unlock()
			fmt.Fprintf(os.Stderr, "test cluster: %v: closing %d cluster(s)\n", s, len(all))
			for _, c := range all {
				_ = c.Close()
			}
			signal.Reset(s)
			_ = syscall.Kill(os.Getpid(), s.(syscall.Signal))
			time.Sleep(time.Second) // let the signal arrive
			os.Exit(1)
		}()
	})
}

func unregister(c *Cluster) {
	live.mu.Lock()
	defer live.mu.Unlock()
	delete(live.clusters, c)
}

// removeStaleDirs removes the directories of clusters whose process died without Close (a
// SIGKILL, a test binary's timeout panic). Their hosts are already dead (parent-death signal).
func removeStaleDirs(base string) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), dirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // owner alive
		}
		_ = os.RemoveAll(filepath.Join(base, e.Name()))
	}
}

package systemd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cacheDir holds the debootstrapped roots, one per package list.
const cacheDir = "/var/cache/wingman-test"

// suite is the Debian release of the root, that of the machines Wingman
// supports.
const suite = "bookworm"

// rootPackages are installed into the root besides debootstrap's minbase:
// systemd as PID 1 (libpam-systemd gives polkitd the logind it depends on,
// which debootstrap does not resolve), and libvirtd with QEMU for the guest.
// wingman's own dependencies are among them: `apt-get install ./x.deb` needs
// no mirror.
var rootPackages = []string{"systemd", "systemd-sysv", "dbus", "libpam-systemd", "adduser",
	"libvirt-daemon-system", "libvirt-daemon-driver-qemu", "qemu-system-x86"}

// rootSetup runs in the new root (chroot) after debootstrap. libvirt gets
// no cgroup controllers: on a cgroup v1 machine nspawn mounts them read-only
// and QEMU would not start. The journal is persistent so that the journal
// of a boot is read after the next.
const rootSetup = `set -e
echo 'cgroup_controllers = [ ]' >> /etc/libvirt/qemu.conf
mkdir -p /var/log/journal
echo wingman-systemd-test > /etc/hostname
`

// prerequisite skips the test, or fails it under CI, where the machine must
// be able to run it.
func prerequisite(t *testing.T, format string, a ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI: "+format, a...)
	}
	t.Skipf(format, a...)
}

// cachedRoot returns the debootstrapped root for rootPackages and rootSetup,
// building it first when this machine has none (a few minutes, once).
func cachedRoot(t *testing.T) string {
	t.Helper()
	sum := sha256.Sum256([]byte(suite + "\n" + strings.Join(rootPackages, ",") + "\n" + rootSetup))
	dir := filepath.Join(cacheDir, "systemd-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		prerequisite(t, "cannot create the root cache %s: %v", cacheDir, err)
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir, "systemd.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/sbin/libvirtd")); err == nil {
		return dir
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	t0 := time.Now()
	out, err := exec.Command("debootstrap", "--variant=minbase", "--include="+strings.Join(rootPackages, ","), suite, tmp).CombinedOutput()
	if err != nil {
		os.RemoveAll(tmp)
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		prerequisite(t, "cannot debootstrap Debian %s (the mirror must be reachable once): %v\n%s", suite, err,
			strings.Join(lines[max(0, len(lines)-5):], "\n"))
	}
	if out, err := exec.Command("chroot", tmp, "sh", "-c", rootSetup).CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		t.Fatalf("set the root up: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("debootstrapped %s in %v", dir, time.Since(t0).Round(time.Second))
	return dir
}

// container is one boot of the root, with systemd as PID 1.
type container struct {
	t      *testing.T
	name   string
	leader int // PID 1 of the container, as this machine sees it
	nspawn *exec.Cmd
	done   chan struct{}
	log    string
}

// overlay mounts dir with an upper layer of its own under t's temporary
// directory and returns the merged tree: the changes of a run (the package,
// the journal) last across its boots, and the cached root stays untouched.
func overlay(t *testing.T, lower string) string {
	t.Helper()
	base := t.TempDir()
	upper, work, merged := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "root")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		prerequisite(t, "cannot mount an overlay on the cached root: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(merged, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})
	return merged
}

// boot starts systemd in root, with binds ("HOST:CONTAINER") and a network
// of its own (loopback only), and returns once the system has started.
func boot(t *testing.T, root string, binds ...string) *container {
	t.Helper()
	c := &container{t: t, name: "wingman-systemd-test", done: make(chan struct{}), log: filepath.Join(t.TempDir(), "console.log")}
	args := []string{"--boot", "--directory", root, "--machine", c.name, "--register=no", "--keep-unit",
		"--private-network", "--console=passive"}
	for _, b := range binds {
		args = append(args, "--bind="+b)
	}
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	c.nspawn = exec.Command("systemd-nspawn", args...)
	c.nspawn.Stdout, c.nspawn.Stderr = logf, logf
	if err := c.nspawn.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.nspawn.Wait(); close(c.done) }()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.nspawn.Process.Signal(syscall.SIGTERM) // nspawn asks the container to power off
			select {
			case <-c.done:
			case <-time.After(time.Minute):
				c.nspawn.Process.Kill()
				<-c.done
			}
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for c.leader == 0 {
		select {
		case <-c.done:
			b, _ := os.ReadFile(c.log)
			prerequisite(t, "systemd-nspawn cannot boot the root here: %v\n%s", c.nspawn.ProcessState, tail(b, 15))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the container's PID 1 did not appear within 2 minutes")
		}
		c.leader = containerInit(c.nspawn.Process.Pid)
	}
	// degraded: a unit failed (libvirt's default network has no dnsmasq);
	// wingmand's checks look at its own units. Until systemd listens on its
	// socket, systemctl cannot connect, or says offline.
	for {
		out, _ := c.sh("systemctl is-system-running --wait")
		s := strings.TrimSpace(out)
		if s == "running" || s == "degraded" {
			return c
		}
		if time.Now().After(deadline) || !(strings.Contains(s, "Failed to connect to bus") || s == "offline") {
			b, _ := os.ReadFile(c.log)
			t.Fatalf("the container's systemd is %q after booting\n%s", s, tail(b, 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// containerInit is the child of nspawn that is PID 1 in its PID namespace.
func containerInit(nspawn int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nspawn, nspawn))
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, l := range strings.Split(string(status), "\n") {
			if ns, ok := strings.CutPrefix(l, "NSpid:"); ok && strings.HasSuffix(strings.TrimSpace(ns), "\t1") {
				return pid
			}
		}
	}
	return 0
}

// sh runs a shell script inside the container (all its namespaces, a clean
// environment) and returns its output, stdout and stderr together.
func (c *container) sh(script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--target", strconv.Itoa(c.leader), "--all",
		"env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive", "HOME=/root",
		"sh", "-c", script)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs script and fails the test when it fails.
func (c *container) must(script string) string {
	c.t.Helper()
	out, err := c.sh(script)
	if err != nil {
		c.t.Fatalf("in the container: %s\n%v\n%s", script, err, out)
	}
	return strings.TrimSpace(out)
}

// poweroff runs `systemctl poweroff` and waits for the container to end.
func (c *container) poweroff(timeout time.Duration) {
	c.t.Helper()
	if out, err := c.sh("systemctl poweroff"); err != nil {
		c.t.Fatalf("systemctl poweroff: %v\n%s", err, out)
	}
	select {
	case <-c.done:
	case <-time.After(timeout):
		jobs, _ := c.sh("systemctl list-jobs --no-pager; journalctl -q -n 40 --no-pager")
		c.t.Fatalf("the container did not power off within %v\n%s", timeout, jobs)
	}
}

// tail is the last n lines of b.
func tail(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return string(bytes.Join(lines[max(0, len(lines)-n):], []byte("\n")))
}

package systemd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/test/realguest"
)

// The two versions of the package: the upgrade installs the second over the
// first.
const (
	oldVersion = "0.0.1~systemdtest1"
	newVersion = "0.0.1~systemdtest2"
)

// config is the host's wingman.toml: a one-host cluster on a LUN file,
// with the fast timing profile, a software watchdog (a container has no
// /dev/watchdog) and shutdown.policy freeze (the guest shuts down with the
// host; migrate has no other host to go to).
const config = `cluster = "systemdtest"
lun = "/srv/lun/lun.img"
host_name = "kvm1"
host_id = 1
state_dir = "/var/lib/wingman"

[libvirt]
uri = "qemu:///system"

[serf]
bind = "127.0.0.1:7946"
join = []
keyring = "/etc/wingman/serf.keyring"
profile = "fast"

[api]
socket = "/run/wingman/wingman.sock"
group = "wingman"

[watchdog]
mode = "software"

[shutdown]
policy = "freeze"
timeout = "1m"
`

// guestXML is the test cluster's real guest (package realguest: Debian's
// cloud kernel, guestinit as PID 1) under TCG, with its data disk and a
// user-mode NIC: it powers off on the ACPI button, as shutdown.policy asks.
const guestXML = `<domain type="qemu"><name>g1</name><memory unit="MiB">256</memory><vcpu>1</vcpu>
<os><type arch="x86_64" machine="pc">hvm</type><kernel>/srv/lun/vmlinuz</kernel><initrd>/srv/lun/initrd.gz</initrd>
<cmdline>console=ttyS0 quiet panic=0 wingman.ip=10.0.2.15/24</cmdline></os>
<features><acpi/></features>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type="file" device="disk"><driver name="qemu" type="raw" cache="none"/><source file="/srv/lun/g1.img"/><target dev="vda" bus="virtio"/></disk>
<interface type="user"><model type="virtio"/></interface>
<serial type="pty"/></devices></domain>`

// guestFiles puts the real guest's kernel, initramfs and a fresh data disk
// into dir, which the container sees as /srv/lun.
func guestFiles(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	img, err := realguest.Build(ctx, realguest.CacheDir(), t.Logf)
	if err != nil {
		prerequisite(t, "cannot make the real guest's image (make deps does): %v", err)
	}
	for src, dst := range map[string]string{img.Kernel: "vmlinuz", img.Initrd: "initrd.gz"} {
		b, err := os.ReadFile(src)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, dst), b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := realguest.CreateDataDisk(ctx, filepath.Join(dir, "g1.img"), 32); err != nil {
		t.Fatal(err)
	}
	// QEMU runs as libvirt-qemu inside.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// buildDeb builds the package at version into dir, as `make deb` does, and
// returns its file name.
func buildDeb(t *testing.T, version, dir string) string {
	t.Helper()
	cmd := exec.Command("bash", "contrib/debian/build.sh", version)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "WINGMAN_DEB_OUT="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("contrib/debian/build.sh %s: %v\n%s", version, err, stderr.String())
	}
	return filepath.Base(strings.TrimSpace(string(out)))
}

func TestInstalledPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a Debian root with systemd and builds the package twice")
	}
	if os.Geteuid() != 0 {
		prerequisite(t, "needs root: it mounts an overlay and boots a container")
	}
	for _, tool := range []string{"systemd-nspawn", "debootstrap", "nsenter", "go", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			prerequisite(t, "%s is not installed (make deps installs it)", tool)
		}
	}
	t0 := time.Now()
	root := overlay(t, cachedRoot(t))
	debs, lun := t.TempDir(), t.TempDir()
	guestFiles(t, lun)
	oldDeb := buildDeb(t, oldVersion, filepath.Join(debs, "old"))
	newDeb := buildDeb(t, newVersion, filepath.Join(debs, "new"))
	t.Logf("root ready and packages built in %v", time.Since(t0).Round(time.Second))
	binds := []string{debs + ":/srv/debs", lun + ":/srv/lun"}

	c := boot(t, root, binds...)
	t.Logf("booted in %v", time.Since(t0).Round(time.Second))

	// A fresh install with the example configuration: enabled, but skipped
	// (not failed, not restarted) until the gossip key exists.
	c.must("apt-get install -y -q --no-install-recommends /srv/debs/old/" + oldDeb)
	if got := c.must("systemctl is-enabled wingmand"); got != "enabled" {
		t.Errorf("after install wingmand.service is %s, want enabled", got)
	}
	if got := show(c, "ActiveState", "ConditionResult", "NRestarts"); got != "ActiveState=inactive\nConditionResult=no\nNRestarts=0" {
		t.Errorf("unconfigured, wingmand.service is\n%s\nwant skipped by its condition: inactive, no restart", got)
	}

	// The administrator configures the host and starts it.
	c.must(`set -e
cat > /etc/wingman/wingman.toml <<'EOF'
` + config + `EOF
wingman keygen | sed 's/.*/["&"]/' > /etc/wingman/serf.keyring && chmod 600 /etc/wingman/serf.keyring
wingman lun format --cluster systemdtest --hosts 2 --profile fast /srv/lun/lun.img >/dev/null`)
	c.must("systemctl start wingmand")
	// Type=notify: start returns once wingmand sent READY=1, and it is ready
	// then: its API answers at once, and it told systemd its status.
	if out, err := c.sh("wingman status"); err != nil {
		t.Errorf("wingman status right after `systemctl start` returned: %v\n%s", err, out)
	}
	if got := show(c, "Type", "ActiveState"); got != "Type=notify\nActiveState=active" {
		t.Errorf("started, wingmand.service is\n%s", got)
	}
	if got := show(c, "StatusText"); !strings.HasPrefix(got, "StatusText=") || got == "StatusText=" {
		t.Errorf("wingmand sent no STATUS= to systemd: %s", got)
	}

	checkWatchdog(t, c)

	// A protected guest on this host.
	c.must(`set -e
cat > /tmp/g1.xml <<'EOF'
` + guestXML + `
EOF
virsh -q -c qemu:///system define /tmp/g1.xml >/dev/null
virsh -q -c qemu:///system start g1 >/dev/null
wingman protect g1 >/dev/null`)
	qemu := c.must("cat /run/libvirt/qemu/g1.pid")
	guestStays := func(after string) {
		t.Helper()
		if got := c.must("cat /run/libvirt/qemu/g1.pid"); got != qemu {
			t.Errorf("after %s the guest's QEMU is process %s, was %s", after, got, qemu)
		}
		if out := c.must("wingman list"); !regexp.MustCompile(`(?m)^g1 +kvm1 +running +yes`).MatchString(out) {
			t.Errorf("after %s wingman list shows:\n%s\nwant g1 running on kvm1, protected", after, out)
		}
	}
	checkJournal(t, c)

	// A restart of the service alone: the guest stays, protected.
	pid := show(c, "MainPID")
	c.must("systemctl restart wingmand")
	if show(c, "MainPID") == pid {
		t.Errorf("systemctl restart left wingmand's %s", pid)
	}
	guestStays("systemctl restart wingmand")
	if out := c.must("journalctl -q -u wingmand -o cat"); !strings.Contains(out, "only wingmand stops (restart, upgrade): guests stay") {
		t.Errorf("the journal does not say the restart left the guests:\n%s", tail([]byte(out), 20))
	}

	// An upgrade: postinst restarts wingmand onto the new binary.
	pid = show(c, "MainPID")
	c.must("apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold /srv/debs/new/" + newDeb)
	if show(c, "MainPID") == pid {
		t.Errorf("the upgrade did not restart wingmand (%s)", pid)
	}
	if out := c.must("wingman status"); !strings.Contains(out, "wingmand "+newVersion) {
		t.Errorf("after the upgrade wingman status does not show wingmand %s:\n%s", newVersion, out)
	}
	guestStays("apt-get install of " + newVersion)

	// Removing the package while the host owns a protected guest is refused.
	if out, err := c.sh("apt-get remove -y -q wingman"); err == nil || !strings.Contains(out, "refusing to remove") {
		t.Errorf("apt-get remove with a protected guest here: %v, want refused\n%s", err, out)
	}
	if got := c.must("dpkg-query -W -f '${Status}' wingman"); got != "install ok installed" {
		t.Errorf("after the refused remove the package is %q", got)
	}
	if got := show(c, "ActiveState"); got != "ActiveState=active" {
		t.Errorf("after the refused remove wingmand is %s", got)
	}

	// The host goes down: shutdown.policy applies, because of the host.
	t1 := time.Now()
	c.poweroff(3 * time.Minute)
	t.Logf("powered off in %v", time.Since(t1).Round(time.Millisecond))

	c = boot(t, root, binds...)
	if out := c.must("journalctl -q -b -1 -u wingmand -o cat"); !strings.Contains(out, "host going down, shutdown policy freeze") {
		t.Errorf("at poweroff wingmand did not apply shutdown.policy for the host going down:\n%s", tail([]byte(out), 20))
	}

	// The override removes it anyway; purge removes state and configuration.
	if out, err := c.sh("apt-get remove -y -q wingman"); err == nil {
		t.Errorf("apt-get remove with a protected VM owned here succeeded\n%s", out)
	}
	c.must("WINGMAN_FORCE_REMOVE=1 apt-get purge -y -q wingman")
	for _, gone := range []string{"/var/lib/wingman", "/etc/wingman/wingman.toml", "/usr/sbin/wingmand"} {
		if out, err := c.sh("test ! -e " + gone); err != nil {
			t.Errorf("after apt-get purge %s is still there %s", gone, out)
		}
	}
	if got := c.must("getent group wingman | cut -d: -f1"); got != "wingman" {
		t.Errorf("purge removed the system group wingman (policy keeps it): %q", got)
	}
	t.Logf("total %v", time.Since(t0).Round(time.Second))
}

// show is `systemctl show` of wingmand.service's properties, one per line.
func show(c *container, props ...string) string {
	c.t.Helper()
	var out []string
	for _, p := range props { // in the order asked, not systemd's
		out = append(out, c.must("systemctl show -p "+p+" wingmand"))
	}
	return strings.Join(out, "\n")
}

// checkWatchdog: the unit has a watchdog, wingmand pets it, and a stopped
// wingmand is killed by it and restarted (with a short WatchdogSec).
func checkWatchdog(t *testing.T, c *container) {
	t.Helper()
	if got := show(c, "WatchdogUSec"); got != "WatchdogUSec=30s" {
		t.Errorf("wingmand.service: %s, want 30s", got)
	}
	// wingmand pets it at each heartbeat renewal (every 0.5 s here).
	first := show(c, "WatchdogTimestampMonotonic")
	for deadline := time.Now().Add(5 * time.Second); show(c, "WatchdogTimestampMonotonic") == first; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("wingmand did not pet systemd's watchdog in 5 s: %s", first)
			break
		}
	}

	c.must(`mkdir -p /run/systemd/system/wingmand.service.d && printf '[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n' > /run/systemd/system/wingmand.service.d/watchdog.conf
systemctl daemon-reload && systemctl restart wingmand`)
	pid := strings.TrimPrefix(show(c, "MainPID"), "MainPID=")
	c.must("kill -STOP " + pid)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := c.sh("journalctl -q -u wingmand -o cat | grep -c 'Watchdog timeout'")
		if strings.TrimSpace(out) != "0" && show(c, "ActiveState") == "ActiveState=active" && show(c, "MainPID") != "MainPID="+pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a stopped wingmand was not killed by the watchdog and restarted within 20 s: %s",
				show(c, "ActiveState", "Result", "NRestarts", "MainPID"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.must("rm -r /run/systemd/system/wingmand.service.d && systemctl daemon-reload && systemctl restart wingmand")
}

// checkJournal: wingmand's journal entries carry the host, and its events
// their kind and VM, as fields of their own.
func checkJournal(t *testing.T, c *container) {
	t.Helper()
	out := c.must("journalctl -q -u wingmand -o json")
	var host, vm bool
	for _, line := range strings.Split(out, "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		if e["WINGMAN_HOST"] == "kvm1" && e["SYSLOG_IDENTIFIER"] == "wingmand" {
			host = true
		}
		if e["WINGMAN_KIND"] != nil && e["WINGMAN_VM"] != nil && e["WINGMAN_HOST"] == "kvm1" {
			vm = true
		}
	}
	if !host || !vm {
		t.Errorf("journalctl -o json: an entry with WINGMAN_HOST: %v, an event with WINGMAN_KIND, WINGMAN_VM and WINGMAN_HOST: %v\n%s",
			host, vm, tail([]byte(out), 5))
	}
}

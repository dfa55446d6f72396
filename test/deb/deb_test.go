package deb

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// need skips the test when a tool is missing, except under CI, where
// `make deps` must have installed it.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing under CI: make deps installs it", tool)
			}
			t.Skipf("%s is not installed (make deps installs it)", tool)
		}
	}
}

// TestPackage builds the .deb as `make deb` does, runs lintian on it and
// looks inside.
func TestPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both binaries and runs lintian")
	}
	need(t, "go", "dpkg-deb", "lintian")
	out := t.TempDir()
	build := exec.Command("bash", "contrib/debian/build.sh")
	build.Dir = repoRoot(t)
	build.Env = append(os.Environ(), "WINGMAN_DEB_OUT="+out)
	var stderr bytes.Buffer
	build.Stderr = &stderr
	path, err := build.Output()
	if err != nil {
		t.Fatalf("contrib/debian/build.sh: %v\n%s", err, stderr.String())
	}
	deb := strings.TrimSpace(string(path)) // in out, an absolute path

	// Errors and warnings fail; each warning the package cannot fix is
	// overridden in contrib/debian/lintian-overrides, with the reason.
	lint := exec.Command("lintian", "--fail-on", "error,warning", "--tag-display-limit", "0", deb)
	report, err := lint.CombinedOutput()
	if err != nil {
		t.Errorf("lintian %s: %v\n%s", filepath.Base(deb), err, report)
	} else {
		t.Logf("lintian: %s", strings.TrimSpace(string(report)))
	}

	files, err := exec.Command("dpkg-deb", "--contents", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"./usr/sbin/wingmand", "./usr/bin/wingman", "./lib/systemd/system/wingmand.service", "./etc/wingman/wingman.toml",
		"./usr/share/man/man1/wingman.1.gz", "./usr/share/man/man8/wingmand.8.gz", "./usr/share/man/man5/wingman.toml.5.gz",
		"./usr/share/bash-completion/completions/wingman", "./usr/share/zsh/vendor-completions/_wingman",
		"./usr/share/fish/vendor_completions.d/wingman.fish", "./usr/share/doc/wingman/copyright",
		"./usr/share/doc/wingman/changelog.Debian.gz", "./usr/share/lintian/overrides/wingman",
	} {
		if !bytes.Contains(files, []byte(" "+want+"\n")) {
			t.Errorf("the package lacks %s", want)
		}
	}

	depends, err := exec.Command("dpkg-deb", "--field", deb, "Depends").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"libc6 (>= ", "libvirt0 (>= "} {
		if !bytes.Contains(depends, []byte(want)) {
			t.Errorf("Depends: %s lacks %s...)", bytes.TrimSpace(depends), want)
		}
	}

	root := filepath.Join(out, "root")
	if msg, err := exec.Command("dpkg-deb", "--extract", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --extract: %v\n%s", err, msg)
	}
	unitAnalysis(t, root)
	for _, bin := range []string{"usr/bin/wingman", "usr/sbin/wingmand"} {
		f, err := elf.Open(filepath.Join(root, bin))
		if err != nil {
			t.Fatal(err)
		}
		if f.Type != elf.ET_DYN {
			t.Errorf("%s is %v, not a position-independent executable (ET_DYN)", bin, f.Type)
		}
		f.Close()
	}
}

// maxExposure is the most `systemd-analyze security` may rate the unit, in
// tenths (7.5 EXPOSED: what the hardening that keeps wingmand's duties
// allows; the unit says why each other option is left out). The stricter
// drop-in, examples/sandbox.conf, rates 6.5; the unit before issue 16, 9.6.
const maxExposure = 75

// unitAnalysis checks the package's unit with systemd-analyze, without a
// running systemd: verify, against the package's own binary and man pages
// (the unit's Documentation=), and the security rating.
func unitAnalysis(t *testing.T, root string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the unit is not verified")
		return
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/wingmand.service"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "wingmand.service")
	unit = bytes.ReplaceAll(unit, []byte("/usr/sbin/wingmand"), []byte(filepath.Join(root, "usr/sbin/wingmand")))
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	verify := exec.Command(sa, "verify", path)
	verify.Env = append(os.Environ(), "MANPATH="+filepath.Join(root, "usr/share/man"))
	if out, err := verify.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify wingmand.service: %v\n%s", err, out)
	}
	out, err := exec.Command(sa, "security", "--offline=yes", fmt.Sprintf("--threshold=%d", maxExposure), path).CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Errorf("systemd-analyze security rates wingmand.service above %d.%d: %v\n%s\nkeep every hardening option that does not break wingmand's duties",
			maxExposure/10, maxExposure%10, err, lines[len(lines)-1])
	}
}

// stubbed are the commands the maintainer scripts may run that change the
// machine; the test puts stubs that only log their arguments first in PATH.
var stubbed = []string{"deb-systemd-helper", "deb-systemd-invoke", "systemctl", "addgroup", "delgroup", "getent", "chgrp", "chmod", "mkdir", "rm", "rmdir"}

// maintainerScript runs contrib/debian/SCRIPT with args in a mount namespace
// whose /run is a fresh tmpfs, holding /run/systemd/system when systemd is
// to look as if it ran, and returns the logged calls of the commands in
// show. wasEnabled is what `deb-systemd-helper was-enabled` answers.
func maintainerScript(t *testing.T, systemd, wasEnabled bool, show []string, script string, args ...string) []string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range stubbed {
		body := "#!/bin/sh\necho \"" + name + " $*\" >> \"$STUB_LOG\"\n"
		switch name {
		case "getent":
			body += "exit 2\n" // the group does not exist yet
		case "deb-systemd-helper":
			body += "case \"$*\" in *was-enabled*) exit $STUB_WAS_ENABLED ;; esac\n"
		}
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(dir, "log")
	setup := "mount -t tmpfs tmpfs /run"
	if systemd {
		setup += " && mkdir -p /run/systemd/system"
	}
	unshare := []string{"--mount", "--propagation", "private"}
	if os.Geteuid() != 0 {
		unshare = append([]string{"--user", "--map-root-user"}, unshare...)
	}
	cmd := exec.Command("unshare", append(unshare, "sh", "-c", setup+` && PATH="$STUB_BIN:$PATH" exec sh "$0" "$@"`,
		filepath.Join(repoRoot(t), "contrib", "debian", script))...)
	cmd.Args = append(cmd.Args, args...)
	was := "1"
	if wasEnabled {
		was = "0"
	}
	cmd.Env = append(os.Environ(), "STUB_LOG="+log, "STUB_BIN="+bin, "STUB_WAS_ENABLED="+was)
	if out, err := cmd.CombinedOutput(); err != nil {
		if bytes.Contains(out, []byte("unshare:")) && os.Getenv("CI") == "" {
			t.Skipf("cannot make a mount namespace here: %s", bytes.TrimSpace(out))
		}
		t.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, out)
	}
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var calls []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if name, _, _ := strings.Cut(l, " "); slices.Contains(show, name) {
			calls = append(calls, l)
		}
	}
	return calls
}

// TestMaintainerScripts: the systemd part of install, upgrade, remove and
// purge, as dh_installsystemd would do it, with wingmand restarted (not
// stopped) across an upgrade.
func TestMaintainerScripts(t *testing.T) {
	need(t, "unshare", "sh")
	systemd := []string{"deb-systemd-helper", "deb-systemd-invoke", "systemctl"}
	for _, tc := range []struct {
		name             string
		systemd, enabled bool
		show             []string
		script           string
		args             []string
		want             []string
	}{
		{"install", true, true, append(systemd, "addgroup"), "postinst", []string{"configure"}, []string{
			"addgroup --system --quiet wingman",
			"deb-systemd-helper unmask wingmand.service",
			"deb-systemd-helper --quiet was-enabled wingmand.service",
			"deb-systemd-helper enable wingmand.service",
			"systemctl --system daemon-reload",
			"deb-systemd-invoke start wingmand.service",
		}},
		{"install without systemd running", false, true, systemd, "postinst", []string{"configure"}, []string{
			"deb-systemd-helper unmask wingmand.service",
			"deb-systemd-helper --quiet was-enabled wingmand.service",
			"deb-systemd-helper enable wingmand.service",
		}},
		{"upgrade: prerm leaves it running", true, true, systemd, "prerm", []string{"upgrade", "0.2.0-1"}, nil},
		{"upgrade: postinst restarts it", true, true, systemd, "postinst", []string{"configure", "0.1.0-1"}, []string{
			"deb-systemd-helper unmask wingmand.service",
			"deb-systemd-helper --quiet was-enabled wingmand.service",
			"deb-systemd-helper enable wingmand.service",
			"systemctl --system daemon-reload",
			"deb-systemd-invoke try-restart wingmand.service",
		}},
		{"upgrade of a disabled unit", true, false, systemd, "postinst", []string{"configure", "0.1.0-1"}, []string{
			"deb-systemd-helper unmask wingmand.service",
			"deb-systemd-helper --quiet was-enabled wingmand.service",
			"deb-systemd-helper update-state wingmand.service",
			"systemctl --system daemon-reload",
			"deb-systemd-invoke try-restart wingmand.service",
		}},
		{"remove: prerm stops it", true, true, systemd, "prerm", []string{"remove"}, []string{
			"deb-systemd-invoke stop wingmand.service",
		}},
		{"remove: postrm masks it", true, true, systemd, "postrm", []string{"remove"}, []string{
			"systemctl --system daemon-reload",
			"deb-systemd-helper mask wingmand.service",
		}},
		// The group stays (no delgroup): files may still belong to it.
		{"purge", true, true, append(systemd, "rm", "rmdir", "delgroup"), "postrm", []string{"purge"}, []string{
			"deb-systemd-helper purge wingmand.service",
			"deb-systemd-helper unmask wingmand.service",
			"rm -rf /var/lib/wingman",
			"rm -f /etc/wingman/wingman.toml.dpkg-old /etc/wingman/wingman.toml.dpkg-new /etc/wingman/wingman.toml.dpkg-dist /etc/wingman/wingman.toml.ucf-old",
			"rmdir --ignore-fail-on-non-empty /etc/wingman",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := maintainerScript(t, tc.systemd, tc.enabled, tc.show, tc.script, tc.args...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s %s ran:\n%s\nwant:\n%s", tc.script, strings.Join(tc.args, " "),
					strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestPrermRefusesRemove: prerm refuses `apt-get remove` while this host
// owns protected VMs outside maintenance, unless WINGMAN_FORCE_REMOVE=1; a
// stub wingman answers as the daemon would (test/systemd does it for real).
func TestPrermRefusesRemove(t *testing.T) {
	need(t, "sh")
	for _, tc := range []struct {
		name        string
		status      string // the stub's exit status for status and hostinfo
		vms, maint  string // what hostinfo says
		force       bool
		arg         string
		wantErr     bool
		wantMessage string
	}{
		{"protected VMs here", "0", "2", "no", false, "remove", true, "refusing to remove: this host owns 2 protected VM(s)"},
		{"forced", "0", "2", "no", true, "remove", false, "WINGMAN_FORCE_REMOVE=1: removing while this host owns 2 protected VM(s)"},
		{"in maintenance", "0", "2", "yes", false, "remove", false, ""},
		{"empty host", "0", "0", "no", false, "remove", false, ""},
		{"wingmand not running", "1", "2", "no", false, "remove", false, ""},
		{"upgrade", "0", "2", "no", false, "upgrade", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			stub := `#!/bin/sh
[ "$STUB_STATUS" = 0 ] || { echo "wingman: cannot reach wingmand" >&2; exit 1; }
case "$1" in
status) printf 'cluster      clinic (0d5f)\nthis host    kvm1 (id 1, generation 7), wingmand 0.3.0\n' ;;
hostinfo) [ "$2" = kvm1 ] || exit 1; printf 'Name:          kvm1\nMaintenance:   %s\nProtected VMs: %s\n' "$STUB_MAINT" "$STUB_VMS" ;;
esac
`
			for name, body := range map[string]string{"wingman": stub, "deb-systemd-invoke": "#!/bin/sh\n"} {
				if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("sh", filepath.Join(repoRoot(t), "contrib", "debian", "prerm"), tc.arg)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "STUB_STATUS="+tc.status, "STUB_VMS="+tc.vms, "STUB_MAINT="+tc.maint, "WINGMAN_FORCE_REMOVE=")
			if tc.force {
				cmd.Env = append(cmd.Env, "WINGMAN_FORCE_REMOVE=1")
			}
			out, err := cmd.CombinedOutput()
			if (err != nil) != tc.wantErr || !strings.Contains(string(out), tc.wantMessage) || (tc.wantMessage == "" && len(out) > 0) {
				t.Errorf("prerm %s: %v\n%s\nwant error %v and %q", tc.arg, err, out, tc.wantErr, tc.wantMessage)
			}
		})
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// wingman runs one command line in-process and returns exit code, stdout and stderr.
func wingman(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, stdio{out: &out, errOut: &errOut})
	return code, out.String(), errOut.String()
}

// lunPath is a path for a LUN file on a filesystem with O_DIRECT (t.TempDir
// is on the machine's disk; never tmpfs for alignment tests).
func lunPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "lun.img")
}

func TestFormatThenDumpJSON(t *testing.T) {
	p := lunPath(t)
	code, out, errOut := wingman(t, "lun", "format", "--cluster", "clinic", "--hosts", "4", "--vms", "8", p)
	if code != exitOK {
		t.Fatalf("format: exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, `cluster "clinic"`) {
		t.Errorf("format output %q does not name the cluster", out)
	}
	code, out, errOut = wingman(t, "lun", "dump", "--json", p)
	if code != exitOK {
		t.Fatalf("dump: exit %d, stderr %q", code, errOut)
	}
	var d dumpJSON
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("dump --json is not JSON: %v\n%s", err, out)
	}
	h := d.Header
	if h.ClusterName != "clinic" || h.MaxHosts != 4 || h.MaxVMs != 8 || h.Version != 1 || h.Timings.Dead != 12*time.Second {
		t.Errorf("header = %+v", h)
	}
	if len(d.Slots) != 0 || len(d.VMs) != 0 || len(d.Problems) != 0 {
		t.Errorf("fresh LUN shows slots %v, VMs %v, problems %v", d.Slots, d.VMs, d.Problems)
	}
	code, out, _ = wingman(t, "lun", "dump", p)
	if code != exitOK || !strings.Contains(out, "no host has joined") || !strings.Contains(out, "D 12s") {
		t.Errorf("dump table: exit %d\n%s", code, out)
	}
}

func TestFormatFastProfile(t *testing.T) {
	p := lunPath(t)
	if code, _, e := wingman(t, "lun", "format", "--cluster", "c", "--profile", "fast", "--hosts", "2", "--vms", "1", p); code != exitOK {
		t.Fatalf("format: %d %s", code, e)
	}
	_, out, _ := wingman(t, "lun", "dump", "--json", p)
	var d dumpJSON
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.Header.Timings.Dead != 7500*time.Millisecond || d.Header.Timings.Renew != 500*time.Millisecond {
		t.Errorf("fast profile timings = %+v", d.Header.Timings)
	}
}

func TestFormatRefusesExistingData(t *testing.T) {
	p := lunPath(t)
	if code, _, e := wingman(t, "lun", "format", "--cluster", "a", "--hosts", "2", "--vms", "1", p); code != exitOK {
		t.Fatalf("first format: %d %s", code, e)
	}
	code, _, errOut := wingman(t, "lun", "format", "--cluster", "b", "--hosts", "2", "--vms", "1", p)
	if code != exitFailed || !strings.Contains(errOut, "a wingman LUN") || !strings.Contains(errOut, "--force") || !strings.Contains(errOut, p) {
		t.Errorf("reformat without --force: exit %d, stderr %q", code, errOut)
	}
	// The refused format lost nothing: the LUN still belongs to cluster a.
	_, out, _ := wingman(t, "lun", "dump", "--json", p)
	if !strings.Contains(out, `"cluster_name": "a"`) {
		t.Errorf("refused format changed the LUN:\n%s", out)
	}
	if code, _, e := wingman(t, "lun", "format", "--force", "--cluster", "b", "--hosts", "2", "--vms", "1", p); code != exitOK {
		t.Errorf("format --force: %d %s", code, e)
	}
}

func TestFormatRefusesExt4(t *testing.T) {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("mkfs.ext4 not installed (make deps installs e2fsprogs)")
	}
	p := lunPath(t)
	if err := os.WriteFile(p, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", p).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	before, _ := os.ReadFile(p)
	code, _, errOut := wingman(t, "lun", "format", "--cluster", "x", p)
	if code != exitFailed || !strings.Contains(errOut, "ext2/ext3/ext4 filesystem") {
		t.Fatalf("format of an ext4 image: exit %d, stderr %q", code, errOut)
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(before, after) {
		t.Error("refused format modified the ext4 image")
	}
	if code, _, e := wingman(t, "lun", "format", "--force", "--cluster", "x", "--hosts", "2", "--vms", "2", p); code != exitOK {
		t.Errorf("format --force over ext4: %d %s", code, e)
	}
}

func TestVerifyFindsDamage(t *testing.T) {
	p := lunPath(t)
	if code, _, e := wingman(t, "lun", "format", "--cluster", "v", "--hosts", "4", "--vms", "2", p); code != exitOK {
		t.Fatalf("format: %d %s", code, e)
	}
	if code, out, e := wingman(t, "lun", "verify", p); code != exitOK || !strings.Contains(out, "sound") {
		t.Fatalf("verify of a fresh LUN: %d %q %q", code, out, e)
	}
	// Scribble on host 3's heartbeat slot (block 3).
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("garbage"), 3*4096+17); err != nil {
		t.Fatal(err)
	}
	f.Close()
	code, out, _ := wingman(t, "lun", "verify", p)
	if code != exitDamaged || !strings.Contains(out, "block 3") || !strings.Contains(out, "heartbeat slot 3") {
		t.Errorf("verify of a damaged slot: exit %d, out %q", code, out)
	}
	code, out, _ = wingman(t, "lun", "verify", "--json", p)
	if code != exitDamaged || !strings.Contains(out, `"ok": false`) {
		t.Errorf("verify --json: exit %d, out %q", code, out)
	}
}

func TestDumpRejectsNonLUN(t *testing.T) {
	p := lunPath(t)
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := wingman(t, "lun", "dump", p)
	if code != exitFailed || !strings.Contains(errOut, p) || !strings.Contains(errOut, "block 0") {
		t.Errorf("dump of zeros: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = wingman(t, "lun", "dump", filepath.Join(t.TempDir(), "missing"))
	if code != exitFailed || !strings.Contains(errOut, "no such file") {
		t.Errorf("dump of a missing path: exit %d, stderr %q", code, errOut)
	}
}

// Durations in JSON are nanoseconds in *_ns fields, in lun dump as in the
// API's types that the other commands print.
func TestDumpJSONDurationsAreNanoseconds(t *testing.T) {
	p := lunPath(t)
	if code, _, e := wingman(t, "lun", "format", "--cluster", "c", "--hosts", "2", "--vms", "1", p); code != exitOK {
		t.Fatalf("format: %d %s", code, e)
	}
	_, out, _ := wingman(t, "lun", "dump", "--json", "--events", "0", p)
	var raw struct {
		Header struct {
			Timings map[string]any `json:"timings"`
		} `json:"header"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	if v, ok := raw.Header.Timings["dead_ns"].(float64); !ok || time.Duration(v) != 12*time.Second || len(raw.Header.Timings) != 8 {
		t.Errorf("timings %v, want eight *_ns numbers, dead_ns 12e9", raw.Header.Timings)
	}
	for k := range raw.Header.Timings {
		if !strings.HasSuffix(k, "_ns") {
			t.Errorf("timing %s is not named *_ns", k)
		}
	}
}

// A bad --cluster is a usage error found before anything is created, and a
// format that fails leaves no file it created behind.
func TestFormatFailureLeavesNothing(t *testing.T) {
	for _, name := range []string{strings.Repeat("c", 64), "c\x1b[2Jx"} {
		p := lunPath(t)
		code, _, errOut := wingman(t, "lun", "format", "--cluster", name, p)
		if code != exitUsage || !strings.Contains(errOut, "--cluster") || strings.Contains(errOut, "\x1b") {
			t.Errorf("--cluster %q: exit %d, stderr %q; want exit 2 and no raw escape", name, code, errOut)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("--cluster %q left %s behind: %v", name, p, err)
		}
	}
	// A format interrupted after the file was created removes it.
	p := lunPath(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"lun", "format", "--cluster", "c", p}, stdio{out: &out, errOut: &errOut})
	if code != exitFailed || !strings.Contains(errOut.String(), "context canceled") {
		t.Errorf("canceled format: exit %d, stderr %q", code, errOut.String())
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed format left %s behind: %v", p, err)
	}
	// An existing file is the operator's: a refused format keeps it.
	if err := os.WriteFile(p, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := wingman(t, "lun", "format", "--cluster", "c", p); code != exitFailed {
		t.Errorf("format over data: exit %d", code)
	}
	if b, err := os.ReadFile(p); err != nil || !strings.HasPrefix(string(b), "precious") {
		t.Errorf("a refused format changed the operator's file: %q, %v", b, err)
	}
}

// lun dump and lun verify open the LUN read-only: the kernel reports each
// of their opens closed without write access (IN_CLOSE_NOWRITE), never one
// opened for writing (IN_CLOSE_WRITE, whether or not it wrote).
func TestDumpAndVerifyOpenReadOnly(t *testing.T) {
	p := lunPath(t)
	if code, _, e := wingman(t, "lun", "format", "--cluster", "c", "--hosts", "2", "--vms", "1", p); code != exitOK {
		t.Fatalf("format: %d %s", code, e)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, p, unix.IN_CLOSE_WRITE|unix.IN_CLOSE_NOWRITE|unix.IN_MODIFY); err != nil {
		t.Fatal(err)
	}
	// Identical events still unread are merged: read them after each command.
	events := func() (readOnly, writable int) {
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(fd, buf)
			if n <= 0 || err != nil {
				return readOnly, writable
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				switch {
				case ev.Mask&unix.IN_CLOSE_NOWRITE != 0:
					readOnly++
				case ev.Mask&(unix.IN_CLOSE_WRITE|unix.IN_MODIFY) != 0:
					writable++
				}
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}
	for _, args := range [][]string{{"lun", "dump", p}, {"lun", "dump", "--json", p}, {"lun", "verify", p}} {
		if code, _, e := wingman(t, args...); code != exitOK {
			t.Fatalf("%s: exit %d, %s", strings.Join(args, " "), code, e)
		}
		if readOnly, writable := events(); readOnly != 1 || writable != 0 {
			t.Errorf("%s: %d read-only opens, %d writable opens or writes; want 1 and 0", strings.Join(args, " "), readOnly, writable)
		}
	}
	// The check itself sees a writable open.
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, writable := events(); writable != 1 {
		t.Errorf("an open for writing was not seen (%d)", writable)
	}
}

// Errors never carry raw control characters to the terminal: a VM name, a
// path, a flag or a command with an escape sequence is shown escaped.
func TestErrorsEscapeControlCharacters(t *testing.T) {
	d := startFakeDaemon(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dominfo", "web\x1b]0;owned\x07"}, `no VM named web\x1b]0;owned\a`},
		{[]string{"lun", "dump", "/nonexistent/\x1b[2J\u202e.img"}, `/nonexistent/\x1b[2J\u202e.img`},
		{[]string{"lun", "dump", "--\x1b[31m", "x"}, `unknown flag: --\x1b[31m`},
		{[]string{"\x1b[31m"}, `unknown command "\x1b[31m"`},
		{[]string{"-\u009b31m"}, `unknown flag -\u009b31m`},
	} {
		code, _, errOut := d.exec(t, context.Background(), session{args: tc.args})
		if code == exitOK || strings.ContainsAny(errOut, "\x1b\x07\u202e\u009b") || !strings.Contains(errOut, tc.want) {
			t.Errorf("wingman %q: exit %d, stderr %q; want %s", tc.args, code, errOut, tc.want)
		}
	}
	if got := printable("a\tb\nc\x00d\u202ee\xff"); got != "a\tb\nc\\x00d\\u202ee\ufffd" {
		t.Errorf("printable = %q", got)
	}
}

// -v prints the version, as virsh -v does.
func TestVersionFlags(t *testing.T) {
	for _, f := range []string{"-v", "-V", "--version"} {
		if code, out, _ := wingman(t, f); code != exitOK || !strings.HasPrefix(out, "wingman "+version+" ") {
			t.Errorf("wingman %s: exit %d, %q", f, code, out)
		}
	}
}

func TestFormatNeverCreatesUnderDev(t *testing.T) {
	code, _, errOut := wingman(t, "lun", "format", "--cluster", "x", "/dev/wingman-no-such-disk")
	if code != exitFailed || !strings.Contains(errOut, "does not exist") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat("/dev/wingman-no-such-disk"); err == nil {
		os.Remove("/dev/wingman-no-such-disk")
		t.Error("format created a file under /dev")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lun", "fromat", "x"}, `did you mean "lun format"`},
		{[]string{"lun"}, "missing subcommand: use one of format, dump, verify"},
		{[]string{"verison"}, `did you mean "version"`},
		{[]string{"lun", "dump"}, "missing argument PATH"},
		{[]string{"lun", "dump", "a", "b", "c", "d", "e"}, "too many arguments"},
		{[]string{"lun", "dump", "a", "b"}, "2 heartbeat LUNs: use 1 or 3; a majority of 2 is 2"},
		{[]string{"lun", "verify", "a", "b", "c", "d"}, "4 heartbeat LUNs: use 1 or 3"},
		{[]string{"lun", "format", "--cluster", "c", "a", "b"}, "2 heartbeat LUNs: use 1 or 3; a majority of 2 is 2"},
		{[]string{"lun", "format", "--cluster", "c", "a", "b", "a"}, `"a" is named twice`},
		{[]string{"lun", "format", "x"}, "--cluster is required"},
		{[]string{"lun", "format", "--cluster", "c", "--hosts", "0", "x"}, "hosts 0"},
		{[]string{"lun", "format", "--cluster", "c", "--profile", "slow", "x"}, `unknown timing profile "slow"`},
		{[]string{"lun", "dump", "--bogus", "x"}, "unknown flag: --bogus"},
		{[]string{"keygen", "--bytes", "7"}, "use 16, 24 or 32"},
	} {
		code, _, errOut := wingman(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("wingman %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}

func TestKeygen(t *testing.T) {
	code, out, _ := wingman(t, "keygen")
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if code != exitOK || err != nil || len(key) != 32 {
		t.Fatalf("keygen: exit %d, %q (%v)", code, out, err)
	}
	_, out2, _ := wingman(t, "keygen")
	if out == out2 {
		t.Error("two keys are equal")
	}
}

func TestHelpCoversEveryCommand(t *testing.T) {
	_, out, _ := wingman(t)
	for _, c := range commands {
		if c.summary == "" {
			t.Errorf("command %q has no summary", c.name)
		}
		if !strings.Contains(out, c.name) {
			t.Errorf("help does not list %q", c.name)
		}
		args := append(strings.Fields(c.name), "--help")
		code, h, _ := wingman(t, args...)
		if code != exitOK || !strings.Contains(h, "Usage: wingman "+c.name) {
			t.Errorf("%s --help: exit %d\n%s", c.name, code, h)
		}
	}
}

// TestLUNFormatLeaseCeiling: --lease-ceiling lands in the header (lun dump
// shows it), and a ceiling too close to F is refused, saying the least.
func TestLUNFormatLeaseCeiling(t *testing.T) {
	p := lunPath(t)
	if code, _, e := wingman(t, "lun", "format", "--cluster", "c", "--hosts", "2", "--vms", "1", "--lease-ceiling", "5s", p); code != exitFailed || !strings.Contains(e, "raise it to at least 14s") {
		t.Errorf("format with a 5s ceiling: exit %d, %s", code, e)
	}
	if code, _, e := wingman(t, "lun", "format", "--cluster", "c", "--hosts", "2", "--vms", "1", "--lease-ceiling", "25s", p); code != exitOK {
		t.Fatalf("format: %d %s", code, e)
	}
	if _, out, _ := wingman(t, "lun", "dump", "--events", "0", p); !strings.Contains(out, "lease ceiling 25s") {
		t.Errorf("lun dump does not show the ceiling:\n%s", out)
	}
}

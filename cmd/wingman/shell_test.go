package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"  list   --all \n", []string{"list", "--all"}, ""},
		{`protect 'my vm' --prefer "kvm1,kvm2"`, []string{"protect", "my vm", "--prefer", "kvm1,kvm2"}, ""},
		{`dominfo my\ vm`, []string{"dominfo", "my vm"}, ""},
		{`say "a \"quoted\" \\ word" 'it''s'`, []string{"say", `a "quoted" \ word`, "its"}, ""},
		{`x "" ''`, []string{"x", "", ""}, ""},
		{"list # the protected ones", []string{"list"}, ""},
		{"a#b", []string{"a#b"}, ""},
		{`dominfo 'web1`, nil, "unterminated ' quote"},
		{`dominfo "web1`, nil, `unterminated " quote`},
	} {
		got, err := splitArgs(tc.line)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("splitArgs(%q): error %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
}

// TestShell feeds the interactive shell through a pipe that claims to be a
// terminal: each line runs with the command table and the global -c of the
// process; mistakes do not end the shell; quit does.
func TestShell(t *testing.T) {
	d := startFakeDaemon(t)
	s := session{terminal: true, stdin: strings.Join([]string{
		"list",
		"   # a comment, then an empty line",
		"",
		"wingman host-list --name",
		"lsit",
		"dominfo 'no such'",
		"status --bogus",
		`dominfo "web1`,
		"fence kvm3",
		"no",
		"help maintenance enter",
		"quit",
		"list",
	}, "\n") + "\n"}
	code, out, errOut := d.exec(t, context.Background(), s)
	if code != exitOK {
		t.Errorf("shell exit %d", code)
	}
	checkGolden(t, filepath.Join("testdata", "shell.golden"), d.transcript(s, code, out, errOut))
}

func TestShellEndsAtEOF(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), nil, stdio{in: bufio.NewReader(strings.NewReader("version")), out: &out, errOut: &errOut, terminal: true})
	if code != exitOK || !strings.HasPrefix(out.String(), "wingman ") || !strings.HasSuffix(errOut.String(), shellPrompt+"\n") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// Without a terminal, no arguments print the help, as before.
func TestNoArgumentsWithoutTerminal(t *testing.T) {
	code, out, _ := wingman(t)
	if code != exitOK || !strings.Contains(out, "Commands:") || !strings.Contains(out, "Exit codes:") || strings.Contains(out, shellPrompt) {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// openPTY opens a pseudo-terminal: what the test writes to master is typed
// on slave, where the shell reads.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// TestShellEditsLinesWithHistory types on a real terminal: a line edited
// with Backspace, the previous line recalled with Up and changed, a line
// dropped with Ctrl-C, and Ctrl-D to leave. The terminal is raw before any
// of it is typed, so that the kernel's own line editing cannot be the one
// that handles the keys; the shell puts it back as it found it.
func TestShellEditsLinesWithHistory(t *testing.T) {
	d := startFakeDaemon(t)
	master, slave := openPTY(t)
	orig, err := term.MakeRaw(int(slave.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	// Drain the prompts and the echo: a full pty would block the shell.
	go io.Copy(io.Discard, master)
	typed := "hostinfo kvm\x7f\x7f\x7fkvm2\r" + // Backspace three times
		"\x1b[A\x7f1\r" + // Up: "hostinfo kvm2"; Backspace; 1
		"list --na\x03host-list --name\r" + // Ctrl-C drops "list --na"
		"\x04" // Ctrl-D on an empty line
	if _, err := master.Write([]byte(typed)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s := stdio{in: bufio.NewReader(slave), out: &out, errOut: slave, terminal: true, errTerminal: true, tty: slave}
	if code := run(context.Background(), []string{"-c", d.socket}, s); code != exitOK {
		t.Errorf("shell exit %d", code)
	}
	want := []string{"GET /v1/hosts/kvm2", "GET /v1/hosts/kvm1", "GET /v1/hosts"}
	if got := d.takeRequests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
	if !strings.Contains(out.String(), "kvm3\n") || !strings.Contains(out.String(), "Name:") {
		t.Errorf("stdout %q", out.String())
	}
	after, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if *after != *before {
		t.Errorf("the shell left the terminal changed: %+v, was %+v", after, before)
	}
	term.Restore(int(slave.Fd()), orig)
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
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

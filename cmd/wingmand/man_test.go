package main

import (
	"bytes"
	"encoding"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/manpage"
)

// The man pages wingmand(8) and wingman.toml(5) are generated here, from the
// code they document, and committed under contrib/man (the package installs
// them): go test ./cmd/wingmand -run TestManPages -update rewrites them.
var update = flag.Bool("update", false, "rewrite contrib/man/wingmand.8 and contrib/man/wingman.toml.5")

const (
	exampleConfig = "../../contrib/wingman.toml"
	manDir        = "../../contrib/man"
	regenerate    = "go test ./cmd/wingmand -run TestManPages -update"
)

// daemonManPage is wingmand(8): its options are the flag set's.
func daemonManPage() []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	manpage.Header(&b, "wingmand", "8", "'"+regenerate+"' from wingmand's flags", "the Wingman VM failover daemon")
	p(".SH SYNOPSIS\n.B wingmand\n[\\fB\\-f\\fR \\fIFILE\\fR] [\\fIoptions\\fR]\n.SH DESCRIPTION\n")
	manpage.Text(&b, `wingmand keeps the protected virtual machines of a small KVM cluster
running: one runs on every host. It gossips with the other hosts (serf),
writes a heartbeat to a shared LUN and reads theirs, tells a dead host from
an isolated one, and restarts the VMs of a dead host on the survivors
through libvirt. wingman(1) is its command-line client, over a unix socket
that root and the members of group wingman may use.

It reads its configuration from a file (wingman.toml(5)); the options
below override the keys they name. On start it rebuilds its picture from
libvirt and the LUN, never from memory, and refuses to run twice on a host.

It runs under systemd as wingmand.service (Type=notify): it reports ready
once it is connected to libvirt and the LUN, feeds systemd's watchdog only
while each of its loops makes progress, and logs to the journal. On SIGTERM
or SIGINT it stops; the [shutdown] table of wingman.toml(5) says what
happens to this host's VMs then.`)
	p(".SH OPTIONS\n")
	manpage.Flags(&b, flagSet())
	p(".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\n%s\n", manpage.Escape("print the options and exit"))
	p(".SH EXIT STATUS\n")
	for _, e := range []struct {
		code int
		text string
	}{
		{exitOK, "stopped, or the configuration is valid (--check-config)"},
		{exitFailed, "it could not start (libvirt, the LUN, the socket), or stopped with errors"},
		{exitUsage, "usage error: unknown option or bad value"},
		{exitConfig, "the configuration is invalid (EX_CONFIG); the message names the file, the key and what to do, and systemd does not restart the unit"},
	} {
		p(".TP\n.B %d\n%s\n", e.code, manpage.Escape(e.text))
	}
	p(".SH FILES\n")
	for _, f := range [][2]string{
		{DefaultConfigPath, "the configuration, wingman.toml(5)"},
		{DefaultConfig().StateDir, "the lock file and serf's snapshot (state_dir)"},
		{api.DefaultSocket, "the API socket (api.socket)"},
		{DefaultConfig().Watchdog.Device, "the hardware watchdog (watchdog.device)"},
	} {
		p(".TP\n.I %s\n%s\n", manpage.Escape(f[0]), manpage.Escape(f[1]))
	}
	p(".SH SEE ALSO\n.BR wingman (1),\n.BR wingman.toml (5),\n.BR systemd.service (5),\n.BR libvirtd (8)\n")
	return b.Bytes()
}

// configManPage is wingman.toml(5): the example configuration, read key by
// key.
func configManPage(example []byte) ([]byte, error) {
	ex, err := manpage.ParseExample(example)
	if err != nil {
		return nil, fmt.Errorf("contrib/wingman.toml: %w", err)
	}
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	manpage.Header(&b, "wingman.toml", "5", "'"+regenerate+"' from contrib/wingman.toml", "configuration file of wingmand")
	p(".SH SYNOPSIS\n.I %s\n.SH DESCRIPTION\n", manpage.Escape(DefaultConfigPath))
	manpage.Text(&b, ex.Head)
	manpage.Text(&b, `The file is TOML. Below, every key is shown as the example file installed
as /etc/wingman/wingman.toml sets it, or would set it where the example
leaves it unset, with the example's comment. Keys that are not set take
their default; a key wingmand does not know is an error.`)
	p(".SH KEYS\n")
	ex.Keys(&b)
	p(".SH SEE ALSO\n.BR wingmand (8),\n.BR wingman (1)\n")
	return b.Bytes(), nil
}

// TestManPages: the committed pages are what the code generates, and groff
// formats them without a warning.
func TestManPages(t *testing.T) {
	example, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	config, err := configManPage(example)
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string][]byte{"wingmand.8": daemonManPage(), "wingman.toml.5": config}
	for name, page := range pages {
		path := filepath.Join(manDir, name)
		if *update {
			if err := os.WriteFile(path, page, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if want, err := os.ReadFile(path); err != nil || !bytes.Equal(want, page) {
			t.Errorf("%s is not what the code generates (%v): run %s", path, err, regenerate)
		}
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff is not installed: the pages are not rendered")
	}
	for name, page := range pages {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-P-cbou")
		cmd.Stdin = bytes.NewReader(page)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil || errOut.Len() > 0 {
			t.Errorf("groff %s: %v\n%s", name, err, errOut.String())
		}
		for _, want := range map[string][]string{
			"wingmand.8":     {"--config FILE", "--host-id SLOT", "EX_CONFIG", "/run/wingman/wingman.sock"},
			"wingman.toml.5": {"[fence.kvm2.params]", `host_id = 0`, `keyring = "/etc/wingman/serf.keyring"`, "wingman keygen | sed"},
		}[name] {
			if !strings.Contains(out.String(), want) {
				t.Errorf("rendered %s lacks %q", name, want)
			}
		}
	}
}

// TestExampleConfigDocumentsEveryKey: contrib/wingman.toml, from which
// wingman.toml(5) is generated, and Config cannot drift apart: every key of
// Config is in the example (set, or commented out), with a comment, and
// every key of the example is one of Config's.
func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	example, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := manpage.ParseExample(example)
	if err != nil {
		t.Fatal(err)
	}
	var documented [][]string
	for _, tbl := range ex.Tables {
		for _, k := range tbl.Keys {
			if k.Doc == "" {
				t.Errorf("contrib/wingman.toml: %s has no comment: say what it does, its values and default", strings.Join(k.Names, ", "))
			}
			for _, n := range k.Names {
				key := append(splitKey(tbl.Name), n)
				documented = append(documented, key)
				if !configHasKey(reflect.TypeFor[Config](), key) {
					t.Errorf("contrib/wingman.toml sets %s, which Config does not have: remove it or add it to Config", strings.Join(key, "."))
				}
			}
		}
	}
	for _, key := range configKeys(reflect.TypeFor[Config](), nil) {
		if !slices.ContainsFunc(documented, func(d []string) bool { return keyMatches(key, d) }) {
			t.Errorf("Config has %s, which contrib/wingman.toml does not show: add it there with a comment (commented out if it has no default), then run %s",
				strings.Join(key, "."), regenerate)
		}
	}
}

func splitKey(table string) []string {
	if table == "" {
		return nil
	}
	return strings.Split(table, ".")
}

// isLeaf: a value TOML sets whole (a string, a number, a duration, a list),
// not a table.
func isLeaf(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return true
	}
	return t.Kind() != reflect.Struct && t.Kind() != reflect.Map
}

// configKeys lists the keys of t by their TOML names; "*" stands for a
// table's key chosen by the administrator (fence.*.agent).
func configKeys(t reflect.Type, prefix []string) [][]string {
	switch {
	case isLeaf(t):
		return [][]string{prefix}
	case t.Kind() == reflect.Map:
		return configKeys(t.Elem(), append(slices.Clip(prefix), "*"))
	}
	var out [][]string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" {
			name = f.Name // how the TOML decoder matches a field without a tag
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		out = append(out, configKeys(f.Type, append(slices.Clip(prefix), name))...)
	}
	return out
}

func configHasKey(t reflect.Type, key []string) bool {
	for _, k := range key {
		switch {
		case isLeaf(t):
			return false
		case t.Kind() == reflect.Map:
			t = t.Elem()
			continue
		}
		f, ok := fieldByTag(t, k)
		if !ok {
			return false
		}
		t = f.Type
	}
	return isLeaf(t)
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ","); tag == name {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

func keyMatches(pattern, key []string) bool {
	if len(pattern) != len(key) {
		return false
	}
	for i := range pattern {
		if pattern[i] != "*" && pattern[i] != key[i] {
			return false
		}
	}
	return true
}

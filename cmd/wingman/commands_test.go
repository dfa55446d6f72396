package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/ and contrib/")

func TestMain(m *testing.M) {
	flag.Parse()
	// Event times print in local time; golden files are in UTC.
	time.Local = time.UTC
	os.Unsetenv(socketEnv)
	pollEvery = 0
	os.Exit(m.Run())
}

// session is one run of the CLI against the fake daemon.
type session struct {
	args     []string
	stdin    string
	terminal bool
}

// exec runs the CLI with -c pointing at the fake daemon.
func (d *fakeDaemon) exec(t *testing.T, ctx context.Context, s session) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	argv := append([]string{"-c", d.socket}, s.args...)
	code := run(ctx, argv, stdio{in: bufio.NewReader(strings.NewReader(s.stdin)), out: &out, errOut: &errOut, terminal: s.terminal})
	return code, out.String(), errOut.String()
}

// transcript is what a golden file holds: the command line, the exit code,
// the requests the daemon saw, stdout and stderr.
func (d *fakeDaemon) transcript(s session, code int, out, errOut string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ wingman %s\n", strings.Join(s.args, " "))
	if s.stdin != "" {
		fmt.Fprintf(&b, "stdin: %q (terminal: %v)\n", s.stdin, s.terminal)
	}
	fmt.Fprintf(&b, "exit %d\n--- requests\n", code)
	for _, r := range d.takeRequests() {
		fmt.Fprintln(&b, r)
	}
	fmt.Fprintf(&b, "--- stdout\n%s--- stderr\n%s", out, errOut)
	return strings.ReplaceAll(b.String(), filepath.Dir(d.socket), "$DIR")
}

// runGolden runs one session (after dropping the requests seen so far),
// checks its exit code and compares its transcript with
// testdata/cli/NAME.golden.
func (d *fakeDaemon) runGolden(t *testing.T, ctx context.Context, name string, s session, want int) {
	t.Helper()
	d.takeRequests()
	code, out, errOut := d.exec(t, ctx, s)
	if code != want {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, want, errOut)
	}
	checkGolden(t, filepath.Join("testdata", "cli", name+".golden"), d.transcript(s, code, out, errOut))
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/wingman -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test ./cmd/wingman -update rewrites it):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// TestDaemonCommands runs each command against the fake daemon and compares
// the requests it sent and what it printed with testdata/cli/NAME.golden.
func TestDaemonCommands(t *testing.T) {
	d := startFakeDaemon(t)
	for _, tc := range []struct {
		name string
		session
		code int
	}{
		{"list", session{args: []string{"list"}}, exitOK},
		{"list_all", session{args: []string{"list", "--all"}}, exitOK},
		{"list_names", session{args: []string{"list", "--all", "--name"}}, exitOK},
		{"list_too_many_args", session{args: []string{"list", "web1"}}, exitUsage},
		{"dominfo", session{args: []string{"dominfo", "web1"}}, exitOK},
		{"dominfo_stopped", session{args: []string{"dominfo", "batch1"}}, exitOK},
		{"dominfo_unprotected", session{args: []string{"dominfo", "scratch"}}, exitOK},
		{"dominfo_unknown", session{args: []string{"dominfo", "nosuch"}}, exitFailed},
		{"dominfo_daemon_error", session{args: []string{"dominfo", "broken"}}, exitFailed},
		{"dominfo_missing_vm", session{args: []string{"dominfo"}}, exitUsage},
		{"dominfo_qmp", session{args: []string{"dominfo", "--qmp", "web1"}}, exitOK},
		{"dominfo_qmp_not_running", session{args: []string{"dominfo", "--qmp", "batch1"}}, exitFailed},
		{"host_list", session{args: []string{"host-list"}}, exitOK},
		{"hostinfo", session{args: []string{"hostinfo", "kvm3"}}, exitOK},
		{"hostinfo_by_id", session{args: []string{"hostinfo", "2"}}, exitOK},
		{"hostinfo_unknown", session{args: []string{"hostinfo", "kvm9"}}, exitFailed},
		{"status", session{args: []string{"status"}}, exitOK},
		{"protect", session{args: []string{"protect", "scratch", "--priority", "high", "--restart", "always", "--restart-max", "3",
			"--restart-window", "1h", "--anti-affinity", "web", "--prefer", "kvm2,kvm1", "--start-order", "2", "--start-delay", "15s",
			"--wait-agent", "--isolation", "stop"}}, exitOK},
		{"protect_defaults", session{args: []string{"protect", "scratch"}}, exitOK},
		{"protect_numeric_priority", session{args: []string{"protect", "scratch", "--priority", "750"}}, exitOK},
		{"protect_bad_priority", session{args: []string{"protect", "scratch", "--priority", "urgent"}}, exitUsage},
		{"protect_priority_out_of_range", session{args: []string{"protect", "scratch", "--priority", "1001"}}, exitUsage},
		{"protect_bad_restart", session{args: []string{"protect", "scratch", "--restart", "sometimes"}}, exitUsage},
		{"protect_max_without_window", session{args: []string{"protect", "scratch", "--restart-max", "3"}}, exitUsage},
		{"protect_bad_duration", session{args: []string{"protect", "scratch", "--start-delay", "soon"}}, exitUsage},
		{"protect_unknown_flag", session{args: []string{"protect", "scratch", "--priorty", "high"}}, exitUsage},
		{"protect_unknown_vm", session{args: []string{"protect", "nosuch"}}, exitFailed},
		{"protect_unsafe_cache", session{args: []string{"protect", "fast1"}}, exitFailed},
		{"protect_unreachable_disk", session{args: []string{"protect", "local1"}}, exitFailed},
		{"protect_force", session{args: []string{"protect", "--force", "local1"}}, exitOK},
		{"unprotect", session{args: []string{"unprotect", "web1"}}, exitOK},
		{"set_policy", session{args: []string{"set-policy", "db1", "--priority", "low", "--prefer", "kvm1"}}, exitOK},
		{"set_policy_nothing", session{args: []string{"set-policy", "db1"}}, exitUsage},
		{"set_policy_clear", session{args: []string{"set-policy", "db1", "--wait-agent=false"}}, exitUsage},
		{"start", session{args: []string{"start", "batch1"}}, exitOK},
		{"start_no_wait", session{args: []string{"start", "--no-wait", "batch1"}}, exitOK},
		{"start_bad_timeout", session{args: []string{"start", "--timeout", "0s", "batch1"}}, exitUsage},
		{"start_running", session{args: []string{"start", "web1"}}, exitFailed},
		{"stop", session{args: []string{"stop", "web1"}}, exitOK},
		{"migrate", session{args: []string{"migrate", "web1", "kvm2"}}, exitOK},
		{"migrate_planner", session{args: []string{"migrate", "web1"}}, exitOK},
		{"migrate_refused", session{args: []string{"migrate", "web1", "kvm3"}}, exitFailed},
		{"migrate_unknown_host", session{args: []string{"migrate", "web1", "kvm9"}}, exitFailed},
		{"migrate_unknown_vm", session{args: []string{"migrate", "nosuch", "kvm2"}}, exitFailed},
		{"maintenance_enter", session{args: []string{"maintenance", "enter", "kvm1"}}, exitOK},
		{"maintenance_enter_no_wait", session{args: []string{"maintenance", "enter", "--all", "--no-wait", "kvm2"}}, exitOK},
		{"maintenance_status", session{args: []string{"maintenance", "status", "kvm2"}}, exitOK},
		{"maintenance_exit", session{args: []string{"maintenance", "exit", "kvm2"}}, exitOK},
		{"maintenance_no_sub", session{args: []string{"maintenance", "kvm1"}}, exitUsage},
		{"maintenance_typo", session{args: []string{"maintenance", "entr", "kvm1"}}, exitUsage},
		{"events", session{args: []string{"events"}}, exitOK},
		{"events_since_duration", session{args: []string{"events", "--since", "30m"}}, exitOK},
		{"events_since_time", session{args: []string{"events", "--since", "2025-03-01T10:10:09Z", "--limit", "2"}}, exitOK},
		{"events_bad_since", session{args: []string{"events", "--since", "yesterday"}}, exitUsage},
		{"fence_test", session{args: []string{"fence", "--test", "kvm3"}}, exitOK},
		{"fence_not_terminal", session{args: []string{"fence", "kvm3"}}, exitUsage},
		{"fence_yes", session{args: []string{"fence", "--yes", "kvm3"}}, exitOK},
		{"fence_confirmed", session{args: []string{"fence", "kvm3"}, stdin: "yes\n", terminal: true}, exitOK},
		{"fence_declined", session{args: []string{"fence", "kvm3"}, stdin: "n\n", terminal: true}, exitFailed},
		{"fence_unknown", session{args: []string{"fence", "--test", "kvm9"}}, exitFailed},
		{"confirm_off_yes", session{args: []string{"host", "confirm-off", "--yes", "kvm3"}}, exitOK},
		{"confirm_off_confirmed", session{args: []string{"host", "confirm-off", "kvm3"}, stdin: "yes\n", terminal: true}, exitOK},
		{"confirm_off_not_terminal", session{args: []string{"host", "confirm-off", "kvm3"}}, exitUsage},
		{"confirm_off_declined", session{args: []string{"host", "confirm-off", "kvm3"}, stdin: "no\n", terminal: true}, exitFailed},
		{"confirm_off_fresh", session{args: []string{"host", "confirm-off", "--yes", "kvm1"}}, exitFailed},
		{"host_quarantine", session{args: []string{"host", "quarantine", "kvm2"}}, exitOK},
		{"host_quarantine_again", session{args: []string{"host", "quarantine", "kvm1"}}, exitFailed},
		{"host_unquarantine", session{args: []string{"host", "unquarantine", "kvm1"}}, exitOK},
		{"host_unquarantine_not", session{args: []string{"host", "unquarantine", "kvm2"}}, exitFailed},
		{"host_unquarantine_unknown", session{args: []string{"host", "unquarantine", "kvm9"}}, exitFailed},
		{"ha_disarm", session{args: []string{"ha", "disarm", "--for", "3h", "--reason", "SAN firmware"}}, exitOK},
		{"ha_disarm_shortens", session{args: []string{"ha", "disarm", "--for", "30m"}}, exitFailed},
		{"ha_disarm_force", session{args: []string{"ha", "disarm", "--for", "30m", "--force"}}, exitOK},
		{"ha_disarm_failover", session{args: []string{"ha", "disarm", "--for", "3h", "--reason", "busy"}}, exitFailed},
		{"ha_disarm_too_long", session{args: []string{"ha", "disarm", "--for", "48h"}}, exitUsage},
		{"ha_arm", session{args: []string{"ha", "arm"}}, exitOK},
		{"notify_add_mail", session{args: []string{"notify", "add", "ops2", "--kind", "mail", "--address", "smtp.clinic.example:587",
			"--from", "wingman@clinic.example", "--to", "ops@clinic.example,oncall@clinic.example", "--min-severity", "warning"}}, exitOK},
		{"notify_add_webhook", session{args: []string{"notify", "add", "chat2", "--kind", "webhook", "--address", "https://chat.clinic.example/h",
			"--kinds", "incident,resolved", "--hosts", "kvm1,kvm2", "--timeout", "5s"}}, exitOK},
		{"notify_add_unknown_kind", session{args: []string{"notify", "add", "x", "--kind", "sms", "--address", "555"}}, exitUsage},
		{"notify_add_no_address", session{args: []string{"notify", "add", "x", "--kind", "exec"}}, exitUsage},
		{"notify_add_key_for_mail", session{args: []string{"notify", "add", "x", "--kind", "mail", "--address", "smtp:25", "--key-file", "/k"}}, exitUsage},
		{"notify_add_bad_url", session{args: []string{"notify", "add", "x", "--kind", "webhook", "--address", "ftp://hooks"}}, exitFailed},
		{"notify_add_missing_secret", session{args: []string{"notify", "add", "x", "--kind", "webhook", "--address", "https://h", "--key-file", "/nonexistent/key"}}, exitFailed},
		{"notify_list", session{args: []string{"notify", "list"}}, exitOK},
		{"notify_remove", session{args: []string{"notify", "remove", "chat"}}, exitOK},
		{"notify_remove_unknown", session{args: []string{"notify", "remove", "nope"}}, exitFailed},
		{"notify_test_one", session{args: []string{"notify", "test", "ops"}}, exitOK},
		{"notify_test_all", session{args: []string{"notify", "test"}}, exitFailed},
		{"global_json_unsupported", session{args: []string{"--json", "keygen"}}, exitUsage},
		{"typo", session{args: []string{"lsit"}}, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) { d.runGolden(t, context.Background(), tc.name, tc.session, tc.code) })
	}
}

// TestJSONOutput: --json prints exactly the API's type, as a global flag
// before the command or as the command's own.
func TestJSONOutput(t *testing.T) {
	d := startFakeDaemon(t)
	for _, tc := range []struct {
		args []string
		into any
	}{
		{[]string{"list", "--json"}, &[]api.VM{}},
		{[]string{"--json", "list", "--all"}, &[]api.VM{}},
		{[]string{"dominfo", "--json", "web1"}, &api.VM{}},
		{[]string{"dominfo", "--json", "--qmp", "web1"}, &api.VM{}},
		{[]string{"host-list", "--json"}, &[]api.Host{}},
		{[]string{"hostinfo", "--json", "kvm1"}, &api.Host{}},
		{[]string{"status", "--json"}, &api.Status{}},
		{[]string{"protect", "--json", "scratch"}, &api.ProtectResult{}},
		{[]string{"set-policy", "--json", "db1", "--restart", "never"}, &api.VM{}},
		{[]string{"migrate", "--json", "web1", "kvm2"}, &api.MigrateResult{}},
		{[]string{"maintenance", "enter", "--json", "--no-wait", "kvm1"}, &api.Host{}},
		{[]string{"maintenance", "status", "--json", "kvm1"}, &api.Host{}},
		{[]string{"fence", "--json", "--test", "kvm3"}, &api.FenceResult{}},
		{[]string{"host", "confirm-off", "--json", "--yes", "kvm3"}, &api.ConfirmOffResult{}},
		{[]string{"host", "unquarantine", "--json", "kvm1"}, &api.QuarantineResult{}},
		{[]string{"ha", "disarm", "--json", "--for", "3h"}, &api.HAState{}},
		{[]string{"events", "--json"}, &[]api.Event{}},
	} {
		code, out, errOut := d.exec(t, context.Background(), session{args: tc.args})
		if code != exitOK {
			t.Errorf("wingman %s: exit %d, stderr %s", strings.Join(tc.args, " "), code, errOut)
			continue
		}
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(tc.into); err != nil {
			t.Errorf("wingman %s: output is not JSON of %T: %v\n%s", strings.Join(tc.args, " "), tc.into, err, out)
		}
		if dec.More() {
			t.Errorf("wingman %s: more than one JSON value:\n%s", strings.Join(tc.args, " "), out)
		}
	}
	// The filter applies to JSON too: without --all only protected VMs.
	_, out, _ := d.exec(t, context.Background(), session{args: []string{"list", "--json"}})
	var vms []api.VM
	json.Unmarshal([]byte(out), &vms)
	for _, v := range vms {
		if !v.Protected {
			t.Errorf("list --json shows unprotected %s", v.Name)
		}
	}
	if len(vms) != 3 {
		t.Errorf("list --json: %d VMs, want 3", len(vms))
	}
}

// TestSocketSelection: --connect after the command, then $WINGMAN_SOCKET,
// then the default.
func TestSocketSelection(t *testing.T) {
	d := startFakeDaemon(t)
	var out, errOut bytes.Buffer
	s := stdio{out: &out, errOut: &errOut}
	if code := run(context.Background(), []string{"host-list", "--connect", d.socket, "--name"}, s); code != exitOK {
		t.Errorf("--connect after the command: exit %d, %s", code, errOut.String())
	}
	t.Setenv(socketEnv, d.socket)
	if code := run(context.Background(), []string{"host-list"}, s); code != exitOK {
		t.Errorf("$%s: exit %d, %s", socketEnv, code, errOut.String())
	}
	errOut.Reset()
	// A flag beats the environment.
	missing := filepath.Join(t.TempDir(), "none.sock")
	if code := run(context.Background(), []string{"-c", missing, "status"}, s); code != exitFailed || !strings.Contains(errOut.String(), missing) {
		t.Errorf("-c over $%s: exit %d, %s", socketEnv, code, errOut.String())
	}
	if n := len(d.takeRequests()); n != 2 {
		t.Errorf("daemon saw %d requests, want 2", n)
	}
}

// start waits until the VM runs, as virsh start does, asking the daemon
// again until then; a VM that does not run within --timeout is a failure
// that says where it is and that the daemon keeps trying.
func TestStartWaitsUntilTheVMRuns(t *testing.T) {
	d := startFakeDaemon(t)
	code, out, errOut := d.exec(t, context.Background(), session{args: []string{"start", "batch1"}})
	if code != exitOK || out != "batch1 started on kvm1; failover restarts it again\n" {
		t.Errorf("start: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := []string{"POST /v1/vms/batch1/start", "GET /v1/vms/batch1", "GET /v1/vms/batch1"}
	if got := d.takeRequests(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests %q, want %q", got, want)
	}
	d.mu.Lock()
	d.stuck = "batch1"
	d.mu.Unlock()
	code, _, errOut = d.exec(t, context.Background(), session{args: []string{"start", "--timeout", "20ms", "batch1"}})
	if code != exitFailed || !strings.Contains(errOut, "batch1 is not running after 20ms: it is shut off on kvm1; the daemon keeps trying") {
		t.Errorf("start of a VM that does not run: exit %d, stderr %q", code, errOut)
	}
}

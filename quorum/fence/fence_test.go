package fence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// agentBin is test/fenceagent, built once for the package by TestMain.
var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wingman-fence-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBin = filepath.Join(dir, "fence_test")
	build := exec.Command("go", "build", "-o", agentBin, "../../test/fenceagent")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build test/fenceagent:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logBuffer collects log lines from concurrent runs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testConfig is a fast Config for the test agent with its power state in a
// fresh file.
func testConfig(t *testing.T, params map[string]string) (Config, string) {
	t.Helper()
	state := filepath.Join(t.TempDir(), "power")
	p := map[string]string{"state_file": state}
	for k, v := range params {
		p[k] = v
	}
	return Config{
		Host:         "kvm2",
		Agent:        agentBin,
		Params:       p,
		Timeout:      5 * time.Second,
		PollInterval: 10 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(&testWriter{t}, nil)),
	}, state
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newAgent(t *testing.T, cfg Config) *Agent {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

func readPower(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read state file: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func TestPowerOffConfirmed(t *testing.T) {
	cfg, state := testConfig(t, nil)
	a := newAgent(t, cfg)
	res := a.PowerOff(t.Context())
	if !res.Confirmed || res.Err != nil {
		t.Fatalf("PowerOff = %+v, want confirmed", res)
	}
	if res.Attempts != 1 || res.Polls != 1 || res.Last != PowerOff {
		t.Errorf("attempts %d polls %d last %v, want 1, 1, off", res.Attempts, res.Polls, res.Last)
	}
	if got := readPower(t, state); got != "OFF" {
		t.Errorf("state file says %q, want OFF", got)
	}
}

// TestPowerOffKillsTarget is what the test cluster relies on: the agent's
// off kills the process standing for the host.
func TestPowerOffKillsTarget(t *testing.T) {
	host := exec.Command("sleep", "60")
	if err := host.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	t.Cleanup(func() { _ = host.Process.Kill() })
	exited := make(chan error, 1)
	go func() { exited <- host.Wait() }()

	cfg, _ := testConfig(t, map[string]string{"kill_pid": strconv.Itoa(host.Process.Pid)})
	res := newAgent(t, cfg).PowerOff(t.Context())
	if !res.Confirmed {
		t.Fatalf("PowerOff = %+v, want confirmed", res)
	}
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("target exited with %v, want killed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("target still running 10 s after a confirmed power-off")
	}
}

func TestPowerOffNeverConfirmed(t *testing.T) {
	cfg, _ := testConfig(t, map[string]string{"confirm": "never"})
	cfg.Timeout = 300 * time.Millisecond
	res := newAgent(t, cfg).PowerOff(t.Context())
	if res.Confirmed {
		t.Fatalf("PowerOff confirmed an off the agent never reported")
	}
	if !errors.Is(res.Err, ErrNotConfirmed) {
		t.Fatalf("err = %v, want ErrNotConfirmed", res.Err)
	}
	if res.Polls < 1 || res.Last != PowerOn {
		t.Errorf("polls %d last %v, want at least one poll saying on", res.Polls, res.Last)
	}
	t.Log(res.Err)
	if !strings.Contains(res.Err.Error(), "the last status said on") {
		t.Errorf("err %q does not say what the agent last reported", res.Err)
	}
	if res.Duration > 5*time.Second {
		t.Errorf("PowerOff took %v with a 300ms timeout", res.Duration)
	}
}

func TestPowerOffAgentFailsWithoutLeakingPassword(t *testing.T) {
	const password = "Tr0ub4dor&3-horse"
	var logs logBuffer
	cfg, _ := testConfig(t, map[string]string{"fail": "1", "username": "admin", "password": password})
	cfg.Retries = 2
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := newAgent(t, cfg)

	res := a.PowerOff(t.Context())
	if res.Confirmed || !errors.Is(res.Err, ErrAgentFailed) {
		t.Fatalf("PowerOff = %+v, want ErrAgentFailed", res)
	}
	if res.Attempts != 3 {
		t.Errorf("attempts = %d, want 1 + 2 retries", res.Attempts)
	}
	msg := res.Err.Error()
	t.Log(msg)
	for _, want := range []string{"kvm2", "action=off", "exit code 1", "unable to connect to the fence device", redacted} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	_, statusErr := a.Status(t.Context())
	logs.Write([]byte(cfg.String() + fmt.Sprintf(" %v %+v %#v\n", cfg, cfg, cfg)))
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", cfg)

	for name, text := range map[string]string{
		"error": msg, "output": res.Output, "status error": fmt.Sprint(statusErr), "logs": logs.String(),
	} {
		if strings.Contains(text, password) {
			t.Errorf("%s shows the password: %s", name, text)
		}
	}
	if !strings.Contains(logs.String(), "unable to connect") {
		t.Errorf("logs do not carry the agent's message: %s", logs.String())
	}
}

func TestPowerOffSlowAgentKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	cfg, state := testConfig(t, map[string]string{"delay": "1h", "pid_file": pidFile, "child": "1"})
	// Long enough for the agent to start its child and write the pid files
	// on a loaded machine.
	cfg.Timeout = time.Second
	res := newAgent(t, cfg).PowerOff(t.Context())
	if res.Confirmed || !errors.Is(res.Err, ErrTimeout) {
		t.Fatalf("PowerOff = %+v, want ErrTimeout", res)
	}
	t.Log(res.Err)
	if !strings.Contains(res.Err.Error(), "killed") || !strings.Contains(res.Err.Error(), "timed out") {
		t.Errorf("error %q should say the agent timed out and was killed", res.Err)
	}
	if res.Duration > 5*time.Second {
		t.Errorf("PowerOff took %v with a 1s timeout", res.Duration)
	}
	if _, err := os.Stat(state); err == nil {
		t.Errorf("the killed agent still changed the power state")
	}
	// The agent and the child it started (same process group) are gone.
	for _, f := range []string{pidFile, pidFile + ".child"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("agent did not write %s: %v", f, err)
		}
		pid, _ := strconv.Atoi(string(b))
		waitGone(t, pid)
	}
}

// waitGone fails unless pid ends (or is a zombie) within a bound: the
// kill is already sent, only its delivery and reparenting take time.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// The state is the field after the command name in parentheses.
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive after the agent timed out: the process group was not killed", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCallerCancelIsNotATimeout(t *testing.T) {
	cfg, _ := testConfig(t, map[string]string{"delay": "1h"})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	res := newAgent(t, cfg).PowerOff(ctx)
	if !errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, ErrTimeout) {
		t.Fatalf("err = %v, want context.Canceled and not ErrTimeout", res.Err)
	}
}

func TestStatusMapping(t *testing.T) {
	cfg, state := testConfig(t, nil)
	a := newAgent(t, cfg)
	ctx := t.Context()

	if s, err := a.Status(ctx); s != PowerOn || err != nil {
		t.Errorf("status of a fresh host = %v, %v; want on", s, err)
	}
	if err := a.Monitor(ctx); err != nil {
		t.Errorf("monitor: %v", err)
	}
	if err := os.WriteFile(state, []byte("OFF\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := a.Status(ctx); s != PowerOff || err != nil {
		t.Errorf("status of a host that is off = %v, %v; want off", s, err)
	}
	if err := a.Monitor(ctx); err != nil {
		t.Errorf("monitor of a device whose port is off: %v, want nil (exit 2 means reachable)", err)
	}
	res := a.On(ctx)
	if !res.Confirmed || res.Last != PowerOn || readPower(t, state) != "ON" {
		t.Errorf("On = %+v, want confirmed on", res)
	}

	cfg.Params["fail"] = "status"
	failing := newAgent(t, cfg)
	s, err := failing.Status(ctx)
	if s != PowerUnknown || !errors.Is(err, ErrAgentFailed) {
		t.Errorf("status of a failing agent = %v, %v; want unknown, ErrAgentFailed", s, err)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "fence_noexec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(agentBin, filepath.Join(dir, "fence_named")); err != nil {
		t.Fatal(err)
	}
	ok := func(c *Config) {}
	tests := []struct {
		name string
		edit func(*Config)
		want string // "" means valid
	}{
		{"valid", ok, ""},
		{"agent by name in AgentDir", func(c *Config) { c.Agent, c.AgentDir = "fence_named", dir }, ""},
		{"no agent", func(c *Config) { c.Agent = "" }, "no agent set"},
		{"missing agent", func(c *Config) { c.Agent, c.AgentDir = "fence_ipmilan", dir }, "not found: install"},
		{"relative path", func(c *Config) { c.Agent = "bin/fence_x" }, "absolute path"},
		{"directory", func(c *Config) { c.Agent = dir }, "not a regular file"},
		{"not executable", func(c *Config) { c.Agent = notExec }, "not executable"},
		{"uppercase key", func(c *Config) { c.Params["IP"] = "10.0.0.1" }, `parameter "IP"`},
		{"key with space", func(c *Config) { c.Params["ip addr"] = "10.0.0.1" }, "keys are lowercase"},
		{"empty key", func(c *Config) { c.Params[""] = "x" }, "keys are lowercase"},
		{"action key", func(c *Config) { c.Params["action"] = "reboot" }, "set by wingman"},
		{"option key", func(c *Config) { c.Params["option"] = "on" }, "set by wingman"},
		{"newline injects a key", func(c *Config) { c.Params["plug"] = "1\naction=on" }, "inject"},
		{"carriage return", func(c *Config) { c.Params["plug"] = "1\r" }, "inject"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "negative"},
		{"poll above timeout", func(c *Config) { c.PollInterval = time.Minute }, "below timeout"},
		{"too many retries", func(c *Config) { c.Retries = 100 }, "retries"},
		{"negative delay", func(c *Config) { c.Delay = -time.Second }, "delay"},
		{"delay too long", func(c *Config) { c.Delay = time.Hour }, "delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := testConfig(t, map[string]string{"ip": "10.0.0.1", "password": "pw"})
			tt.edit(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
			if _, err := New(cfg); err == nil {
				t.Fatal("New accepted a config Validate refused")
			}
		})
	}
}

func TestSecretsHiddenWhenPrinted(t *testing.T) {
	cfg := Config{Agent: "fence_apc_snmp", Params: map[string]string{
		"community": "c0mmunity", "passwd": "p4ss", "snmp_priv_passwd": "pr1v", "api_token": "t0k", "ip": "10.1.2.3"}}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "cfg", cfg)
	text := fmt.Sprintf("%v %+v %#v %s ", cfg, cfg, cfg, cfg) + buf.String()
	for _, s := range []string{"c0mmunity", "p4ss", "pr1v", "t0k"} {
		if strings.Contains(text, s) {
			t.Errorf("printed config shows secret %q: %s", s, text)
		}
	}
	if !strings.Contains(text, "10.1.2.3") {
		t.Errorf("printed config hides the address too: %s", text)
	}
}

func TestFencer(t *testing.T) {
	cfg, state := testConfig(t, nil)
	cfg.Host = ""
	f, err := NewFencer(map[int]Config{2: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Hosts(); len(got) != 1 || got[0] != 2 {
		t.Errorf("Hosts = %v, want [2]", got)
	}
	if res := f.PowerOff(t.Context(), 2); !res.Confirmed || res.Host != "host 2" || readPower(t, state) != "OFF" {
		t.Errorf("PowerOff(2) = %+v, want confirmed for host 2", res)
	}
	if res := f.PowerOff(t.Context(), 3); !errors.Is(res.Err, ErrUnknownHost) {
		t.Errorf("PowerOff(3) err = %v, want ErrUnknownHost", res.Err)
	}
	bad := cfg
	bad.Params = map[string]string{"plug": "a\nb"}
	if _, err := NewFencer(map[int]Config{2: cfg, 5: bad}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "host 5") {
		t.Errorf("NewFencer with a bad host 5 = %v, want ErrInvalidConfig naming host 5", err)
	}
}

// TestConcurrentRunsAreSerialised: two fences of one host at once do not
// drive the device twice in parallel, and both end.
func TestConcurrentRunsAreSerialised(t *testing.T) {
	cfg, _ := testConfig(t, nil)
	a := newAgent(t, cfg)
	var wg sync.WaitGroup
	results := make([]Result, 2)
	for i := range results {
		wg.Go(func() { results[i] = a.PowerOff(t.Context()) })
	}
	wg.Wait()
	for i, r := range results {
		if !r.Confirmed {
			t.Errorf("run %d: %+v", i, r)
		}
	}
}

func BenchmarkPowerOff(b *testing.B) {
	dir := b.TempDir()
	a, err := New(Config{Host: "bench", Agent: agentBin, Params: map[string]string{"state_file": filepath.Join(dir, "power")},
		Timeout: 5 * time.Second, PollInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if res := a.PowerOff(b.Context()); !res.Confirmed {
			b.Fatalf("not confirmed: %v", res.Err)
		}
	}
}

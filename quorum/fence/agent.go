package fence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Errors callers tell apart with errors.Is.
var (
	// ErrAgentFailed: the agent ran and reported failure (exit 1, or an
	// exit code the protocol does not define). Its stderr is in the error.
	ErrAgentFailed = errors.New("fence agent failed")
	// ErrTimeout: the agent was still running at the deadline and was
	// killed with its process group.
	ErrTimeout = errors.New("fence agent timed out")
	// ErrNotConfirmed: action=off succeeded but no action=status reported
	// the host off before the timeout. The host may still be running.
	ErrNotConfirmed = errors.New("power-off not confirmed")
	// ErrUnknownHost: no fence agent is configured for the host.
	ErrUnknownHost = errors.New("no fence agent configured for host")
)

// PowerState is what action=status reported.
type PowerState int

const (
	PowerUnknown PowerState = iota // no answer, or the agent failed
	PowerOn                        // status exited 0
	PowerOff                       // status exited 2
)

func (s PowerState) String() string {
	switch s {
	case PowerOn:
		return "on"
	case PowerOff:
		return "off"
	}
	return "unknown"
}

// Exit codes of the fence agent protocol (ClusterLabs FenceAgentAPI).
const (
	exitSuccess = 0 // success; for status and monitor: on
	exitFailure = 1 // failure, or the device could not be reached
	exitOff     = 2 // status and monitor: reachable, and off
)

const (
	redacted = "<redacted>"
	// maxOutput bounds what is kept of an agent's stdout and stderr each.
	maxOutput = 64 << 10
	// maxMessage bounds the agent's message quoted in an error.
	maxMessage = 512
	// waitDelay bounds how long a run waits for the agent's pipes to close
	// once the agent has exited or been killed: a grandchild that kept
	// them open must not hold the caller.
	waitDelay = time.Second
)

// agentEnv is the agents' whole environment: nothing of the daemon's leaks
// in, and LC_ALL=C keeps their messages in English for the logs.
var agentEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}

// Agent runs one host's fence agent. It is safe for concurrent use; runs
// for the same Agent are serialised, as one management controller should
// not be driven by two commands at once.
type Agent struct {
	cfg     Config
	path    string
	input   []byte   // the parameter lines, without action=
	secrets []string // values never to show
	log     *slog.Logger
	turn    chan struct{} // holds a token while a run is in progress
}

// New validates cfg and returns the Agent it describes.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	path, err := cfg.agentPath()
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, path: path, log: cfg.Logger, turn: make(chan struct{}, 1)}
	var in bytes.Buffer
	for _, k := range slices.Sorted(maps.Keys(cfg.Params)) {
		v := cfg.Params[k]
		fmt.Fprintf(&in, "%s=%s\n", k, v)
		if isSecretKey(k) && v != "" {
			a.secrets = append(a.secrets, v)
		}
	}
	// Longest first, so that a secret containing another is hidden whole.
	slices.SortFunc(a.secrets, func(x, y string) int { return len(y) - len(x) })
	a.input = in.Bytes()
	return a, nil
}

// Path is the agent executable this Agent runs.
func (a *Agent) Path() string { return a.path }

// Host is the name given in Config.Host.
func (a *Agent) Host() string { return a.cfg.Host }

// Result is the outcome of PowerOff or On.
type Result struct {
	Host      string
	Action    string // "off" or "on"
	Confirmed bool   // a status run reported the requested state
	Err       error  // nil when Confirmed
	// Output is the agent's last non-empty stderr, trimmed, with secrets
	// replaced by <redacted>.
	Output   string
	Duration time.Duration // from the call to the result, Delay included
	Attempts int           // action=off (or on) runs
	Polls    int           // action=status runs
	Last     PowerState    // what the last status run that finished reported
}

// PowerOff fences the host: it waits Delay, runs action=off (retrying up to
// Retries times after a failure), then runs action=status every PollInterval
// until the agent reports the host off. Result.Confirmed is true only then.
// Everything after Delay is bounded by Timeout and all of it by ctx; an
// agent still running at the deadline is killed with its process group.
func (a *Agent) PowerOff(ctx context.Context) Result {
	return a.power(ctx, "off", PowerOff, a.cfg.Delay)
}

// On powers the host back on (after repair) and waits for action=status to
// report it on, within Timeout. Never call it for a host whose VMs may have
// been restarted elsewhere without clearing its LUN state first.
func (a *Agent) On(ctx context.Context) Result {
	return a.power(ctx, "on", PowerOn, 0)
}

func (a *Agent) power(ctx context.Context, action string, want PowerState, delay time.Duration) (res Result) {
	start := time.Now()
	res = Result{Host: a.cfg.Host, Action: action}
	defer func() { res.Duration = time.Since(start) }()

	if err := a.acquire(ctx); err != nil {
		res.Err = a.errorf(action, "waiting for another run of this agent: %w", err)
		return res
	}
	defer a.release()
	if delay > 0 {
		if err := sleep(ctx, delay); err != nil {
			res.Err = a.errorf(action, "during the %v fence delay: %w", delay, err)
			return res
		}
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()

	for {
		res.Attempts++
		r := a.run(ctx, action)
		res.Output = firstNonEmpty(r.stderr, res.Output)
		if r.err == nil && r.code == exitSuccess {
			break
		}
		err := r.err
		if err == nil {
			err = a.agentFailed(action, r)
		}
		if res.Attempts > a.cfg.Retries || ctx.Err() != nil {
			res.Err = err
			return res
		}
		a.log.Warn("fence agent failed, retrying", "host", a.cfg.Host, "action", action, "attempt", res.Attempts, "err", err)
		if sleep(ctx, a.cfg.PollInterval) != nil {
			res.Err = err
			return res
		}
	}

	var lastErr error
	for {
		res.Polls++
		state, r := a.status(ctx)
		res.Output = firstNonEmpty(r.stderr, res.Output)
		if state == want {
			res.Last, res.Confirmed = state, true
			return res
		}
		switch {
		case r.err != nil:
			// Killed at the deadline or canceled: no answer, so the
			// last answer still stands.
			lastErr = r.err
		case state == PowerUnknown:
			res.Last, lastErr = state, a.agentFailed("status", r)
		default:
			res.Last, lastErr = state, nil
		}
		if ctx.Err() != nil || sleep(ctx, a.cfg.PollInterval) != nil {
			break
		}
	}
	detail := fmt.Sprintf("the last status said %s", res.Last)
	if res.Last == PowerUnknown && lastErr != nil {
		detail = fmt.Sprintf("the last status failed: %v", lastErr)
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		res.Err = a.errorf(action, "canceled before the agent confirmed it (%s): %w", detail, err)
		return res
	}
	res.Err = a.errorf(action, "the agent did not confirm the host %s within %v (%s); check the device and the host's power by hand: %w",
		want, a.cfg.Timeout, detail, ErrNotConfirmed)
	return res
}

// Status runs action=status: PowerOn for exit 0, PowerOff for exit 2, an
// error otherwise. It is bounded by Timeout and changes nothing, so it is
// what `fence --test` runs.
func (a *Agent) Status(ctx context.Context) (PowerState, error) {
	if err := a.acquire(ctx); err != nil {
		return PowerUnknown, a.errorf("status", "waiting for another run of this agent: %w", err)
	}
	defer a.release()
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	state, r := a.status(ctx)
	if state != PowerUnknown {
		return state, nil
	}
	if r.err != nil {
		return PowerUnknown, r.err
	}
	return PowerUnknown, a.agentFailed("status", r)
}

// Monitor runs action=monitor, which only checks that the fence device
// answers. Nil means the agent and its device work.
func (a *Agent) Monitor(ctx context.Context) error {
	if err := a.acquire(ctx); err != nil {
		return a.errorf("monitor", "waiting for another run of this agent: %w", err)
	}
	defer a.release()
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	r := a.run(ctx, "monitor")
	if r.err != nil {
		return r.err
	}
	if r.code == exitSuccess || r.code == exitOff {
		return nil
	}
	return a.agentFailed("monitor", r)
}

func (a *Agent) status(ctx context.Context) (PowerState, runResult) {
	r := a.run(ctx, "status")
	if r.err != nil {
		return PowerUnknown, r
	}
	switch r.code {
	case exitSuccess:
		return PowerOn, r
	case exitOff:
		return PowerOff, r
	}
	return PowerUnknown, r
}

func (a *Agent) acquire(ctx context.Context) error {
	select {
	case a.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (a *Agent) release() { <-a.turn }

// runResult is one agent run. err is set when the agent could not be run
// or did not finish (timeout, cancel); otherwise code is its exit code.
type runResult struct {
	code   int
	stderr string // trimmed and redacted
	err    error
}

// run runs the agent once with action=... and the parameters on stdin, in a
// process group of its own that is killed when ctx ends.
func (a *Agent) run(ctx context.Context, action string) runResult {
	start := time.Now()
	var stdout, stderr limitedBuffer
	cmd := exec.CommandContext(ctx, a.path)
	cmd.Env = agentEnv
	cmd.Stdin = bytes.NewReader(append([]byte("action="+action+"\n"), a.input...))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = waitDelay
	err := cmd.Run()

	r := runResult{code: -1, stderr: a.redact(strings.TrimSpace(stderr.String()))}
	var exitErr *exec.ExitError
	switch {
	case err != nil && ctx.Err() != nil:
		// Killed at the deadline, or the caller gave up.
		if cause := context.Cause(ctx); errors.Is(cause, context.DeadlineExceeded) {
			r.err = a.errorf(action, "still running after %v, killed with its process group; check that the fence device answers, or raise timeout: %w", a.cfg.Timeout, ErrTimeout)
		} else {
			r.err = a.errorf(action, "canceled, agent killed: %w", cause)
		}
	case errors.Is(err, exec.ErrWaitDelay):
		// The agent exited but left a process of its group holding its
		// output open; that member still holds the group id, so killing
		// the group cannot hit an unrelated process.
		_ = killGroup(cmd)
		r.code = cmd.ProcessState.ExitCode()
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	case err != nil:
		r.err = a.errorf(action, "cannot run %s: %w", a.path, err)
	default:
		r.code = 0
	}
	a.log.Info("fence agent run", "host", a.cfg.Host, "agent", a.path, "action", action,
		"exit", r.code, "duration", time.Since(start).Round(time.Millisecond), "stderr", r.stderr, "err", r.err)
	return r
}

// agentFailed is the error for an agent that exited with a failure code.
func (a *Agent) agentFailed(action string, r runResult) error {
	msg := r.stderr
	if msg == "" {
		msg = "no message on stderr"
	}
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "..."
	}
	return a.errorf(action, "exit code %d: %s; check the fence device and the agent's parameters: %w", r.code, msg, ErrAgentFailed)
}

func (a *Agent) errorf(action, format string, args ...any) error {
	host := a.cfg.Host
	if host == "" {
		host = a.path
	}
	err := fmt.Errorf("fence %s: action=%s: "+format, append([]any{host, action}, args...)...)
	return redactedError{err: err, text: a.redact(err.Error())}
}

// secretAssignment matches what an agent may print of a secret parameter
// it was given, whatever its value.
var secretAssignment = regexp.MustCompile(`(?i)\b((?:[a-z_]*(?:pass|secret|token|community)[a-z_]*))(\s*[=:]\s*)("[^"]*"|\S+)`)

// redact hides every secret parameter value in s.
func (a *Agent) redact(s string) string {
	for _, v := range a.secrets {
		s = strings.ReplaceAll(s, v, redacted)
	}
	return secretAssignment.ReplaceAllString(s, "${1}${2}"+redacted)
}

// redactedError keeps the wrapped chain for errors.Is while its text is
// the redacted one: the agent's stderr may quote the password.
type redactedError struct {
	err  error
	text string
}

func (e redactedError) Error() string { return e.text }
func (e redactedError) Unwrap() error { return e.err }

// killGroup SIGKILLs the agent's process group (its pid: Setpgid). As
// exec.Cmd.Cancel it runs before the leader is reaped, so the group id
// cannot have been reused by another process.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err == syscall.ESRCH {
		return nil
	}
	return err
}

// limitedBuffer keeps the first maxOutput bytes written and drops the rest,
// so a chatty or hostile agent cannot grow the daemon's memory.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

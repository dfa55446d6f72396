package fence

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// DefaultAgentDir is where fence agents are installed by the distributions'
// fence-agents packages, and where an agent given by name is looked up.
const DefaultAgentDir = "/usr/sbin"

// DefaultTimeout bounds a power-off from the first action=off to the status
// that confirms it; Pacemaker's default fence timeout is 20 s too.
const DefaultTimeout = 20 * time.Second

// DefaultPollInterval is the pause between two action=status runs while
// waiting for an off (or on) to be confirmed, and between two attempts.
const DefaultPollInterval = 500 * time.Millisecond

// maxDelay bounds Delay, which every fence of the host waits.
const maxDelay = time.Minute

// maxRetries bounds Retries: beyond this a broken device only delays the
// fallback to the disk timeout D.
const maxRetries = 10

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid fence config")

// Config says how to power-fence one host. Build it from DefaultConfig, set
// Agent and Params, and pass it to New (or NewFencer), which validates it.
type Config struct {
	// Host names the host this agent fences, in errors, results and logs
	// (its serf node name, say). Optional; the agent never sees it unless
	// Params passes it (e.g. plug=kvm2).
	Host string

	// Device names this fence device where a host has several (its
	// [fence_device] table), in results and logs. Optional.
	Device string

	// Agent is the fence agent: a name such as "fence_ipmilan", looked up in
	// AgentDir, or an absolute path. Required.
	Agent string

	// AgentDir is where an Agent given by name is looked up. Default
	// DefaultAgentDir.
	AgentDir string

	// Params are the agent's parameters, sent as key=value lines on stdin
	// after action=..., e.g. ip, username, password, lanplus=1 for
	// fence_ipmilan or ip, community, plug for fence_apc_snmp (see the
	// agent's man page, or its `-o metadata`). Keys are [a-z0-9_]; "action"
	// and its old name "option" are set by this package and refused here.
	// Values must not contain newlines. Values of keys containing pass,
	// secret, token, community or key never appear in errors or logs.
	Params map[string]string

	// Timeout bounds PowerOff from its first action=off until the agent
	// confirms the host off (the off attempts, the retries and the status
	// polls together), and each Status, Monitor or On call. An agent still
	// running at the deadline is killed with its whole process group.
	// Zero means DefaultTimeout.
	Timeout time.Duration

	// Retries is how many more times action=off is run after a failed one,
	// within Timeout. Zero: one attempt.
	Retries int

	// Delay is waited before the first action=off (not counted in Timeout).
	// In a two-host cluster, giving one host a delay lets it win a fence
	// race, as Pacemaker's pcmk_delay_base does. Zero: no delay.
	Delay time.Duration

	// PollInterval is the pause between two action=status runs while
	// waiting for confirmation, and between two off attempts. Zero means
	// DefaultPollInterval.
	PollInterval time.Duration

	// Logger receives one line per agent run (action, exit code, duration,
	// redacted stderr). Nil: slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the production settings: a 20 s timeout, one retry,
// agents looked up in /usr/sbin. The caller sets Host, Agent and Params.
func DefaultConfig() Config {
	return Config{
		AgentDir:     DefaultAgentDir,
		Timeout:      DefaultTimeout,
		Retries:      1,
		PollInterval: DefaultPollInterval,
	}
}

// withDefaults fills the zero fields that have a default.
func (c Config) withDefaults() Config {
	if c.AgentDir == "" {
		c.AgentDir = DefaultAgentDir
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks the configuration and that the agent is an executable
// file. Every error wraps ErrInvalidConfig and says what to change.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, err := c.agentPath(); err != nil {
		return err
	}
	if c.Timeout < 0 {
		return invalid("timeout %v is negative: set a positive bound, or 0 for %v", c.Timeout, DefaultTimeout)
	}
	if c.PollInterval < 0 || c.PollInterval >= c.Timeout {
		return invalid("poll_interval %v must be positive and below timeout %v", c.PollInterval, c.Timeout)
	}
	if c.Retries < 0 || c.Retries > maxRetries {
		return invalid("retries %d must be between 0 and %d: a device that fails that often will not answer the next time either", c.Retries, maxRetries)
	}
	if c.Delay < 0 || c.Delay > maxDelay {
		return invalid("delay %v must be between 0 and %v: every second of delay is a second more before the host's VMs restart", c.Delay, maxDelay)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Params)) {
		if !validKey(k) {
			return invalid("parameter %q: keys are lowercase letters, digits and '_' (as in the agent's metadata); fix the key", k)
		}
		if k == "action" || k == "option" {
			return invalid("parameter %q is set by wingman for each call; remove it from the config", k)
		}
		if strings.ContainsAny(c.Params[k], "\n\r\x00") {
			// A newline would end this key's line and start another:
			// "x\naction=on" would turn a fence into a power-on.
			return invalid("parameter %q: the value contains a newline or NUL, which would inject extra keys into the agent's input; remove it", k)
		}
	}
	return nil
}

// agentPath resolves Agent to an executable regular file.
func (c Config) agentPath() (string, error) {
	if c.Agent == "" {
		return "", invalid("no agent set: name a fence agent such as fence_ipmilan or fence_redfish, or give its absolute path")
	}
	path := c.Agent
	if !strings.ContainsRune(path, '/') {
		path = filepath.Join(c.AgentDir, path)
	} else if !filepath.IsAbs(path) {
		return "", invalid("agent %q: give an absolute path or a bare name looked up in %s", c.Agent, c.AgentDir)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", invalid("agent %s not found: install the fence-agents package that provides it (fence-agents-all, or fence-agents-%s), or give its full path", path, strings.TrimPrefix(filepath.Base(path), "fence_"))
	}
	if err != nil {
		return "", invalid("agent %s: %v", path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", invalid("agent %s is not a regular file: point agent at the executable", path)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return "", invalid("agent %s is not executable: chmod +x it, or reinstall its package", path)
	}
	return path, nil
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalidConfig)
}

// isSecretKey reports whether a parameter's value must never be shown.
// Broad on purpose: hiding a harmless value costs nothing.
func isSecretKey(k string) bool {
	for _, s := range []string{"pass", "secret", "token", "community", "key", "credential"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// redactedParams returns Params with secret values replaced.
func (c Config) redactedParams() map[string]string {
	out := make(map[string]string, len(c.Params))
	for k, v := range c.Params {
		if isSecretKey(k) {
			v = redacted
		}
		out[k] = v
	}
	return out
}

// String shows the configuration with secrets hidden, so that printing a
// Config by mistake leaks nothing.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fence.Config{Host:%q Device:%q Agent:%q Timeout:%v Retries:%d Delay:%v Params:{", c.Host, c.Device, c.Agent, c.Timeout, c.Retries, c.Delay)
	p := c.redactedParams()
	for i, k := range slices.Sorted(maps.Keys(p)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%q", k, p[k])
	}
	b.WriteString("}}")
	return b.String()
}

// GoString is String, so %#v hides secrets too.
func (c Config) GoString() string { return c.String() }

// LogValue hides secrets when a Config is logged with slog.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.String("device", c.Device),
		slog.String("agent", c.Agent),
		slog.Duration("timeout", c.Timeout),
		slog.Any("params", c.redactedParams()),
	)
}

package watchdog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// DefaultDevice is the kernel's watchdog device.
const DefaultDevice = "/dev/watchdog"

// DefaultTimeout is W in the default timing profile.
const DefaultTimeout = 5 * time.Second

// maxTimeout bounds W: the dead-host timeout D grows with it.
const maxTimeout = 10 * time.Minute

// Errors callers tell apart with errors.Is.
var (
	ErrInvalidConfig = errors.New("invalid watchdog config")
	// ErrNoDevice: Mode is ModeDevice and the device does not exist.
	ErrNoDevice = errors.New("no watchdog device")
	// ErrClosed: Pet after Close.
	ErrClosed = errors.New("watchdog closed")
	// ErrExpired: Pet after the software watchdog expired. The expiry
	// function has run; nothing can undo it.
	ErrExpired = errors.New("watchdog expired")
)

// Watchdog is an armed watchdog. Pet must be called more often than
// Timeout; Close disarms it (a clean stop only: a daemon that exits without
// Close leaves a device armed, which is the point).
type Watchdog interface {
	Pet() error
	Close() error
	Kind() string // KindDevice or KindSoftware
	// Timeout is the timeout in force, never longer than the one asked.
	Timeout() time.Duration
}

// Kinds of Watchdog.
const (
	KindDevice   = "device"
	KindSoftware = "software"
	KindFile     = "file"
)

// Mode says which watchdog Open may use.
type Mode string

const (
	// ModeAuto uses the device when it exists, else the software watchdog
	// with a warning. A device that exists but cannot be used is an error,
	// never a silent fallback.
	ModeAuto Mode = "auto"
	// ModeDevice requires the device.
	ModeDevice Mode = "device"
	// ModeSoftware uses the software watchdog only: for the test cluster,
	// where several hosts share one machine and one /dev/watchdog.
	ModeSoftware Mode = "software"
	// ModeFile is an emulated hardware watchdog for test clusters, where
	// several hosts share one machine: each pet rewrites the file Device,
	// and something outside the host (the test harness, playing the
	// hardware) resets the host when the file is older than Timeout. Close
	// removes the file (the magic close). Never use it in production.
	ModeFile Mode = "file"
)

// Config configures the watchdog. Start from DefaultConfig and set OnExpire.
type Config struct {
	// Mode chooses between the device and the software watchdog. Default
	// ModeAuto.
	Mode Mode

	// Device is the watchdog device. Default DefaultDevice.
	Device string

	// Timeout is W from the LUN header's timing: whole seconds (the kernel
	// counts in seconds), 1 s to 10 min. Default DefaultTimeout.
	Timeout time.Duration

	// OnExpire runs once, in a goroutine of its own, when the software
	// watchdog has not been petted for Timeout. It must stop this host from
	// running VMs for good (destroy them and exit hard). Required unless
	// Mode is ModeDevice. Not used by the device, which resets the host.
	OnExpire func()

	// Logger receives the warnings Open returns, at warning level, and the
	// software watchdog's expiry. Nil: slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the production settings: the device if present,
// W = 5 s. The caller sets OnExpire.
func DefaultConfig() Config {
	return Config{Mode: ModeAuto, Device: DefaultDevice, Timeout: DefaultTimeout}
}

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeAuto
	}
	if c.Device == "" {
		c.Device = DefaultDevice
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks the configuration. Errors wrap ErrInvalidConfig and say
// what to change.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch c.Mode {
	case ModeAuto, ModeDevice, ModeSoftware, ModeFile:
	default:
		return fmt.Errorf("mode %q: use auto, device or software: %w", c.Mode, ErrInvalidConfig)
	}
	if c.Timeout < time.Second || c.Timeout > maxTimeout || c.Timeout%time.Second != 0 {
		return fmt.Errorf("timeout %v: use whole seconds from 1s to %v, as the kernel watchdog counts in seconds: %w", c.Timeout, maxTimeout, ErrInvalidConfig)
	}
	if c.Mode != ModeDevice && c.Mode != ModeFile && c.OnExpire == nil {
		return fmt.Errorf("no OnExpire set: the software watchdog needs a function that stops this host's VMs when it expires: %w", ErrInvalidConfig)
	}
	return nil
}

// Open arms a watchdog as cfg says, with timeout cfg.Timeout, and returns
// it with a warning for the operator ("" when there is none; it is also
// logged). The caller must Pet it more often than Timeout from now on, and
// Close it on a clean stop.
func Open(cfg Config) (w Watchdog, warning string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, "", err
	}
	cfg = cfg.withDefaults()
	var warnings []string
	switch cfg.Mode {
	case ModeSoftware:
		warnings = append(warnings, softwareWarning("the config asks for the software watchdog"))
		w = newSoftware(cfg.Timeout, cfg.OnExpire, cfg.Logger)
	case ModeFile:
		f := &fileWatchdog{path: cfg.Device, timeout: cfg.Timeout}
		if err := f.Pet(); err != nil {
			return nil, "", fmt.Errorf("file watchdog %s: %w", cfg.Device, err)
		}
		warnings = append(warnings, "file watchdog "+cfg.Device+": an emulated hardware watchdog for test clusters only")
		w = f
	case ModeAuto, ModeDevice:
		_, statErr := os.Stat(cfg.Device)
		if errors.Is(statErr, os.ErrNotExist) {
			if cfg.Mode == ModeDevice {
				return nil, "", fmt.Errorf("%s does not exist: load a watchdog driver (iTCO_wdt, ipmi_watchdog, sp5100_tco, or softdog), or set mode auto to accept the software watchdog: %w", cfg.Device, ErrNoDevice)
			}
			warnings = append(warnings, softwareWarning(cfg.Device+" does not exist"))
			w = newSoftware(cfg.Timeout, cfg.OnExpire, cfg.Logger)
			break
		}
		d, devWarnings, err := openDevice(cfg.Device, cfg.Timeout)
		if err != nil {
			return nil, "", err
		}
		warnings = append(warnings, devWarnings...)
		w = d
	}
	for _, msg := range warnings {
		cfg.Logger.Warn(msg, "watchdog", w.Kind(), "timeout", w.Timeout())
	}
	return w, strings.Join(warnings, "; "), nil
}

// fileWatchdog is ModeFile's watchdog.
type fileWatchdog struct {
	path    string
	timeout time.Duration
}

func (f *fileWatchdog) Kind() string           { return KindFile }
func (f *fileWatchdog) Timeout() time.Duration { return f.timeout }

func (f *fileWatchdog) Pet() error {
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, f.path)
}

func (f *fileWatchdog) Close() error {
	err := os.Remove(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func softwareWarning(why string) string {
	return "WARNING: " + why + ", so wingman uses a software watchdog: it stops this host's VMs if the daemon stalls, " +
		"but it cannot reset a frozen host or a hung kernel, which may then keep running VMs after the cluster declared it dead. " +
		"Load a watchdog driver (iTCO_wdt, ipmi_watchdog, sp5100_tco, or at least softdog) to get /dev/watchdog"
}

package settings

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/reconcile"
)

// Values are the cluster-wide settings as a host applies them.
type Values struct {
	// GuestAgentWait is failover.guest_agent_wait.
	GuestAgentWait time.Duration
	// ParallelMigrations is maintenance.parallel_migrations.
	ParallelMigrations int
	// OnMigrationFailure is maintenance.on_migration_failure: OnFailureReport or OnFailureColdMove.
	OnMigrationFailure string
	// ExecTimeout is maintenance.exec_timeout.
	ExecTimeout time.Duration
	// DiskLoss is failover.disk_loss: DiskLossRestart or DiskLossOff.
	DiskLoss string
	// DiskLossGrace is failover.disk_loss_grace.
	DiskLossGrace time.Duration
	// Quarantine is quarantine.threshold, window and duration.
	Quarantine quorum.QuarantineConfig
	// MigrateAway is quarantine.migrate_away: a quarantined host's
	// protected VMs leave it by live migration.
	MigrateAway bool
}

// FileQuarantine is wingman.toml's [quarantine] section: this host's
// values of the quarantine keys, which the cluster's override.
type FileQuarantine struct {
	Threshold   int           `toml:"threshold"`
	Window      time.Duration `toml:"window"`
	Duration    time.Duration `toml:"duration"`
	MigrateAway bool          `toml:"migrate_away"`
}

// DefaultFileQuarantine is the section with every key at its default.
func DefaultFileQuarantine() FileQuarantine {
	d := Defaults()
	return FileQuarantine{Threshold: d.Quarantine.Threshold, Window: d.Quarantine.Window, Duration: d.Quarantine.Duration, MigrateAway: d.MigrateAway}
}

// Over returns v with the section's values.
func (q FileQuarantine) Over(v Values) Values {
	v.Quarantine = quorum.QuarantineConfig{Threshold: q.Threshold, Window: q.Window, Duration: q.Duration}
	v.MigrateAway = q.MigrateAway
	return v
}

// Bounds of the quarantine keys.
const (
	MaxQuarantineThreshold = 10
	MinQuarantineWindow    = time.Minute
	MaxQuarantineWindow    = 24 * time.Hour
	MinQuarantineDuration  = time.Minute
	MaxQuarantineDuration  = 7 * 24 * time.Hour
)

// Values of failover.disk_loss.
const (
	DiskLossRestart = "restart"
	DiskLossOff     = "off"
)

// Values of maintenance.on_migration_failure.
const (
	OnFailureReport   = "report"
	OnFailureColdMove = "cold-move"
)

// MaxParallelMigrations bounds maintenance.parallel_migrations.
const MaxParallelMigrations = 16

// Defaults returns the default of every cluster-wide key.
func Defaults() Values {
	return Values{GuestAgentWait: reconcile.DefaultConfig().GuestAgentWait, ParallelMigrations: 2,
		OnMigrationFailure: OnFailureReport, ExecTimeout: 30 * time.Minute,
		DiskLoss: DiskLossRestart, DiskLossGrace: reconcile.DefaultDiskLossGrace,
		Quarantine: quorum.DefaultQuarantineConfig()}
}

// DiskLossPolicy is failover.disk_loss and disk_loss_grace in vm/reconcile's terms.
func (v Values) DiskLossPolicy() reconcile.DiskLossPolicy {
	return reconcile.DiskLossPolicy{Restart: v.DiskLoss == DiskLossRestart, Grace: v.DiskLossGrace}
}

// Key is one cluster-wide key.
type Key struct {
	Name    string // as in wingman.toml: "failover.guest_agent_wait"
	Summary string // what it does, its range and default
	// Why every host must use the same value.
	Why string

	get   func(Values) string
	parse func(*Values, string) error // the value's syntax
	check func(Values) error          // its range: the one check of the file and of `config set`
}

// keys is the table of the cluster-wide keys. Each is read at its use (no
// restart): guest_agent_wait and the disk_loss keys at every VM manager step, the maintenance
// keys when an evacuation or a command starts (one under way keeps the
// values it started with).
var keys = []Key{
	{Name: "failover.guest_agent_wait", Summary: "how long a later start tier waits for an earlier tier's guest agent (10s to 1h, default 5m)",
		Why: "the host that takes a VM over applies its own value: which host that is must not change how long the next tier waits",
		get: func(v Values) string { return FormatDuration(v.GuestAgentWait) },
		parse: func(v *Values, s string) (err error) {
			v.GuestAgentWait, err = parseDuration(s)
			return err
		},
		check: func(v Values) error {
			if w := v.GuestAgentWait; w < reconcile.MinGuestAgentWait || w > reconcile.MaxGuestAgentWait {
				return fmt.Errorf("%v: use %v to %v (default 5m)", FormatDuration(w), FormatDuration(reconcile.MinGuestAgentWait), FormatDuration(reconcile.MaxGuestAgentWait))
			}
			return nil
		}},
	{Name: "failover.disk_loss", Summary: `what the owner of a protected VM paused on an I/O error for disk_loss_grace, its host otherwise healthy, does: "restart" (default: destroy it and restart it on a host that reaches its disks) or "off" (leave it paused)`,
		Why: "whether a paused guest is destroyed and restarted elsewhere must not depend on which host lost its disk paths",
		get: func(v Values) string { return v.DiskLoss },
		parse: func(v *Values, s string) error {
			v.DiskLoss = s
			return nil
		},
		check: func(v Values) error {
			if d := v.DiskLoss; d != DiskLossRestart && d != DiskLossOff {
				return fmt.Errorf("%q: use %q (restart the VM on a host that reaches its disks) or %q (leave it paused)", d, DiskLossRestart, DiskLossOff)
			}
			return nil
		}},
	{Name: "failover.disk_loss_grace", Summary: "how long a VM may stay paused on an I/O error before failover.disk_loss restarts it elsewhere (15s to 24h, default 1m; at least the LUN's dead time D)",
		Why: "the host that lost its paths applies it: which host that is must not change how long its guests stay paused",
		get: func(v Values) string { return FormatDuration(v.DiskLossGrace) },
		parse: func(v *Values, s string) (err error) {
			v.DiskLossGrace, err = parseDuration(s)
			return err
		},
		check: func(v Values) error {
			if g := v.DiskLossGrace; g < reconcile.MinDiskLossGrace || g > reconcile.MaxDiskLossGrace {
				return fmt.Errorf("%v: use %v to %v (default 1m); below %v a SAN path failover (which the timing rule keeps below the self-fence time F) "+
					"or a storage loss that the self-fence and the dead time D handle could destroy guests that would have resumed",
					FormatDuration(g), FormatDuration(reconcile.MinDiskLossGrace), FormatDuration(reconcile.MaxDiskLossGrace), FormatDuration(reconcile.MinDiskLossGrace))
			}
			return nil
		}},
	{Name: "maintenance.parallel_migrations", Summary: "how many live migrations an evacuation runs at once (1 to 16, default 2)",
		Why: "the migration network is shared: an evacuation must load it alike whichever host enters maintenance",
		get: func(v Values) string { return strconv.Itoa(v.ParallelMigrations) },
		parse: func(v *Values, s string) (err error) {
			v.ParallelMigrations, err = strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", s)
			}
			return nil
		},
		check: func(v Values) error {
			if p := v.ParallelMigrations; p < 1 || p > MaxParallelMigrations {
				return fmt.Errorf("%d: must be 1 to %d (default 2)", p, MaxParallelMigrations)
			}
			return nil
		}},
	{Name: "maintenance.on_migration_failure", Summary: `what an evacuation does with a VM whose live migration failed twice: "report" (default) or "cold-move"`,
		Why: "whether a guest may be shut down for another host to start must not depend on which host is emptied",
		get: func(v Values) string { return v.OnMigrationFailure },
		parse: func(v *Values, s string) error {
			v.OnMigrationFailure = s
			return nil
		},
		check: func(v Values) error {
			if f := v.OnMigrationFailure; f != OnFailureReport && f != OnFailureColdMove {
				return fmt.Errorf("%q: use %q (leave the VM and report it) or %q (shut it down for another host to start)", f, OnFailureReport, OnFailureColdMove)
			}
			return nil
		}},
	{Name: "maintenance.exec_timeout", Summary: "the time limit of a rolling update's command when the caller gives none (positive, default 30m)",
		Why: "the host whose API receives `wingman rolling-update` gives its own value to every host's command",
		get: func(v Values) string { return FormatDuration(v.ExecTimeout) },
		parse: func(v *Values, s string) (err error) {
			v.ExecTimeout, err = parseDuration(s)
			return err
		},
		check: func(v Values) error {
			if t := v.ExecTimeout; t <= 0 {
				return fmt.Errorf("%v: must be positive, like 30m", FormatDuration(t))
			}
			return nil
		}},
	{Name: "quarantine.threshold", Summary: "how many times a host declared dead or isolated by a poison pill within quarantine.window puts it in quarantine, where it takes no new VM (0 = never, else 2 to 10, default 3)",
		Why: "the coordinator that counts the flaps applies it: which host coordinates must not change who is quarantined",
		get: func(v Values) string { return strconv.Itoa(v.Quarantine.Threshold) },
		parse: func(v *Values, s string) (err error) {
			v.Quarantine.Threshold, err = strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", s)
			}
			return nil
		},
		check: func(v Values) error {
			if n := v.Quarantine.Threshold; n != 0 && (n < 2 || n > MaxQuarantineThreshold) {
				return fmt.Errorf("%d: use 0 (never quarantine) or 2 to %d (default 3); 1 would quarantine a host on its first failure", n, MaxQuarantineThreshold)
			}
			return nil
		}},
	{Name: "quarantine.window", Summary: "the time within which quarantine.threshold flaps quarantine a host (1m to 24h, default 1h)",
		Why: "the coordinator that counts the flaps applies it: which host coordinates must not change who is quarantined",
		get: func(v Values) string { return FormatDuration(v.Quarantine.Window) },
		parse: func(v *Values, s string) (err error) {
			v.Quarantine.Window, err = parseDuration(s)
			return err
		},
		check: func(v Values) error {
			if w := v.Quarantine.Window; w < MinQuarantineWindow || w > MaxQuarantineWindow {
				return fmt.Errorf("%v: use %v to %v (default 1h)", FormatDuration(w), FormatDuration(MinQuarantineWindow), FormatDuration(MaxQuarantineWindow))
			}
			return nil
		}},
	{Name: "quarantine.duration", Summary: "how long a quarantine lasts unless `wingman host unquarantine` ends it sooner (1m to 7 days, default 2h)",
		Why: "the coordinator that quarantines a host records when it ends: which host that is must not change it",
		get: func(v Values) string { return FormatDuration(v.Quarantine.Duration) },
		parse: func(v *Values, s string) (err error) {
			v.Quarantine.Duration, err = parseDuration(s)
			return err
		},
		check: func(v Values) error {
			if d := v.Quarantine.Duration; d < MinQuarantineDuration || d > MaxQuarantineDuration {
				return fmt.Errorf("%v: use %v to 168h (7 days; default 2h)", FormatDuration(d), FormatDuration(MinQuarantineDuration))
			}
			return nil
		}},
	{Name: "quarantine.migrate_away", Summary: "whether a quarantined host's protected VMs leave it by live migration (true) or stay where they run (false, default); never stopped either way",
		Why: "whether guests move must not depend on which host was quarantined",
		get: func(v Values) string { return strconv.FormatBool(v.MigrateAway) },
		parse: func(v *Values, s string) (err error) {
			v.MigrateAway, err = strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%q: use true or false", s)
			}
			return nil
		},
		check: func(Values) error { return nil }},
}

// perHost are the keys of wingman.toml that stay there, by the section
// (or the whole key) they start with, and why each host sets its own.
var perHost = []struct{ prefix, why string }{
	{"cluster", "it names the cluster whose LUN this host opens"},
	{"lun", "it is the path of the LUN on this host"},
	{"host_name", "it is this host's identity"},
	{"host_id", "it is this host's slot on the LUN"},
	{"state_dir", "it is a directory on this host"},
	{"libvirt.", "it says how this host reaches libvirt"},
	{"serf.", "it is this host's gossip address, keyring file and detection profile, read when serf starts"},
	{"api.", "it is this host's API socket and TLS files"},
	{"watchdog.", "it is this host's watchdog device"},
	{"shutdown.", "it says what this host does with its guests when it shuts down"},
	{"maintenance.allow_exec", "it is what this host lets remote commands do"},
	{"maintenance.reboot_command", "it is how this host reboots"},
	{"placement.", "each host advertises its own limits (its hardware) to the others, whose planners apply each host's own: hosts may differ without deciding differently"},
	{"metrics.", "it is this host's metrics listener"},
	{"isolation.", "each host pings the addresses it reaches its users through (its own gateway) and publishes what it found in its slot, from which every host decides alike"},
	{"fence.", "fence agents and their credentials stay in files on the hosts, never on the LUN"},
	{"fence_device.", "fence devices and their credentials stay in files on the hosts, never on the LUN"},
}

// Error classes of Lookup and Parse, tested with errors.Is; each is also
// a vm.ErrInvalid refusal.
var (
	ErrUnknownKey = errors.New("unknown key")
	ErrPerHost    = errors.New("per-host key")
	ErrBadValue   = errors.New("invalid value")
)

// Keys returns the cluster-wide keys in the order `wingman config list`
// shows them.
func Keys() []Key { return slices.Clone(keys) }

// Get returns the key's value in v, as text.
func (k Key) Get(v Values) string { return k.get(v) }

// Default returns the key's default, as text.
func (k Key) Default() string { return k.get(Defaults()) }

// PerHost reports whether name is a key of wingman.toml that stays there,
// and why.
func PerHost(name string) (string, bool) {
	for _, p := range perHost {
		if name == p.prefix || (strings.HasSuffix(p.prefix, ".") && strings.HasPrefix(name, p.prefix)) {
			return p.why, true
		}
	}
	return "", false
}

// Lookup returns the cluster-wide key name. A per-host key is refused
// with the reason it stays in wingman.toml; an unknown one with the list
// of keys and the nearest.
func Lookup(name string) (Key, error) {
	if i := slices.IndexFunc(keys, func(k Key) bool { return k.Name == name }); i >= 0 {
		return keys[i], nil
	}
	if why, ok := PerHost(name); ok {
		return Key{}, vm.Refuse(vm.ErrInvalid, "set it in /etc/wingman/wingman.toml on each host that needs it, and restart wingmand there",
			"%w: %s is per-host and lives in wingman.toml: %s", ErrPerHost, name, why)
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	hint := "the cluster-wide keys are " + strings.Join(names, ", ") + "; see 'wingman config list'"
	if near := nearest(name, names); near != "" {
		return Key{}, vm.Refuse(vm.ErrInvalid, hint, "%w %q: did you mean %s?", ErrUnknownKey, name, near)
	}
	return Key{}, vm.Refuse(vm.ErrInvalid, hint, "%w %q", ErrUnknownKey, name)
}

// Parse checks value for key name, as `wingman config set` receives it,
// and returns it in its canonical form ("300s" is "5m").
func Parse(name, value string) (Key, string, error) {
	k, err := Lookup(name)
	if err != nil {
		return k, "", err
	}
	v := Defaults()
	err = k.parse(&v, strings.TrimSpace(value))
	if err == nil {
		err = k.check(v)
	}
	if err != nil {
		return k, "", vm.Refuse(vm.ErrInvalid, k.Name+": "+k.Summary, "%s: %w: %w", k.Name, ErrBadValue, err)
	}
	return k, k.get(v), nil
}

// Problem is one key whose value is out of range.
type Problem struct{ Key, Msg string }

// Problems checks every cluster-wide key of v: the checks of
// wingmand --check-config for these keys, and of `wingman config set`.
func (v Values) Problems() []Problem {
	var out []Problem
	for _, k := range keys {
		if err := k.check(v); err != nil {
			out = append(out, Problem{Key: k.Name, Msg: err.Error()})
		}
	}
	return out
}

// ColdMove reports whether maintenance.on_migration_failure is cold-move.
func (v Values) ColdMove() bool { return v.OnMigrationFailure == OnFailureColdMove }

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: write it like 90s, 5m or 1h30m", s)
	}
	return d, nil
}

// FormatDuration writes d as people do: 5m, not 5m0s.
func FormatDuration(d time.Duration) string { return quorum.ShortDuration(d) }

// nearest is the name closest to s by edit distance, if it is close
// enough to be a typo, or the one name that ends like s.
func nearest(s string, names []string) string {
	best, bestD := "", len(s)/3+2
	for _, n := range names {
		if strings.HasSuffix(n, "."+s) {
			return n
		}
		if d := levenshtein.ComputeDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

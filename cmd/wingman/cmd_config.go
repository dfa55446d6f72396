package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/wingmanha/wingman/cmd/api"
)

// configHelp is what every config command says of the keys.
const configHelp = `The cluster-wide keys are the few keys of wingman.toml that must be alike
on every host: failover.guest_agent_wait, maintenance.parallel_migrations,
maintenance.on_migration_failure and maintenance.exec_timeout. They are
stored on the heartbeat LUN; a value set there overrides every host's
wingman.toml and applies on every host within 10 seconds, without a
restart. The other keys (the LUN's path, host_id, api.socket, serf,
libvirt, the watchdog, fence agents, the shutdown policy, placement
limits, allow_exec) are per-host and stay in wingman.toml.`

var configListCmd = command{
	name:    "config list",
	summary: "list the cluster-wide settings, where each value comes from and who set it",
	help: `Lists each cluster-wide key with the value the answering host applies and
where it comes from: cluster (set with 'wingman config set', with the host
that set it and when), file (that host's wingman.toml; the cluster sets
none) or default; and the settings record's generation, which every change
raises by one. Warns, on stderr, where that host's wingman.toml sets a key
to another value than the cluster's.

` + configHelp,
	nargs: [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, _ []string) error {
			cs, err := c.ClusterSettings(ctx)
			if err != nil {
				return daemonErr(err, "", "")
			}
			if *asJSON {
				return writeJSON(s.out, cs)
			}
			printSettings(s, cs)
			return nil
		})
	},
}

var configGetCmd = command{
	name:    "config get",
	args:    "KEY",
	summary: "print the value of a cluster-wide key",
	help: `Prints the value of KEY that the answering host applies, on stdout; where it
comes from on stderr.

` + configHelp,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			cs, err := c.ClusterSetting(ctx, args[0])
			if err != nil {
				return daemonErr(err, "", "")
			}
			if *asJSON {
				return writeJSON(s.out, cs)
			}
			for _, e := range cs.Settings {
				fmt.Fprintln(s.out, e.Value)
				fmt.Fprintf(s.errOut, "%s: %s (settings generation %d)\n", e.Key, origin(e), cs.Generation)
			}
			warn(s.errOut, cs.Warnings)
			return nil
		})
	},
}

var configSetCmd = command{
	name:    "config set",
	args:    "KEY VALUE",
	summary: "set a cluster-wide key for every host",
	help: `Sets KEY to VALUE for the whole cluster, on the heartbeat LUN. The daemon
checks both as wingmand --check-config checks wingman.toml: an unknown key
(with the nearest), a per-host key (it stays in wingman.toml) or a value
out of range (with the range) is refused. Each change is an event
(config-changed, with the old and the new value and the host) in
'wingman events'. A host whose wingman.toml still sets the key to another
value says so in 'wingman status': remove the key there.

` + configHelp,
	nargs: [2]int{2, 2},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			return printChange(s, *asJSON)(c.SetClusterSetting(ctx, args[0], args[1]))
		})
	},
}

var configUnsetCmd = command{
	name:    "config unset",
	args:    "KEY",
	summary: "take a cluster-wide key back to its default",
	help: `Removes KEY's cluster-wide value: every host applies its wingman.toml's
value again, or the default. The change is an event like 'config set'.

` + configHelp,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			return printChange(s, *asJSON)(c.UnsetClusterSetting(ctx, args[0]))
		})
	},
}

// printChange prints the answer of a set or an unset.
func printChange(s stdio, asJSON bool) func(api.ClusterSettings, error) error {
	return func(cs api.ClusterSettings, err error) error {
		if err != nil {
			return daemonErr(err, "", "")
		}
		if asJSON {
			return writeJSON(s.out, cs)
		}
		for _, e := range cs.Settings {
			fmt.Fprintf(s.out, "%s = %s: %s; settings generation %d\n", e.Key, e.Value, origin(e), cs.Generation)
		}
		warn(s.errOut, cs.Warnings)
		return nil
	}
}

// origin says where a value comes from.
func origin(e api.ClusterSetting) string {
	switch e.Source {
	case "cluster":
		return fmt.Sprintf("cluster-wide, set by %s at %s", e.SetBy, e.SetAt.Local().Format("2006-01-02 15:04:05 MST"))
	case "file":
		return "this host's wingman.toml (the cluster sets none; default " + e.Default + ")"
	}
	return "the default"
}

func printSettings(s stdio, cs api.ClusterSettings) {
	fmt.Fprintf(s.errOut, "settings generation %d, as %s applies them\n", cs.Generation, cs.Host)
	tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE\tSET BY\tSET AT")
	for _, e := range cs.Settings {
		by, at := "-", "-"
		if e.Source == "cluster" {
			by, at = e.SetBy, e.SetAt.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Key, e.Value, e.Source, by, at)
	}
	tw.Flush()
	for _, e := range cs.Settings {
		if e.Ignored != "" {
			fmt.Fprintf(s.errOut, "warning: %s = %s on the LUN is not applied: %s\n", e.Key, e.Value, e.Ignored)
		}
	}
	warn(s.errOut, cs.Warnings)
}

func warn(w io.Writer, warnings []string) {
	for _, x := range warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
}

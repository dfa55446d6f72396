package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/wingmanha/wingman/cmd/api"
)

var notifyAddCmd = command{
	name:    "notify add",
	args:    "NAME",
	summary: "add a notification target: mail, webhook or exec hook",
	help: `Adds a target that is told of every failover (one message once it has
settled), of the lost host's return ("resolved"), and of proactive warnings
(N+1 capacity lost, heartbeat LUN latency near the self-fence limit, no
hardware watchdog, HA disarmed, a wingman.toml that disagrees with 'wingman config')
when they appear, every 24 hours while they last, and when they clear.
Targets are stored on the heartbeat LUN: every host sees them.
docs/NOTIFICATIONS.md describes what each kind receives.

  mail     --address smtp.example.com:587 --from wingman@example.com --to ops@example.com
           [--user NAME --password-file /etc/wingman/secrets/smtp.pass]
  webhook  --address https://hooks.example.com/wingman [--key-file /etc/wingman/secrets/hook.key]
  exec     --address /usr/local/bin/page-oncall

Secrets never go on the LUN: the password or key file must exist, at the
same path, on every host (mode 0600). The daemon checks the target, and
that the file exists on its host, before storing it. Send a test message
with 'wingman notify test NAME'.`,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		kind := fs.String("kind", "", "`KIND` of target: mail, webhook or exec (required)")
		choices(fs, "kind", "mail", "webhook", "exec")
		address := fs.String("address", "", "SMTP server host:port, webhook URL, or the hook's absolute path (required)")
		from := fs.String("from", "", "mail: sender address")
		to := fs.StringSlice("to", nil, "mail: recipient address (repeat or separate with commas)")
		user := fs.String("user", "", "mail: SMTP user (needs --password-file; sent only over STARTTLS)")
		passFile := fs.String("password-file", "", "mail: absolute path of the SMTP password file, on every host")
		fs.SetAnnotation("password-file", annFiles, []string{"true"})
		keyFile := fs.String("key-file", "", "webhook: absolute path of the key that signs every body, on every host")
		fs.SetAnnotation("key-file", annFiles, []string{"true"})
		minSev := fs.String("min-severity", "info", "send only what is at least this severe: info, warning or error")
		choices(fs, "min-severity", "info", "warning", "error")
		kinds := fs.String("kinds", "", "send only these kinds: incident, resolved, warning, cleared (comma-separated; default all)")
		hosts := fs.String("hosts", "", "send only what is about these hosts (comma-separated; default all)")
		fs.SetAnnotation("hosts", annHosts, []string{"true"})
		timeout := fs.Duration("timeout", 0, "one attempt's timeout (default 30s for mail and exec, 10s for webhooks; at most 10m)")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			t := api.NotifyTarget{Name: args[0], Kind: *kind, Address: *address, From: *from, To: *to, User: *user,
				MinSeverity: *minSev, Kinds: splitList(*kinds), Hosts: splitList(*hosts), Timeout: *timeout}
			switch {
			case *kind != "mail" && *kind != "webhook" && *kind != "exec":
				return usagef("--kind %q: use mail, webhook or exec", *kind)
			case *address == "":
				return usagef("--address is required: the SMTP server (host:port), the webhook URL or the hook's path")
			case *passFile != "" && *kind != "mail", *keyFile != "" && *kind != "webhook":
				return usagef("--password-file is for mail targets, --key-file for webhooks")
			}
			t.SecretFile = *passFile + *keyFile
			out, err := c.AddNotifyTarget(ctx, t)
			if err != nil {
				return daemonErr(err, "", "")
			}
			if *asJSON {
				return writeJSON(s.out, out)
			}
			fmt.Fprintf(s.out, "added %s target %s (%s); try it with: wingman notify test %s\n", out.Kind, out.Name, out.Address, out.Name)
			return nil
		})
	},
}

var notifyListCmd = command{
	name:    "notify list",
	summary: "list the notification targets and what this host delivered to them",
	help: `Lists the targets stored on the heartbeat LUN with their rules and, for
the host whose wingmand answers, how many notifications it delivered to each
since it started and how many attempts failed.`,
	nargs: [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, _ []string) error {
			ts, err := c.NotifyTargets(ctx)
			if err != nil {
				return daemonErr(err, "", "")
			}
			if *asJSON {
				if ts == nil {
					ts = []api.NotifyTarget{}
				}
				return writeJSON(s.out, ts)
			}
			if len(ts) == 0 {
				fmt.Fprintln(s.errOut, "no notification targets; add one with 'wingman notify add'")
				return nil
			}
			printTargets(s.out, ts)
			return nil
		})
	},
}

func printTargets(w io.Writer, ts []api.NotifyTarget) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tADDRESS\tRULES\tSENT\tFAILED")
	for _, t := range ts {
		addr := t.Address
		if len(t.To) > 0 {
			addr += " -> " + strings.Join(t.To, ",")
		}
		var rules []string
		if t.MinSeverity != "" && t.MinSeverity != "info" {
			rules = append(rules, ">= "+t.MinSeverity)
		}
		if len(t.Kinds) > 0 {
			rules = append(rules, strings.Join(t.Kinds, ","))
		}
		if len(t.Hosts) > 0 {
			rules = append(rules, "hosts "+strings.Join(t.Hosts, ","))
		}
		var sent, failed uint64
		if t.Counts != nil {
			sent, failed = t.Counts.Sent, t.Counts.Failed
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", t.Name, t.Kind, addr, orDash(strings.Join(rules, "; ")), sent, failed)
	}
	tw.Flush()
}

var notifyRemoveCmd = command{
	name:    "notify remove",
	args:    "NAME",
	summary: "remove a notification target",
	nargs:   [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			if err := c.RemoveNotifyTarget(ctx, args[0]); err != nil {
				return daemonErr(err, "", "")
			}
			fmt.Fprintf(s.out, "removed notification target %s\n", args[0])
			return nil
		})
	},
}

var notifyTestCmd = command{
	name:    "notify test",
	args:    "[NAME]",
	summary: "send a test notification to one target, or to all",
	help: `Sends a test notification from the host whose wingmand answers, to the
target NAME or to every target at once, and prints what each did: one
attempt each, no retries, within 30 seconds. Exits 1 if any failed. Each
result is also an event (notify-sent, notify-failed) in 'wingman events'.`,
	nargs: [2]int{0, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			stop := progress(s, "sending a test notification")
			res, err := c.NotifyTest(ctx, name)
			stop()
			if err != nil {
				return daemonErr(err, "", "")
			}
			if *asJSON {
				if err := writeJSON(s.out, res); err != nil {
					return err
				}
			}
			failed := 0
			for _, r := range res {
				if !r.OK {
					failed++
				}
				if *asJSON {
					continue
				}
				if r.OK {
					fmt.Fprintf(s.out, "ok      %s %s in %s\n", r.Kind, r.Target, humanDuration(r.Took))
				} else {
					fmt.Fprintf(s.out, "FAILED  %s %s: %s\n", r.Kind, r.Target, r.Error)
				}
			}
			if failed > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("%d of %d targets failed; fix them, then test again", failed, len(res))}
			}
			return nil
		})
	},
}

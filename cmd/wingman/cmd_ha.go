package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/wingmanha/wingman/cmd/api"
)

var haDisarmCmd = command{
	name:    "ha disarm",
	summary: "stop failover and fencing cluster-wide for a while (network or SAN work)",
	help: `Disarms HA on every host for --for: no host is declared dead, no
poison pill is sent, no host is powered off, and no host fences itself for
losing the heartbeat LUN or the network. Guests keep running. A daemon that
is itself unhealthy (its loops stall) still stops feeding the watchdog.

Every host reads the request from the heartbeat LUN and times it on its
own clock; each re-arms by itself when the time runs out. After re-arming,
a host that stays silent for D (the timing rule's dead time) is failed over.
A host cut off during the disarm cannot hear an early 'wingman ha arm': the
others wait for its own timer (plus 1% and D) before failing it over.

A second disarm extends the first; one that would end sooner is refused
unless --force. A disarm is refused while a failover is in progress, and on
a host that cannot write the heartbeat LUN (nobody would see it).`,
	nargs: [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		dur := fs.Duration("for", time.Hour, "how long HA stays disarmed (1s to 24h)")
		reason := fs.String("reason", "", "why, shown by status and sent with the notification (at most 100 bytes)")
		force := fs.Bool("force", false, "let this disarm end sooner than the one running")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, _ []string) error {
			if *dur < time.Second || *dur > 24*time.Hour {
				return usagef("--for %v: give a duration from 1s to 24h (disarm again to extend)", *dur)
			}
			st, err := c.Disarm(ctx, api.DisarmRequest{For: *dur, Reason: *reason, Force: *force})
			if err != nil {
				return daemonErr(err, "", "")
			}
			if *asJSON {
				return writeJSON(s.out, st)
			}
			fmt.Fprintf(s.out, "%s\n", haLine(st))
			fmt.Fprintln(s.errOut, "every host re-arms by itself when the time runs out; re-arm early with: wingman ha arm")
			return nil
		})
	},
}

var haArmCmd = command{
	name:    "ha arm",
	summary: "re-arm failover and fencing cluster-wide now",
	help: `Ends a disarm ('wingman ha disarm') on every host that can read the
heartbeat LUN. A host cut off from it meanwhile re-arms when its own timer
runs out; it is not failed over before then (plus D), and 'wingman status'
lists it as still disarmed until it writes again.`,
	nargs: [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, _ []string) error {
			st, err := c.Arm(ctx)
			if err != nil {
				return daemonErr(err, "", "")
			}
			if *asJSON {
				return writeJSON(s.out, st)
			}
			if line := haLine(st); line != "" {
				fmt.Fprintln(s.out, line)
				return nil
			}
			fmt.Fprintln(s.out, "HA armed")
			return nil
		})
	},
}

// haLine says whether HA is disarmed, and which hosts still are; "" when
// it is armed everywhere.
func haLine(h api.HAState) string {
	var b strings.Builder
	if h.Disarmed {
		fmt.Fprintf(&b, "HA DISARMED until %s (%s more) by %s", h.Until.Local().Format("2006-01-02 15:04:05 MST"), humanDuration(h.Remaining.Round(time.Second)), h.By)
		if h.Reason != "" {
			fmt.Fprintf(&b, ": %s", h.Reason)
		}
		b.WriteString(" (re-arms by itself)")
		return b.String()
	}
	if len(h.DisarmedHosts) > 0 {
		fmt.Fprintf(&b, "armed; still disarmed: %s (re-arms by itself)", strings.Join(h.DisarmedHosts, ", "))
	}
	return b.String()
}

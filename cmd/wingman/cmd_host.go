package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/wingmanha/wingman/cmd/api"
)

// pollEvery is how often waiting commands ask the daemon again (tests shorten it).
var pollEvery = time.Second

var hostListCmd = command{
	name:    "host-list",
	summary: "list the hosts of the cluster and their state",
	nargs:   [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		names := fs.Bool("name", false, "print only the names, one a line")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, _ []string) error {
			hosts, err := c.Hosts(ctx)
			if err != nil {
				return daemonErr(err, "", "")
			}
			if hosts == nil {
				hosts = []api.Host{}
			}
			sort.SliceStable(hosts, func(i, j int) bool { return hosts[i].ID < hosts[j].ID })
			switch {
			case *asJSON:
				return writeJSON(s.out, hosts)
			case *names:
				for _, h := range hosts {
					fmt.Fprintln(s.out, h.Name)
				}
				return nil
			}
			printHosts(s.out, hosts)
			return nil
		})
	},
}

func printHosts(w io.Writer, hosts []api.Host) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tALIVE BY\tSERF\tVMS\tMEMORY\tFREE\tCPUS\tFENCE\tLOCKS\tREASON")
	for _, h := range hosts {
		name := h.Name
		if h.Coordinator {
			name += " *"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", h.ID, name, hostState(h), orDash(h.AliveBy), orDash(h.Serf), h.VMs,
			humanMiB(h.MemoryMiB), humanMiB(h.FreeMiB), h.CPUs, yesNo(h.Fenceable), lockManagerText(h.LockManager), orDash(h.Reason))
	}
	tw.Flush()
	for _, h := range hosts {
		if h.Coordinator {
			fmt.Fprintln(w, "* coordinator")
			break
		}
	}
	for _, h := range hosts {
		if q := h.Quarantine; q != nil {
			fmt.Fprintf(w, "%s is quarantined until %s by %s: %s; it takes no new VM (wingman host unquarantine %s)\n",
				h.Name, q.Until.Local().Format(time.DateTime), q.By, q.Why, h.Name)
		}
	}
}

// hostState is a host's state, and its quarantine.
func hostState(h api.Host) string {
	if h.Quarantine != nil {
		return h.State + ",quarantined"
	}
	return h.State
}

// lockManagerText says what libvirt's lock manager on a host is: "-" when
// the host does not say.
func lockManagerText(lm string) string {
	switch lm {
	case "":
		return "-"
	case "none":
		return "off"
	case "lockd":
		return "virtlockd"
	}
	return lm
}

var hostinfoCmd = command{
	name:    "hostinfo",
	args:    "HOST",
	summary: "show one host: state, generation, memory, VMs, fencing",
	help:    `HOST is a host name or its id on the LUN.`,
	nargs:   [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			h, err := c.Host(ctx, args[0])
			if err != nil {
				return daemonErr(err, "host", args[0])
			}
			if *asJSON {
				return writeJSON(s.out, h)
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 1, ' ', 0)
			row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
			row("Name", h.Name)
			row("ID", strconv.Itoa(h.ID))
			st := h.State
			if h.Reason != "" {
				st += " (" + h.Reason + ")"
			}
			row("State", st)
			row("Alive by", orDash(h.AliveBy))
			row("Generation", strconv.FormatUint(h.Generation, 10))
			row("Serf", orDash(h.Serf))
			row("Maintenance", yesNo(h.Maintenance))
			quarantine := "no"
			if q := h.Quarantine; q != nil {
				quarantine = fmt.Sprintf("until %s by %s: %s", q.Until.Local().Format(time.DateTime), q.By, q.Why)
			}
			row("Quarantined", quarantine)
			row("Coordinator", yesNo(h.Coordinator))
			row("Memory", fmt.Sprintf("%s, %s free", humanMiB(h.MemoryMiB), humanMiB(h.FreeMiB)))
			row("CPUs", strconv.Itoa(h.CPUs))
			row("Protected VMs", strconv.Itoa(h.VMs))
			row("Fenceable", yesNo(h.Fenceable))
			tw.Flush()
			return nil
		})
	},
}

var statusCmd = command{
	name:    "status",
	summary: "show the cluster: quorum, coordinator, LUN health, timings, capacity, hosts",
	help: `Shows the cluster as the local wingmand sees it: whether this host's
partition has quorum and may run VMs, the coordinator, the heartbeat LUN's
health and latency, the timing rule, whether the cluster can restart every
protected VM after losing a host (N+1), warnings, and the hosts.`,
	nargs: [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, _ []string) error {
			st, err := c.Status(ctx)
			if err != nil {
				return daemonErr(err, "", "")
			}
			if *asJSON {
				if st.Warnings == nil {
					st.Warnings = []string{}
				}
				if st.Hosts == nil {
					st.Hosts = []api.Host{}
				}
				return writeJSON(s.out, st)
			}
			printStatus(s.out, st)
			return nil
		})
	},
}

func hostName(hosts []api.Host, id int) string {
	for _, h := range hosts {
		if h.ID == id && h.Name != "" {
			return h.Name
		}
	}
	return fmt.Sprintf("host %d", id)
}

func printStatus(w io.Writer, st api.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("cluster", "%s (%s)", st.Cluster, st.ClusterUUID)
	row("this host", "%s (id %d, generation %d), wingmand %s", st.Host, st.HostID, st.Generation, st.Version)
	if line := haLine(st.HA); line != "" {
		row("HA", "%s", line)
	}
	q := "no"
	if st.Quorate {
		q = "yes"
	}
	row("quorum", "%s: partition %s of voters %s", q, intsString(st.Partition), intsString(st.Voters))
	if st.Coordinator != 0 {
		row("coordinator", "%s (id %d)", hostName(st.Hosts, st.Coordinator), st.Coordinator)
	} else {
		row("coordinator", "none")
	}
	if st.MayRunVMs {
		row("VMs here", "may run")
	} else {
		row("VMs here", "may NOT run: this host must not start protected VMs")
	}
	l := st.LUN
	row("LUN", "%s: last write %s ago, last read %s ago", orDash(l.Path), humanDuration(l.LastWriteAgo), humanDuration(l.LastReadAgo))
	row("LUN latency", "write %s (worst in the last minute %s)", humanDuration(l.WriteLatency), humanDuration(l.WriteLatencyHi))
	for _, m := range l.Members {
		st := "ok"
		if !m.OK {
			st = fmt.Sprintf("FAILING since %s: %s", m.Since.Format(time.TimeOnly), m.Problem)
		}
		row(fmt.Sprintf("LUN %d of %d", m.Index, len(l.Members)), "%s: %s", m.Path, st)
	}
	if l.NetworkLease {
		row("network lease", "yes")
	}
	t := st.Timings
	row("timings", "renew %s, I/O timeout %s, self-fence %s, watchdog %s, dead %s, power fence %s, lease ceiling %s",
		humanDuration(t.Renew), humanDuration(t.IOTimeout), humanDuration(t.SelfFence), humanDuration(t.Watchdog),
		humanDuration(t.Dead), humanDuration(t.PowerFence), humanDuration(t.LeaseCeiling))
	row("watchdog", "%s", orDash(st.Watchdog))
	cv := st.Capacity
	if cv.Survivable {
		row("capacity", "N+%d: every protected VM restarts after the loss of any %s", cv.K, plural(cv.K, "host"))
	} else {
		row("capacity", "NOT N+%d: losing %s could leave protected VMs down", cv.K, plural(cv.K, "host"))
	}
	for _, p := range cv.Problems {
		row("", "- %s", p)
	}
	tw.Flush()
	if len(st.Warnings) > 0 {
		fmt.Fprintln(w, "\nwarnings:")
		for _, x := range st.Warnings {
			fmt.Fprintf(w, "  - %s\n", x)
		}
	}
	fmt.Fprintln(w)
	hosts := append([]api.Host(nil), st.Hosts...)
	sort.SliceStable(hosts, func(i, j int) bool { return hosts[i].ID < hosts[j].ID })
	printHosts(w, hosts)
}

var maintenanceEnterCmd = command{
	name:    "maintenance enter",
	args:    "HOST",
	summary: "put a host in maintenance: migrate its VMs away, take no new ones",
	help: `Marks the host as in maintenance: the planner places nothing on it and its
protected VMs live-migrate to other hosts. Waits until the host holds no
protected VM, showing progress on stderr, unless --no-wait is given.
Interrupting the wait does not stop the evacuation.`,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		all := fs.Bool("all", false, "also migrate the host's unprotected VMs")
		noWait := fs.Bool("no-wait", false, "return once the daemon accepted the request")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			h, err := c.Maintenance(ctx, args[0], api.MaintenanceRequest{Enter: true, All: *all, NoWait: true})
			if err != nil {
				return daemonErr(err, "host", args[0])
			}
			if !*noWait {
				if h, err = waitEvacuated(ctx, s, c, h); err != nil {
					return err
				}
			}
			if *asJSON {
				return writeJSON(s.out, h)
			}
			printMaintenance(s.out, h)
			return nil
		})
	},
}

// waitEvacuated follows the host's evacuation until it ends, showing each
// running migration's progress on stderr, then waits for the targets to
// take over the leases of the VMs that moved.
func waitEvacuated(ctx context.Context, s stdio, c *api.Client, h api.Host) (api.Host, error) {
	name := h.Name
	shown := map[string]string{}
	for {
		e, err := c.Evacuation(ctx, name)
		if err != nil {
			return h, daemonErr(err, "host", name)
		}
		for _, a := range e.Active {
			if line := migrationLine(a); shown[a.VM] != line {
				fmt.Fprintf(s.errOut, "%s\n", line)
				shown[a.VM] = line
			}
		}
		if !e.Running {
			if e.Failed > 0 || e.Error != "" {
				return h, evacuationErr(e)
			}
			break
		}
		select {
		case <-ctx.Done():
			return h, fmt.Errorf("stopped waiting; %s keeps evacuating (see 'wingman maintenance status %s')", name, name)
		case <-time.After(pollEvery):
		}
	}
	if err := waitMovedAway(ctx, s, c, name); err != nil {
		return h, err
	}
	h, err := c.Host(ctx, name)
	if err != nil {
		return h, daemonErr(err, "host", name)
	}
	return h, nil
}

// migrationLine is one running migration, like "db -> kvm2: 40% (26 of
// 64 MiB), about 2s left".
func migrationLine(a api.MigrationProgress) string {
	line := fmt.Sprintf("%s -> %s: %.0f%%", a.VM, a.To, a.Percent)
	if a.Total > 0 {
		line += fmt.Sprintf(" (%d of %d MiB)", a.Processed>>20, a.Total>>20)
	}
	if a.ETA > 0 {
		line += ", about " + humanDuration(a.ETA) + " left"
	}
	return line
}

// evacuationErr says what an evacuation that ended early left behind.
func evacuationErr(e api.Evacuation) error {
	msg := fmt.Sprintf("%s: evacuation ended with %d of %s moved", e.Host, e.Done, plural(e.Planned, "VM"))
	if e.Failed > 0 {
		msg += fmt.Sprintf(", %d failed", e.Failed)
	}
	for _, x := range e.Errors {
		msg += "\n  " + x
	}
	if e.Error != "" {
		msg += "\n  " + e.Error
	}
	return fmt.Errorf("%s\nthe host stays in maintenance: retry with 'wingman maintenance enter %s', move the rest with 'wingman migrate VM', or end it with 'wingman maintenance exit %s'", msg, e.Host, e.Host)
}

func printMaintenance(w io.Writer, h api.Host) {
	switch {
	case h.Maintenance && h.State == "maintenance" && h.VMs == 0:
		fmt.Fprintf(w, "%s is in maintenance and holds no protected VM\n", h.Name)
	case h.Maintenance:
		fmt.Fprintf(w, "%s is entering maintenance (state %s): %s left\n", h.Name, h.State, plural(h.VMs, "protected VM"))
	default:
		fmt.Fprintf(w, "%s is not in maintenance (state %s, %s)\n", h.Name, h.State, plural(h.VMs, "protected VM"))
	}
}

var maintenanceExitCmd = command{
	name:    "maintenance exit",
	args:    "HOST",
	summary: "end a host's maintenance: it takes VMs again",
	help: `The host becomes a placement target again. With --failback the VMs that
the maintenance moved away are live-migrated back to it, one at a time;
without it they stay where they are.`,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		failback := fs.Bool("failback", false, "migrate back the VMs that left the host")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			h, err := c.Maintenance(ctx, args[0], api.MaintenanceRequest{Enter: false, Failback: *failback})
			if err != nil {
				return daemonErr(err, "host", args[0])
			}
			if *asJSON {
				return writeJSON(s.out, h)
			}
			fmt.Fprintf(s.out, "%s left maintenance (state %s): it takes VMs again\n", h.Name, h.State)
			return nil
		})
	},
}

var maintenanceAbortCmd = command{
	name:    "maintenance abort",
	args:    "HOST",
	summary: "stop a host's evacuation: cancel the migrations in flight, start no more",
	help: `Each migration in flight is cancelled: its guest stays running on exactly
one host (where it was, unless the switch-over had already happened). The
host stays in maintenance; 'wingman maintenance exit' ends it.`,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			h, err := c.Maintenance(ctx, args[0], api.MaintenanceRequest{Enter: true, Abort: true})
			if err != nil {
				return daemonErr(err, "host", args[0])
			}
			if *asJSON {
				return writeJSON(s.out, h)
			}
			fmt.Fprintf(s.out, "%s: evacuation aborted; %s still on it; it stays in maintenance\n", h.Name, plural(h.VMs, "protected VM"))
			return nil
		})
	},
}

var maintenanceStatusCmd = command{
	name:    "maintenance status",
	args:    "HOST",
	summary: "show whether a host is in maintenance and how many VMs it still holds",
	nargs:   [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			h, err := c.Host(ctx, args[0])
			if err != nil {
				return daemonErr(err, "host", args[0])
			}
			if *asJSON {
				return writeJSON(s.out, h)
			}
			printMaintenance(s.out, h)
			if e, err := c.Evacuation(ctx, args[0]); err == nil && !e.Started.IsZero() {
				printEvacuation(s.out, e)
			}
			return nil
		})
	},
}

// printEvacuation shows a host's current or last evacuation.
func printEvacuation(w io.Writer, e api.Evacuation) {
	state := "running"
	if !e.Running {
		state = "ended " + e.Ended.Local().Format(time.TimeOnly)
	}
	fmt.Fprintf(w, "evacuation (started %s, %s): %d of %s moved, %d failed, %d running, %d queued\n",
		e.Started.Local().Format(time.TimeOnly), state, e.Done, plural(e.Planned, "VM"), e.Failed, len(e.Active)+e.Hidden, e.Queued())
	for _, a := range e.Active {
		fmt.Fprintf(w, "  %s\n", migrationLine(a))
	}
	for _, x := range e.Errors {
		fmt.Fprintf(w, "  failed: %s\n", x)
	}
	if e.Error != "" {
		fmt.Fprintf(w, "  %s\n", e.Error)
	}
}

// askYes asks the operator to type yes before act (unless yes is set;
// then nothing is asked); without a terminal, --yes is required.
func askYes(s stdio, yes bool, act, question, notDone string) error {
	if yes {
		return nil
	}
	if !s.terminal {
		return usagef("refusing to %s without confirmation: stdin is not a terminal; add --yes", act)
	}
	fmt.Fprintf(s.errOut, "%s Type yes to confirm: ", question)
	line, _ := s.input().ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "yes" && a != "y" {
		return fmt.Errorf("not confirmed; %s", notDone)
	}
	return nil
}

var confirmOffCmd = command{
	name:    "host confirm-off",
	args:    "HOST",
	summary: "confirm that a host is powered off, so that its VMs restart now",
	help: `Tells the cluster that you have checked that HOST is powered off (at its
console, its management controller or its power socket), as oVirt's "confirm
host has been rebooted" and Pacemaker's stonith_admin --confirm do. The
coordinator declares HOST dead at once, as a fence agent's confirmed power-off
would, and its protected VMs restart elsewhere now instead of after the
network-lease ceiling plus D (when two of three hosts are lost at once).

If HOST is in fact running, its VMs then run twice and their disks are
destroyed: confirm only what you have checked. Refused while HOST's heartbeat
changed within D. Recorded as an event with who (your unix user) and when, and
notified. Asks for confirmation unless --yes is given; when stdin is not a
terminal, --yes is required.`,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		yes := fs.BoolP("yes", "y", false, "do not ask for confirmation")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			host := args[0]
			if err := askYes(s, *yes, "confirm "+host+" off", "Have you checked that "+host+" is powered off? Its VMs will start on other hosts now.", "nothing was recorded"); err != nil {
				return err
			}
			r, err := c.ConfirmOff(ctx, host)
			if err != nil {
				return daemonErr(err, "host", host)
			}
			if *asJSON {
				return writeJSON(s.out, r)
			}
			fmt.Fprintf(s.out, "%s (generation %d) confirmed off by %s; declared dead on %s: its VMs restart now\n", r.Host, r.Generation, r.By, r.DeclaredOn)
			return nil
		})
	},
}

var hostQuarantineCmd = command{
	name:    "host quarantine",
	args:    "HOST",
	summary: "quarantine a host: it keeps its VMs and takes no new one",
	help: `Puts HOST in quarantine for quarantine.duration (wingman config), as the
cluster does by itself with a host declared dead or isolated by a poison pill
quarantine.threshold times within quarantine.window (Windows failover
clustering's node quarantine). A quarantined host keeps running its own VMs
but is given none: no failover, restart, migration or evacuation lands on it.
With quarantine.migrate_away true, its protected VMs leave it by live
migration (never stopped). Recorded as an event with who (your unix user),
and notified as a warning. 'wingman host unquarantine HOST' ends it.`,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		return quarantineCmd(fs, true)
	},
}

var hostUnquarantineCmd = command{
	name:    "host unquarantine",
	args:    "HOST",
	summary: "end a host's quarantine: it takes new VMs again",
	help: `Ends the quarantine of HOST (put there by the cluster for flapping, or by
'wingman host quarantine') before quarantine.duration runs out, and forgets
its flaps: the next quarantine needs quarantine.threshold new ones. Recorded
as an event with who (your unix user) and when. Refused for a host that is
not quarantined.`,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		return quarantineCmd(fs, false)
	},
}

func quarantineCmd(fs *pflag.FlagSet, on bool) func(context.Context, stdio, []string) error {
	asJSON := jsonFlag(fs)
	return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
		r, err := api.Quarantine(ctx, c, args[0], api.QuarantineRequest{Quarantine: on})
		if err != nil {
			return daemonErr(err, "host", args[0])
		}
		if *asJSON {
			return writeJSON(s.out, r)
		}
		if q := r.Quarantine; q != nil {
			fmt.Fprintf(s.out, "%s quarantined until %s by %s: it keeps its VMs and takes no new one\n", r.Host, q.Until.Local().Format(time.DateTime), q.By)
			return nil
		}
		fmt.Fprintf(s.out, "%s is no longer quarantined: it takes new VMs again\n", r.Host)
		return nil
	})
}

var fenceCmd = command{
	name:    "fence",
	args:    "HOST",
	summary: "fence a host (power it off), or test the fence path with --test",
	help: `Asks the coordinator to fence HOST: a poison pill in its mailbox on the LUN,
then its fence agent (IPMI, Redfish, ...). Every VM on the host dies at once;
protected VMs restart elsewhere. Asks for confirmation unless --yes is given;
when stdin is not a terminal, --yes is required.

--test is harmless: it sends a test message that the host acknowledges and
asks the fence agent for the power status only.`,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		test := fs.Bool("test", false, "only test the mailbox path and the fence agent")
		yes := fs.BoolP("yes", "y", false, "do not ask for confirmation")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			host := args[0]
			if !*test {
				if err := askYes(s, *yes, "fence "+host, "Fence "+host+"? Every VM on it stops at once.", host+" was not fenced"); err != nil {
					return err
				}
			}
			what := "fencing " + host
			if *test {
				what = "testing the fence path of " + host
			}
			stop := progress(s, what)
			r, err := c.Fence(ctx, host, api.FenceRequest{Test: *test})
			stop()
			if err != nil {
				return daemonErr(err, "host", host)
			}
			if *asJSON {
				return writeJSON(s.out, r)
			}
			verb := "fenced"
			if r.Test {
				verb = "fence test of"
			}
			fmt.Fprintf(s.out, "%s %s in %s: mailbox %s", verb, r.Host, humanDuration(r.Duration), orDash(r.Mailbox))
			if r.Agent != "" {
				fmt.Fprintf(s.out, ", agent %s", r.Agent)
			}
			fmt.Fprintln(s.out)
			return nil
		})
	},
}

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

// Flag annotations read by the completion generator.
const (
	annValues = "wingman_values" // fixed choices of a flag's value
	annHosts  = "wingman_hosts"  // the value is one or more host names
	annFiles  = "wingman_files"  // the value is a path
)

func jsonFlag(fs *pflag.FlagSet) *bool {
	return fs.Bool("json", false, "print JSON (the API's types, for scripts)")
}

func choices(fs *pflag.FlagSet, name string, values ...string) {
	fs.SetAnnotation(name, annValues, values)
}

var listCmd = command{
	name:    "list",
	summary: "list protected VMs: host, state, priority",
	help: `Lists the VMs Wingman protects, wherever they run, with the host that holds
each one's lease, its state there and its failover priority. With --all it
also lists the local domains of this host that are not protected.`,
	nargs: [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		all := fs.Bool("all", false, "also list unprotected domains")
		names := fs.Bool("name", false, "print only the names, one a line")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, _ []string) error {
			vms, err := c.VMs(ctx)
			if err != nil {
				return daemonErr(err, "", "")
			}
			shown := []api.VM{}
			for _, v := range vms {
				if v.Protected || *all {
					shown = append(shown, v)
				}
			}
			sort.SliceStable(shown, func(i, j int) bool { return shown[i].Name < shown[j].Name })
			switch {
			case *asJSON:
				return writeJSON(s.out, shown)
			case *names:
				for _, v := range shown {
					fmt.Fprintln(s.out, v.Name)
				}
				return nil
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tHOST\tSTATE\tPROTECTED\tPRIORITY")
			for _, v := range shown {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, vmHost(v), vmState(v), yesNo(v.Protected), vmPriority(v))
			}
			tw.Flush()
			if len(shown) == 0 {
				if *all {
					fmt.Fprintln(s.errOut, "no VMs")
				} else {
					fmt.Fprintln(s.errOut, "no protected VMs; 'wingman list --all' shows the others, 'wingman protect VM' protects one")
				}
			}
			return nil
		})
	},
}

func vmHost(v api.VM) string {
	switch {
	case v.OwnerName != "":
		return v.OwnerName
	case v.Owner != 0:
		return fmt.Sprintf("host %d", v.Owner)
	}
	return "-"
}

func vmState(v api.VM) string {
	st := orDash(v.State)
	if v.Stopped {
		st += " (stopped)"
	}
	return st
}

func vmPriority(v api.VM) string {
	switch {
	case !v.Protected:
		return "-"
	case v.Policy.Priority != "" && v.Policy.Priority != strconv.Itoa(v.Priority):
		return fmt.Sprintf("%s (%d)", v.Policy.Priority, v.Priority)
	}
	return strconv.Itoa(v.Priority)
}

var dominfoCmd = command{
	name:    "dominfo",
	args:    "VM",
	summary: "show a VM: where it runs, its lease and its failover policy",
	help: `Shows what Wingman knows about the VM: the host that holds its lease, its
state there as libvirt reports it, and its failover policy.

With --qmp it also asks the VM's QEMU, over QMP on the host that runs it, for
its own run state, its version and each disk's I/O status: what to look at
when libvirt's state and the guest's behaviour disagree. libvirt then marks the
domain tainted (custom-monitor, in its qemu log) until that QEMU exits, which
is why Wingman never does it on its own.`,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		withQMP := fs.Bool("qmp", false, "also ask QEMU over QMP (libvirt then marks the domain tainted: custom-monitor)")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			get := c.VM
			if *withQMP {
				get = c.VMWithQMP
			}
			v, err := get(ctx, args[0])
			if err != nil {
				return daemonErr(err, "VM", args[0])
			}
			if *asJSON {
				err = writeJSON(s.out, v)
			} else {
				printVM(s.out, v)
			}
			if err != nil || v.QMP == nil {
				return err
			}
			if v.QMP.Error != "" {
				return fmt.Errorf("no QMP diagnostics: %s", v.QMP.Error)
			}
			fmt.Fprintf(s.errOut, "note: libvirt on %s now marks %s tainted (custom-monitor) until its QEMU exits\n", v.QMP.Host, v.Name)
			return nil
		})
	},
}

func printVM(w io.Writer, v api.VM) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	row := func(k, val string) { fmt.Fprintf(tw, "%s:\t%s\n", k, val) }
	row("Name", v.Name)
	row("UUID", v.UUID)
	row("Protected", yesNo(v.Protected))
	row("Host", vmHost(v))
	st := orDash(v.State)
	if v.Reason != "" {
		st += " (" + v.Reason + ")"
	}
	row("State", st)
	if v.Stopped {
		row("Stopped", "yes: stopped through Wingman, stays stopped until 'wingman start "+v.Name+"'")
	}
	if v.MemoryMiB != 0 {
		row("Memory", humanMiB(v.MemoryMiB))
	}
	if v.VCPUs != 0 {
		row("vCPUs", strconv.Itoa(v.VCPUs))
	}
	if v.Protected {
		row("Lease epoch", strconv.FormatUint(v.LeaseEpoch, 10))
		row("Lock manager", lockManagerText(v.LockManager)+" (libvirt's, on its host)")
		row("Migration", orDash(v.Migration))
		row("Priority", vmPriority(v))
		p := v.Policy
		row("Restart", restartString(p))
		row("Anti-affinity", orDash(p.AntiAffinity))
		row("Preferred hosts", orDash(strings.Join(p.PreferredHosts, ",")))
		row("Start order", strconv.Itoa(p.StartOrder))
		row("Start delay", humanDuration(p.StartDelay))
		row("Wait for agent", yesNo(p.WaitGuestAgent))
		row("On isolation", orDash(p.Isolation))
	}
	if q := v.QMP; q != nil && q.Error == "" {
		row("QEMU status", fmt.Sprintf("%s (QMP on %s)", orDash(q.Status), q.Host))
		row("Condition", orDash(q.Condition))
		row("QEMU version", orDash(q.QEMUVersion))
		for _, d := range q.Disks {
			if d.Device == "" && d.File == "" {
				continue // an empty drive
			}
			about := []string{orDash(d.Device)}
			if d.ReadOnly {
				about = append(about, "read-only")
			}
			row("Disk", fmt.Sprintf("%-7s %s (%s)", orDash(d.IOStatus), orDash(d.File), strings.Join(about, ", ")))
		}
		for _, e := range q.Errors {
			row("QMP error", e)
		}
	}
	tw.Flush()
}

func restartString(p api.Policy) string {
	r := orDash(p.Restart)
	if p.RestartMax > 0 {
		r += fmt.Sprintf(", at most %d times in %s", p.RestartMax, humanDuration(p.RestartWindow))
	}
	return r
}

// policySummary is the one-line form of a policy for protect and set-policy.
func policySummary(v api.VM) string {
	p := v.Policy
	parts := []string{"priority " + vmPriority(v), "restart " + restartString(p)}
	if p.AntiAffinity != "" {
		parts = append(parts, "anti-affinity "+p.AntiAffinity)
	}
	if len(p.PreferredHosts) > 0 {
		parts = append(parts, "prefers "+strings.Join(p.PreferredHosts, ","))
	}
	if p.StartOrder != 0 || p.StartDelay != 0 {
		parts = append(parts, fmt.Sprintf("start order %d after %s", p.StartOrder, humanDuration(p.StartDelay)))
	}
	if p.WaitGuestAgent {
		parts = append(parts, "waits for the guest agent")
	}
	if p.Isolation != "" {
		parts = append(parts, "on isolation "+p.Isolation)
	}
	return strings.Join(parts, ", ")
}

// policyFlags are the flags of protect and set-policy.
type policyFlags struct {
	fs            *pflag.FlagSet
	priority      *string
	restart       *string
	restartMax    *int
	restartWindow *time.Duration
	antiAffinity  *string
	prefer        *[]string
	startOrder    *int
	startDelay    *time.Duration
	waitAgent     *bool
	isolation     *string
}

func bindPolicyFlags(fs *pflag.FlagSet) *policyFlags {
	p := &policyFlags{fs: fs}
	p.priority = fs.String("priority", "", "restart priority: high, medium, low or a number from 0 to 1000")
	choices(fs, "priority", "high", "medium", "low")
	p.restart = fs.String("restart", "", "when to restart the VM: always, on-failure or never")
	choices(fs, "restart", "always", "on-failure", "never")
	p.restartMax = fs.Int("restart-max", 0, "restart at most `N` times within --restart-window")
	p.restartWindow = fs.Duration("restart-window", 0, "the window of --restart-max, a `DURATION` such as 1h")
	p.antiAffinity = fs.String("anti-affinity", "", "keep VMs of this `GROUP` on different hosts")
	p.prefer = fs.StringSlice("prefer", nil, "preferred hosts, in order: `HOST,...`")
	fs.SetAnnotation("prefer", annHosts, []string{"true"})
	p.startOrder = fs.Int("start-order", 0, "start after VMs with a lower order `N` (0 first)")
	p.startDelay = fs.Duration("start-delay", 0, "wait this `DURATION` after the VMs of the previous order started")
	p.waitAgent = fs.Bool("wait-agent", false, "count the VM as started only when its guest agent answers")
	p.isolation = fs.String("isolation", "", "when its host is isolated: stop the VM, or leave-running (safe with the lease)")
	choices(fs, "isolation", "stop", "leave-running")
	return p
}

func oneOf(flag, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return usagef("--%s %q: use %s", flag, v, orList(allowed))
}

func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// request builds the policy of the flags given on the command line; the
// daemon keeps the current value (or the default) of the others. The API
// cannot express "back to zero", so setPolicy refuses such changes.
func (p *policyFlags) request(setPolicy bool) (api.ProtectRequest, error) {
	var r api.ProtectRequest
	pol := &r.Policy
	changed := p.fs.Changed
	if changed("priority") {
		v := strings.ToLower(*p.priority)
		if n, err := strconv.Atoi(v); err == nil {
			if n < 0 || n > 1000 {
				return r, usagef("--priority %d: a number must be from 0 to 1000", n)
			}
		} else if v != "high" && v != "medium" && v != "low" {
			return r, usagef("--priority %q: use high, medium, low or a number from 0 to 1000", *p.priority)
		}
		pol.Priority = v
	}
	if changed("restart") {
		if err := oneOf("restart", *p.restart, "always", "on-failure", "never"); err != nil {
			return r, err
		}
		pol.Restart = *p.restart
	}
	if changed("restart-max") {
		if *p.restartMax < 1 {
			return r, usagef("--restart-max %d: give at least 1 (or --restart never)", *p.restartMax)
		}
		pol.RestartMax = *p.restartMax
	}
	if changed("restart-window") {
		if *p.restartWindow <= 0 {
			return r, usagef("--restart-window %s: give a positive duration such as 30m", *p.restartWindow)
		}
		pol.RestartWindow = *p.restartWindow
	}
	if !setPolicy && changed("restart-max") != changed("restart-window") {
		return r, usagef("--restart-max and --restart-window go together: at most N restarts within DUR")
	}
	if changed("anti-affinity") {
		pol.AntiAffinity = *p.antiAffinity
	}
	if changed("prefer") {
		for _, h := range *p.prefer {
			if h = strings.TrimSpace(h); h != "" {
				pol.PreferredHosts = append(pol.PreferredHosts, h)
			}
		}
	}
	if changed("start-order") {
		if *p.startOrder < 0 {
			return r, usagef("--start-order %d: use 0 or more", *p.startOrder)
		}
		pol.StartOrder = *p.startOrder
	}
	if changed("start-delay") {
		if *p.startDelay < 0 {
			return r, usagef("--start-delay %s: use 0 or more", *p.startDelay)
		}
		pol.StartDelay = *p.startDelay
	}
	if changed("wait-agent") {
		pol.WaitGuestAgent = *p.waitAgent
	}
	if changed("isolation") {
		if err := oneOf("isolation", *p.isolation, "stop", "leave-running"); err != nil {
			return r, err
		}
		pol.Isolation = *p.isolation
	}
	if setPolicy {
		// The API omits zero values, which means "keep": a reset would be
		// silently ignored, so refuse it.
		for _, z := range []struct {
			flag string
			zero bool
		}{
			{"anti-affinity", pol.AntiAffinity == ""},
			{"prefer", len(pol.PreferredHosts) == 0},
			{"start-order", pol.StartOrder == 0},
			{"start-delay", pol.StartDelay == 0},
			{"wait-agent", !pol.WaitGuestAgent},
		} {
			if changed(z.flag) && z.zero {
				return r, usagef("--%s: set-policy cannot clear a setting yet; unprotect and protect the VM again without it", z.flag)
			}
		}
		if r.Policy.Priority == "" && r.Policy.Restart == "" && r.Policy.RestartMax == 0 && r.Policy.RestartWindow == 0 &&
			r.Policy.AntiAffinity == "" && r.Policy.PreferredHosts == nil && r.Policy.StartOrder == 0 &&
			r.Policy.StartDelay == 0 && !r.Policy.WaitGuestAgent && r.Policy.Isolation == "" {
			return r, usagef("nothing to change: give at least one policy flag (see 'wingman help set-policy')")
		}
	}
	return r, nil
}

const policyHelp = `Policy flags:
  --priority       who restarts first when capacity is short: high,
                   medium, low, or a number from 0 to 1000
  --restart        always: also after the guest shut itself down;
                   on-failure: after a host failure or a crash;
                   never: Wingman only keeps the lease
  --restart-max N --restart-window DUR
                   give up after N restarts within DUR (a crash loop)
  --anti-affinity  VMs of one group are placed on different hosts
  --prefer         hosts to try first, in order
  --start-order, --start-delay
                   after a failure, VMs start by order, each order DUR
                   after the previous one (a database before its clients)
  --wait-agent     the next order waits for the guest agent, not only the
                   domain start (at most failover.guest_agent_wait, 5m)
  --isolation      what an isolated host does with the VM: leave-running
                   (default, safe: the lease stops a second copy) or stop`

var protectCmd = command{
	name:    "protect",
	args:    "VM",
	summary: "protect a VM: restart it on another host when its host fails",
	help: `Writes a record for the VM on the heartbeat LUN and takes its lease, so the
cluster restarts it elsewhere when its host fails. The VM keeps running.
Flags not given take the defaults.

It refuses a VM whose disks would not survive a failover: a disk with
cache='unsafe' (it ignores the guest's flushes, so a power loss loses writes
the guest was told are on disk), a disk without a source, or a disk that some
alive host cannot reach (each host checks its own mounts and storage pools,
as 'wingman drill' does). Hosts that are not alive, or do not answer within
10s, are not waited for: protect names them, and a drill checks them later.
--force accepts disks that some hosts cannot reach, never cache='unsafe'.

` + policyHelp,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		pf := bindPolicyFlags(fs)
		force := fs.Bool("force", false, "protect even if some alive host cannot reach the VM's disks (that host cannot start it)")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			req, err := pf.request(false)
			if err != nil {
				return err
			}
			req.Force = *force
			v, err := c.Protect(ctx, args[0], req)
			if err != nil {
				return daemonErr(err, "VM", args[0])
			}
			if *asJSON {
				return writeJSON(s.out, v)
			}
			fmt.Fprintf(s.out, "%s is protected on %s: %s\n", v.Name, vmHost(v.VM), policySummary(v.VM))
			printDiskNotes(s.errOut, v)
			return nil
		})
	},
}

// printDiskNotes tells what protect could not check, or accepted with
// --force, about the VM's disks.
func printDiskNotes(w io.Writer, v api.ProtectResult) {
	if len(v.DisksUnreachable) > 0 {
		fmt.Fprintln(w, "warning: protected with --force, but these hosts cannot start it after a failure ('wingman drill' reports it until they can):")
		for _, u := range v.DisksUnreachable {
			fmt.Fprintf(w, "  %s\n", u)
		}
	}
	if len(v.DisksUnchecked) > 0 {
		var hosts []string
		for _, u := range v.DisksUnchecked {
			hosts = append(hosts, fmt.Sprintf("%s (%s)", u.Host, u.Reason))
		}
		fmt.Fprintf(w, "disks not checked on %s; 'wingman drill' checks them once %s back\n",
			strings.Join(hosts, ", "), map[bool]string{true: "it is", false: "they are"}[len(hosts) == 1])
	}
}

var setPolicyCmd = command{
	name:    "set-policy",
	args:    "VM",
	summary: "change the failover policy of a protected VM",
	help: `Changes only the settings given as flags; the others keep their value.

` + policyHelp,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		pf := bindPolicyFlags(fs)
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			req, err := pf.request(true)
			if err != nil {
				return err
			}
			v, err := c.SetPolicy(ctx, args[0], req)
			if err != nil {
				return daemonErr(err, "VM", args[0])
			}
			if *asJSON {
				return writeJSON(s.out, v)
			}
			fmt.Fprintf(s.out, "%s: %s\n", v.Name, policySummary(v))
			return nil
		})
	},
}

// simpleVMCmd is a command that posts one action about a VM and prints a line.
func simpleVMCmd(name, summary, help string, call func(*api.Client, context.Context, string) error, done func(vm string) string) command {
	return command{
		name: name, args: "VM", summary: summary, help: help, nargs: [2]int{1, 1},
		bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
			return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
				if err := call(c, ctx, args[0]); err != nil {
					return daemonErr(err, "VM", args[0])
				}
				fmt.Fprintln(s.out, done(args[0]))
				return nil
			})
		},
	}
}

var unprotectCmd = simpleVMCmd("unprotect", "stop protecting a VM (it keeps running)",
	`Removes the VM's record and lease from the LUN. The VM keeps running where it
is, but Wingman no longer restarts it when its host fails.`,
	(*api.Client).Unprotect,
	func(vm string) string {
		return vm + " is no longer protected: it keeps running, and Wingman will not restart it after a failure"
	})

var startCmd = command{
	name:    "start",
	args:    "VM",
	summary: "start a protected VM (and end its stopped state), and wait until it runs",
	help: `Starts the VM on the host the planner chooses and clears the stopped state
that 'wingman stop' set, so failover restarts it again. Like 'virsh start',
it returns once the VM runs (or fails after --timeout, while the daemon
keeps trying); --no-wait returns once the daemon accepted the request.`,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the VM to run")
		noWait := fs.Bool("no-wait", false, "return once the daemon accepted the request")
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			if *timeout <= 0 {
				return usagef("--timeout %s: give a positive duration such as 2m", *timeout)
			}
			if err := c.Start(ctx, args[0]); err != nil {
				return daemonErr(err, "VM", args[0])
			}
			if *noWait {
				fmt.Fprintf(s.out, "%s is starting; failover restarts it again\n", args[0])
				return nil
			}
			stop := progress(s, "starting "+args[0])
			v, err := waitRunning(ctx, c, args[0], *timeout)
			stop()
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "%s started on %s; failover restarts it again\n", v.Name, vmHost(v))
			return nil
		})
	},
}

// waitRunning asks the daemon about the VM until it runs, for at most
// timeout.
func waitRunning(ctx context.Context, c *api.Client, name string, timeout time.Duration) (api.VM, error) {
	deadline := time.Now().Add(timeout)
	for {
		v, err := c.VM(ctx, name)
		if err != nil {
			return v, daemonErr(err, "VM", name)
		}
		if v.State == "running" && !v.Stopped {
			return v, nil
		}
		if !time.Now().Before(deadline) {
			return v, fmt.Errorf("%s is not running after %s: it is %s on %s; the daemon keeps trying (see 'wingman dominfo %s' and 'wingman events')",
				name, humanDuration(timeout), orDash(v.State), vmHost(v), name)
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("stopped waiting; %s still starts (see 'wingman dominfo %s')", name, name)
		case <-time.After(pollEvery):
		}
	}
}

var stopCmd = simpleVMCmd("stop", "shut a protected VM down; it stays stopped",
	`Shuts the VM down and marks it stopped: it stays stopped, on every host and
through failovers, until 'wingman start VM'. Shutting a protected VM down
with virsh instead looks like a failure to Wingman, which may restart it.`,
	(*api.Client).Stop,
	func(vm string) string {
		return vm + " is shut down and stays stopped until 'wingman start " + vm + "'"
	})

var migrateCmd = command{
	name:    "migrate",
	args:    "VM [HOST]",
	summary: "live-migrate a VM to a host (or one the planner chooses)",
	help: `Live-migrates the VM and waits until it runs on the target; the lease moves
with it. Without HOST the planner picks the host with the most room that the
VM's policy allows. Interrupting the command does not cancel a migration
that the daemon has started.`,
	nargs: [2]int{1, 2},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			var req api.MigrateRequest
			target := "the host the planner chooses"
			if len(args) == 2 {
				req.Target, target = args[1], args[1]
			}
			stop := progress(s, fmt.Sprintf("migrating %s to %s", args[0], target))
			res, err := c.Migrate(ctx, args[0], req)
			stop()
			if api.IsNotFound(err) {
				// The 404 may be about the VM or the target host.
				if _, verr := c.VM(ctx, args[0]); api.IsNotFound(verr) {
					return notFoundErr("VM", args[0])
				}
				if req.Target != "" {
					if _, herr := c.Host(ctx, req.Target); api.IsNotFound(herr) {
						return notFoundErr("host", req.Target)
					}
				}
			}
			if err != nil {
				return daemonErr(err, "", "")
			}
			if *asJSON {
				return writeJSON(s.out, res)
			}
			fmt.Fprintf(s.out, "migrated %s from %s to %s in %s (downtime %s", res.VM, res.From, res.To, humanDuration(res.Duration), humanDuration(res.Downtime))
			if res.Bytes > 0 {
				fmt.Fprintf(s.out, ", %s copied", humanBytes(res.Bytes))
			}
			fmt.Fprintln(s.out, ")")
			return nil
		})
	},
}

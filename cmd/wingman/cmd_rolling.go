package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/wingmanha/wingman/cmd/api"
)

var rollingUpdateCmd = command{
	name:    "rolling-update",
	summary: "patch the cluster one host at a time: evacuate, run a command, reboot, take VMs back",
	help: `For each host in turn: enter maintenance (its protected VMs live-migrate
away; no guest stops), run --exec CMD there through its wingmand (as
wingmand's user, /bin/sh -c), reboot it with --reboot and wait until it is
back in the cluster with a new generation, leave maintenance with failback
(its VMs migrate back), and wait until the cluster is healthy again.
Only protected VMs are evacuated unless --all is given; a reboot is
refused while any guest still runs on the host.

First it checks quorum, the heartbeat LUN's health, that every host is
alive and none is in maintenance, and that each host's protected VMs fit
on the others; --dry-run prints this plan and changes nothing.

The host this CLI talks to goes last. With --reboot it reboots together
with its wingmand (and this CLI, when it runs there): that wingmand then
leaves maintenance by itself once back and healthy.

It stops at the first failure and leaves the failed host in maintenance,
then says what state each host is in and the commands to continue or undo.
Ctrl-C stops after the current host's step is complete, never half way.
Each host's wingmand may forbid it (maintenance.allow_exec = false).`,
	nargs: [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		var o rollingOptions
		fs.StringVar(&o.exec, "exec", "", "the `CMD` to run on each host, e.g. 'apt-get -y upgrade' (required)")
		hosts := fs.String("hosts", "", "the hosts to update, comma-separated (default: every host)")
		fs.BoolVar(&o.reboot, "reboot", false, "reboot each host after CMD and wait until it is back")
		fs.BoolVar(&o.all, "all", false, "also live-migrate each host's unprotected VMs away (they stay where they went)")
		fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan and the checks, change nothing")
		fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "time limit of CMD on each host")
		fs.DurationVar(&o.rebootTimeout, "reboot-timeout", 15*time.Minute, "how long a host may take to come back after its reboot")
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, _ []string) error {
			o.hosts = splitList(*hosts)
			if strings.TrimSpace(o.exec) == "" {
				return usagef("--exec is required: the command to run on each host, e.g. --exec 'apt-get -y upgrade'")
			}
			if b, _ := json.Marshal(o.exec); len(b) > execCommandMax {
				// Checked here too, so that no host enters maintenance for nothing.
				return usagef("--exec: the command is %d bytes as JSON; at most %d travel to a host: put a longer script in a file on the hosts and run that", len(b), execCommandMax)
			}
			if o.timeout <= 0 || o.rebootTimeout <= 0 {
				return usagef("--timeout and --reboot-timeout must be positive, like 30m")
			}
			return rollingUpdate(ctx, s, c, o)
		})
	},
}

type rollingOptions struct {
	exec          string
	hosts         []string
	reboot        bool
	all           bool
	dryRun        bool
	timeout       time.Duration
	rebootTimeout time.Duration
}

// execCommandMax is wingmand's limit on a command (as JSON): a forwarded
// request must fit one serf query.
const execCommandMax = 600

// healthyTimeout bounds the wait for the cluster to be healthy after a step.
const healthyTimeout = 5 * time.Minute

// rollingPlan is the hosts in the order they are updated, with what
// entering maintenance would move where.
type rollingPlan struct {
	self     string // the host this CLI talks to: last
	order    []string
	plans    map[string]api.EvacuationPlan
	alive    []string // hosts alive at the start, to be alive again after each step
	problems []string
}

func rollingUpdate(ctx context.Context, s stdio, c *api.Client, o rollingOptions) error {
	st, err := c.Status(ctx)
	if err != nil {
		return daemonErr(err, "", "")
	}
	p, err := planRollingUpdate(ctx, c, st, o)
	if err != nil {
		return err
	}
	printRollingPlan(s.out, p, o)
	if len(p.problems) > 0 {
		fmt.Fprintln(s.out, "\nchecks failed:")
		for _, x := range p.problems {
			fmt.Fprintf(s.out, "  - %s\n", x)
		}
		return errors.New("not started: fix the problems above; nothing was changed")
	}
	if o.dryRun {
		fmt.Fprintln(s.out, "\nchecks passed; dry run: nothing was changed")
		return nil
	}
	fmt.Fprintln(s.out)
	// Steps run to their end even after Ctrl-C: only between hosts may it stop.
	op := context.WithoutCancel(ctx)
	if s.errTerminal {
		finished := make(chan struct{})
		defer close(finished)
		go func() {
			select {
			case <-ctx.Done():
				fmt.Fprintln(s.errOut, "\ninterrupted: the current host's step runs to its end, then the update stops")
			case <-finished:
			}
		}()
	}
	for i, host := range p.order {
		if ctx.Err() != nil {
			return stopReport(s.errOut, p, o, i, "", "interrupted", nil)
		}
		if phase, err := updateHost(op, s, c, p, o, host, fmt.Sprintf("[%d/%d] %s", i+1, len(p.order), host)); err != nil {
			return stopReport(s.errOut, p, o, i, phase, "failed", err)
		}
	}
	fmt.Fprintf(s.out, "rolling update done: %s updated\n", plural(len(p.order), "host"))
	return nil
}

// planRollingUpdate orders the hosts and runs the checks.
func planRollingUpdate(ctx context.Context, c *api.Client, st api.Status, o rollingOptions) (rollingPlan, error) {
	p := rollingPlan{self: st.Host, plans: map[string]api.EvacuationPlan{}}
	byName := map[string]api.Host{}
	var all []string
	for _, h := range st.Hosts {
		byName[h.Name] = h
		all = append(all, h.Name)
		if h.State == "alive" {
			p.alive = append(p.alive, h.Name)
		}
	}
	hosts := o.hosts
	if len(hosts) == 0 {
		for _, h := range st.Hosts {
			hosts = append(hosts, h.Name)
		}
	}
	for i, name := range hosts {
		if _, ok := byName[name]; !ok {
			return p, usagef("--hosts: no host named %s: hosts are %s", name, strings.Join(all, ", "))
		}
		if slices.Contains(hosts[:i], name) {
			return p, usagef("--hosts: %s is listed twice", name)
		}
		if name != p.self {
			p.order = append(p.order, name)
		}
	}
	if slices.Contains(hosts, p.self) {
		p.order = append(p.order, p.self) // its daemon answers this CLI: last
	}

	bad := func(format string, a ...any) { p.problems = append(p.problems, fmt.Sprintf(format, a...)) }
	if !st.Quorate {
		bad("%s's partition is not quorate: no host may be taken out of service now", st.Host)
	}
	t, l := st.Timings, st.LUN
	if l.LastWriteAgo > t.SelfFence/2 {
		bad("heartbeat LUN: %s's last write was %s ago (self-fence at %s): fix the storage path first", st.Host, humanDuration(l.LastWriteAgo), humanDuration(t.SelfFence))
	}
	for _, w := range st.Warnings {
		if strings.Contains(w, "LUN") {
			bad("heartbeat LUN: %s", w)
		}
	}
	for _, name := range p.order {
		switch h := byName[name]; {
		case h.Maintenance || h.State == "maintenance":
			bad("%s is already in maintenance: finish that first ('wingman maintenance exit %s --failback') or leave it out with --hosts", name, name)
			continue
		case h.State != "alive":
			why := h.State
			if h.Reason != "" {
				why += " (" + h.Reason + ")"
			}
			bad("%s is %s: bring it back, or leave it out with --hosts", name, why)
			continue
		}
		ep, err := c.EvacuationPlan(ctx, name)
		if err != nil {
			bad("%s: cannot plan its evacuation: %v", name, daemonErr(err, "host", name))
			continue
		}
		p.plans[name] = ep
		if len(ep.Unplaced) > 0 {
			bad("%s's protected VMs do not all fit on the other hosts: %s", name, strings.Join(ep.Unplaced, "; "))
		}
	}
	return p, nil
}

func printRollingPlan(w io.Writer, p rollingPlan, o rollingOptions) {
	then := ""
	if o.reboot {
		then = ", then reboot"
	}
	fmt.Fprintf(w, "rolling update of %s: %s\n", plural(len(p.order), "host"), strings.Join(p.order, ", "))
	fmt.Fprintf(w, "on each: %s (time limit %s)%s\n", o.exec, humanDuration(o.timeout), then)
	for i, name := range p.order {
		ep, ok := p.plans[name]
		var moves []string
		for _, m := range ep.Moves {
			moves = append(moves, m.VM+" -> "+m.To)
		}
		what := "no protected VM to move"
		switch {
		case !ok:
			what = "not planned (see the checks below)"
		case len(moves) > 0:
			what = "moves " + strings.Join(moves, ", ")
		}
		fmt.Fprintf(w, "  %d. %s: %s\n", i+1, name, what)
	}
	if slices.Contains(p.order, p.self) && o.reboot {
		fmt.Fprintf(w, "%s goes last: this CLI talks to its wingmand; it reboots with it and leaves maintenance by itself once back\n", p.self)
	}
}

// updateHost runs one host's step; on failure it says which phase failed.
func updateHost(ctx context.Context, s stdio, c *api.Client, p rollingPlan, o rollingOptions, host, tag string) (string, error) {
	n := len(p.plans[host].Moves)
	stop := progress(s, fmt.Sprintf("%s: entering maintenance, live-migrating %s away", tag, plural(n, "protected VM")))
	_, err := c.Maintenance(ctx, host, api.MaintenanceRequest{Enter: true, All: o.all, NoWait: true})
	stop()
	if err != nil {
		return "evacuate", daemonErr(err, "host", host)
	}
	if _, err := waitEvacuated(ctx, s, c, api.Host{Name: host}); err != nil {
		return "evacuate", err
	}
	fmt.Fprintf(s.out, "%s: in maintenance, empty\n", tag)

	stop = progress(s, fmt.Sprintf("%s: running %s", tag, o.exec))
	res, err := c.Exec(ctx, host, api.ExecRequest{Command: o.exec, Timeout: o.timeout})
	stop()
	if err != nil {
		return "exec refused", daemonErr(err, "host", host)
	}
	printExec(s.out, tag, res)
	switch {
	case res.TimedOut:
		return "exec", fmt.Errorf("%s: the command was killed at its time limit %s", host, humanDuration(o.timeout))
	case res.ExitCode != 0:
		return "exec", fmt.Errorf("%s: the command exited %d", host, res.ExitCode)
	}

	self := host == p.self
	if o.reboot {
		r, err := c.Reboot(ctx, host, api.RebootRequest{ExitMaintenance: self, Failback: self})
		if err != nil {
			return "reboot", daemonErr(err, "host", host)
		}
		if self {
			fmt.Fprintf(s.out, "%s: rebooting (%s); this CLI talks to its wingmand, which leaves maintenance by itself once back: if this CLI dies with it, check 'wingman status' there afterwards\n", tag, r.Command)
		} else {
			fmt.Fprintf(s.out, "%s: rebooting (%s)\n", tag, r.Command)
		}
		if err := waitRebooted(ctx, s, c, r, o.rebootTimeout, self); err != nil {
			return "reboot", err
		}
		fmt.Fprintf(s.out, "%s: back in the cluster\n", tag)
	}
	if !(o.reboot && self) {
		stop = progress(s, fmt.Sprintf("%s: leaving maintenance, migrating its VMs back", tag))
		_, err = c.Maintenance(ctx, host, api.MaintenanceRequest{Enter: false, Failback: true})
		stop()
		if err != nil {
			return "exit", daemonErr(err, "host", host)
		}
	}
	if err := waitClusterHealthy(ctx, c, p.alive); err != nil {
		return "healthy", err
	}
	fmt.Fprintf(s.out, "%s: done, back in service\n", tag)
	return "", nil
}

// movedAwayTimeout bounds the wait, after an evacuation, for the targets to
// hold the leases of the VMs that moved.
const movedAwayTimeout = 2 * time.Minute

// waitMovedAway waits until host owns no protected VM that is meant to run
// (one stopped through Wingman keeps its lease there and runs nowhere).
func waitMovedAway(ctx context.Context, s stdio, c *api.Client, host string) error {
	deadline := time.Now().Add(movedAwayTimeout)
	last := -1
	for {
		vms, err := c.VMs(ctx)
		if err != nil {
			return daemonErr(err, "", "")
		}
		var left []string
		for _, v := range vms {
			if v.Protected && v.OwnerName == host && !v.Stopped {
				left = append(left, v.Name)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still holds %s after its evacuation", host, strings.Join(left, ", "))
		}
		if len(left) != last {
			fmt.Fprintf(s.errOut, "waiting for %s to hand over %s\n", host, strings.Join(left, ", "))
			last = len(left)
		}
		time.Sleep(pollEvery)
	}
}

func printExec(w io.Writer, tag string, r api.ExecResult) {
	verdict := fmt.Sprintf("exit %d", r.ExitCode)
	if r.TimedOut {
		verdict = "killed at its time limit"
	}
	fmt.Fprintf(w, "%s: command %s after %s\n", tag, verdict, humanDuration(r.Duration))
	out := strings.TrimRight(r.Output, "\n")
	if out == "" {
		return
	}
	if r.Truncated {
		fmt.Fprintln(w, "    ... (the end of the output; all of it is in that host's wingmand log)")
	}
	for _, line := range strings.Split(out, "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
}

// waitRebooted waits until the host is back in the cluster with a new
// generation (the CLI's own host: until its wingmand has left maintenance
// and migrated its VMs back), or its reboot command failed.
func waitRebooted(ctx context.Context, s stdio, c *api.Client, r api.RebootResult, timeout time.Duration, self bool) error {
	deadline := time.Now().Add(timeout)
	stop := progress(s, fmt.Sprintf("waiting for %s to come back (at most %s)", r.Host, humanDuration(timeout)))
	defer stop()
	for {
		evs, err := c.Events(ctx, r.At, 0)
		for _, e := range evs {
			switch {
			case e.HostName != r.Host:
			case e.Kind == "reboot-failed" || e.Kind == "reboot-exit-failed":
				return fmt.Errorf("%s: %s", r.Host, e.Message)
			case e.Kind == "reboot-done" && self:
				return nil
			}
		}
		h, herr := c.Host(ctx, r.Host)
		if !self && err == nil && herr == nil && h.Generation > r.Generation && (h.State == "maintenance" || h.State == "alive") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not back within %s (generation %d, state %q): check its console", r.Host, humanDuration(timeout), h.Generation, h.State)
		}
		time.Sleep(pollEvery)
	}
}

// waitClusterHealthy waits until the partition is quorate and every host
// that was alive at the start is alive again.
func waitClusterHealthy(ctx context.Context, c *api.Client, alive []string) error {
	deadline := time.Now().Add(healthyTimeout)
	for {
		st, err := c.Status(ctx)
		why := ""
		switch {
		case err != nil:
			why = err.Error()
		case !st.Quorate:
			why = "not quorate"
		default:
			state := map[string]string{}
			for _, h := range st.Hosts {
				state[h.Name] = h.State
			}
			for _, n := range alive {
				if state[n] != "alive" {
					why += fmt.Sprintf("%s is %s; ", n, orDash(state[n]))
				}
			}
		}
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster is not healthy %s after the step: %s", humanDuration(healthyTimeout), strings.TrimSuffix(why, "; "))
		}
		time.Sleep(pollEvery)
	}
}

// stopReport says where the rolling update stopped, what state each host
// is in, and how to continue or undo.
func stopReport(w io.Writer, p rollingPlan, o rollingOptions, at int, phase, how string, err error) error {
	host := p.order[at]
	fmt.Fprintf(w, "\nrolling update %s at host %d of %d (%s)\n", how, at+1, len(p.order), host)
	if at > 0 {
		fmt.Fprintf(w, "  updated, back in service: %s\n", strings.Join(p.order[:at], ", "))
	}
	rest := p.order[at:]
	undo := ""
	switch phase {
	case "":
		fmt.Fprintf(w, "  not started: %s\n", strings.Join(rest, ", "))
	case "evacuate":
		fmt.Fprintf(w, "  %s: in maintenance, its evacuation did not complete (see 'wingman maintenance status %s'); nothing ran on it\n", host, host)
		undo = fmt.Sprintf("'wingman maintenance enter %s' retries the evacuation; 'wingman maintenance exit %s --failback' undoes it", host, host)
	case "exec":
		fmt.Fprintf(w, "  %s: in maintenance and empty; the command failed there (its output is in that host's wingmand log)\n", host)
		undo = fmt.Sprintf("fix %s, then 'wingman maintenance exit %s --failback' puts it back in service", host, host)
	case "exec refused":
		fmt.Fprintf(w, "  %s: the command did not run there (see why below); check 'wingman maintenance status %s'\n", host, host)
		undo = fmt.Sprintf("'wingman maintenance exit %s --failback' puts it back in service if it is still in maintenance", host)
	case "reboot":
		fmt.Fprintf(w, "  %s: patched, in maintenance, rebooted or rebooting\n", host)
		undo = fmt.Sprintf("once its wingmand runs again, 'wingman maintenance exit %s --failback' puts it back in service", host)
	case "exit":
		fmt.Fprintf(w, "  %s: patched, still in maintenance\n", host)
		undo = fmt.Sprintf("'wingman maintenance exit %s --failback' retries", host)
		rest = rest[1:]
	case "healthy":
		fmt.Fprintf(w, "  %s: patched, out of maintenance, but the cluster is not healthy: see 'wingman status'\n", host)
		rest = rest[1:]
	}
	if phase != "" && len(p.order) > at+1 {
		fmt.Fprintf(w, "  not started: %s\n", strings.Join(p.order[at+1:], ", "))
	}
	if undo != "" {
		fmt.Fprintf(w, "to undo or retry: %s\n", undo)
	}
	if len(rest) > 0 {
		fmt.Fprintf(w, "to continue: %s\n", continueCommand(o, rest))
	}
	if err != nil {
		return fmt.Errorf("stopped at %s: %w", host, err)
	}
	return errors.New("interrupted; every host is in a clean state")
}

// continueCommand is the command line that updates the hosts left.
func continueCommand(o rollingOptions, hosts []string) string {
	cmd := "wingman rolling-update --exec " + shellQuote(o.exec) + " --hosts " + strings.Join(hosts, ",")
	if o.reboot {
		cmd += " --reboot"
	}
	if o.all {
		cmd += " --all"
	}
	if o.timeout != 30*time.Minute {
		cmd += " --timeout " + o.timeout.String()
	}
	if o.rebootTimeout != 15*time.Minute {
		cmd += " --reboot-timeout " + o.rebootTimeout.String()
	}
	return cmd
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

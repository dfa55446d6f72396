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

var drillCmd = command{
	name:    "drill",
	args:    "[HOST]",
	summary: "failover drill: what if HOST (or each host in turn) were lost now",
	help: `A non-disruptive failover test. For HOST (without it: every host, each lost
alone) it plans the failover the cluster would run now and checks, on every
host that could receive one of the lost host's protected VMs, that it could
start it: each disk exists there and is readable, the emulator exists, the
domain type, architecture, machine type and CPU model are available, and each
network or bridge exists and is active. It also fails a VM whose stored
definition has a disk that would lose acknowledged writes (cache='unsafe')
or cannot follow it (no source). Without --live nothing is started or moved.

With --live it also starts a throwaway 64 MiB diskless guest (wingman-drill-HOST)
on every alive host, live-migrates each to the next host of the ring, reports
each hop's time and downtime, and destroys the guests.

Prints a table of VMs by target host (PASS, FAIL, or - where the host is not a
target), the failures with their reason, and a summary per host; the drill is
recorded as an event. Exits 1 if anything failed.`,
	nargs: [2]int{0, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		live := fs.Bool("live", false, "also live-migrate a throwaway guest around every host")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			req := api.DrillRequest{Live: *live}
			what := "drilling the loss of each host"
			if len(args) == 1 {
				req.Host = args[0]
				what = "drilling the loss of " + req.Host
			}
			stop := progress(s, what)
			rep, err := c.Drill(ctx, req)
			stop()
			if err != nil {
				return daemonErr(err, "host", req.Host)
			}
			if *asJSON {
				if err := writeJSON(s.out, rep); err != nil {
					return err
				}
			} else {
				printDrill(s.out, rep)
			}
			if !rep.Pass {
				return &exitError{code: exitFailed, err: fmt.Errorf("the drill failed: %s", drillFailures(rep))}
			}
			return nil
		})
	},
}

// passFail is the verdict word of the drill tables.
func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func printDrill(w io.Writer, rep api.DrillReport) {
	fmt.Fprintf(w, "Failover drill of %s (%s)\n\n", strings.Join(rep.Lost, ", "), humanDuration(rep.Duration))
	var targets []string
	for _, h := range rep.Hosts {
		if h.Target {
			targets = append(targets, h.Name)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(rep.VMs) == 0 {
		fmt.Fprintln(w, "No protected VM runs on the drilled hosts.")
	} else {
		fmt.Fprintf(tw, "VM\tOWNER\tLOCKS\tFAILOVER TO\t%s\tRESULT\n", strings.Join(targets, "\t"))
		for _, v := range rep.VMs {
			cells := make([]string, len(targets))
			for i, t := range targets {
				cells[i] = "-"
				for _, c := range v.Checks {
					if c.Host == t {
						cells[i] = passFail(c.Problem == "")
					}
				}
			}
			to := v.Target
			switch {
			case v.Unplaced != "":
				to = "NOWHERE"
			case v.Skipped != "":
				to = "(not restarted)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Owner, lockManagerText(v.LockManager), orDash(to), strings.Join(cells, "\t"), passFail(v.Pass))
		}
		tw.Flush()
	}
	var reasons []string
	definitions := false
	for _, v := range rep.VMs {
		for _, pr := range v.Problems {
			reasons = append(reasons, fmt.Sprintf("%s: %s", v.Name, pr))
			definitions = true
		}
		if v.Unplaced != "" {
			reasons = append(reasons, fmt.Sprintf("%s: no host has room after losing %s: %s", v.Name, v.Owner, v.Unplaced))
		}
		if v.Skipped != "" {
			reasons = append(reasons, fmt.Sprintf("%s: would not be restarted (%s); not a failure", v.Name, v.Skipped))
		}
		for _, c := range v.Checks {
			if c.Problem != "" {
				reasons = append(reasons, fmt.Sprintf("%s on %s: %s", v.Name, c.Host, c.Problem))
			}
		}
	}
	for _, h := range rep.Hosts {
		if h.Problem != "" {
			reasons = append(reasons, fmt.Sprintf("host %s: %s", h.Name, h.Problem))
		}
	}
	if len(reasons) > 0 {
		fmt.Fprintln(w)
		for _, r := range reasons {
			fmt.Fprintln(w, r)
		}
	}
	if definitions {
		fmt.Fprintln(w, "A definition is fixed with 'virsh edit VM' and a restart of the guest on its host; then 'wingman unprotect VM'\n"+
			"and 'wingman protect VM' store the new one for failover.")
	}

	fmt.Fprintln(w)
	fmt.Fprintln(tw, "HOST\tSTATE\tITS VMS\tPLACED\tUNPLACED\tCHECKED HERE\tFAILED HERE\tRESULT")
	for _, h := range rep.Hosts {
		own, placed, unplaced := "-", "-", "-"
		if h.Drilled {
			own, placed, unplaced = fmt.Sprint(h.VMs), fmt.Sprint(h.Placed), fmt.Sprint(h.Unplaced)
		}
		checked, failed := "-", "-"
		if h.Target {
			checked, failed = fmt.Sprint(h.Checked), fmt.Sprint(h.CheckFailures)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.State, own, placed, unplaced, checked, failed, passFail(h.Pass))
	}
	tw.Flush()

	if len(rep.Hops) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "LIVE MIGRATION\tFROM\tTO\tTIME\tDOWNTIME\tRESULT")
		for _, h := range rep.Hops {
			t, down := "-", "-"
			if h.Pass {
				t, down = humanDuration(h.Duration), humanDuration(h.Downtime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", orDash(h.Guest), orDash(h.From), orDash(h.To), t, down, passFail(h.Pass))
		}
		tw.Flush()
		for _, h := range rep.Hops {
			if h.Error != "" {
				fmt.Fprintf(w, "%s -> %s: %s\n", orDash(h.From), orDash(h.To), h.Error)
			}
		}
	}
	fmt.Fprintf(w, "\n%s\n", drillSummary(rep))
}

// drillSummary is the report's last line.
func drillSummary(rep api.DrillReport) string {
	if rep.Pass {
		return fmt.Sprintf("PASS: %s and %s checked", plural(len(rep.VMs), "VM"), plural(len(rep.Hosts), "host"))
	}
	return "FAIL: " + drillFailures(rep)
}

// drillFailures counts what failed, for the summary and the exit message.
func drillFailures(rep api.DrillReport) string {
	var vms, hosts, hops int
	for _, v := range rep.VMs {
		if !v.Pass {
			vms++
		}
	}
	for _, h := range rep.Hosts {
		if !h.Pass {
			hosts++
		}
	}
	for _, h := range rep.Hops {
		if !h.Pass {
			hops++
		}
	}
	parts := []string{fmt.Sprintf("%d of %s", vms, plural(len(rep.VMs), "VM")), fmt.Sprintf("%d of %s", hosts, plural(len(rep.Hosts), "host"))}
	if len(rep.Hops) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %s", hops, plural(len(rep.Hops), "live migration")))
	}
	return strings.Join(parts, ", ") + " failed"
}

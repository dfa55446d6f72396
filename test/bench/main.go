// Command bench measures Wingman end to end on test clusters of this machine and writes
// docs/BENCHMARKS.md (make bench, as root): failover time from a host's power loss to every one
// of its protected VMs running again (1, 10 and 30 VMs; default profile, fast profile, fast
// profile with a fence agent that confirms at once, and with fencing levels whose first hangs)
// with the timeline of where that time goes,
// isolation-to-restart time, wingmand's memory and CPU at rest, evacuation time and per-guest
// downtime of maintenance mode, single live migrations, a whole-site outage (-only coldstart: how
// long after the rules allow it each guest runs again), and the Go benchmarks of the repository.
// Flags select single lines (-only, -vms, -runs) to check a change without the whole run.
//
// It owns only the measurement; it must never run on a production host.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/test/cluster"
	"github.com/wingmanha/wingman/test/e2e"
)

func main() {
	out := flag.String("out", "docs/BENCHMARKS.md", "report file")
	o := options{}
	flag.IntVar(&o.runs, "runs", 3, "failovers per configuration and VM count above one")
	flag.IntVar(&o.runsOne, "runs-one", 5, "failovers per configuration with one VM")
	counts := flag.String("vms", "1,10,30", "VM counts of the failover lines, comma separated, ascending")
	flag.StringVar(&o.only, "only", "", "run only the configurations whose key contains this (default, fast, fence, levels, coldstart)")
	flag.IntVar(&o.isoRuns, "isolation-runs", 3, "isolation-to-restart runs per profile (0: skip)")
	flag.DurationVar(&o.idle, "idle", time.Minute, "how long wingmand is watched at rest (0: skip)")
	flag.BoolVar(&o.skipEvac, "skip-evacuation", false, "skip maintenance evacuation and live migrations")
	flag.BoolVar(&o.skipGo, "skip-go-bench", false, "skip the Go benchmarks")
	flag.BoolVar(&o.keepDir, "keep-dir", false, "keep each cluster's directory (logs) after it is torn down")
	flag.IntVar(&o.realRuns, "real-runs", 3, "failovers of the real guest (Debian, ledger service) per configuration (0: skip)")
	flag.Parse()
	for _, f := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || (len(o.counts) > 0 && n <= o.counts[len(o.counts)-1]) {
			fmt.Fprintf(os.Stderr, "bench: -vms %q: give positive VM counts, ascending, e.g. 1,10,30\n", *counts)
			os.Exit(2)
		}
		o.counts = append(o.counts, n)
	}
	if err := run(*out, o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	runs, runsOne, isoRuns int
	counts                 []int
	only                   string
	idle                   time.Duration
	skipEvac, skipGo       bool
	keepDir                bool
	realRuns               int
}

// runsFor is how many failovers a line of n VMs gets.
func (o options) runsFor(n int) int {
	if n == 1 {
		return o.runsOne
	}
	return o.runs
}

type config struct {
	key, name, profile string
	fence              bool
	levels             []cluster.FenceDevice // fencing levels instead of the single agent; only the 1-VM line
	bound              time.Duration         // target median for one VM
	isolation          bool                  // also measure isolation-to-restart
	first              bool                  // also measure evacuation and wingmand at rest
}

type failoverRow struct {
	cfg   config
	vms   int
	runs  int
	times []time.Duration
	tls   []timeline
	// floors: libvirt alone starting the same number of guests at once on the same survivors,
	// one per run (lines of more than one VM).
	floors []time.Duration
	err    string
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

type results struct {
	rows  []failoverRow
	iso   []failoverRow
	evac  evacResult
	idle  idleResult
	real  []realRow
	cold  *siteOutageResult
	goOut string
}

func run(out string, o options) error {
	if err := cluster.Prerequisites(); err != nil {
		return err
	}
	started := time.Now()
	ctx := context.Background()
	configs := []config{
		{"default", "default profile (D 12 s)", "default", false, nil, 13 * time.Second, true, true},
		{"fast", "fast profile (D 7.5 s)", "fast", false, nil, 9 * time.Second, true, false},
		{"fence", "fast profile + fence agent confirming at once (S 3 s)", "fast", true, nil, fastS + fenceStart, false, false},
		{"levels", "fast profile + fence level 1 hanging past its 1 s timeout, level 2 confirming (S 3 s)", "fast", true, e2e.FirstLevelHangs,
			0, false, false}, // target: S + both agents' measured times + fenceStart, per run (levelsTarget)
	}
	var res results
	for _, c := range configs {
		if !strings.Contains(c.key, o.only) {
			continue
		}
		if err := measureConfig(ctx, c, o, &res); err != nil {
			logf("%s: %v", c.name, err)
		}
	}
	if strings.Contains("coldstart", o.only) {
		cold := measureSiteOutage(ctx, o)
		res.cold = &cold
	}
	if !o.skipGo {
		logf("running the Go benchmarks")
		res.goOut = runGoBench(ctx)
	}
	report := render(res, o, time.Since(started))
	if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
		return err
	}
	logf("wrote %s in %v", out, time.Since(started).Round(time.Second))
	fmt.Print(report)
	return nil
}

// measureConfig runs the failovers of one configuration on one cluster, for each VM count in
// turn (the guests of a smaller line are part of the larger one), each run powering kvm1 off and
// on again; then isolation-to-restart, and for the first configuration wingmand at rest and
// maintenance. Lines of more than maxEarlyVMs run last: on a small machine their guests may
// starve the hosts, and what they break must not cost the other measurements.
func measureConfig(ctx context.Context, c config, o options, res *results) error {
	const maxEarlyVMs = 10 // the evacuation needs 6 guests of the lines before it
	logf("%s: starting a 3-host cluster", c.name)
	counts := o.counts
	if c.levels != nil {
		counts = slices.DeleteFunc(slices.Clone(counts), func(n int) bool { return n != 1 })
	}
	env, err := e2e.Start(ctx, e2e.Options{Profile: c.profile, Fence: c.fence, FenceLevels: c.levels, KeepDir: o.keepDir, CPUOvercommit: benchCPUOvercommit})
	if err != nil {
		for _, n := range counts {
			res.rows = append(res.rows, failoverRow{cfg: c, vms: n, runs: o.runsFor(n), err: err.Error()})
		}
		return err
	}
	defer env.Close()
	gctx, stopNice := context.WithCancel(ctx)
	defer stopNice()
	go niceGuests(gctx, env)
	victim := env.Hosts()[0]
	var guests []e2e.Guest
	lines := func(counts []int) error {
		for _, n := range counts {
			row := failoverRow{cfg: c, vms: n, runs: o.runsFor(n)}
			more, err := env.NewGuests(ctx, victim, fmt.Sprintf("g%d-", n), n-len(guests), "")
			guests = append(guests, more...)
			for r := 0; err == nil && r < row.runs; r++ {
				var d time.Duration
				var tl timeline
				if d, tl, err = failoverOnce(ctx, env, victim, guests); err == nil {
					logf("%s, %d VMs, run %d: %v (%s)", c.name, n, r+1, d.Round(time.Millisecond), tl)
					row.times, row.tls = append(row.times, d), append(row.tls, tl)
				}
				if err == nil && n > 1 {
					var f time.Duration
					if f, err = floorAfter(ctx, env, victim, guests); err == nil {
						logf("%s, %d VMs, run %d: libvirt alone starts them in %v", c.name, n, r+1, f.Round(time.Millisecond))
						row.floors = append(row.floors, f)
					}
				}
			}
			if err != nil {
				row.err = err.Error()
			}
			res.rows = append(res.rows, row)
			if err != nil {
				return fmt.Errorf("%d VMs: %w", n, err)
			}
		}
		return nil
	}
	first, last := counts, []int(nil)
	for i, n := range counts {
		if n > maxEarlyVMs {
			first, last = counts[:i], counts[i:]
			break
		}
	}
	if err := lines(first); err != nil {
		for _, n := range last {
			res.rows = append(res.rows, failoverRow{cfg: c, vms: n, runs: o.runsFor(n), err: "not run: " + err.Error()})
		}
		return err
	}
	if c.first && o.idle > 0 {
		logf("%s: watching wingmand at rest for %v with %d protected VMs", c.name, o.idle, len(guests))
		res.idle = measureIdle(ctx, env, o.idle, len(guests))
	}
	if c.isolation && o.isoRuns > 0 {
		row := failoverRow{cfg: c, vms: isolationVMs, runs: o.isoRuns}
		if err := measureIsolation(ctx, env, victim, &row); err != nil {
			row.err = err.Error()
			logf("%s: isolation: %v", c.name, err)
		}
		res.iso = append(res.iso, row)
	}
	if c.first && !o.skipEvac {
		ev, err := measureEvacuation(ctx, env, victim, guests[:min(6, len(guests))])
		if err != nil {
			ev.err = err.Error()
			logf("%s: evacuation: %v", c.name, err)
		}
		res.evac = ev
	}
	if o.realRuns > 0 && c.levels == nil {
		row := measureRealGuest(ctx, env, c, victim, o.realRuns, c.first && !o.skipEvac)
		if c.key == "fast" && row.err == "" {
			if err := measureStartOrder(ctx, env, victim, &row); err != nil {
				logf("%s: start order: %v", c.name, err)
			}
		}
		res.real = append(res.real, row)
	}
	return lines(last)
}

// failoverOnce gathers guests on victim, cuts its power, and returns the time until every
// guest runs again, once, elsewhere, with the timeline from the events; then it powers victim on
// and waits for it to rejoin.
func failoverOnce(ctx context.Context, env *e2e.Env, victim *cluster.Host, guests []e2e.Guest) (time.Duration, timeline, error) {
	if err := gather(ctx, env, victim, guests); err != nil {
		return 0, timeline{}, err
	}
	w := env.StartWatch(guests, e2e.WatchOptions{})
	t0 := time.Now()
	if err := env.PowerOff(victim); err != nil {
		return 0, timeline{}, err
	}
	_, err := env.WaitRunningOnce(ctx, 2*time.Minute, guests, victim)
	d := time.Since(t0)
	if v, _, _ := w.Stop(); len(v) > 0 {
		return 0, timeline{}, fmt.Errorf("never-two violated: %s", strings.Join(v, "; "))
	}
	if err != nil {
		return 0, timeline{}, err
	}
	tl := readTimeline(ctx, env, env.Hosts()[1], t0, guests)
	return d, tl, env.PowerOnAndRejoin(ctx, victim)
}

// benchCPUOvercommit is the test hosts' placement.cpu_overcommit: each has this machine's 2
// cores, so with the default of 4 vCPUs per CPU two survivors take only 16 one-vCPU guests,
// and a 30-VM failover would leave 14 down ("unplaced: no capacity").
const benchCPUOvercommit = 16

// guestNice is the scheduling priority the guests' QEMU processes get here. In production the
// guests run in libvirt's machine.slice and the daemons in system.slice, whose CPU shares are equal
// however many guests there are; the test hosts have no cgroups, so without this 30 guests
// outweigh 3 daemons 10 to 1 on this machine's cores.
const guestNice = 10

// niceGuests gives every QEMU process of the cluster (each of its threads) guestNice, at once and
// again for each guest that starts, until ctx ends.
func niceGuests(ctx context.Context, env *e2e.Env) {
	done := map[int]bool{}
	for ctx.Err() == nil {
		for _, h := range env.Hosts() {
			ps, _ := h.Processes()
			for _, p := range ps {
				if !strings.HasPrefix(p.Comm, "qemu-system") {
					continue
				}
				tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.PID))
				for _, t := range tasks {
					tid, err := strconv.Atoi(t.Name())
					if err != nil || done[tid] {
						continue
					}
					if syscall.Setpriority(syscall.PRIO_PROCESS, tid, guestNice) == nil {
						done[tid] = true
					}
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// showEvents logs every event of each measured failover, to see where its time goes.
var showEvents = flag.Bool("show-events", false, "log every event of each measured failover")

// isolationVMs is how many guests with isolation response stop the isolation line moves.
const isolationVMs = 4

// measureIsolation protects isolationVMs guests on victim with isolation response stop, then, run
// after run, cuts victim off the network (it keeps writing the LUN: isolated, not dead) and times
// until every one of them runs again, once, on another host; then heals the network.
func measureIsolation(ctx context.Context, env *e2e.Env, victim *cluster.Host, row *failoverRow) error {
	guests, err := env.NewGuests(ctx, victim, "iso", isolationVMs, "")
	if err != nil {
		return err
	}
	for _, g := range guests {
		if _, err := env.Client(victim).SetPolicy(ctx, g.Name, e2e.ProtectRequest{Policy: e2e.Policy{Isolation: "stop"}}); err != nil {
			return fmt.Errorf("isolation stop for %s: %w", g.Name, err)
		}
	}
	for r := 0; r < row.runs; r++ {
		if err := gather(ctx, env, victim, guests); err != nil {
			return err
		}
		w := env.StartWatch(guests, e2e.WatchOptions{})
		t0 := time.Now()
		if err := env.C.Partition(victim); err != nil {
			return err
		}
		_, err := env.WaitRunningOnce(ctx, 2*time.Minute, guests, victim)
		d := time.Since(t0)
		if v, _, _ := w.Stop(); len(v) > 0 {
			return fmt.Errorf("never-two violated: %s", strings.Join(v, "; "))
		}
		tl := readTimeline(ctx, env, env.Hosts()[1], t0, guests)
		if herr := env.C.Heal(victim); herr != nil {
			return herr
		}
		if err != nil {
			return err
		}
		logf("%s, isolation of %d VMs, run %d: %v (%s)", row.cfg.name, len(guests), r+1, d.Round(time.Millisecond), tl)
		row.times, row.tls = append(row.times, d), append(row.tls, tl)
		if err := env.WaitHealthy(ctx, env.Hosts()...); err != nil {
			return fmt.Errorf("after the heal: %w", err)
		}
	}
	return nil
}

// timeline is where the time of one failover went, from the events every host wrote (the hosts
// share this machine's clock), each measured from the fault; -1: not seen.
type timeline struct {
	dead       time.Duration   // the coordinator declared the host dead (or isolated and stopped)
	otherFirst time.Duration   // the first failover action of a host other than the coordinator
	firstStart time.Duration   // the first guest started
	lastStart  time.Duration   // the last guest started
	agents     []time.Duration // each fence attempt's agent time, in order (fence-attempt events)
}

func (t timeline) String() string {
	f := func(d time.Duration) string {
		if d < 0 {
			return "?"
		}
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	s := fmt.Sprintf("dead %s, other host acts %s, first start %s, last start %s", f(t.dead), f(t.otherFirst), f(t.firstStart), f(t.lastStart))
	for i, a := range t.agents {
		s += fmt.Sprintf(", fence level %d agent %s", i+1, f(a))
	}
	return s
}

// attemptRE finds a fence attempt's agent time in its event (fence.Attempt.String).
var attemptRE = regexp.MustCompile(`\) (?:confirmed off|failed|timed out|reported still on|not confirmed|canceled) after ([0-9.]+(?:ns|µs|ms|s|m[0-9.]*s?|h[0-9.ms]*))`)

// fastS is S of the fast profile, and fenceStart what a confirmed fence line allows after S and
// the agents: the verdict reaching the LUN and the survivor, and libvirt starting the guest.
const (
	fastS      = 3 * time.Second
	fenceStart = 1400 * time.Millisecond
)

// levelsTarget is the fencing-levels line's target for one run: S + the agents' measured
// times (level 1 until its timeout killed it, level 2 until it confirmed) + fenceStart.
func levelsTarget(tl timeline) (time.Duration, bool) {
	if len(tl.agents) < 2 {
		return 0, false
	}
	d := fastS + fenceStart
	for _, a := range tl.agents {
		d += a
	}
	return d, true
}

// readTimeline reads the events since t0 through from's wingmand.
func readTimeline(ctx context.Context, env *e2e.Env, from *cluster.Host, t0 time.Time, guests []e2e.Guest) timeline {
	tl := timeline{-1, -1, -1, -1, nil}
	evs, err := env.Client(from).Events(ctx, t0, 0)
	if err != nil {
		logf("timeline: %v", err)
		return tl
	}
	ours := map[string]bool{} // the API names a VM by its name, or by its UUID if it has none
	for _, g := range guests {
		ours[g.UUID], ours[g.Name] = true, true
	}
	coord := 0
	for _, ev := range evs {
		at := ev.Time.Sub(t0)
		if *showEvents {
			logf("  +%.3fs host %d %-16s %-10s %s", at.Seconds(), ev.Host, ev.Kind, ev.VM, ev.Message)
		}
		switch {
		case ev.Kind == "fence-attempt":
			if m := attemptRE.FindStringSubmatch(ev.Message); m != nil {
				if d, err := time.ParseDuration(m[1]); err == nil {
					tl.agents = append(tl.agents, d)
				}
			}
		case (ev.Kind == "declared-dead" || ev.Kind == "pill-acknowledged") && tl.dead < 0:
			tl.dead, coord = at, ev.Host
		case !ours[ev.VM] && !ours[strings.ToLower(ev.VM)]:
		case ev.Kind == "planned" || ev.Kind == "lease-acquired":
			if coord != 0 && ev.Host != coord && tl.otherFirst < 0 {
				tl.otherFirst = at
			}
		case ev.Kind == "started" || ev.Kind == "restarted":
			if tl.firstStart < 0 {
				tl.firstStart = at
			}
			tl.lastStart = max(tl.lastStart, at)
		}
	}
	return tl
}

type idleResult struct {
	vms, seconds int
	hosts        []idleHost
	guests       int     // QEMU processes seen
	guestPct     float64 // CPU of one idle guest, as a share of one core (mean)
	err          string
}

type idleHost struct {
	name      string
	rssKiB    int
	cpuPct    float64 // of one core, over the whole window
	cpuSecond float64
	lunReads  float64 // LUN I/Os per second, as wingmand counts them (status)
	lunWrites float64
}

// measureIdle samples every wingmand's resident memory and CPU time before and after a window in
// which nothing happens to the cluster.
func measureIdle(ctx context.Context, env *e2e.Env, window time.Duration, vms int) idleResult {
	res := idleResult{vms: vms, seconds: int(window.Seconds())}
	// Settle first: the last run's rejoin and failover must be over.
	if err := env.WaitHealthy(ctx, env.Hosts()...); err != nil {
		res.err = err.Error()
		return res
	}
	time.Sleep(5 * time.Second)
	type sample struct {
		pid   int
		ticks int
		lun   api.LUNHealth
	}
	lunIO := func(h *cluster.Host) api.LUNHealth {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, _ := env.Client(h).Status(sctx)
		return st.LUN
	}
	guestTicks := func() (ticks, n int) { // every QEMU process of every host
		for _, h := range env.Hosts() {
			ps, _ := h.Processes()
			for _, p := range ps {
				if strings.HasPrefix(p.Comm, "qemu-system") {
					if t, _, err := procCPU(p.PID); err == nil {
						ticks, n = ticks+t, n+1
					}
				}
			}
		}
		return ticks, n
	}
	g0, _ := guestTicks()
	// A status request reads every VM record: its own reads are measured
	// (two requests in a row) and taken off the window's, and its CPU is
	// outside the window.
	before := map[string]sample{}
	statusReads := map[string]uint64{}
	for _, h := range env.Hosts() {
		a, b := lunIO(h), lunIO(h)
		statusReads[h.Name()] = b.Reads - a.Reads
		pid := h.WingmandPID()
		ticks, _, err := procCPU(pid)
		if err != nil {
			res.err = err.Error()
			return res
		}
		before[h.Name()] = sample{pid, ticks, b}
	}
	t0 := time.Now()
	time.Sleep(window)
	wall := time.Since(t0).Seconds()
	if g1, n := guestTicks(); n > 0 {
		res.guests, res.guestPct = n, 100*float64(g1-g0)/clockTicks/wall/float64(n)
	}
	for _, h := range env.Hosts() {
		b := before[h.Name()]
		ticks, rss, err := procCPU(b.pid)
		if err != nil {
			res.err = fmt.Sprintf("%s: %v (did wingmand restart?)", h.Name(), err)
			return res
		}
		cpu := float64(ticks-b.ticks) / clockTicks
		io := lunIO(h)
		res.hosts = append(res.hosts, idleHost{name: h.Name(), rssKiB: rss, cpuSecond: cpu, cpuPct: 100 * cpu / wall,
			lunReads: float64(io.Reads-b.lun.Reads-statusReads[h.Name()]) / wall, lunWrites: float64(io.Writes-b.lun.Writes) / wall})
	}
	return res
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc (100 on every Linux we run on).
const clockTicks = 100

// procCPU returns a process's user+system CPU time in clock ticks and its resident memory in KiB.
func procCPU(pid int) (ticks, rssKiB int, err error) {
	if pid <= 0 {
		return 0, 0, fmt.Errorf("wingmand is not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name (which may hold spaces), 1-based from field 3: utime is 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rssKiB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return ut + st, rssKiB, nil
}

// settled waits until the LUN names, for every guest, the host whose libvirt runs it: the lease
// follows a migration on the destination's next step, and a command sent meanwhile goes to the
// old owner.
func settled(ctx context.Context, env *e2e.Env, guests []e2e.Guest) error {
	return e2e.Poll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
		p, err := env.Running(ctx)
		if err != nil {
			return false, nil
		}
		for _, h := range env.Hosts() {
			if !h.WingmandRunning() {
				continue
			}
			vms, err := env.Client(h).VMs(ctx)
			if err != nil {
				return false, nil
			}
			owner := map[string]string{}
			for _, v := range vms {
				owner[v.UUID] = v.OwnerName
			}
			for _, g := range guests {
				if hs := p[g.UUID]; len(hs) != 1 || owner[g.UUID] != hs[0] {
					return false, nil
				}
			}
			return true, nil
		}
		return false, nil
	})
}

// gather live-migrates every guest not on h to h, two at a time.
func gather(ctx context.Context, env *e2e.Env, h *cluster.Host, guests []e2e.Guest) error {
	p, err := env.WaitRunningOnce(ctx, time.Minute, guests)
	if err != nil {
		return err
	}
	if err := settled(ctx, env, guests); err != nil {
		return fmt.Errorf("gather: LUN owners never matched libvirt: %w", err)
	}
	sem := make(chan struct{}, 2)
	errs := make(chan error, len(guests))
	for _, g := range guests {
		if p[g.UUID][0] == h.Name() {
			errs <- nil
			continue
		}
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := env.Client(h).Migrate(ctx, g.Name, e2e.MigrateRequest{Target: h.Name()})
			if err != nil {
				// Seen right after a host rejoined: the incoming QEMU exits at once. Retry once,
				// and say so: it is a finding, not noise.
				logf("migrate %s to %s failed, retrying once: %v", g.Name, h.Name(), err)
				_ = settled(ctx, env, []e2e.Guest{g})
				_, err = env.Client(h).Migrate(ctx, g.Name, e2e.MigrateRequest{Target: h.Name()})
				if err != nil && strings.Contains(err.Error(), "already runs on "+h.Name()) {
					err = nil // the first try moved it after all, but its answer was lost
				}
			}
			errs <- err
		}()
	}
	// Wait for every migration, also after a failure: none may outlive this cluster.
	var first error
	for range guests {
		if err := <-errs; err != nil && first == nil {
			first = fmt.Errorf("gather on %s: %w", h.Name(), err)
		}
	}
	if first != nil {
		return first
	}
	// The lease follows on the destination's next step; failover must start from a settled LUN.
	return e2e.Poll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
		vms, err := env.Client(h).VMs(ctx)
		if err != nil {
			return false, nil
		}
		n := 0
		for _, v := range vms {
			if v.Protected && v.OwnerName == h.Name() && v.Migration == "" {
				n++
			}
		}
		return n >= len(guests), nil
	})
}

type evacResult struct {
	vms        int
	wall       time.Duration
	downtimes  []time.Duration
	migrations []time.Duration // single live migrations: wall
	migDown    []time.Duration // and downtime
	err        string
}

var downtimeRE = regexp.MustCompile(`downtime ([0-9.]+(?:ns|µs|us|ms|s))`)

// measureEvacuation gathers guests on h, enters maintenance on h, and reads each guest's
// downtime from the evacuation events; then it times single live migrations.
func measureEvacuation(ctx context.Context, env *e2e.Env, h *cluster.Host, guests []e2e.Guest) (evacResult, error) {
	res := evacResult{vms: len(guests)}
	for r := 0; r < 3; r++ {
		if err := gather(ctx, env, h, guests); err != nil {
			return res, err
		}
		other := env.Hosts()[1]
		t0 := time.Now()
		if _, err := env.Client(other).Maintenance(ctx, h.Name(), e2e.MaintenanceRequest{Enter: true}); err != nil {
			return res, err
		}
		wall := time.Since(t0)
		if r == 0 || wall < res.wall {
			res.wall = wall
		}
		evs, err := env.Client(other).Events(ctx, t0, 0)
		if err != nil {
			return res, err
		}
		for _, ev := range evs {
			if ev.Kind != "evacuated" {
				continue
			}
			if m := downtimeRE.FindStringSubmatch(ev.Message); m != nil {
				if d, err := time.ParseDuration(strings.Replace(m[1], "us", "µs", 1)); err == nil {
					res.downtimes = append(res.downtimes, d)
				}
			}
		}
		if _, err := env.Client(other).Maintenance(ctx, h.Name(), e2e.MaintenanceRequest{Enter: false}); err != nil {
			return res, err
		}
		if err := env.WaitHealthy(ctx, env.Hosts()...); err != nil {
			return res, err
		}
		logf("evacuation of %d VMs: %v", len(guests), wall.Round(time.Millisecond))
	}
	g := guests[0]
	for r := 0; r < 6; r++ {
		p, err := env.WaitRunningOnce(ctx, time.Minute, []e2e.Guest{g})
		if err != nil {
			return res, err
		}
		if err := settled(ctx, env, []e2e.Guest{g}); err != nil {
			return res, err
		}
		var to *cluster.Host
		for _, o := range env.Hosts() {
			if o.Name() != p[g.UUID][0] {
				to = o
				break
			}
		}
		m, err := env.Client(to).Migrate(ctx, g.Name, e2e.MigrateRequest{Target: to.Name()})
		if err != nil {
			return res, err
		}
		res.migrations = append(res.migrations, m.Duration)
		res.migDown = append(res.migDown, m.Downtime)
	}
	return res, nil
}

func runGoBench(ctx context.Context) string {
	root, err := cluster.ModuleRoot()
	if err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-count=1",
		"./storage/...", "./quorum/...", "./vm/...", "./test/integration/...")
	cmd.Dir = root
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err = cmd.Run()
	var keep []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "Benchmark") || strings.HasPrefix(l, "pkg:") || strings.HasPrefix(l, "--- FAIL") || strings.HasPrefix(l, "FAIL") {
			keep = append(keep, strings.TrimRight(l, " \t"))
		}
	}
	if err != nil {
		keep = append(keep, "(go test: "+err.Error()+")")
	}
	return strings.Join(keep, "\n")
}

// stats are the min, median, p95 (nearest rank: with fewer than 20 runs it is the max) and max.
func stats(ds []time.Duration) (lo, med, p95, hi time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := (95*len(s) + 99) / 100 // ceil(0.95 n)
	return s[0], s[len(s)/2], s[rank-1], s[len(s)-1]
}

// medianOf is the median of the known (non-negative) values f picks from the timelines.
func medianOf(tls []timeline, f func(timeline) time.Duration) (time.Duration, bool) {
	var ds []time.Duration
	for _, t := range tls {
		if d := f(t); d >= 0 {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return 0, false
	}
	_, med, _, _ := stats(ds)
	return med, true
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func machine() []string {
	var out []string
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				out = append(out, "CPU: "+strings.TrimSpace(v))
				break
			}
		}
	}
	out = append(out, fmt.Sprintf("cores: %d", runtime.NumCPU()))
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		out = append(out, "memory: "+strings.Join(strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:], " "))
	}
	for _, c := range [][]string{{"uname", "-sr"}, {"libvirtd", "--version"}, {"qemu-system-x86_64", "--version"}} {
		if b, err := exec.Command(c[0], c[1:]...).Output(); err == nil {
			out = append(out, strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)[0])
		}
	}
	out = append(out, "guests: 64 MiB, 1 vCPU, "+cluster.DefaultDomainType()+", no OS (SeaBIOS loop reading its disk)")
	out = append(out, "Go: "+runtime.Version())
	return out
}

func render(res results, o options, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Wingman benchmarks\n\nMeasured by `%s` (test/bench, what `make bench` runs with its defaults) on %s, in %v.\n\n",
		strings.Join(append([]string{"go run ./test/bench"}, os.Args[1:]...), " "), time.Now().Format("2006-01-02"), took.Round(time.Second))
	b.WriteString("## Machine\n\n")
	for _, l := range machine() {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	b.WriteString(`
Each cluster has 3 test hosts on this one machine (test/cluster: own network, mount, UTS and PID
namespaces, own libvirtd and wingmand each), a heartbeat LUN file with O_DIRECT on ext4 shared by
all, serf gossip encrypted on a private bridge, the software watchdog. All of it shares the
machine's cores: the guests of a large failover start on the same cores as the daemons. The
guests' QEMU processes run at nice 10, standing in for production's split of CPU between
libvirt's machine.slice and the daemons' system.slice (the test hosts have no cgroups).
`)
	fmt.Fprintf(&b, "Each host's wingman.toml sets `placement.cpu_overcommit = %d`: with the default of 4 vCPUs per\n"+
		"logical CPU, two survivors of %d cores each would take only %d one-vCPU guests.\n", benchCPUOvercommit, runtime.NumCPU(), 2*4*runtime.NumCPU())
	b.WriteString(`
## Failover after power loss

Time from cutting a host's power (SIGKILL of its PID namespace's init: libvirtd, QEMU and wingmand
die at once) until libvirt on the survivors lists every protected VM of the lost host running,
exactly once (polled every 50 ms; a checker sampling every 100 ms found no moment with two copies).
`)
	fmt.Fprintf(&b, "%d runs per line with one VM, %d with more; p95 is the nearest rank, so with fewer than 20 runs it is the slowest run.\n\n", o.runsOne, o.runs)
	b.WriteString("| Configuration | VMs | runs | min | median | p95 | max | target (median) | met |\n|---|---:|---:|---:|---:|---:|---:|---:|:---:|\n")
	for _, r := range res.rows {
		target, bound, haveBound := secs(r.cfg.bound), r.cfg.bound, true
		if r.vms > 1 {
			target, haveBound = "≤ 1.15 × libvirt's floor (below)", false
		}
		if r.cfg.levels != nil {
			target, haveBound = "S + agents + start (below)", false
			if lt, ok := medianTarget(r.tls); ok {
				target, bound, haveBound = "S + agents + start = "+secs(lt), lt, true
			}
		}
		if len(r.times) == 0 {
			fmt.Fprintf(&b, "| %s | %d | 0 | – | – | – | – | %s | – |\n", r.cfg.name, r.vms, target)
			continue
		}
		lo, med, p95, hi := stats(r.times)
		met := "–"
		if haveBound {
			met = map[bool]string{true: "yes", false: "**no**"}[med <= bound]
		} else if ratio, ok := r.floorRatio(); ok {
			met = map[bool]string{true: "yes", false: "**no**"}[ratio <= floorTarget]
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s | %s | %s |\n", r.cfg.name, r.vms, len(r.times), secs(lo), secs(med), secs(p95), secs(hi), target, met)
	}
	for _, r := range res.rows {
		if r.err != "" {
			fmt.Fprintf(&b, "\nStopped after %d of %d runs (%s, %d VMs): %s\n", len(r.times), r.runs, r.cfg.name, r.vms, r.err)
		}
	}
	b.WriteString(`
For comparison, measured on this kind of machine: Pacemaker + corosync + VirtualDomain brings a
guest back **18.8 s** (median) after power loss with SBD disk fencing, and **8.7 s** with a power
fence device that confirms at once.

### Where the time goes

Medians over the runs of each line, from the events the hosts wrote (` + "`wingman events`" + `), measured from
the power cut: the coordinator declares the host dead; the first failover action (plan or lease)
of the other survivor, which learns the verdict from the LUN; the first and the last guest started
by libvirt; and every guest seen running (the table above).

| Configuration | VMs | declared dead | other host acts | first start | last start | all running |
|---|---:|---:|---:|---:|---:|---:|
`)
	timelineRows(&b, res.rows)
	levelsSection(&b, res.rows)
	floorTable(&b, res.rows)
	realGuestSection(&b, res.real)
	siteOutageSection(&b, res.cold)
	b.WriteString("\n## Isolation to restart\n\n")
	if len(res.iso) == 0 {
		b.WriteString("Not measured in this run.\n")
	} else {
		fmt.Fprintf(&b, `Time from cutting a host off the network (its switch port goes down; it still writes the LUN, so
it is isolated, not dead) until its %d protected VMs with isolation response `+"`stop`"+` run again,
exactly once, on the other hosts: serf notices the host gone, the coordinator sends the poison pill
through the LUN mailbox, the isolated host destroys those VMs and acknowledges, and the survivors
start them (DESIGN.md: faster than D). Guests with the default response (leave-running) stay where
they are.

| Configuration | VMs | runs | min | median | p95 | max |
|---|---:|---:|---:|---:|---:|---:|
`, isolationVMs)
		for _, r := range res.iso {
			if len(r.times) == 0 {
				fmt.Fprintf(&b, "| %s | %d | 0 | – | – | – | – |\n", r.cfg.name, r.vms)
				continue
			}
			lo, med, p95, hi := stats(r.times)
			fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s |\n", r.cfg.name, r.vms, len(r.times), secs(lo), secs(med), secs(p95), secs(hi))
		}
		for _, r := range res.iso {
			if r.err != "" {
				fmt.Fprintf(&b, "\nStopped after %d of %d runs (%s): %s\n", len(r.times), r.runs, r.cfg.name, r.err)
			}
		}
	}
	b.WriteString("\n## wingmand at rest\n\n")
	switch {
	case res.idle.err != "":
		fmt.Fprintf(&b, "Not complete: %s\n", res.idle.err)
	case len(res.idle.hosts) == 0:
		b.WriteString("Not measured in this run.\n")
	default:
		fmt.Fprintf(&b, "Each host's wingmand over %d s on the idle default-profile cluster with %d protected VMs (resident memory at the end, from /proc; CPU time used in the window, as a share of one core; "+
			"the heartbeat LUN's I/Os per second, as wingmand counts them in its status):\n\n| Host | RSS | CPU | LUN reads/s | LUN writes/s |\n|---|---:|---:|---:|---:|\n", res.idle.seconds, res.idle.vms)
		for _, h := range res.idle.hosts {
			fmt.Fprintf(&b, "| %s | %.1f MiB | %.2f %% (%.2f s) | %.1f | %.1f |\n", h.name, float64(h.rssKiB)/1024, h.cpuPct, h.cpuSecond, h.lunReads, h.lunWrites)
		}
		if res.idle.guests > 0 {
			fmt.Fprintf(&b, "\nFor scale, in the same window one idle test guest (QEMU, %d of them) used %.1f %% of a core on average, "+
				"so 30 idle ones would use %.0f %% of this machine's %d cores. Starting one costs far more (SeaBIOS boots for about "+
				"1.7 s of CPU under nested KVM, longer under TCG), so a 30-VM failover here boots 30 guests on 2 cores while it is measured.\n",
				res.idle.guests, res.idle.guestPct, 30*res.idle.guestPct/float64(runtime.NumCPU()), runtime.NumCPU())
		}
	}
	b.WriteString("\n## Maintenance: evacuation and live migration\n")
	ev := res.evac
	if ev.err != "" {
		fmt.Fprintf(&b, "\nNot complete: %s\n", ev.err)
	}
	if ev.vms > 0 && ev.wall > 0 {
		lo, med, _, hi := stats(ev.downtimes)
		fmt.Fprintf(&b, "\nEvacuating a host of %d idle guests (`maintenance enter`, 2 migrations at a time, default profile; best of 3): **%s** until the host is empty (this includes the 2 heartbeat cycles wingmand waits for the maintenance state to reach every host).\n", ev.vms, secs(ev.wall))
		fmt.Fprintf(&b, "\nPer-guest downtime over %d evacuated guests: min %v, median %v, max %v (target: under 100 ms).\n", len(ev.downtimes), lo, med, hi)
	}
	if len(ev.migrations) > 0 {
		lo, med, _, hi := stats(ev.migrations)
		dlo, dmed, _, dhi := stats(ev.migDown)
		fmt.Fprintf(&b, "\nSingle live migration through the API (%d runs): wall min %v, median %v, max %v; downtime min %v, median %v, max %v.\n",
			len(ev.migrations), lo.Round(time.Millisecond), med.Round(time.Millisecond), hi.Round(time.Millisecond), dlo, dmed, dhi)
	}
	if ev.vms == 0 && ev.err == "" {
		b.WriteString("\nNot measured in this run.\n")
	}
	if res.goOut != "" {
		b.WriteString("\n## Go benchmarks\n\n`go test -run '^$' -bench . -benchmem` over storage, quorum, vm and test/integration (heartbeat cycle, dead verdict, planner at 1,000 hosts, reconciler, fence agent, live migration):\n\n```\n")
		b.WriteString(res.goOut)
		b.WriteString("\n```\n")
	}
	return b.String()
}

// timelineRows writes one row of medians per failover line.
func timelineRows(b *strings.Builder, rows []failoverRow) {
	for _, r := range rows {
		if len(r.times) == 0 {
			continue
		}
		cell := func(f func(timeline) time.Duration) string {
			if d, ok := medianOf(r.tls, f); ok {
				return secs(d)
			}
			return "–"
		}
		_, all, _, _ := stats(r.times)
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s |\n", r.cfg.name, r.vms,
			cell(func(t timeline) time.Duration { return t.dead }), cell(func(t timeline) time.Duration { return t.otherFirst }),
			cell(func(t timeline) time.Duration { return t.firstStart }), cell(func(t timeline) time.Duration { return t.lastStart }), secs(all))
	}
}

// medianTarget is the median of the runs' levelsTarget.
func medianTarget(tls []timeline) (time.Duration, bool) {
	var ds []time.Duration
	for _, t := range tls {
		if d, ok := levelsTarget(t); ok {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return 0, false
	}
	_, med, _, _ := stats(ds)
	return med, true
}

// levelsSection writes where the time of the fencing-levels line went: S, each level's agent,
// and the start, against the failover measured.
func levelsSection(b *strings.Builder, rows []failoverRow) {
	for _, r := range rows {
		if r.cfg.levels == nil || len(r.times) == 0 {
			continue
		}
		agent := func(i int) string {
			if d, ok := medianOf(r.tls, func(t timeline) time.Duration {
				if i < len(t.agents) {
					return t.agents[i]
				}
				return -1
			}); ok {
				return fmt.Sprintf("%.2f s", d.Seconds())
			}
			return "–"
		}
		lo, med, _, hi := stats(r.times)
		target := "–"
		if lt, ok := medianTarget(r.tls); ok {
			target = secs(lt)
		}
		fmt.Fprintf(b, `
### Fencing levels

The host's first fencing level hangs (a management controller that no longer answers: the agent
sleeps) and is killed at its %v timeout; the second level (a switched PDU) confirms at once. Its
target is S + both agents' measured times (from the fence-attempt events) + %s, what the
confirming fence line allows for the verdict and the start. Medians over %d runs.

| S | level 1 agent | level 2 agent | start allowance | target | failover min | median | max |
|---:|---:|---:|---:|---:|---:|---:|---:|
| %s | %s | %s | %s | %s | %s | %s | %s |
`, r.cfg.levels[0].Timeout, secs(fenceStart), len(r.times), secs(fastS), agent(0), agent(1), secs(fenceStart), target, secs(lo), secs(med), secs(hi))
	}
}

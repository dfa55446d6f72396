package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/test/e2e"
)

// The whole-site outage line (-only coldstart): a 3-host site with protected guests of start
// orders 0, 1 and 2 on every host loses power at once; the first host comes back after
// coldFirst, the second after coldSecond, the third never. For each guest: how long after the moment DESIGN.md's rules
// first allow it (e2e.TwoOfThreeRule) it runs again.
const (
	coldCeiling = 15 * time.Second // the LUN's network-lease ceiling (lun format --lease-ceiling)
	coldFirst   = 5 * time.Second
	coldSecond  = 20 * time.Second
)

type siteOutageResult struct {
	vms        []e2e.ColdVM
	gaps       map[string]time.Duration // after the rules allow it
	ran        map[string]time.Duration // after the power cut
	first, sec e2e.Return
	t0         time.Time
	hosts      []string
	err        string
}

// fastD is D of the fast profile.
var fastD = storage.FastTimings().Dead

func measureSiteOutage(ctx context.Context, o options) siteOutageResult {
	var res siteOutageResult
	fail := func(err error) siteOutageResult {
		res.err = err.Error()
		logf("whole-site outage: %v", err)
		return res
	}
	logf("whole-site outage: starting a 3-host cluster")
	env, err := e2e.Start(ctx, e2e.Options{Profile: "fast", LeaseCeiling: coldCeiling, KeepDir: o.keepDir, CPUOvercommit: benchCPUOvercommit})
	if err != nil {
		return fail(err)
	}
	defer env.Close()
	gctx, stopNice := context.WithCancel(ctx)
	defer stopNice()
	go niceGuests(gctx, env)
	if res.vms, err = env.NewColdSite(ctx); err != nil {
		return fail(err)
	}
	hosts := env.Hosts()
	for _, h := range hosts {
		res.hosts = append(res.hosts, h.Name())
	}
	guests := e2e.GuestsOf(res.vms)
	w := env.StartWatch(guests, e2e.WatchOptions{})
	res.t0 = time.Now()
	for _, h := range hosts {
		if err := env.PowerOff(h); err != nil {
			return fail(err)
		}
	}
	wait := env.PowerOnAt(ctx, res.t0, hosts[:2], []time.Duration{coldFirst, coldSecond})
	ran, err := env.FirstRunning(ctx, guests, 3*time.Minute)
	backs, werr := wait()
	if err != nil || werr != nil {
		return fail(fmt.Errorf("%v %v", err, werr))
	}
	if _, err := env.WaitRunningOnce(ctx, 30*time.Second, guests, hosts[2]); err != nil {
		return fail(err)
	}
	time.Sleep(2 * time.Second) // the checker samples a little longer
	if v, _, _ := w.Stop(); len(v) > 0 {
		return fail(fmt.Errorf("the checker found %d violations, first: %s", len(v), v[0]))
	}
	res.first, res.sec = backs[hosts[0].Name()], backs[hosts[1].Name()]
	allowed := e2e.TwoOfThreeRule(res.first, res.sec, hosts[2], coldCeiling, fastD, func(r e2e.Return) time.Time { return r.Back })
	res.gaps, res.ran = map[string]time.Duration{}, map[string]time.Duration{}
	for _, v := range res.vms {
		res.gaps[v.Name] = ran[v.Name].Sub(allowed(v))
		res.ran[v.Name] = ran[v.Name].Sub(res.t0)
		logf("whole-site outage: %s (of %s, order %d) running %v after the cut, %v after the rules allow it", v.Name, v.Owner.Name(), v.Tier,
			res.ran[v.Name].Round(time.Millisecond), res.gaps[v.Name].Round(time.Millisecond))
	}
	return res
}

// siteOutageSection writes the whole-site outage line.
func siteOutageSection(b *strings.Builder, r *siteOutageResult) {
	b.WriteString("\n## Whole-site outage\n\n")
	if r == nil {
		b.WriteString("Not measured in this run.\n")
		return
	}
	fmt.Fprintf(b, `Every host of a 3-host site (fast profile, network-lease ceiling C %v, D %v) loses power at once,
with one protected guest of each start order 0, 1 and 2 on every host; the first host powers on
%v later, the second %v later, the third never. The rules (DESIGN.md, README "Whole-site power
loss") allow a guest of the first two hosts to start once a quorate set of hosts is back (the
second host's wingmand answering), and one of the third then too, but not before its slot has
been silent for D on the first host back. The table gives how long after that moment each guest
was seen running (libvirt polled every 100 ms; later start orders wait for the earlier ones by
design); the checker saw no moment with two copies.
`, coldCeiling, fastD, coldFirst, coldSecond)
	if r.err != "" {
		fmt.Fprintf(b, "\nNot measured: %s\n", r.err)
		return
	}
	fmt.Fprintf(b, "\n%s's wingmand answered %s after the cut, %s's %s.\n\n", r.hosts[0], secs(r.first.Back.Sub(r.t0)), r.hosts[1], secs(r.sec.Back.Sub(r.t0)))
	b.WriteString("| Guests | n | min | median | max |\n|---|---:|---:|---:|---:|\n")
	row := func(name string, keep func(e2e.ColdVM) bool) {
		var ds []time.Duration
		for _, v := range r.vms {
			if keep(v) {
				ds = append(ds, r.gaps[v.Name])
			}
		}
		lo, med, _, hi := stats(ds)
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s |\n", name, len(ds), secs(lo), secs(med), secs(hi))
	}
	row("all", func(e2e.ColdVM) bool { return true })
	for tier := range 3 {
		row(fmt.Sprintf("start order %d", tier), func(v e2e.ColdVM) bool { return v.Tier == tier })
	}
	row("of "+r.hosts[2]+" (never back)", func(v e2e.ColdVM) bool { return v.Owner.Name() == r.hosts[2] })
	b.WriteString("\n| Guest | host before | order | running after the cut | after the rules allow it |\n|---|---|---:|---:|---:|\n")
	vms := slices.Clone(r.vms)
	slices.SortFunc(vms, func(a, b e2e.ColdVM) int { return int(r.ran[a.Name] - r.ran[b.Name]) })
	for _, v := range vms {
		fmt.Fprintf(b, "| %s | %s | %d | %s | %s |\n", v.Name, v.Owner.Name(), v.Tier, secs(r.ran[v.Name]), secs(r.gaps[v.Name]))
	}
}

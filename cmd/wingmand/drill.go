package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
)

// A failover drill: the host that receives POST /v1/drill plans each
// drilled host's failover (vm.PlanDrill), asks every alive host over serf
// whether it could start the drilled hosts' VMs ("drill-check"), and, with
// live, migrates a throwaway guest around the ring of hosts ("drill-live",
// "drill-cleanup"). Forwarded commands and their answers each travel in one
// serf message (about 1000 bytes), so the VMs go in batches of drillBatch
// UUIDs and the answers hold only the failures, trimmed to fit.

const (
	// drillBatch UUIDs (36 bytes each) keep a drill-check under ~400 bytes.
	drillBatch = 6
	// drillAnswerBudget bounds a drill-check answer's JSON.
	drillAnswerBudget = 700
	// drillGuestPrefix names the throwaway guests of --live.
	drillGuestPrefix = "wingman-drill-"
	// drillTimeout bounds a whole drill, live migrations included.
	drillTimeout = 10 * time.Minute
)

// drillCheckRequest is the body of a forwarded "drill-check".
type drillCheckRequest struct {
	VMs []string `json:"vms"`
}

// drillCheckAnswer maps the index of a failing VM in the request to its
// problem; VMs that pass are absent.
type drillCheckAnswer struct {
	Failed map[string]string `json:"f,omitempty"`
}

// drillLiveRequest is the body of a forwarded "drill-live".
type drillLiveRequest struct {
	To int `json:"to"`
}

// drill runs a failover drill from this host.
func (d *Daemon) drill(ctx context.Context, req api.DrillRequest) (api.DrillReport, error) {
	start := time.Now()
	dec := d.decision()
	if !dec.Quorate {
		return api.DrillReport{}, fmt.Errorf("drill: %w: this host is not in a quorate partition", vm.ErrNoQuorum)
	}
	var lost []int
	if req.Host != "" {
		h, err := d.resolveHost(req.Host)
		if err != nil {
			return api.DrillReport{}, err
		}
		lost = []int{h.ID}
	}
	in, defs, err := d.vms.DrillInput(ctx, dec)
	if err != nil {
		return api.DrillReport{}, err
	}
	dp, err := vm.PlanDrill(in, defs, lost)
	if err != nil {
		return api.DrillReport{}, badRequest("name a host that is alive, suspect or in maintenance", "%v", err)
	}
	results := map[int]vm.DrillResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range dp.Checks() {
		wg.Go(func() {
			r := d.drillCheckOn(ctx, c)
			mu.Lock()
			results[c.Host] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	rep := drillReport(dp, dp.Verdict(results))
	if req.Live {
		rep.Hops = d.drillLive(ctx, dec)
		for _, h := range rep.Hops {
			rep.Pass = rep.Pass && h.Pass
		}
	}
	rep.Duration = time.Since(start)
	d.drillEvent(rep)
	return rep, nil
}

// drillReport turns the verdict into the API's report.
func drillReport(dp vm.DrillPlan, v vm.Drill) api.DrillReport {
	rep := api.DrillReport{Pass: v.Pass, VMs: []api.DrillVM{}, Hosts: []api.DrillHost{}}
	names := map[int]string{}
	for _, h := range dp.Input.Hosts {
		names[h.ID] = h.Name
	}
	for _, id := range dp.Lost {
		rep.Lost = append(rep.Lost, names[id])
	}
	for _, x := range v.VMs {
		av := api.DrillVM{Name: x.Name, UUID: x.UUID, Owner: x.OwnerName, Target: x.TargetName, Unplaced: x.Unplaced,
			Skipped: x.Skipped, Problems: x.Definition, Pass: x.Pass, Checks: []api.DrillCheck{}}
		for _, c := range x.Cells {
			av.Checks = append(av.Checks, api.DrillCheck{Host: c.HostName, Planned: c.Planned, Problem: c.Problem})
		}
		rep.VMs = append(rep.VMs, av)
	}
	for _, h := range v.Hosts {
		rep.Hosts = append(rep.Hosts, api.DrillHost{Name: h.Name, State: string(h.State), Drilled: h.Drilled,
			VMs: h.VMs, Placed: h.Placed, Unplaced: h.Unplaced, Target: h.Target, Checked: h.Checked,
			CheckFailures: h.CheckFailures, Problem: h.Problem, Pass: h.Pass})
	}
	return rep
}

// drillEvent records the drill's outcome: one line, the first failures.
func (d *Daemon) drillEvent(rep api.DrillReport) {
	var failed []string
	for _, v := range rep.VMs {
		if !v.Pass {
			failed = append(failed, v.Name)
		}
	}
	for _, h := range rep.Hosts {
		if !h.Pass {
			failed = append(failed, h.Name)
		}
	}
	for _, h := range rep.Hops {
		if !h.Pass {
			failed = append(failed, h.From+"->"+h.To)
		}
	}
	what := "every host"
	if len(rep.Lost) == 1 {
		what = rep.Lost[0]
	}
	live := ""
	if len(rep.Hops) > 0 {
		live = fmt.Sprintf(", %d live hops", len(rep.Hops))
	}
	if rep.Pass {
		d.event(storage.SevInfo, "drill-passed", d.slot.HostID(), "failover drill of %s passed: %d VMs, %d hosts%s in %v",
			what, len(rep.VMs), len(rep.Hosts), live, rep.Duration.Round(time.Millisecond))
		return
	}
	d.event(storage.SevWarning, "drill-failed", d.slot.HostID(), "failover drill of %s failed (%d VMs, %d hosts%s): %s",
		what, len(rep.VMs), len(rep.Hosts), live, strings.Join(failed, ", "))
}

// drillCheckOn asks host c.Host, in batches, whether it could start c.VMs.
func (d *Daemon) drillCheckOn(ctx context.Context, c vm.DrillChecks) vm.DrillResult {
	res := vm.DrillResult{Problems: map[string]string{}}
	for batch := range slices.Chunk(c.VMs, drillBatch) {
		body, _ := json.Marshal(drillCheckRequest{VMs: batch})
		out, err := d.hostCommand(ctx, command{Op: "drill-check", Host: strconv.Itoa(c.Host), Body: body})
		if err != nil {
			res.Err = err.Error()
			return res
		}
		var ans drillCheckAnswer
		if err := remarshal(out, &ans); err != nil {
			res.Err = fmt.Sprintf("unreadable answer to drill-check: %v", err)
			return res
		}
		for k, p := range ans.Failed {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(batch) {
				res.Err = fmt.Sprintf("drill-check answer names VM %q of a batch of %d", k, len(batch))
				return res
			}
			res.Problems[batch[i]] = p
		}
	}
	return res
}

// remarshal decodes a command's result, which is a Go value when the
// command ran here and raw JSON when it was forwarded.
func remarshal(out any, into any) error {
	b, ok := out.(json.RawMessage)
	if !ok {
		var err error
		if b, err = json.Marshal(out); err != nil {
			return err
		}
	}
	return json.Unmarshal(b, into)
}

// drillCheck is the "drill-check" command: could this host start the VMs?
func (d *Daemon) drillCheck(ctx context.Context, body json.RawMessage) (drillCheckAnswer, error) {
	var req drillCheckRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return drillCheckAnswer{}, badRequest("", "decode drill-check: %v", err)
	}
	if len(req.VMs) > drillBatch {
		return drillCheckAnswer{}, badRequest("", "drill-check of %d VMs: at most %d at a time", len(req.VMs), drillBatch)
	}
	problems, err := d.vms.CheckVMs(ctx, req.VMs)
	if err != nil {
		return drillCheckAnswer{}, err
	}
	return fitDrillAnswer(req.VMs, problems, drillAnswerBudget), nil
}

// fitDrillAnswer keeps the answer's JSON within budget bytes by trimming
// the longest problems first; every failing VM stays listed.
func fitDrillAnswer(vms []string, problems map[string]string, budget int) drillCheckAnswer {
	ans := drillCheckAnswer{Failed: map[string]string{}}
	for i, id := range vms {
		if p, ok := problems[id]; ok {
			ans.Failed[strconv.Itoa(i)] = p
		}
	}
	for {
		b, _ := json.Marshal(ans)
		if len(b) <= budget {
			return ans
		}
		longest := ""
		for k, p := range ans.Failed {
			if longest == "" || len(p) > len(ans.Failed[longest]) {
				longest = k
			}
		}
		p := ans.Failed[longest]
		cut := max(len(p)-(len(b)-budget)-3, len(p)/2)
		if len(p) <= 8 {
			return ans // nothing more to trim: at most drillBatch short entries
		}
		for cut > 0 && !utf8.RuneStart(p[cut]) {
			cut--
		}
		ans.Failed[longest] = p[:cut] + "..."
	}
}

// drillLive starts a throwaway guest on each alive host in turn and
// live-migrates it to the next host of the ring (every host is once a
// source and once a destination), then destroys it there.
func (d *Daemon) drillLive(ctx context.Context, dec quorum.Decision) []api.DrillHop {
	var ring []quorum.Host
	for _, h := range dec.Hosts {
		if h.State == quorum.StateAlive {
			ring = append(ring, h)
		}
	}
	slices.SortFunc(ring, func(a, b quorum.Host) int { return a.ID - b.ID })
	if len(ring) < 2 {
		return []api.DrillHop{{Error: "a live drill needs at least two alive hosts"}}
	}
	var hops []api.DrillHop
	for i, from := range ring {
		to := ring[(i+1)%len(ring)]
		hop := api.DrillHop{Guest: drillGuestPrefix + from.Name, From: from.Name, To: to.Name}
		body, _ := json.Marshal(drillLiveRequest{To: to.ID})
		out, err := d.hostCommand(ctx, command{Op: "drill-live", Host: strconv.Itoa(from.ID), Body: body})
		if err == nil {
			var r api.DrillHop
			if err = remarshal(out, &r); err == nil {
				hop.Duration, hop.Downtime, hop.Pass = r.Duration, r.Downtime, true
			}
		}
		if err != nil {
			hop.Error = err.Error()
		}
		// Wherever the guest is now, it goes; both ends clean up.
		for _, h := range []quorum.Host{to, from} {
			if _, cerr := d.hostCommand(ctx, command{Op: "drill-cleanup", Host: strconv.Itoa(h.ID)}); cerr != nil {
				hop.Pass = false
				hop.Error = strings.TrimPrefix(hop.Error+"; ", "; ") + fmt.Sprintf("clean up on %s: %v", h.Name, cerr)
			}
		}
		hops = append(hops, hop)
	}
	return hops
}

// drillLiveHop is the "drill-live" command on the source host: start the
// throwaway guest here and live-migrate it to host req.To the way
// unprotected guests are migrated. On failure the guest is destroyed here.
func (d *Daemon) drillLiveHop(ctx context.Context, body json.RawMessage) (api.DrillHop, error) {
	var req drillLiveRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return api.DrillHop{}, badRequest("", "decode drill-live: %v", err)
	}
	uri, err := d.migrationURI(req.To)
	if err != nil {
		return api.DrillHop{}, err
	}
	if err := d.drillCleanup(ctx); err != nil {
		return api.DrillHop{}, err
	}
	name := drillGuestPrefix + d.cfg.HostName
	if _, err := d.hv.Define(ctx, drillGuestXML(name)); err != nil {
		return api.DrillHop{}, fmt.Errorf("drill guest: %w", err)
	}
	if err := d.hv.Start(ctx, name); err != nil {
		return api.DrillHop{}, errors.Join(fmt.Errorf("drill guest: %w", err), d.drillCleanup(ctx))
	}
	res, err := d.hv.Migrate(ctx, name, hypervisor.MigrateOptions{DestURI: uri, Unsafe: d.cfg.Libvirt.UnsafeMigration})
	if err != nil {
		return api.DrillHop{}, errors.Join(err, d.drillCleanup(ctx))
	}
	return api.DrillHop{Guest: name, Duration: res.Wall, Downtime: res.Downtime, Pass: true}, nil
}

// drillCleanup destroys and undefines every drill guest on this host.
func (d *Daemon) drillCleanup(ctx context.Context) error {
	doms, err := d.hv.ListDomains(ctx)
	if err != nil {
		return fmt.Errorf("drill cleanup: %w", err)
	}
	var errs []error
	for _, dm := range doms {
		if !strings.HasPrefix(dm.Name, drillGuestPrefix) {
			continue
		}
		if dm.Active() {
			if err := d.hv.Destroy(ctx, dm.Name); err != nil && !errors.Is(err, hypervisor.ErrNotRunning) && !errors.Is(err, hypervisor.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
		}
		if dm.Persistent {
			if err := d.hv.Undefine(ctx, dm.Name); err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("drill cleanup on %s: %w", d.cfg.HostName, errors.Join(errs...))
	}
	return nil
}

// drillGuestXML is a 64 MiB, 1 vCPU guest without disks or network: its
// firmware finds nothing to boot and idles, which is all a live migration
// needs. KVM where /dev/kvm opens, else TCG.
func drillGuestXML(name string) string {
	typ := "qemu"
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		typ = "kvm"
	}
	osType := "<type>hvm</type>"
	if runtime.GOARCH == "amd64" {
		osType = "<type arch='x86_64' machine='pc'>hvm</type>"
	}
	return fmt.Sprintf(`<domain type='%s'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>%s</os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices><memballoon model='none'/></devices>
</domain>`, typ, name, osType)
}

package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/plan"
)

const (
	// Batch is how many VMs go in one CheckRequest: Batch UUIDs (36 bytes
	// each) keep a forwarded check under ~400 bytes.
	Batch = 6
	// AnswerBudget bounds an Answer's JSON.
	AnswerBudget = 700
	// GuestPrefix names the throwaway guests of a live drill.
	GuestPrefix = "wingman-drill-"
	// Timeout bounds a whole drill, live migrations included.
	Timeout = 10 * time.Minute
)

// VMs is the part of *vm.Manager a drill uses.
type VMs interface {
	DrillInput(ctx context.Context, dec quorum.Decision) (plan.Input, map[string][]string, error)
	CheckVMs(ctx context.Context, uuids []string) (map[string]string, error)
	CheckDisks(ctx context.Context, disks []hypervisor.DiskSpec) ([]string, error)
}

// Hypervisor is the part of *hypervisor.Conn the throwaway guest needs.
type Hypervisor interface {
	ListDomains(ctx context.Context) ([]hypervisor.Domain, error)
	Define(ctx context.Context, domainXML string) (hypervisor.Domain, error)
	Start(ctx context.Context, name string) error
	Destroy(ctx context.Context, name string) error
	Undefine(ctx context.Context, name string) error
	Migrate(ctx context.Context, nameOrUUID string, opts hypervisor.MigrateOptions) (hypervisor.MigrationResult, error)
}

// Cluster is this host's view of the cluster.
type Cluster interface {
	Decision() quorum.Decision
	// ResolveHost finds a host by name or id (an error that says which
	// hosts there are).
	ResolveHost(nameOrID string) (quorum.Host, error)
	// MigrationURI is host's libvirt URI as seen from here.
	MigrationURI(host int) (string, error)
}

// Peers sends a drill's questions to one host, this one included, and
// returns its answer.
type Peers interface {
	Check(ctx context.Context, host int, req CheckRequest) (Answer, error)
	Live(ctx context.Context, host int, req LiveRequest) (Hop, error)
	Cleanup(ctx context.Context, host int) error
	CheckDisks(ctx context.Context, host int, req DiskCheckRequest) (Answer, error)
}

// Events writes to this host's event ring.
type Events interface {
	Event(sev storage.Severity, kind string, vmID storage.UUID, subject int, format string, a ...any)
}

// Config says who this host is to a drill.
type Config struct {
	HostName string
	HostID   int
	// UnsafeMigration passes libvirt's unsafe flag to the live hops.
	UnsafeMigration bool
}

// Runner runs drills from this host and answers the other hosts' drill
// questions.
type Runner struct {
	cfg     Config
	vms     VMs
	hv      Hypervisor
	cluster Cluster
	peers   Peers
	events  Events
}

// New returns a Runner.
func New(cfg Config, vms VMs, hv Hypervisor, cluster Cluster, peers Peers, events Events) *Runner {
	return &Runner{cfg: cfg, vms: vms, hv: hv, cluster: cluster, peers: peers, events: events}
}

// Request asks for a drill of Host ("": every host, each in turn) and,
// with Live, a throwaway guest's migration around the ring.
type Request struct {
	Host string `json:"host,omitempty"`
	Live bool   `json:"live,omitempty"`
}

// Report is a drill's verdict; Pass is false when any VM, host or hop fails.
type Report struct {
	Pass     bool
	Lost     []string // the drilled hosts' names
	Plan     vm.DrillPlan
	Verdict  vm.Drill
	Hops     []Hop // with Live
	Duration time.Duration
}

// Hop is one live migration of the throwaway guest (api.DrillHop).
type Hop struct {
	Guest    string        `json:"guest"`
	From     string        `json:"from"`
	To       string        `json:"to"`
	Duration time.Duration `json:"duration_ns"`
	Downtime time.Duration `json:"downtime_ns"`
	Error    string        `json:"error,omitempty"`
	Pass     bool          `json:"pass"`
}

// CheckRequest asks a host whether it could start VMs (UUIDs, at most Batch).
type CheckRequest struct {
	VMs []string `json:"vms"`
}

// Answer maps the index of a failing item of a request to its problem;
// items that pass are absent.
type Answer struct {
	Failed map[string]string `json:"f,omitempty"`
}

// LiveRequest asks the source host of a hop to migrate its throwaway
// guest to host To.
type LiveRequest struct {
	To int `json:"to"`
}

// Run runs a failover drill from this host.
func (r *Runner) Run(ctx context.Context, req Request) (Report, error) {
	start := time.Now()
	dec := r.cluster.Decision()
	if !dec.Quorate {
		return Report{}, fmt.Errorf("drill: %w: this host is not in a quorate partition", vm.ErrNoQuorum)
	}
	var lost []int
	if req.Host != "" {
		h, err := r.cluster.ResolveHost(req.Host)
		if err != nil {
			return Report{}, err
		}
		lost = []int{h.ID}
	}
	in, defs, err := r.vms.DrillInput(ctx, dec)
	if err != nil {
		return Report{}, err
	}
	dp, err := vm.PlanDrill(in, defs, lost)
	if err != nil {
		return Report{}, vm.Refuse(vm.ErrInvalid, "name a host that is alive, suspect or in maintenance", "%v", err)
	}
	results := map[int]vm.DrillResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range dp.Checks() {
		wg.Go(func() {
			res := r.checkOn(ctx, c)
			mu.Lock()
			results[c.Host] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	rep := Report{Plan: dp, Verdict: dp.Verdict(results)}
	rep.Pass = rep.Verdict.Pass
	names := map[int]string{}
	for _, h := range dp.Input.Hosts {
		names[h.ID] = h.Name
	}
	for _, id := range dp.Lost {
		rep.Lost = append(rep.Lost, names[id])
	}
	if req.Live {
		rep.Hops = r.live(ctx, dec)
		for _, h := range rep.Hops {
			rep.Pass = rep.Pass && h.Pass
		}
	}
	rep.Duration = time.Since(start)
	r.event(rep)
	return rep, nil
}

// event records the drill's outcome: one line, the first failures.
func (r *Runner) event(rep Report) {
	var failed []string
	for _, v := range rep.Verdict.VMs {
		if !v.Pass {
			failed = append(failed, v.Name)
		}
	}
	for _, h := range rep.Verdict.Hosts {
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
	vms, hosts := len(rep.Verdict.VMs), len(rep.Verdict.Hosts)
	if rep.Pass {
		r.events.Event(storage.SevInfo, "drill-passed", storage.UUID{}, r.cfg.HostID, "failover drill of %s passed: %d VMs, %d hosts%s in %v",
			what, vms, hosts, live, rep.Duration.Round(time.Millisecond))
		return
	}
	r.events.Event(storage.SevWarning, "drill-failed", storage.UUID{}, r.cfg.HostID, "failover drill of %s failed (%d VMs, %d hosts%s): %s",
		what, vms, hosts, live, strings.Join(failed, ", "))
}

// checkOn asks host c.Host, in batches, whether it could start c.VMs.
func (r *Runner) checkOn(ctx context.Context, c vm.DrillChecks) vm.DrillResult {
	res := vm.DrillResult{Problems: map[string]string{}}
	for batch := range slices.Chunk(c.VMs, Batch) {
		ans, err := r.peers.Check(ctx, c.Host, CheckRequest{VMs: batch})
		if err != nil {
			res.Err = err.Error()
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

// AnswerCheck answers another host's CheckRequest: could this host start
// the VMs?
func (r *Runner) AnswerCheck(ctx context.Context, req CheckRequest) (Answer, error) {
	if len(req.VMs) > Batch {
		return Answer{}, vm.Refuse(vm.ErrInvalid, "", "drill-check of %d VMs: at most %d at a time", len(req.VMs), Batch)
	}
	problems, err := r.vms.CheckVMs(ctx, req.VMs)
	if err != nil {
		return Answer{}, err
	}
	return FitAnswer(req.VMs, problems, AnswerBudget), nil
}

// live starts a throwaway guest on each alive host in turn and
// live-migrates it to the next host of the ring (every host is once a
// source and once a destination), then destroys it there.
func (r *Runner) live(ctx context.Context, dec quorum.Decision) []Hop {
	var ring []quorum.Host
	for _, h := range dec.Hosts {
		if h.State == quorum.StateAlive {
			ring = append(ring, h)
		}
	}
	slices.SortFunc(ring, func(a, b quorum.Host) int { return a.ID - b.ID })
	if len(ring) < 2 {
		return []Hop{{Error: "a live drill needs at least two alive hosts"}}
	}
	var hops []Hop
	for i, from := range ring {
		to := ring[(i+1)%len(ring)]
		hop := Hop{Guest: GuestPrefix + from.Name, From: from.Name, To: to.Name}
		res, err := r.peers.Live(ctx, from.ID, LiveRequest{To: to.ID})
		if err == nil {
			hop.Duration, hop.Downtime, hop.Pass = res.Duration, res.Downtime, true
		} else {
			hop.Error = err.Error()
		}
		// Wherever the guest is now, it goes; both ends clean up.
		for _, h := range []quorum.Host{to, from} {
			if cerr := r.peers.Cleanup(ctx, h.ID); cerr != nil {
				hop.Pass = false
				hop.Error = strings.TrimPrefix(hop.Error+"; ", "; ") + fmt.Sprintf("clean up on %s: %v", h.Name, cerr)
			}
		}
		hops = append(hops, hop)
	}
	return hops
}

// LiveHop runs on the source host of a hop: start the throwaway guest here
// and live-migrate it to host req.To the way unprotected guests are
// migrated. On failure the guest is destroyed here.
func (r *Runner) LiveHop(ctx context.Context, req LiveRequest) (Hop, error) {
	uri, err := r.cluster.MigrationURI(req.To)
	if err != nil {
		return Hop{}, err
	}
	if err := r.Cleanup(ctx); err != nil {
		return Hop{}, err
	}
	name := GuestPrefix + r.cfg.HostName
	if _, err := r.hv.Define(ctx, guestXML(name)); err != nil {
		return Hop{}, fmt.Errorf("drill guest: %w", err)
	}
	if err := r.hv.Start(ctx, name); err != nil {
		return Hop{}, errors.Join(fmt.Errorf("drill guest: %w", err), r.Cleanup(ctx))
	}
	res, err := r.hv.Migrate(ctx, name, hypervisor.MigrateOptions{DestURI: uri, Unsafe: r.cfg.UnsafeMigration})
	if err != nil {
		return Hop{}, errors.Join(err, r.Cleanup(ctx))
	}
	return Hop{Guest: name, Duration: res.Wall, Downtime: res.Downtime, Pass: true}, nil
}

// Cleanup destroys and undefines every drill guest on this host.
func (r *Runner) Cleanup(ctx context.Context) error {
	doms, err := r.hv.ListDomains(ctx)
	if err != nil {
		return fmt.Errorf("drill cleanup: %w", err)
	}
	var errs []error
	for _, dm := range doms {
		if !strings.HasPrefix(dm.Name, GuestPrefix) {
			continue
		}
		if dm.Active() {
			if err := r.hv.Destroy(ctx, dm.Name); err != nil && !errors.Is(err, hypervisor.ErrNotRunning) && !errors.Is(err, hypervisor.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
		}
		if dm.Persistent {
			if err := r.hv.Undefine(ctx, dm.Name); err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("drill cleanup on %s: %w", r.cfg.HostName, errors.Join(errs...))
	}
	return nil
}

// guestXML is a 64 MiB, 1 vCPU guest without disks or network: its
// firmware finds nothing to boot and idles, which is all a live migration
// needs. KVM where /dev/kvm opens, else TCG.
func guestXML(name string) string {
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

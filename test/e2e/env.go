// Package e2e runs Wingman end to end: a test cluster (test/cluster) whose hosts each run the
// real wingmand binary next to their own libvirtd, real KVM guests protected through wingmand's
// API, and faults injected from outside (power loss, partition, daemon crash, a frozen host).
// Its tests check DESIGN.md's promises on what libvirt reports on every host; the demo
// (test/demo) and the benchmark (test/bench) use the same environment.
//
// The checker (Watch) samples every host's libvirt every 100 ms during a scenario and records a
// violation whenever two hosts list one guest running at once, or a guest that must not stop
// was not running anywhere for longer than a live migration's switch-over.
//
// This package must never be imported by production code: it starts and kills processes,
// namespaces and whole test hosts.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/test/cluster"
)

// FirstLevelHangs are fencing levels (Options.FenceLevels) whose first agent hangs, as a
// management controller that no longer answers, and is killed at its 1 s timeout; the second
// (a switched PDU) confirms at once. TestFenceLevelsFirstHangs and test/bench use them.
var FirstLevelHangs = []cluster.FenceDevice{{Params: map[string]string{"delay": "1h"}, Timeout: time.Second}, {Timeout: 20 * time.Second}}

// Options configure an environment.
type Options struct {
	// Hosts is the number of hosts, default 3.
	Hosts int
	// Profile is the timing profile, "default" or "fast".
	Profile string
	// LeaseCeiling is the LUN's network-lease ceiling (0: the profile's, 60 s).
	LeaseCeiling time.Duration
	// Fence configures the test fence agent for every host.
	Fence bool
	// FenceLevels, with Fence, are fencing levels instead of the single agent
	// (cluster.WingmandOptions.FenceLevels).
	FenceLevels []cluster.FenceDevice
	// ShutdownPolicy is wingmand's shutdown.policy ("" : migrate).
	ShutdownPolicy string
	// KeepDir keeps the cluster directory after Close (logs, LUN) for a post-mortem.
	KeepDir bool
	// HardwareWatchdog gives every wingmand the harness-emulated hardware watchdog.
	HardwareWatchdog bool
	// CPUOvercommit is every wingmand's placement.cpu_overcommit (0: its default, 4).
	CPUOvercommit float64
	// GuestAgentWait is every wingmand's failover.guest_agent_wait (0: its default, 5m).
	GuestAgentWait time.Duration
	// LockManager turns on libvirt's lock manager on every host (cluster.Config.LockManager).
	LockManager bool
	// IsolationGateway gives every wingmand the switch's own address (the cluster's ClientAddr,
	// a gateway every host reaches through its uplink) as its isolation address.
	IsolationGateway bool
	// NoQuarantine sets quarantine.threshold to 0 once the cluster is up: a measurement that
	// powers the same host off again and again must not see it quarantined for flapping (a host
	// declared dead 3 times within an hour takes no new VM).
	NoQuarantine bool
	// HeartbeatLUNs is the number of heartbeat LUNs, 1 (default) or 3 (cluster.Config.HeartbeatLUNs).
	HeartbeatLUNs int
	// Binaries are the wingmand binaries of some hosts, by host name (cluster.BuildCommit of an
	// older release: a host not yet upgraded); the others run this tree's build.
	Binaries map[string]string
}

// Env is a running cluster with wingmand on every host.
type Env struct {
	C    *cluster.Cluster
	Opts Options

	mu sync.Mutex
	hv map[string]*hypervisor.Conn
	// frozen holds the PID namespace of each frozen host: a reset (the
	// watchdog's power-off) ends the freeze, and the host boots unfrozen.
	frozen map[string]string
	// realGuests counts the real guests made, for their addresses and MACs.
	realGuests int
}

// Start brings up the cluster and wingmand on every host, and waits until every host sees every
// host alive in a quorate partition. On error everything started is torn down.
func Start(ctx context.Context, o Options) (*Env, error) {
	if o.Hosts == 0 {
		o.Hosts = 3
	}
	if o.Profile == "" {
		o.Profile = "default"
	}
	cfg := cluster.DefaultConfig()
	cfg.Hosts = o.Hosts
	cfg.KeepDir = o.KeepDir
	cfg.LockManager = o.LockManager
	if o.HeartbeatLUNs != 0 {
		cfg.HeartbeatLUNs = o.HeartbeatLUNs
	}
	c, err := cluster.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	e := &Env{C: c, Opts: o, hv: map[string]*hypervisor.Conn{}, frozen: map[string]string{}}
	if err := e.StartWingmand(ctx, c.Hosts()...); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.WaitHealthy(ctx, c.Hosts()...); err != nil {
		e.Close()
		return nil, err
	}
	if o.NoQuarantine {
		if _, err := e.Client(c.Hosts()[0]).SetClusterSetting(ctx, "quarantine.threshold", "0"); err != nil {
			e.Close()
			return nil, fmt.Errorf("turn the quarantine off: %w", err)
		}
	}
	return e, nil
}

// Close tears the cluster down: every host, its wingmand, libvirtd and guests.
func (e *Env) Close() error {
	e.mu.Lock()
	for _, c := range e.hv {
		c.Close()
	}
	e.hv = map[string]*hypervisor.Conn{}
	e.mu.Unlock()
	return e.C.Close()
}

// WingmandOptions are the options the environment starts wingmand with.
func (e *Env) WingmandOptions() cluster.WingmandOptions {
	o := cluster.WingmandOptions{Profile: e.Opts.Profile, LeaseCeiling: e.Opts.LeaseCeiling, Fence: e.Opts.Fence, FenceLevels: e.Opts.FenceLevels, ShutdownPolicy: e.Opts.ShutdownPolicy,
		HardwareWatchdog: e.Opts.HardwareWatchdog, CPUOvercommit: e.Opts.CPUOvercommit, GuestAgentWait: e.Opts.GuestAgentWait}
	if e.Opts.IsolationGateway {
		o.IsolationAddresses = []string{e.C.ClientAddr().String()}
	}
	return o
}

// StartWingmand starts wingmand on the hosts, in parallel (each waits a few heartbeats to take
// its slot).
func (e *Env) StartWingmand(ctx context.Context, hosts ...*cluster.Host) error {
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := e.WingmandOptions()
			o.Binary = e.Opts.Binaries[h.Name()]
			errs[i] = e.C.StartWingmand(ctx, h, o)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Client is an API client of h's wingmand.
func (e *Env) Client(h *cluster.Host) *Client { return NewClient(h.APISocket()) }

// Hosts are the cluster's hosts.
func (e *Env) Hosts() []*cluster.Host { return e.C.Hosts() }

// Host is the host named name.
func (e *Env) Host(name string) *cluster.Host { return e.C.Host(name) }

// WaitHealthy waits until the wingmand of each of hosts reports a quorate partition, may run VMs,
// and shows each of hosts alive (not in maintenance).
func (e *Env) WaitHealthy(ctx context.Context, hosts ...*cluster.Host) error {
	var last string
	err := Poll(ctx, 2*time.Minute, 100*time.Millisecond, func() (bool, error) {
		for _, h := range hosts {
			s, err := e.Client(h).Status(ctx)
			if err != nil {
				last = fmt.Sprintf("%s: %v", h.Name(), err)
				return false, nil
			}
			if !s.Quorate || !s.MayRunVMs {
				last = fmt.Sprintf("%s: quorate %v, may run VMs %v", h.Name(), s.Quorate, s.MayRunVMs)
				return false, nil
			}
			states := map[string]string{}
			for _, sh := range s.Hosts {
				states[sh.Name] = sh.State
			}
			for _, o := range hosts {
				if states[o.Name()] != "alive" {
					last = fmt.Sprintf("%s sees %s %q", h.Name(), o.Name(), states[o.Name()])
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s healthy: %w (last: %s)", names(hosts), err, last)
	}
	return nil
}

// HostState is the state of host as the wingmand of from reports it ("" if unknown).
func (e *Env) HostState(ctx context.Context, from, host *cluster.Host) (string, error) {
	hs, err := e.Client(from).Hosts(ctx)
	if err != nil {
		return "", err
	}
	for _, h := range hs {
		if h.Name == host.Name() {
			return h.State, nil
		}
	}
	return "", nil
}

func names(hosts []*cluster.Host) string {
	var n []string
	for _, h := range hosts {
		n = append(n, h.Name())
	}
	return strings.Join(n, ",")
}

// Poll calls cond every interval until it returns true or an error, or timeout or ctx ends.
func Poll(ctx context.Context, timeout, interval time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %v: %w", timeout, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// conn is the harness's libvirt connection to h (dialled once, reconnecting by itself after a
// power cycle).
func (e *Env) conn(ctx context.Context, h *cluster.Host) (*hypervisor.Conn, error) {
	e.mu.Lock()
	c := e.hv[h.Name()]
	e.mu.Unlock()
	if c != nil {
		return c, nil
	}
	cfg := hypervisor.DefaultConfig()
	cfg.URI, cfg.HostName = h.URI(), h.Name()
	cfg.KeepAliveInterval, cfg.KeepAliveCount = time.Second, 2
	c, err := hypervisor.Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old := e.hv[h.Name()]; old != nil {
		c.Close()
		return old, nil
	}
	e.hv[h.Name()] = c
	return c, nil
}

// Guest is a test guest made by NewGuests.
type Guest struct {
	Name string
	UUID string // lower case
	Spec cluster.GuestSpec
}

// NewGuest is NewGuests for one guest named name.
func (e *Env) NewGuest(ctx context.Context, h *cluster.Host, name, priority string) (Guest, error) {
	gs, err := e.newGuests(ctx, h, []string{name}, Policy{Priority: priority})
	if err != nil {
		return Guest{}, err
	}
	return gs[0], nil
}

// NewGuests creates n guests named prefix1..prefixN (disks in the shared directory, shareable so
// that only Wingman prevents a second copy), defines and starts them on h, and protects them
// through h's wingmand with priority (high, medium, low or a number; "" the default).
func (e *Env) NewGuests(ctx context.Context, h *cluster.Host, prefix string, n int, priority string) ([]Guest, error) {
	return e.NewGuestsWithPolicy(ctx, h, prefix, n, Policy{Priority: priority})
}

// NewGuestsWithPolicy is NewGuests with a whole protection policy (isolation response, ...).
func (e *Env) NewGuestsWithPolicy(ctx context.Context, h *cluster.Host, prefix string, n int, p Policy) ([]Guest, error) {
	var names []string
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("%s%d", prefix, i))
	}
	return e.newGuests(ctx, h, names, p)
}

func (e *Env) newGuests(ctx context.Context, h *cluster.Host, names []string, p Policy) ([]Guest, error) {
	c, err := e.conn(ctx, h)
	if err != nil {
		return nil, err
	}
	var out []Guest
	for _, name := range names {
		spec, err := e.C.NewGuest(name)
		if err != nil {
			return out, err
		}
		spec.Shareable = true
		g := Guest{Name: spec.Name, UUID: strings.ToLower(spec.UUID), Spec: spec}
		x, err := spec.XML()
		if err != nil {
			return out, err
		}
		if err := defineAndStart(ctx, c, x, g.Name); err != nil {
			return out, err
		}
		if _, err := e.Client(h).Protect(ctx, g.Name, ProtectRequest{Policy: p}); err != nil {
			return out, fmt.Errorf("protect %s on %s: %w", g.Name, h.Name(), err)
		}
		out = append(out, g)
	}
	return out, nil
}

// defineAndStart defines the domain x on c and starts it.
func defineAndStart(ctx context.Context, c *hypervisor.Conn, x, name string) error {
	if _, err := c.Define(ctx, x); err != nil {
		return err
	}
	return c.Start(ctx, name)
}

// Placement maps a guest UUID to the hosts whose libvirt lists it running.
type Placement map[string][]string

// Running asks every powered-on, unfrozen host's libvirt which guests run there. A host that is
// off or frozen runs nothing (a frozen host's QEMU processes execute nothing).
func (e *Env) Running(ctx context.Context) (Placement, error) {
	return e.running(ctx, 2*time.Second)
}

func (e *Env) running(ctx context.Context, timeout time.Duration) (Placement, error) {
	hosts := e.C.Hosts()
	type res struct {
		doms []hypervisor.Domain
		err  error
	}
	results := make([]res, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		if !h.On() || e.isFrozen(h) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			c, err := e.conn(cctx, h)
			if err != nil {
				results[i] = res{err: err}
				return
			}
			d, err := c.ListDomains(cctx)
			results[i] = res{d, err}
		}()
	}
	wg.Wait()
	p := Placement{}
	var errs []error
	for i, h := range hosts {
		r := results[i]
		if r.err != nil {
			if h.On() && !e.isFrozen(h) {
				errs = append(errs, fmt.Errorf("%s: %w", h.Name(), r.err))
			}
			continue
		}
		for _, d := range r.doms {
			if d.State == hypervisor.StateRunning {
				id := strings.ToLower(d.UUID)
				p[id] = append(p[id], h.Name())
			}
		}
	}
	for _, hs := range p {
		sort.Strings(hs)
	}
	return p, errors.Join(errs...)
}

// reasons is like Running but also tells, per guest and host, libvirt's running reason
// ("booted" for a fresh start, "migrated" for an arrival by live migration).
func (e *Env) reasons(ctx context.Context) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	var errs []error
	for _, h := range e.C.Hosts() {
		if !h.On() || e.isFrozen(h) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := e.conn(cctx, h)
		var doms []hypervisor.Domain
		if err == nil {
			doms, err = c.ListDomains(cctx)
		}
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, d := range doms {
			if d.State == hypervisor.StateRunning {
				id := strings.ToLower(d.UUID)
				if out[id] == nil {
					out[id] = map[string]string{}
				}
				out[id][h.Name()] = d.Reason
			}
		}
	}
	return out, errors.Join(errs...)
}

// WaitRunningOnce waits until every guest runs on exactly one host, none of them on a host in
// notOn, and returns the placement.
func (e *Env) WaitRunningOnce(ctx context.Context, timeout time.Duration, guests []Guest, notOn ...*cluster.Host) (Placement, error) {
	var p Placement
	var last string
	err := Poll(ctx, timeout, 50*time.Millisecond, func() (bool, error) {
		var err error
		p, err = e.running(ctx, time.Second)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, g := range guests {
			hs := p[g.UUID]
			if len(hs) != 1 {
				last = fmt.Sprintf("%s runs on %v", g.Name, hs)
				return false, nil
			}
			for _, n := range notOn {
				if hs[0] == n.Name() {
					last = fmt.Sprintf("%s still on %s", g.Name, hs[0])
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		return p, fmt.Errorf("wait for every guest running once: %w (last: %s)", err, last)
	}
	return p, nil
}

// PowerOff cuts h's power.
func (e *Env) PowerOff(h *cluster.Host) error { return e.C.PowerOff(h) }

// PowerOnAndRejoin boots h again, starts its wingmand and waits until the cluster is healthy.
func (e *Env) PowerOnAndRejoin(ctx context.Context, h *cluster.Host) error {
	if !h.On() {
		if err := e.C.PowerOn(ctx, h); err != nil {
			return err
		}
	}
	if !h.WingmandRunning() {
		if err := e.C.StartWingmand(ctx, h, e.WingmandOptions()); err != nil {
			return err
		}
	}
	return e.WaitHealthy(ctx, e.C.Hosts()...)
}

// Freeze stops every process of h (SIGSTOP); Thaw resumes them.
func (e *Env) Freeze(h *cluster.Host) error {
	e.mu.Lock()
	e.frozen[h.Name()] = h.PIDNamespace()
	e.mu.Unlock()
	return e.C.Freeze(h)
}

// Thaw resumes a frozen host.
func (e *Env) Thaw(h *cluster.Host) error {
	// Sample the host's libvirt again before its guests can run: a sample that finds its libvirtd
	// still stopped fails and counts as unknown, never as "not running".
	e.mu.Lock()
	delete(e.frozen, h.Name())
	e.mu.Unlock()
	return e.C.Thaw(h)
}

func (e *Env) isFrozen(h *cluster.Host) bool {
	e.mu.Lock()
	ns := e.frozen[h.Name()]
	e.mu.Unlock()
	return ns != "" && ns == h.PIDNamespace()
}

// Virsh runs virsh against h's libvirtd and returns its output.
func Virsh(ctx context.Context, h *cluster.Host, args ...string) (string, error) {
	b, err := exec.CommandContext(ctx, "virsh", append([]string{"-c", h.URI()}, args...)...).CombinedOutput()
	return string(b), err
}

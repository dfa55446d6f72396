package vm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/plan"
	"github.com/wingmanha/wingman/vm/reconcile"
)

// heldStarts wraps a real libvirt connection (the test:/// driver) and holds
// the first Start called on it until hold is closed, counting the starts in
// flight: a slow guest start, made deterministic.
type heldStarts struct {
	*hypervisor.Conn
	hold chan struct{}

	mu                  sync.Mutex
	calls, inFlight     int
	maxInFlight         int
	startedWhileHolding []string
	holding             bool
}

func (h *heldStarts) Start(ctx context.Context, name string) error {
	h.mu.Lock()
	h.calls++
	first := h.calls == 1
	h.inFlight++
	h.maxInFlight = max(h.maxInFlight, h.inFlight)
	if first {
		h.holding = true
	} else if h.holding {
		h.startedWhileHolding = append(h.startedWhileHolding, name)
	}
	h.mu.Unlock()
	if first {
		<-h.hold
	}
	err := h.Conn.Start(ctx, name)
	h.mu.Lock()
	h.inFlight--
	if first {
		h.holding = false
	}
	h.mu.Unlock()
	return err
}

func (h *heldStarts) snapshot() (calls, maxInFlight int, whileHolding []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, h.maxInFlight, append([]string(nil), h.startedWhileHolding...)
}

// failoverFixture: a LUN file with n protected VMs owned by host 1, which is
// dead, and the manager of host 2, the only survivor, on the test:/// driver.
func failoverFixture(t *testing.T, n int) (*vm.Manager, *heldStarts, quorum.Decision) {
	t.Helper()
	pols := make([]plan.Policy, n)
	for i := range pols {
		pols[i] = plan.DefaultPolicy()
	}
	m, hv, dec, _ := policyFixture(t, pols, nil)
	return m, hv, dec
}

// policyFixture is failoverFixture with one VM per policy; wrap, if set,
// wraps the held connection (to add a guest agent, say).
func policyFixture(t *testing.T, pols []plan.Policy, wrap func(*heldStarts) vm.Hypervisor, edit ...func(*vm.Config)) (*vm.Manager, *heldStarts, quorum.Decision, *storage.LUN) {
	t.Helper()
	n := len(pols)
	lun := freshLUN(t, "steps", storage.Geometry{MaxHosts: 4, MaxVMs: 16, EventBlocks: 8, ConfigBlks: 2})
	for i := 1; i <= n; i++ {
		protectTestVM(t, lun, fmt.Sprintf("steps-%02d", i), fmt.Sprintf("00000000-0000-0000-0000-0000000005%02d", i), pols[i-1])
	}
	hv := &heldStarts{Conn: dialKVM2(t), hold: make(chan struct{})}
	// This host takes 4 failover starts at once (its own [placement] limit).
	lim := plan.DefaultConfig().Limits()
	lim.MaxStarts = 4
	caps := func() map[int]vm.Capacity {
		return map[int]vm.Capacity{2: {Memory: 1 << 40, CPUs: 1024, Limits: &lim}}
	}
	var h vm.Hypervisor = hv
	if wrap != nil {
		h = wrap(hv)
	}
	cfg := vm.Config{Host: 2, Gen: 1, Capacity: caps}
	for _, e := range edit {
		e(&cfg)
	}
	m, err := vm.NewManager(cfg, lun, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec := quorum.Decision{Quorate: true, MayRunVMs: true, Verdicts: []quorum.Verdict{{ID: 1, Gen: 1}},
		Hosts: []quorum.Host{{ID: 1, Name: "kvm1", Gen: 1, State: quorum.StateDead}, {ID: 2, Name: "kvm2", Gen: 1, State: quorum.StateAlive}}}
	return m, hv, dec, lun
}

// TestStepFollowsWithLaterWavesAsSlotsFree: six VMs of a dead host, all for
// this host, which takes 4 starts at once. One slow start must not hold back
// the two VMs of the second wave, and no more than 4 starts run at once.
func TestStepFollowsWithLaterWavesAsSlotsFree(t *testing.T) {
	m, hv, dec := failoverFixture(t, 6)
	type result struct {
		acts []reconcile.Action
		err  error
	}
	done := make(chan result, 1)
	go func() {
		acts, err := m.Step(context.Background(), dec, time.Now())
		done <- result{acts, err}
	}()
	// While the first start is held, the other five run: three of the first
	// wave and both of the second, each in a slot another one freed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, while := hv.snapshot(); len(while) == 5 {
			break
		}
		if time.Now().After(deadline) {
			calls, _, while := hv.snapshot()
			close(hv.hold)
			t.Fatalf("%d starts called, %v while the first was held: the second wave waited for the slow start", calls, while)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(hv.hold)
	r := <-done
	if r.err != nil {
		t.Fatalf("step: %v", r.err)
	}
	calls, maxInFlight, _ := hv.snapshot()
	if calls != 6 || maxInFlight > 4 {
		t.Errorf("%d starts, at most %d at once; want 6, at most 4 (the host's MaxStarts)", calls, maxInFlight)
	}
	waves := map[int]int{}
	for _, a := range r.acts {
		if a.Kind == reconcile.TakeAndStart {
			waves[a.Wave]++
		}
	}
	if waves[0] != 4 || waves[1] != 2 {
		t.Errorf("take-and-start per wave: %v, want 4 in wave 0 and 2 in wave 1", waves)
	}
	doms, err := hv.ListDomains(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, d := range doms {
		if strings.HasPrefix(d.Name, "steps-") && d.State == hypervisor.StateRunning {
			running++
		}
	}
	if running != 6 {
		t.Errorf("%d of 6 VMs run after the step", running)
	}
}

// TestStepStartsNothingAfterSelfFence: once this host has fenced itself, a
// step may still take leases, but starts no guest.
func TestStepStartsNothingAfterSelfFence(t *testing.T) {
	m, hv, dec := failoverFixture(t, 2)
	close(hv.hold)
	if err := m.SelfFence(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	_, err := m.Step(context.Background(), dec, time.Now())
	if !errors.Is(err, vm.ErrNoQuorum) {
		t.Errorf("step after self-fence: %v, want an error matching ErrNoQuorum", err)
	}
	if calls, _, _ := hv.snapshot(); calls != 0 {
		t.Errorf("%d guests started after the self-fence", calls)
	}
}

// A host that fenced itself protects nothing more: a new record would make
// the others restart a guest the self-fence left running here.
func TestProtectRefusedAfterSelfFence(t *testing.T) {
	m, hv, _ := failoverFixture(t, 1)
	close(hv.hold)
	if err := m.SelfFence(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	_, err := m.Protect(context.Background(), quorum.Decision{}, "test", vm.RecordPolicy{Policy: plan.DefaultPolicy()}, vm.ProtectOptions{})
	if !errors.Is(err, vm.ErrNoQuorum) {
		t.Errorf("protect after self-fence: %v, want an error matching ErrNoQuorum", err)
	}
}

// A second protect says the VM is protected and how to change its policy,
// with no record number or other internals of the LUN.
func TestProtectTwiceSaysAlreadyProtected(t *testing.T) {
	m, hv, _ := failoverFixture(t, 0)
	close(hv.hold)
	pol := vm.RecordPolicy{Policy: plan.DefaultPolicy()}
	if _, err := m.Protect(context.Background(), quorum.Decision{}, "test", pol, vm.ProtectOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := m.Protect(context.Background(), quorum.Decision{}, "test", pol, vm.ProtectOptions{})
	var rf *vm.Refusal
	if !errors.Is(err, vm.ErrConflict) || !errors.As(err, &rf) || err.Error() != "test is already protected" || !strings.Contains(rf.Hint, "wingman set-policy test") {
		t.Errorf("second protect: %v (%+v), want a conflict saying test is already protected, with a hint", err, rf)
	}
}

// TestSlowStartIsProgress: while a failover start waits in libvirt and
// libvirtd answers, the step reports progress through the context, so that
// the VM manager's watchdog guard does not fence a host that is merely slow
// to start many guests (seen: 30 at once came back in batches 5 to 7 s apart).
func TestSlowStartIsProgress(t *testing.T) {
	m, hv, dec := failoverFixture(t, 1)
	var ticks atomic.Int64
	ctx := storage.WithProgress(context.Background(), func() { ticks.Add(1) })
	done := make(chan error, 1)
	go func() {
		_, err := m.Step(ctx, dec, time.Now())
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for calls, _, _ := hv.snapshot(); calls == 0; calls, _, _ = hv.snapshot() {
		if time.Now().After(deadline) {
			close(hv.hold)
			t.Fatal("the failover start was never called")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The start is held: no LUN I/O happens now, so any tick is the wait's.
	held := ticks.Load()
	for ticks.Load() < held+2 {
		if time.Now().After(deadline) {
			close(hv.hold)
			t.Fatalf("%d progress reports while the start was held; want at least 2", ticks.Load()-held)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(hv.hold)
	if err := <-done; err != nil {
		t.Fatalf("step: %v", err)
	}
}

// agentGate is a guest agent that answers once ready is closed: the test
// guests have no operating system to run qemu-guest-agent in.
type agentGate struct {
	*heldStarts
	ready chan struct{}
}

func (a *agentGate) PingAgent(ctx context.Context, name string) error {
	select {
	case <-a.ready:
		return nil
	default:
		return fmt.Errorf("ping guest agent of domain %q: %w", name, hypervisor.ErrAgentUnavailable)
	}
}

// kinds lists the kinds of acts by VM name.
func kinds(acts []reconcile.Action) map[string]reconcile.Kind {
	out := map[string]reconcile.Kind{}
	for _, a := range acts {
		out[a.Name] = a.Kind
	}
	return out
}

// TestTierWaitsForGuestAgent: the database (tier 0, later tiers wait for
// its guest agent) and the application (tier 1) of a dead host. The
// application starts only once the database's agent answered and its owner
// marked the lease guest-up on the LUN.
func TestTierWaitsForGuestAgent(t *testing.T) {
	db, app := plan.DefaultPolicy(), plan.DefaultPolicy()
	db.WaitGuestAgent = true
	app.StartOrder = 1
	var gate *agentGate
	m, hv, dec, lun := policyFixture(t, []plan.Policy{db, app}, func(h *heldStarts) vm.Hypervisor {
		gate = &agentGate{heldStarts: h, ready: make(chan struct{})}
		return gate
	})
	close(hv.hold)
	ctx := context.Background()
	now := time.Now()
	step := func() map[string]reconcile.Kind {
		t.Helper()
		acts, err := m.Step(ctx, dec, now)
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
		return kinds(acts)
	}
	if k := step(); k["steps-01"] != reconcile.TakeAndStart || k["steps-02"] != "" {
		t.Fatalf("first round: %v; want the database taken and the application left for its tier", k)
	}
	for range 3 {
		if k := step(); k["steps-02"] != reconcile.Wait {
			t.Fatalf("before the agent answered: %v; want the application waiting", k)
		}
	}
	close(gate.ready)
	waitGuestUp(t, lun, 1)
	if k := step(); k["steps-02"] != reconcile.TakeAndStart {
		t.Fatalf("after the agent answered: %v; want the application started", k)
	}
}

// TestGuestAgentWaitChangesWithoutRestart: the wait for the database's
// agent, which never answers, is read at every step (the cluster-wide
// failover.guest_agent_wait): shortened while the application waits, it
// lets the application start at the next step.
func TestGuestAgentWaitChangesWithoutRestart(t *testing.T) {
	db, app := plan.DefaultPolicy(), plan.DefaultPolicy()
	db.WaitGuestAgent = true
	app.StartOrder = 1
	wait := time.Hour
	m, hv, dec, _ := policyFixture(t, []plan.Policy{db, app}, func(h *heldStarts) vm.Hypervisor {
		return &agentGate{heldStarts: h, ready: make(chan struct{})} // the agent never answers
	}, func(c *vm.Config) { c.GuestAgentWait = func() time.Duration { return wait } })
	close(hv.hold)
	ctx := context.Background()
	t0 := time.Now()
	step := func(at time.Duration) map[string]reconcile.Kind {
		t.Helper()
		acts, err := m.Step(ctx, dec, t0.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		return kinds(acts)
	}
	step(0)           // takes the database
	step(time.Second) // sees it held from here on
	if k := step(31 * time.Second); k["steps-02"] != reconcile.Wait {
		t.Fatalf("30s after the database was taken, waiting up to 1h: %v; want the application waiting", k)
	}
	wait = 10 * time.Second
	if k := step(32 * time.Second); k["steps-02"] != reconcile.TakeAndStart {
		t.Fatalf("after the wait was shortened to 10s, 31s after the database was taken: %v; want the application started", k)
	}
}

// TestStartDelayCountsFromTheTiersTurn: a VM with a 30 s start delay waits,
// round after round, 30 s of the caller's clock from the first round in
// which it could start, then starts.
func TestStartDelayCountsFromTheTiersTurn(t *testing.T) {
	p := plan.DefaultPolicy()
	p.StartDelay = 30 * time.Second
	m, hv, dec, _ := policyFixture(t, []plan.Policy{p}, nil)
	close(hv.hold)
	ctx := context.Background()
	t0 := time.Now()
	for _, after := range []time.Duration{0, 10 * time.Second, 29 * time.Second} {
		acts, err := m.Step(ctx, dec, t0.Add(after))
		if err != nil {
			t.Fatal(err)
		}
		if k := kinds(acts); k["steps-01"] != reconcile.Wait {
			t.Fatalf("%v after its turn came: %v; want it waiting", after, acts)
		}
	}
	acts, err := m.Step(ctx, dec, t0.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(acts); k["steps-01"] != reconcile.TakeAndStart {
		t.Fatalf("30s after its turn came: %v; want it started", acts)
	}
}

// TestGuestUpMarkedAfterAdoption: wingmand restarts (a new generation) on a
// host that runs a VM whose agent had not answered yet. The new daemon adopts
// the lease at a new epoch, which carries no guest-up mark, and watches the
// agent again, though it started nothing.
func TestGuestUpMarkedAfterAdoption(t *testing.T) {
	db := plan.DefaultPolicy()
	db.WaitGuestAgent = true
	var gate *agentGate
	m, hv, dec, lun := policyFixture(t, []plan.Policy{db}, func(h *heldStarts) vm.Hypervisor {
		gate = &agentGate{heldStarts: h, ready: make(chan struct{})}
		return gate
	})
	close(hv.hold)
	ctx := context.Background()
	if _, err := m.Step(ctx, dec, time.Now()); err != nil {
		t.Fatal(err)
	}
	m2, err := vm.NewManager(vm.Config{Host: 2, Gen: 2}, lun, gate, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec2 := dec
	dec2.Hosts = []quorum.Host{{ID: 1, Name: "kvm1", Gen: 1, State: quorum.StateDead}, {ID: 2, Name: "kvm2", Gen: 2, State: quorum.StateAlive}}
	for round := range 2 {
		acts, err := m2.Step(ctx, dec2, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if k := kinds(acts); round == 0 && k["steps-01"] != reconcile.Adopt {
			t.Fatalf("after the restart: %v; want the lease adopted", acts)
		}
	}
	close(gate.ready)
	waitGuestUp(t, lun, 2)
}

// waitGuestUp waits until the owner at generation gen marked the lease of
// record 0 guest-up (its agent watch runs in the background).
func waitGuestUp(t *testing.T, lun *storage.LUN, gen uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := lun.ReadLease(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if l.GuestUp && l.Owner.Gen == gen {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease was never marked guest-up by generation %d: %+v", gen, l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allHeld holds every Start until release is closed.
type allHeld struct {
	*heldStarts
	release chan struct{}
	calls   atomic.Int32
}

func (a *allHeld) Start(ctx context.Context, name string) error {
	a.calls.Add(1)
	<-a.release
	return a.heldStarts.Conn.Start(ctx, name)
}

// TestPoisonPillStopsLaunchingStarts: a poison pill arrives while a step's
// failover starts wait in libvirt, with more queued behind them. The step
// launches none of the queued ones, so it gives the lock to ApplyIsolation
// as soon as the running starts return.
func TestPoisonPillStopsLaunchingStarts(t *testing.T) {
	pols := make([]plan.Policy, 6)
	for i := range pols {
		pols[i] = plan.DefaultPolicy()
	}
	var hv *allHeld
	m, _, dec, _ := policyFixture(t, pols, func(h *heldStarts) vm.Hypervisor {
		hv = &allHeld{heldStarts: h, release: make(chan struct{})}
		return hv
	})
	ctx := context.Background()
	stepErr := make(chan error, 1)
	go func() {
		_, err := m.Step(ctx, dec, time.Now())
		stepErr <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for hv.calls.Load() < 4 { // the first wave: this host's 4 starts at once
		if time.Now().After(deadline) {
			t.Fatalf("%d starts launched, want 4", hv.calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	isoErr := make(chan error, 1)
	go func() { isoErr <- m.ApplyIsolation(ctx, "test pill") }()
	for !m.Isolating() {
		time.Sleep(time.Millisecond)
	}
	close(hv.release)
	err := <-stepErr
	if !errors.Is(err, vm.ErrNoQuorum) || !strings.Contains(err.Error(), "poison pill") {
		t.Errorf("step: %v; want the queued starts refused for the pill", err)
	}
	if err := <-isoErr; err != nil {
		t.Errorf("isolation: %v", err)
	}
	if n := hv.calls.Load(); n != 4 {
		t.Errorf("%d starts launched, want only the 4 that ran before the pill", n)
	}
}

// freshLUN formats a LUN file with geometry g in a temporary directory and
// opens it (closed at the test's end); it skips where O_DIRECT is missing.
// protectTestVM stores a record for a test:/// guest name with uuid and
// policy pol, owned by host 1 (generation 1), as that host would, and
// returns its index.
func protectTestVM(t *testing.T, lun *storage.LUN, name, uuid string, pol plan.Policy) int {
	t.Helper()
	b, err := vm.RecordPolicy{Policy: pol}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := storage.ParseUUID(uuid)
	xml := "<domain type='test'><name>" + name + "</name><uuid>" + uuid + "</uuid><memory unit='MiB'>64</memory>" +
		"<os><type>hvm</type></os></domain>"
	idx, _, err := lun.ProtectVM(context.Background(), storage.Owner{Host: 1, Gen: 1, Nonce: 1},
		storage.VMConfig{UUID: id, Name: name, Policy: b, XML: []byte(xml)})
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// dialKVM2 connects to a private copy of the test:/// driver's default
// host, as host kvm2.
func dialKVM2(t *testing.T) *hypervisor.Conn {
	t.Helper()
	hcfg := hypervisor.DefaultConfig()
	hcfg.URI, hcfg.HostName = "test:///default", "kvm2"
	conn, err := hypervisor.Dial(context.Background(), hcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func freshLUN(t *testing.T, cluster string, g storage.Geometry) *storage.LUN {
	t.Helper()
	ctx := context.Background()
	lunPath := filepath.Join(t.TempDir(), "lun.img")
	if err := os.WriteFile(lunPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dev, err := storage.OpenFile(lunPath)
	if err != nil {
		t.Skipf("skipping: no O_DIRECT here: %v", err)
	}
	if _, err := storage.Format(ctx, dev, storage.FormatOptions{ClusterName: cluster, Geometry: g}); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	lun, err := storage.OpenPath(ctx, lunPath, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lun.Close() })
	return lun
}

// zeroLeaseBlock zeroes, in the LUN file at path, the lease block that
// host wrote for VM record idx (found by its magic and fields).
func zeroLeaseBlock(t *testing.T, path string, idx, host int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off := 0; off+storage.BlockSize <= len(b); off += storage.BlockSize {
		r := b[off:]
		if string(r[0:4]) == "WGVL" && int(r[8])|int(r[9])<<8 == idx && int(r[12])|int(r[13])<<8 == host {
			if _, err := f.WriteAt(make([]byte, storage.BlockSize), int64(off)); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no lease block of host %d for record %d", host, idx)
}

// TestZeroedOwnerLeaseStartsNothingElsewhere is the reported case at the
// VM manager: the lease block of host 1, which runs the VM, is zeroed.
// Host 2, whether it read the record before (a running daemon) or not (one
// that starts now), must not start the VM, even when host 1 is declared
// dead: the lease's owner is unknown. It says so with an event.
func TestZeroedOwnerLeaseStartsNothingElsewhere(t *testing.T) {
	g := storage.Geometry{MaxHosts: 4, MaxVMs: 4, EventBlocks: 8, ConfigBlks: 2}
	lun := freshLUN(t, "damaged", g)
	host1, err := storage.OpenPath(context.Background(), lun.Path(), storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer host1.Close() // host 1's own handle would write its block back: it is not read again
	idx := protectTestVM(t, host1, "damaged-01", "00000000-0000-0000-0000-000000000601", plan.DefaultPolicy())
	hv := &heldStarts{Conn: dialKVM2(t), hold: make(chan struct{})}
	close(hv.hold)
	events := &eventList{}
	m, err := vm.NewManager(vm.Config{Host: 2, Gen: 1}, lun, hv, events)
	if err != nil {
		t.Fatal(err)
	}
	alive := quorum.Decision{Quorate: true, MayRunVMs: true,
		Hosts: []quorum.Host{{ID: 1, Name: "kvm1", Gen: 1, State: quorum.StateAlive}, {ID: 2, Name: "kvm2", Gen: 1, State: quorum.StateAlive}}}
	ctx := context.Background()
	if _, err := m.Step(ctx, alive, time.Now()); err != nil {
		t.Fatalf("step before the damage: %v", err)
	}
	zeroLeaseBlock(t, lun.Path(), idx, 1)

	fresh, err := storage.OpenPath(ctx, lun.Path(), storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	m2, err := vm.NewManager(vm.Config{Host: 2, Gen: 1}, fresh, hv, events)
	if err != nil {
		t.Fatal(err)
	}
	dead := alive
	dead.Hosts = []quorum.Host{{ID: 1, Name: "kvm1", Gen: 1, State: quorum.StateDead}, alive.Hosts[1]}
	dead.Verdicts = []quorum.Verdict{{ID: 1, Gen: 1}}
	for name, mgr := range map[string]*vm.Manager{"running": m, "started after the damage": m2} {
		for _, dec := range []quorum.Decision{alive, dead} {
			acts, err := mgr.Step(ctx, dec, time.Now())
			if err == nil || !errors.Is(err, storage.ErrCorrupt) {
				t.Errorf("%s manager, owner %v: step %v, want it to refuse the damaged record", name, dec.Hosts[0].State, err)
			}
			for _, a := range acts {
				t.Errorf("%s manager, owner %v: action %s %s", name, dec.Hosts[0].State, a.Kind, a.Name)
			}
		}
	}
	if calls, _, _ := hv.snapshot(); calls != 0 {
		t.Errorf("%d starts over a damaged lease", calls)
	}
	// The repair is for the host that runs the guest; it does not run here.
	if _, err := vm.ReclaimLease(ctx, m, idx); !errors.Is(err, storage.ErrInvalid) || !strings.Contains(err.Error(), "does not run on this host") {
		t.Errorf("reclaim on a host that does not run the VM: %v", err)
	}
	if len(events.of("lun-damaged")) == 0 {
		t.Errorf("no lun-damaged event")
	}
}

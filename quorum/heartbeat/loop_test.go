package heartbeat

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
)

// These tests run several hosts' heartbeat loops in one process against a
// real LUN file with O_DIRECT, each host with its own device (through the
// fault-injecting wrapper, so a SAN path of one host can fail), and an
// in-memory network for serf's view and lease queries that a test can
// partition. Waits are on conditions with a deadline, never fixed sleeps.

// Short timings that pass validation, with io_timeout generous enough for a
// CI machine whose two cores other test packages load: D = F + W + io + R = 2.1 s.
func testTimings() storage.Timings {
	t := storage.Timings{Renew: 100 * time.Millisecond, IOTimeout: 500 * time.Millisecond,
		SelfFence: 750 * time.Millisecond, Watchdog: 750 * time.Millisecond, PowerFence: 500 * time.Millisecond}
	t.Dead = t.MinDead()
	return t
}

func quorumTimings(t storage.Timings) quorum.Timings { return Timings(t, 200*time.Millisecond) }

// network is an in-memory serf: who sees whom, lease queries and wakes.
type network struct {
	mu     sync.Mutex
	group  map[int]int // host -> partition group
	up     map[int]bool
	loops  map[int]*Loop
	onWake func(from int) // called before a wake is delivered; nil: nothing
}

// wake is serf's wake query from host from: every connected host runs a cycle now.
func (n *network) wake(from int) {
	n.mu.Lock()
	loops, hook := maps.Clone(n.loops), n.onWake
	n.mu.Unlock()
	if hook != nil {
		hook(from)
	}
	for id, l := range loops {
		if id != from && n.connected(from, id) {
			l.Kick()
		}
	}
}

func (n *network) connected(a, b int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.up[a] && n.up[b] && n.group[a] == n.group[b]
}

func (n *network) partition(groups ...[]int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for g, hs := range groups {
		for _, h := range hs {
			n.group[h] = g
		}
	}
}

type member struct {
	n    *network
	self int
}

func (m member) Alive() quorum.Set {
	var s quorum.Set
	m.n.mu.Lock()
	ids := make([]int, 0, len(m.n.up))
	for id := range m.n.up {
		ids = append(ids, id)
	}
	m.n.mu.Unlock()
	for _, id := range ids {
		if m.n.connected(m.self, id) {
			s.Add(id)
		}
	}
	return s
}

func (m member) AskLease(_ context.Context, req LeaseRequest) (quorum.Set, error) {
	var granted quorum.Set
	m.n.mu.Lock()
	loops := maps.Clone(m.n.loops)
	m.n.mu.Unlock()
	for id, l := range loops {
		if id != m.self && m.n.connected(m.self, id) {
			if ok, _ := l.GrantLease(req); ok {
				granted.Add(id)
			}
		}
	}
	return granted, nil
}

// vms records what the loop asked of the VM manager.
type vms struct {
	mu        sync.Mutex
	fenced    []string
	isolation []string
	// block, if set, holds ApplyIsolation until it is closed (a VM
	// manager busy with a step); entered is closed when one waits.
	block, entered chan struct{}
}

func (v *vms) SelfFence(_ context.Context, reason string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fenced = append(v.fenced, reason)
	return nil
}

func (v *vms) ApplyIsolation(_ context.Context, reason string) error {
	if v.block != nil {
		close(v.entered)
		<-v.block
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.isolation = append(v.isolation, reason)
	return nil
}

func (v *vms) counts() (int, int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.fenced), len(v.isolation)
}

type host struct {
	id     int
	lun    *storage.LUN
	slot   *storage.Heartbeat
	loop   *Loop
	vms    *vms
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	events []Event
}

func (h *host) sawEvent(kind string, subject int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.events {
		if e.Kind == kind && (subject == 0 || e.Subject == subject) {
			return true
		}
	}
	return false
}

type cluster struct {
	t      *testing.T
	path   string
	faults *storagetest.Controller
	net    *network
	hosts  map[int]*host
}

func newCluster(t *testing.T, n int) *cluster {
	dir := t.TempDir()
	path := filepath.Join(dir, "lun.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dev, err := storage.OpenFile(path)
	if err != nil {
		t.Skipf("skipping: %s does not support O_DIRECT: %v", dir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := storage.Format(ctx, dev, storage.FormatOptions{ClusterName: "hb", Timings: testTimings(),
		Geometry: storage.Geometry{MaxHosts: 8, MaxVMs: 2, EventBlocks: 1, ConfigBlks: 2}}); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	c := &cluster{t: t, path: path, faults: storagetest.NewController(),
		net: &network{group: map[int]int{}, up: map[int]bool{}, loops: map[int]*Loop{}}, hosts: map[int]*host{}}
	for id := 1; id <= n; id++ {
		c.start(id)
	}
	return c
}

func (c *cluster) start(id int) {
	t := c.t
	fd, err := storage.OpenFile(c.path)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("kvm%d", id)
	ctx := context.Background()
	lun, err := storage.Open(ctx, c.faults.Device(name, fd), storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slot, err := lun.AcquireSlot(ctx, storage.AcquireOptions{HostName: name, HostID: id})
	if err != nil {
		t.Fatal(err)
	}
	slot.SetState(storage.SlotAlive) // what the daemon does once it is ready
	slot.SetGossipKey(0x100 + uint64(id))
	h := &host{id: id, lun: lun, slot: slot, vms: &vms{}, done: make(chan error, 1)}
	loop, err := New(Config{Timings: quorumTimings(lun.Header().Timings), Slot: slot, LUN: lun, Header: lun.Integrity().HeaderChanged,
		Serf: member{n: c.net, self: id}, VMs: h.vms, Announce: func() { go c.net.wake(id) },
		OnEvent: func(e Event) { h.mu.Lock(); h.events = append(h.events, e); h.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	h.loop = loop
	c.net.mu.Lock()
	c.net.up[id] = true
	c.net.loops[id] = loop
	c.net.mu.Unlock()
	lctx, cancel := context.WithCancel(ctx)
	h.cancel = cancel
	go func() { h.done <- loop.Run(lctx) }()
	c.hosts[id] = h
	t.Cleanup(func() { cancel(); <-h.done; lun.Close() })
}

// crash stops host id's loop without a goodbye, as a power loss does.
func (c *cluster) crash(id int) {
	h := c.hosts[id]
	h.cancel()
	<-h.done
	h.done <- nil // for Cleanup
	c.net.mu.Lock()
	c.net.up[id] = false
	c.net.mu.Unlock()
}

// waitFor polls cond every 10 ms until it holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *cluster) state(observer, subject int) quorum.HostState {
	d, ok := c.hosts[observer].loop.Decision()
	if !ok {
		return 0
	}
	h, _ := d.Host(subject)
	return h.State
}

func TestHostsSeeEachOtherAndAgreeOnCoordinator(t *testing.T) {
	c := newCluster(t, 3)
	for o := 1; o <= 3; o++ {
		waitFor(t, fmt.Sprintf("host %d to see all alive with host 1 coordinating", o), func() bool {
			d, ok := c.hosts[o].loop.Decision()
			return ok && d.Quorate && d.Coordinator == 1 && c.state(o, 1) == quorum.StateAlive &&
				c.state(o, 2) == quorum.StateAlive && c.state(o, 3) == quorum.StateAlive
		})
	}
}

func TestLoopKeepsTheGossipKeysOfTheLastRead(t *testing.T) {
	c := newCluster(t, 2)
	want := map[int]uint64{1: 0x101, 2: 0x102}
	waitFor(t, "host 1 to read both hosts' gossip key fingerprints", func() bool {
		return maps.Equal(c.hosts[1].loop.GossipKeys(), want)
	})
}

// TestLoopCarriesTheRecordsCounter: a host's VM-records counter goes
// through its slot on the LUN to the other host's decision.
func TestLoopCarriesTheRecordsCounter(t *testing.T) {
	c := newCluster(t, 2)
	c.hosts[2].slot.BumpRecords()
	c.hosts[2].slot.BumpRecords()
	waitFor(t, "host 1 to read host 2's records counter 2", func() bool {
		d, ok := c.hosts[1].loop.Decision()
		h, _ := d.Host(2)
		return ok && h.Records == 2
	})
}

func TestCrashedHostIsDeclaredDeadAfterD(t *testing.T) {
	c := newCluster(t, 3)
	waitFor(t, "a settled cluster", func() bool {
		d, ok := c.hosts[1].loop.Decision()
		return ok && d.Coordinator == 1 && c.state(1, 3) == quorum.StateAlive
	})
	// Let the coordinator's view of the LUN be fresh for D first.
	waitFor(t, "D of fresh reads", func() bool {
		in := c.hosts[1].loop.input()
		return in.Now-in.ReadFreshSince >= in.Timings.Dead
	})
	crashed := time.Now()
	c.crash(3)
	// D counts from host 3's last heartbeat write, up to R before the crash:
	// host 1 may read that write before the crash (observation passes read
	// every R/4), and then rightly declares host 3 dead up to R before
	// crash + D. Its last write started at this time (host 3's clock, read
	// now, on the process's clock), before it landed and before host 1 read it.
	in3 := c.hosts[3].loop.input()
	lastWrite := time.Now().Add(-(in3.Now - in3.LastWrite))
	waitFor(t, "host 1 to declare host 3 dead", func() bool { return c.hosts[1].sawEvent("declared-dead", 3) })
	if took, d := time.Since(lastWrite), testTimings().Dead; took < d {
		t.Errorf("declared dead %v after host 3's last heartbeat write (%v before the crash ended its loop), before D = %v",
			took, crashed.Sub(lastWrite), d)
	}
	waitFor(t, "host 2 to learn the verdict", func() bool { return c.state(2, 3) == quorum.StateDead })
	if f, _ := c.hosts[1].vms.counts(); f != 0 {
		t.Errorf("host 1 self-fenced %d times", f)
	}
}

// TestVerdictIsAnnouncedOnceAfterItsWrite: the coordinator wakes the others only after the
// heartbeat write that carries a new verdict, so a woken host finds it on the LUN; and only once.
func TestVerdictIsAnnouncedOnceAfterItsWrite(t *testing.T) {
	c := newCluster(t, 3)
	waitFor(t, "a settled cluster", func() bool {
		in := c.hosts[1].loop.input()
		return in.Now-in.ReadFreshSince >= in.Timings.Dead && c.state(1, 3) == quorum.StateAlive
	})
	lun := c.reader()
	var mu sync.Mutex
	var wakes []string // what host 1's slot on the LUN held at each wake
	c.net.mu.Lock()
	c.net.onWake = func(from int) {
		v, err := lun.ReadSlot(context.Background(), from)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			wakes = append(wakes, fmt.Sprintf("host %d: %v", from, err))
			return
		}
		wakes = append(wakes, fmt.Sprintf("host %d: verdicts %v", from, v.Record.Verdicts))
	}
	c.net.mu.Unlock()
	c.crash(3)
	waitFor(t, "host 2 to learn the verdict", func() bool { return c.state(2, 3) == quorum.StateDead })
	// A few more cycles: no second wake for the same verdict.
	for seq := c.seq(1); c.seq(1) < seq+5; {
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	gen := c.hosts[3].loop.cfg.Slot.Generation()
	want := fmt.Sprintf("host 1: verdicts %v", []storage.Verdict{{HostID: 3, Gen: gen}})
	if len(wakes) != 1 || wakes[0] != want {
		t.Errorf("wakes: %q, want exactly [%q]", wakes, want)
	}
}

// reader opens the LUN once more, as an outside observer.
func (c *cluster) reader() *storage.LUN {
	fd, err := storage.OpenFile(c.path)
	if err != nil {
		c.t.Fatal(err)
	}
	lun, err := storage.Open(context.Background(), fd, storage.OpenOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { lun.Close() })
	return lun
}

// seq is the heartbeat sequence host id last wrote, as host id itself read it back.
func (c *cluster) seq(id int) uint64 {
	for _, s := range c.hosts[id].loop.input().Slots {
		if s.ID == id {
			return s.Seq
		}
	}
	return 0
}

func TestIsolatedHostGetsPoisonPillAndAcknowledges(t *testing.T) {
	c := newCluster(t, 3)
	waitFor(t, "a settled cluster", func() bool {
		in := c.hosts[1].loop.input()
		return in.Now-in.ReadFreshSince >= in.Timings.Dead && c.state(1, 3) == quorum.StateAlive
	})
	c.net.partition([]int{1, 2}, []int{3})
	waitFor(t, "host 3 to apply its isolation response", func() bool { _, iso := c.hosts[3].vms.counts(); return iso > 0 })
	waitFor(t, "host 1 to see the acknowledgement", func() bool { return c.hosts[1].sawEvent("pill-acknowledged", 3) })
	if c.hosts[1].sawEvent("declared-dead", 3) {
		t.Error("an isolated host that writes the LUN was declared dead")
	}
	if f, _ := c.hosts[3].vms.counts(); f != 0 {
		t.Error("the isolated host self-fenced; it should only apply isolation responses")
	}
}

// TestSlowIsolationKeepsTheHeartbeat: the VM manager of the isolated host
// takes its time to apply the pill (a step holds its lock). The heartbeat
// goes on meanwhile, so the watchdog is petted and nobody declares the host
// dead; the coordinator sees the acknowledgement only once it is done.
func TestSlowIsolationKeepsTheHeartbeat(t *testing.T) {
	c := newCluster(t, 3)
	c.hosts[3].vms.block, c.hosts[3].vms.entered = make(chan struct{}), make(chan struct{})
	waitFor(t, "a settled cluster", func() bool {
		in := c.hosts[1].loop.input()
		return in.Now-in.ReadFreshSince >= in.Timings.Dead && c.state(1, 3) == quorum.StateAlive
	})
	c.net.partition([]int{1, 2}, []int{3})
	<-c.hosts[3].vms.entered
	from := c.seq(3)
	waitFor(t, "host 3 to go on writing its heartbeat", func() bool { return c.seq(3) >= from+3 })
	if c.hosts[1].sawEvent("pill-acknowledged", 3) {
		t.Error("the pill was acknowledged before the isolation responses were applied")
	}
	close(c.hosts[3].vms.block)
	waitFor(t, "host 1 to see the acknowledgement", func() bool { return c.hosts[1].sawEvent("pill-acknowledged", 3) })
	if c.hosts[1].sawEvent("declared-dead", 3) {
		t.Error("an isolated host that writes the LUN was declared dead")
	}
}

func TestLUNLostOnOneHostKeepsVMsOnNetworkLease(t *testing.T) {
	c := newCluster(t, 3)
	waitFor(t, "a settled cluster", func() bool {
		in := c.hosts[1].loop.input()
		return in.Now-in.ReadFreshSince >= in.Timings.Dead && c.state(1, 3) == quorum.StateAlive
	})
	c.faults.Inject("kvm3", storagetest.Fault{Op: storagetest.AllIO, EIO: true})
	waitFor(t, "host 3 to hold a network lease", func() bool { return c.hosts[3].sawEvent("network-lease", 3) })
	// Hold for several D: nobody declares it dead, it does not self-fence.
	until := time.Now().Add(3 * testTimings().Dead)
	for time.Now().Before(until) {
		if f, _ := c.hosts[3].vms.counts(); f != 0 {
			t.Fatalf("host 3 self-fenced while holding a network lease: %v", c.hosts[3].vms.fenced)
		}
		if c.hosts[1].sawEvent("declared-dead", 3) {
			t.Fatal("host 1 declared a leased host dead")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Cut it off from the others too: no lease, so it self-fences.
	c.net.partition([]int{1, 2}, []int{3})
	waitFor(t, "host 3 to self-fence", func() bool { f, _ := c.hosts[3].vms.counts(); return f > 0 })
	waitFor(t, "host 1 to declare it dead", func() bool { return c.hosts[1].sawEvent("declared-dead", 3) })
	if !strings.Contains(c.hosts[3].vms.fenced[0], "no network lease") {
		t.Errorf("self-fence reason %q", c.hosts[3].vms.fenced[0])
	}
}

func TestStorageLatencyBelowTimeoutChangesNothing(t *testing.T) {
	c := newCluster(t, 3)
	waitFor(t, "a settled cluster", func() bool { return c.state(1, 3) == quorum.StateAlive })
	c.faults.Inject("kvm2", storagetest.Fault{Op: storagetest.AllIO, Latency: testTimings().IOTimeout / 4})
	until := time.Now().Add(2 * testTimings().Dead)
	for time.Now().Before(until) {
		for id, h := range c.hosts {
			if f, _ := h.vms.counts(); f != 0 || h.sawEvent("declared-dead", 0) || h.sawEvent("pill-sent", 0) {
				t.Fatalf("host %d acted on mere latency: %+v", id, h.events)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestZeroedHeaderStopsDecisionsNotHeartbeats: the LUN's header zeroed
// under three running loops. Each notices within a few cycles (an event, a
// decision that is not quorate), keeps writing its slot (nobody
// self-fences), and a host that crashes meanwhile is declared dead by
// nobody. Restoring the header from a host's copy ends it, and then the
// crashed host is declared dead as usual.
func TestZeroedHeaderStopsDecisionsNotHeartbeats(t *testing.T) {
	c := newCluster(t, 3)
	waitFor(t, "a settled cluster", func() bool {
		d, ok := c.hosts[1].loop.Decision()
		return ok && d.Quorate && d.Coordinator == 1 && c.state(1, 3) == quorum.StateAlive
	})
	f, err := os.OpenFile(c.path, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, storage.BlockSize), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	zeroed := time.Now()
	r := testTimings().Renew
	for id := 1; id <= 3; id++ {
		waitFor(t, fmt.Sprintf("host %d to notice the header", id), func() bool {
			d, ok := c.hosts[id].loop.Decision()
			return c.hosts[id].sawEvent("lun-header-changed", 0) && ok && !d.Quorate && d.Coordinator == 0
		})
		took := time.Since(zeroed)
		t.Logf("host %d noticed the zeroed header after %v", id, took.Round(time.Millisecond))
		if took > 5*r {
			t.Errorf("host %d noticed %v after the header was zeroed, want within 5 R = %v", id, took, 5*r)
		}
	}
	c.crash(3)
	waitFor(t, "2 D without a verdict", func() bool {
		for _, id := range []int{1, 2} {
			if c.hosts[id].sawEvent("declared-dead", 3) {
				t.Fatalf("host %d declared host 3 dead while the header was zeroed", id)
			}
		}
		return time.Since(zeroed) > 2*testTimings().Dead
	})
	for _, id := range []int{1, 2} {
		if n, _ := c.hosts[id].vms.counts(); n != 0 {
			t.Errorf("host %d self-fenced while the header was zeroed", id)
		}
	}
	res, err := c.hosts[2].lun.Integrity().RestoreHeader(context.Background(), false)
	if err != nil || res.Found != "zeros" || !res.Wrote {
		t.Fatalf("restore-header from host 2's copy: %+v, %v", res, err)
	}
	for _, id := range []int{1, 2} {
		waitFor(t, fmt.Sprintf("host %d to see the header back", id), func() bool { return c.hosts[id].sawEvent("lun-header-restored", 0) })
	}
	waitFor(t, "host 1 to declare host 3 dead", func() bool { return c.hosts[1].sawEvent("declared-dead", 3) })
}

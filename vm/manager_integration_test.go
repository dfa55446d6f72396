package vm_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/test/cluster"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/plan"
)

type node struct {
	h   *cluster.Host
	id  int
	lun *storage.LUN
	hv  *hypervisor.Conn
	m   *vm.Manager
}

func decision(hosts []*node, dead ...int) quorum.Decision {
	d := quorum.Decision{Quorate: true, MayRunVMs: true}
	for _, n := range hosts {
		st := quorum.StateAlive
		for _, x := range dead {
			if x == n.id {
				st = quorum.StateDead
				d.Verdicts = append(d.Verdicts, quorum.Verdict{ID: n.id, Gen: 1})
			}
		}
		d.Hosts = append(d.Hosts, quorum.Host{ID: n.id, Name: n.h.Name(), Gen: 1, State: st})
	}
	return d
}

func runningOn(t *testing.T, ctx context.Context, n *node, name string) bool {
	t.Helper()
	doms, err := n.hv.ListDomains(ctx)
	if err != nil {
		t.Fatalf("list domains on %s: %v", n.h.Name(), err)
	}
	for _, d := range doms {
		if d.Name == name {
			return d.State == hypervisor.StateRunning
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestManagerOnCluster: protect a guest on host 1, live-migrate it through
// the Manager to host 2 (the lease moves), kill its QEMU (restarted in
// place), then power host 2 off and tell the survivors it is dead: the guest
// runs on exactly one of them, whose lease it is.
func TestManagerOnCluster(t *testing.T) {
	cfg := cluster.DefaultConfig()
	cfg.Hosts = 3
	cfg.Subnet = netip.MustParsePrefix("10.78.0.0/24")
	cfg.MigrationPortBase = 49400
	c := cluster.New(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	lunPath := filepath.Join(t.TempDir(), "lun.img")
	f, err := os.Create(lunPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(8 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dev, err := storage.OpenFile(lunPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storage.Format(ctx, dev, storage.FormatOptions{ClusterName: "vmtest",
		Geometry: storage.Geometry{MaxHosts: 4, MaxVMs: 8, EventBlocks: 8, ConfigBlks: 4}}); err != nil {
		t.Fatal(err)
	}
	dev.Close()

	var nodes []*node
	for i, h := range c.Hosts() {
		n := &node{h: h, id: i + 1}
		if n.lun, err = storage.OpenPath(ctx, lunPath, storage.OpenOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.lun.Close() })
		hcfg := hypervisor.DefaultConfig()
		hcfg.URI, hcfg.HostName = h.URI(), h.Name()
		if n.hv, err = hypervisor.Dial(ctx, hcfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.hv.Close() })
		ev, err := n.lun.EventLog(ctx, n.id)
		if err != nil {
			t.Fatal(err)
		}
		n.m, err = vm.NewManager(vm.Config{Host: n.id, Gen: 1, UnsafeMigration: true,
			MigrationURI: func(id int) (string, error) {
				if id < 1 || id > len(c.Hosts()) {
					return "", fmt.Errorf("no host %d", id)
				}
				return c.Hosts()[id-1].MigrationURI(), nil
			}}, n.lun, n.hv, ev)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	step := func(n *node, d quorum.Decision) {
		t.Helper()
		acts, err := n.m.Step(ctx, d, time.Now())
		for _, a := range acts {
			t.Logf("%s: %v", n.h.Name(), a)
		}
		if err != nil {
			t.Errorf("step on %s: %v", n.h.Name(), err)
		}
	}
	lease := func(name string) storage.LeaseState {
		t.Helper()
		recs, errs := nodes[0].lun.ReadVMs(ctx)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		for _, r := range recs {
			if r.Protected() && r.Config.Name == name {
				return r.Lease
			}
		}
		t.Fatalf("%s not protected", name)
		return storage.LeaseState{}
	}

	g, err := c.NewGuest("g1")
	if err != nil {
		t.Fatal(err)
	}
	xml, err := g.XML()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].hv.Define(ctx, xml); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].hv.Start(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	pol := plan.DefaultPolicy()
	pol.RestartLimit = plan.RestartLimit{Max: 5, Window: time.Hour}
	t0 := time.Now()
	if _, err := nodes[0].m.Protect(ctx, decision(nodes), "g1", vm.RecordPolicy{Policy: pol}, vm.ProtectOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("protect: %v", time.Since(t0))
	all := decision(nodes)
	for _, n := range nodes {
		step(n, all)
	}
	if !runningOn(t, ctx, nodes[0], "g1") || runningOn(t, ctx, nodes[1], "g1") || runningOn(t, ctx, nodes[2], "g1") {
		t.Fatal("after protect and a quiet round, g1 should run on kvm1 only")
	}

	// Live migration through the Manager: the lease follows the guest.
	before := lease("g1")
	t0 = time.Now()
	res, err := nodes[0].m.Migrate(ctx, "g1", 2)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if l := lease("g1"); l.Migration.Phase != storage.MigrationCompleted || l.Owner.Host != 1 {
		t.Fatalf("after migrate the lease should still be host 1's with migration completed: %+v", l)
	}
	step(nodes[1], all)
	t.Logf("migrate + claim: %v (libvirt wall %v, downtime %v)", time.Since(t0), res.Wall, res.Downtime)
	if l := lease("g1"); l.Owner.Host != 2 || l.Epoch != before.Epoch+1 || l.Migration.Phase != storage.MigrationNone {
		t.Fatalf("after the claim the lease should be host 2's at epoch %d: %+v", before.Epoch+1, l)
	}
	for _, n := range nodes {
		step(n, all)
	}
	if !runningOn(t, ctx, nodes[1], "g1") || runningOn(t, ctx, nodes[0], "g1") {
		t.Fatal("g1 should run on kvm2 only after the migration")
	}

	// QEMU killed: restarted in place.
	procs, err := nodes[1].h.Processes()
	if err != nil {
		t.Fatal(err)
	}
	killed := false
	for _, p := range procs {
		if strings.HasPrefix(p.Comm, "qemu") && strings.Contains(p.Cmdline, "guest=g1") {
			if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	if !killed {
		t.Fatal("no QEMU process of g1 on kvm2")
	}
	waitFor(t, "g1 to stop on kvm2", func() bool { return !runningOn(t, ctx, nodes[1], "g1") })
	t0 = time.Now()
	step(nodes[1], all)
	waitFor(t, "g1 restarted on kvm2", func() bool { return runningOn(t, ctx, nodes[1], "g1") })
	t.Logf("restart in place: %v", time.Since(t0))
	if l := lease("g1"); l.Owner.Host != 2 {
		t.Fatalf("restart in place must keep the lease: %+v", l)
	}

	// Power off the owner; the survivors are told it is dead.
	epoch := lease("g1").Epoch
	if err := c.PowerOff(nodes[1].h); err != nil {
		t.Fatal(err)
	}
	dead := decision(nodes, 2)
	t0 = time.Now()
	var wg sync.WaitGroup
	for _, n := range []*node{nodes[0], nodes[2]} {
		wg.Add(1)
		go func() { defer wg.Done(); step(n, dead) }()
	}
	wg.Wait()
	t.Logf("failover step (both survivors at once): %v", time.Since(t0))
	var on []int
	for _, n := range []*node{nodes[0], nodes[2]} {
		if runningOn(t, ctx, n, "g1") {
			on = append(on, n.id)
		}
	}
	if len(on) != 1 {
		t.Fatalf("g1 should run on exactly one survivor, runs on %v", on)
	}
	if l := lease("g1"); l.Owner.Host != on[0] || l.Epoch != epoch+1 || l.Released {
		t.Fatalf("lease should name host %d at epoch %d: %+v", on[0], epoch+1, l)
	}
	// Another round changes nothing.
	for _, n := range []*node{nodes[0], nodes[2]} {
		step(n, dead)
	}
	evs, err := nodes[0].lun.ReadEvents(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		t.Logf("event host %d %s %s: %s", e.Host, e.Kind, e.VM, e.Message)
	}
}

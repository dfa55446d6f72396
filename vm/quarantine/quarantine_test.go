package quarantine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
	"github.com/wingmanha/wingman/vm"
)

// cluster is a fixed view: hosts 1..3 alive, host 1 coordinating, and
// the verdicts and applied pills the test sets.
type cluster struct {
	mu  sync.Mutex
	dec quorum.Decision
}

func newCluster() *cluster {
	c := &cluster{dec: quorum.Decision{Quorate: true, Coordinator: 1}}
	for id := 1; id <= 3; id++ {
		c.dec.Hosts = append(c.dec.Hosts, quorum.Host{ID: id, Name: fmt.Sprintf("kvm%d", id), Gen: 1, State: quorum.StateAlive})
	}
	return c
}

func (c *cluster) Decision() quorum.Decision {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dec
	d.Hosts = append([]quorum.Host(nil), c.dec.Hosts...)
	return d
}

func (c *cluster) ResolveHost(s string) (quorum.Host, error) {
	for _, h := range c.Decision().Hosts {
		if h.Name == s || fmt.Sprint(h.ID) == s {
			return h, nil
		}
	}
	return quorum.Host{}, fmt.Errorf("no host %q: the hosts are kvm1, kvm2, kvm3", s)
}

// pill makes host id show the applied pill nonce.
func (c *cluster) pill(id int, nonce uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dec.Hosts[id-1].Isolated = nonce
}

type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) Event(sev storage.Severity, kind string, _ storage.UUID, subject int, format string, a ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, fmt.Sprintf("%s %s host=%d: %s", sev, kind, subject, fmt.Sprintf(format, a...)))
}

func (e *events) all() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.list, "\n")
}

type evacuator struct {
	mu    sync.Mutex
	calls []vm.EvacuateOptions
}

func (v *evacuator) Evacuate(_ context.Context, _ quorum.Decision, opts vm.EvacuateOptions) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, opts)
	return nil
}

func (v *evacuator) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.calls)
}

// records returns the cluster records of a fresh LUN file, one handle per host.
func records(t *testing.T) func() *storage.ClusterRecords {
	t.Helper()
	tm := storage.Timings{Renew: 10 * time.Millisecond, IOTimeout: 200 * time.Millisecond, SelfFence: 210 * time.Millisecond, Watchdog: 10 * time.Millisecond}
	tm.Dead = tm.MinDead()
	path := storagetest.LUNFile(t, storage.FormatOptions{ClusterName: "lab", Timings: tm,
		Geometry: storage.Geometry{MaxHosts: 4, MaxVMs: 2, EventBlocks: 1, ConfigBlks: 2}})
	return func() *storage.ClusterRecords {
		l, err := storage.OpenPath(context.Background(), path, storage.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return storage.NewClusterRecords(l)
	}
}

// Three applied pills of kvm3, seen by the coordinator between two rounds
// (each replaces the last in kvm3's slot), quarantine it at the next
// round; the other host reads the same set from the LUN; the operator's
// clear is an event with who did it, and a second clear is refused.
func TestThreePillsQuarantineAcrossHosts(t *testing.T) {
	open := records(t)
	c := newCluster()
	policy := func() Policy {
		return Policy{QuarantineConfig: quorum.QuarantineConfig{Threshold: 3, Window: time.Hour, Duration: 2 * time.Hour}}
	}
	ev := &events{}
	kvm1 := New(Config{HostID: 1, Policy: policy}, open(), c, ev, nil)
	kvm2 := New(Config{HostID: 2, Policy: policy}, open(), c, ev, nil)
	ctx := context.Background()
	for nonce := uint64(1); nonce <= 3; nonce++ {
		c.pill(3, nonce)
		kvm1.Observe(c.Decision(), time.Now())
		kvm2.Observe(c.Decision(), time.Now())
		if err := kvm2.Round(ctx); err != nil { // not the coordinator: records nothing
			t.Fatal(err)
		}
	}
	if err := kvm1.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if err := kvm2.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kvm2.Set(); got != quorum.SetOf(3) {
		t.Fatalf("kvm2 reads quarantined %v, want [3]\nevents:\n%s", got, ev.all())
	}
	if !strings.Contains(ev.all(), "warning host-quarantined host=3: quarantined by wingman until") {
		t.Errorf("events:\n%s", ev.all())
	}
	checks := kvm1.Checks(true)
	if len(checks) != 3 || !checks[2].Active || checks[0].Active || !strings.Contains(checks[2].Text, "wingman host unquarantine kvm3") {
		t.Errorf("checks %+v: want kvm3's active with how to end it", checks)
	}
	if kvm2.Checks(false) != nil {
		t.Error("a host that does not coordinate reports quarantine warnings")
	}

	if _, err := kvm2.Unquarantine(ctx, "kvm3", "root@kvm2"); err != nil {
		t.Fatal(err)
	}
	if err := kvm1.Refresh(ctx); err != nil || kvm1.Set().Len() != 0 {
		t.Fatalf("after the clear kvm1 reads %v, %v", kvm1.Set(), err)
	}
	if !strings.Contains(ev.all(), "host-unquarantined host=3: quarantine cleared by root@kvm2") {
		t.Errorf("events:\n%s", ev.all())
	}
	_, err := kvm2.Unquarantine(ctx, "kvm3", "root@kvm2")
	if !errors.Is(err, vm.ErrConflict) || !strings.Contains(err.Error(), "kvm3 is not quarantined") {
		t.Errorf("second clear: %v, want a conflict saying kvm3 is not quarantined", err)
	}
	if _, err := kvm2.Unquarantine(ctx, "kvm9", "root"); err == nil || !strings.Contains(err.Error(), "no host") {
		t.Errorf("unknown host: %v", err)
	}
	// The same pill again is no new flap.
	if err := kvm1.Round(ctx); err != nil || kvm1.Set().Len() != 0 {
		t.Errorf("a round after the clear: %v, %v", kvm1.Set(), err)
	}
}

// The operator's quarantine lasts the policy's duration and ends by itself;
// a second one is refused.
func TestCommandQuarantineEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		open := records(t)
		c := newCluster()
		ev := &events{}
		policy := func() Policy {
			return Policy{QuarantineConfig: quorum.QuarantineConfig{Threshold: 3, Window: time.Hour, Duration: time.Minute}}
		}
		kvm1 := New(Config{HostID: 1, Policy: policy}, open(), c, ev, nil)
		ctx := context.Background()
		q, err := kvm1.Quarantine(ctx, "kvm2", "root@kvm1")
		if err != nil || q.Host != 2 || q.By != "root@kvm1" {
			t.Fatalf("quarantine: %+v, %v", q, err)
		}
		if _, err := kvm1.Quarantine(ctx, "2", "root"); !errors.Is(err, vm.ErrConflict) {
			t.Errorf("second quarantine: %v, want a conflict", err)
		}
		time.Sleep(time.Minute)
		if err := kvm1.Round(ctx); err != nil || kvm1.Set().Len() != 0 {
			t.Fatalf("after its duration: %v, %v\n%s", kvm1.Set(), err, ev.all())
		}
		if !strings.Contains(ev.all(), "host-unquarantined host=2: quarantine ended: its time ran out") {
			t.Errorf("events:\n%s", ev.all())
		}
	})
}

// With quarantine.migrate_away on, the quarantined host (and only it)
// evacuates by live migration, never a cold move; off, its VMs stay.
func TestMigrateAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		open := records(t)
		c := newCluster()
		ev := &events{}
		away := true
		policy := func() Policy {
			return Policy{QuarantineConfig: quorum.DefaultQuarantineConfig(), MigrateAway: away, Parallel: 2}
		}
		kvm1, kvm3 := &evacuator{}, &evacuator{}
		s1 := New(Config{HostID: 1, Policy: policy}, open(), c, ev, kvm1)
		s3 := New(Config{HostID: 3, Policy: policy}, open(), c, ev, kvm3)
		ctx := context.Background()
		if _, err := s1.Quarantine(ctx, "kvm3", "root"); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*Service{s1, s3} {
			if err := s.Round(ctx); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if kvm1.count() != 0 || kvm3.count() != 1 {
			t.Fatalf("evacuations kvm1 %d kvm3 %d, want 0 and 1", kvm1.count(), kvm3.count())
		}
		if o := kvm3.calls[0]; o.ColdMove || o.Unprotected || o.Parallel != 2 {
			t.Errorf("evacuation options %+v: want live migration of the protected VMs only, 2 at a time", o)
		}
		away = false
		if err := s3.Round(ctx); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if kvm3.count() != 1 {
			t.Errorf("with migrate_away off: %d evacuations, want none more", kvm3.count())
		}
	})
}

package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/test/cluster"
)

// Three heartbeat LUNs (issue 17, point 4): a host is alive while its heartbeat is fresh on two
// of them, so one LUN failing (zeroed header, hung I/O) moves nothing and is a warning; two
// failing are as losing the only LUN. Each host reaches each LUN through its own fault device
// (cluster.LUNs.SetMemberFault), as each host has its own SAN path to each array.

// threeLUNEnv starts a fast-profile cluster of three hosts and three heartbeat LUNs with two
// high-priority guests on its first host, healing every member's fault at the end.
func threeLUNEnv(t *testing.T, prefix string) (*Env, context.Context, *cluster.Host, []Guest) {
	t.Helper()
	e := startEnv(t, Options{Profile: "fast", HeartbeatLUNs: 3})
	ctx := ctxFor(t, 5*time.Minute)
	h1 := e.Hosts()[0]
	guests, err := e.NewGuests(ctx, h1, prefix, 2, "high")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitRunningOnce(ctx, 30*time.Second, guests); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range e.Hosts() {
			e.C.SetLUNFault(h, "")
		}
	})
	return e, ctx, h1, guests
}

// memberWarning is the status warning about heartbeat LUN member of 3, or "".
func memberWarning(ws []string, member int) string {
	for _, w := range ws {
		if strings.Contains(w, fmt.Sprintf("heartbeat LUN %d of 3", member)) {
			return w
		}
	}
	return ""
}

// waitMemberWarnings waits until every host's status warns about member and returns how long
// each took from t0.
func waitMemberWarnings(t *testing.T, ctx context.Context, e *Env, member int, t0 time.Time) map[string]time.Duration {
	t.Helper()
	noticed, err := whenWarned(ctx, e, t0, 20*time.Second, func(ws []string) string { return memberWarning(ws, member) })
	if err != nil {
		t.Errorf("not every host warned about heartbeat LUN %d: %v (warned: %v)", member, err, noticed)
	}
	return noticed
}

// aliveBy is how every host's status shows every host alive: viewer -> host -> AliveBy.
func aliveBy(ctx context.Context, e *Env) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, h := range e.Hosts() {
		if !h.WingmandRunning() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := e.Client(h).Status(sctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", h.Name(), err)
		}
		out[h.Name()] = map[string]string{}
		for _, sh := range s.Hosts {
			out[h.Name()][sh.Name] = sh.AliveBy
		}
	}
	return out, nil
}

// holdAliveBy samples every host's status for d and fails the test unless each shows every
// running host alive by one of want; it returns what it saw, for the log. It starts once a copy
// of a heartbeat written before the fault is no longer fresh (R + io_timeout).
func holdAliveBy(t *testing.T, ctx context.Context, e *Env, d time.Duration, want ...string) map[string]bool {
	t.Helper()
	observe(fastTimings.Renew + fastTimings.IOTimeout)
	seen := map[string]bool{}
	bad := 0
	for until := time.Now().Add(d); time.Now().Before(until); time.Sleep(500 * time.Millisecond) {
		m, err := aliveBy(ctx, e)
		if err != nil {
			t.Log(err)
			continue
		}
		for viewer, hosts := range m {
			for host, by := range hosts {
				seen[by] = true
				if !slices.Contains(want, by) && bad < 5 {
					bad++
					t.Errorf("%s shows %s alive by %q, want %q", viewer, host, by, want)
				}
			}
		}
	}
	return seen
}

// memberEvents are the lun-member-failed events since t0, by host name.
func memberEvents(t *testing.T, ctx context.Context, e *Env, from *cluster.Host, t0 time.Time, kind string) map[string]time.Duration {
	t.Helper()
	evs, err := e.Client(from).Events(ctx, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Duration{}
	for _, ev := range evs {
		if ev.Kind == kind {
			if _, ok := out[ev.HostName]; !ok {
				out[ev.HostName] = ev.Time.Sub(t0)
			}
		}
	}
	return out
}

// TestThreeLUNsOneHeaderZeroed: the first 4 KiB of one of three heartbeat LUNs are zeroed under
// the running cluster, as an operator's mistaken dd would. Every daemon warns about that LUN
// (status warning and event), nothing fails over, no guest stops, and every host shows every host
// alive by disk 2/3, for 3 × D. The never-two checker watches throughout.
func TestThreeLUNsOneHeaderZeroed(t *testing.T) {
	e, ctx, h1, guests := threeLUNEnv(t, "tz")
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	path := e.C.LUNs().Paths()[1]
	f, err := os.OpenFile(path, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := f.WriteAt(make([]byte, storage.BlockSize), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()

	took := waitMemberWarnings(t, ctx, e, 2, t0)
	seen := holdAliveBy(t, ctx, e, 3*fastTimings.Dead, "disk 2/3")
	t.Logf("header of LUN 2 (%s) zeroed: status warnings after %v; for 3 × D every host showed every host alive by %v",
		path, took, stateNames(seen))
	if evs := memberEvents(t, ctx, e, h1, t0, "lun-member-failed"); len(evs) != len(e.Hosts()) {
		t.Errorf("lun-member-failed events from %v, want one from every host", evs)
	} else {
		t.Logf("lun-member-failed events after %v", evs)
	}
	checkWatch(t, w)
	placedOn(t, e, guests, h1.Name())
	noFailoverEvents(t, ctx, e, e.Hosts()[1], t0)
}

// TestThreeLUNsOneBlocked: every I/O of every host to one of three heartbeat LUNs hangs for 3 ×
// D. Nothing fails over, nobody is fenced, and every host shows every host alive by a disk
// majority (disk 2/3), not by network leases. Then, the LUN still hung, the guests' host loses
// power: it is declared dead as usual and its guests run elsewhere.
func TestThreeLUNsOneBlocked(t *testing.T) {
	full(t)
	e, ctx, h1, guests := threeLUNEnv(t, "tb")
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	t0 := time.Now()
	for _, h := range e.Hosts() {
		if err := e.C.LUNs().SetMemberFault(h, 2, "hang"); err != nil {
			t.Fatal(err)
		}
	}
	took := waitMemberWarnings(t, ctx, e, 2, t0)
	seen := holdAliveBy(t, ctx, e, 3*fastTimings.Dead, "disk 2/3")
	t.Logf("LUN 2 hung on every host: status warnings after %v; for 3 × D every host showed every host alive by %v", took, stateNames(seen))
	checkWatch(t, w)
	placedOn(t, e, guests, h1.Name())
	noFailoverEvents(t, ctx, e, e.Hosts()[1], t0)

	w = e.StartWatch(guests, WatchOptions{})
	t1 := time.Now()
	if err := e.PowerOff(h1); err != nil {
		t.Fatal(err)
	}
	p, err := e.WaitRunningOnce(ctx, 90*time.Second, guests, h1)
	lost := time.Since(t1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("LUN 2 still hung: power loss of %s, every protected VM running again after %v: %v", h1.Name(), lost.Round(time.Millisecond), p)
	if bound := fastTimings.Dead + 10*time.Second; lost > bound {
		t.Errorf("failover took %v, over D + 10 s = %v", lost, bound)
	}
	observe(2 * time.Second)
	checkWatch(t, w)
}

// TestThreeLUNsCrossedPaths: the guests' host loses its path to LUN 3 and another host its path
// to LUN 1, for 3 × D: each still reads and writes two LUNs, and any two a host reads include one
// that took each of the other's counted writes, so nothing moves and nobody is declared dead.
// (Merging a slot as the newest record two LUNs hold, the two hosts declared each other dead
// here and the guests ran twice.)
func TestThreeLUNsCrossedPaths(t *testing.T) {
	full(t)
	e, ctx, h1, guests := threeLUNEnv(t, "tx")
	h2 := e.Hosts()[1]
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	t0 := time.Now()
	if err := e.C.LUNs().SetMemberFault(h1, 3, "hang"); err != nil {
		t.Fatal(err)
	}
	if err := e.C.LUNs().SetMemberFault(h2, 1, "hang"); err != nil {
		t.Fatal(err)
	}
	seen := holdAliveBy(t, ctx, e, 3*fastTimings.Dead, "disk 2/3", "disk 3/3")
	t.Logf("%s without LUN 3 and %s without LUN 1: for 3 × D every host showed every host alive by %v",
		h1.Name(), h2.Name(), stateNames(seen))
	healed(t, ctx, e, w, guests, h1, t0, func() error {
		if err := e.C.LUNs().SetMemberFault(h1, 3, ""); err != nil {
			return err
		}
		return e.C.LUNs().SetMemberFault(h2, 1, "")
	})
}

// TestThreeLUNsTwoBlocked: two of three heartbeat LUNs hang on every host for 3 × D: the same as
// losing the only LUN (TestLUNBlockedEverywhere): every host keeps its guests on network leases,
// nobody is declared dead, nothing fails over; when the LUNs come back all carries on.
func TestThreeLUNsTwoBlocked(t *testing.T) {
	full(t)
	e, ctx, h1, guests := threeLUNEnv(t, "t2")
	lunLostEverywhere(t, ctx, e, h1, guests, func(h *cluster.Host, spec string) error {
		if err := e.C.LUNs().SetMemberFault(h, 2, spec); err != nil {
			return err
		}
		return e.C.LUNs().SetMemberFault(h, 3, spec)
	})
}

// TestLUNBlockedEverywhere: the only heartbeat LUN hangs on every host for 3 × D (a SAN outage
// shorter than the network-lease ceiling): every host keeps its guests on network leases, nobody
// is declared dead, nothing fails over. The outcome that TestThreeLUNsTwoBlocked must match.
func TestLUNBlockedEverywhere(t *testing.T) {
	full(t)
	e, ctx, h1, guests := lunFaultEnv(t, "le")
	lunLostEverywhere(t, ctx, e, h1, guests, func(h *cluster.Host, spec string) error { return e.C.SetLUNFault(h, spec) })
}

// lunLostEverywhere breaks the heartbeat storage of every host with fault for 3 × D and checks
// the outcome of losing the LUN: every host on a network lease, shown alive by it, no verdict, no
// guest stopped or started; then heals it and checks the cluster is healthy again.
func lunLostEverywhere(t *testing.T, ctx context.Context, e *Env, h1 *cluster.Host, guests []Guest, fault func(*cluster.Host, string) error) {
	t.Helper()
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	t0 := time.Now()
	for _, h := range e.Hosts() {
		if err := fault(h, "hang"); err != nil {
			t.Fatal(err)
		}
	}
	leased := map[string]time.Duration{}
	states := map[string]bool{}
	for until := time.Now().Add(3 * fastTimings.Dead); time.Now().Before(until); time.Sleep(250 * time.Millisecond) {
		for _, h := range e.Hosts() {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			s, err := e.Client(h).Status(sctx)
			cancel()
			if err != nil {
				continue
			}
			if _, ok := leased[h.Name()]; !ok && s.LUN.NetworkLease {
				leased[h.Name()] = time.Since(t0)
			}
			for _, sh := range s.Hosts {
				if sh.Name != h.Name() && time.Since(t0) > fastTimings.Dead {
					states[sh.State+" by "+orNone(sh.AliveBy)] = true
				}
			}
		}
	}
	t.Logf("heartbeat storage hung on every host for %v: network leases held after %v; past D, peers seen as %v",
		time.Since(t0).Round(time.Millisecond), leased, stateNames(states))
	if len(leased) != len(e.Hosts()) {
		t.Errorf("network leases held by %v, want every host", leased)
	}
	for st := range states {
		if !strings.HasSuffix(st, " by network lease") {
			t.Errorf("past D, a host was seen %s while every host lost the LUN; want alive by network lease only", st)
		}
	}
	healed(t, ctx, e, w, guests, h1, t0, func() error {
		for _, h := range e.Hosts() {
			if err := fault(h, ""); err != nil {
				return err
			}
		}
		return nil
	})
}

// healed heals a LUN fault with heal and checks that, since t0, nothing moved: the cluster is
// healthy again, the checker saw no violation, the guests still run on h1 alone, and no host
// was fenced or declared dead and no guest started.
func healed(t *testing.T, ctx context.Context, e *Env, w *Watch, guests []Guest, h1 *cluster.Host, t0 time.Time, heal func() error) {
	t.Helper()
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitHealthy(ctx, e.Hosts()...); err != nil {
		t.Fatal(err)
	}
	observe(2 * time.Second)
	checkWatch(t, w)
	placedOn(t, e, guests, h1.Name())
	noFailoverEvents(t, ctx, e, e.Hosts()[1], t0)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

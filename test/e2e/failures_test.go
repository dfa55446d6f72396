package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/test/cluster"
)

// fastD is D of the fast timing profile (storage.FastTimings): the longest a lost host's VMs
// wait for a verdict without a fence agent or a poison pill.
const fastD = 7500 * time.Millisecond

// eventsSince reads the event log from h's wingmand since t0 and writes it to the test log.
func eventsSince(t *testing.T, ctx context.Context, e *Env, h *cluster.Host, t0 time.Time) []Event {
	t.Helper()
	evs, err := e.Client(h).Events(ctx, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		t.Log(FormatEvent(ev))
	}
	return evs
}

// countKind counts the events of kind in evs; with vmOnly, only those that name a VM.
func countKind(evs []Event, kind string, vmOnly bool) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == kind && (ev.VM != "" || !vmOnly) {
			n++
		}
	}
	return n
}

// dirtyingBootSector is a 512-byte MBR whose code, forever, rewrites the 512 KiB of guest RAM at
// 0x10000..0x8FFFF with a value that changes at every pass. A live migration of such a guest
// limited to a few MiB/s never converges: it stays in flight until it is cancelled or fails,
// which is how a test hits it "mid-flight" without a race.
var dirtyingBootSector = func() []byte {
	code := []byte{
		0xFC,             // cld
		0x42,             // top: inc dx
		0xBB, 0x00, 0x10, // mov bx,0x1000
		0x8E, 0xC3, // seg: mov es,bx
		0x31, 0xFF, // xor di,di
		0x89, 0xD0, // mov ax,dx
		0xB9, 0x00, 0x80, // mov cx,0x8000  (32 Ki words = 64 KiB)
		0xF3, 0xAB, // rep stosw
		0x81, 0xC3, 0x00, 0x10, // add bx,0x1000
		0x81, 0xFB, 0x00, 0x90, // cmp bx,0x9000
		0x72, 0xEB, // jb seg
		0xEB, 0xE5, // jmp top
	}
	b := make([]byte, 512)
	copy(b, code)
	b[510], b[511] = 0x55, 0xAA
	return b
}()

// makeDirtying turns g, running on h, into a guest that keeps dirtying its memory: it writes
// dirtyingBootSector over its disk's boot sector and resets it (same QEMU process, no stop).
func makeDirtying(ctx context.Context, h *cluster.Host, g Guest) error {
	f, err := os.OpenFile(g.Spec.Disk, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(dirtyingBootSector, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if out, err := Virsh(ctx, h, "reset", g.Name); err != nil {
		return fmt.Errorf("reset %s: %w: %s", g.Name, err, out)
	}
	return nil
}

// jobInfo returns virsh domjobinfo's fields for name on h ("Job type", "Data processed", ...).
func jobInfo(ctx context.Context, h *cluster.Host, name string) map[string]string {
	out, err := Virsh(ctx, h, "domjobinfo", name)
	m := map[string]string{}
	if err != nil {
		return m
	}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// TestMigrationDestinationPowerLoss: the destination host loses power while a live migration to
// it is in flight. The guest goes on running on the source, never stops, never runs twice and is
// not restarted; the source keeps owning it; the lost host's verdict comes at D and the cluster
// takes the host back when it boots again.
func TestMigrationDestinationPowerLoss(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 1, Policy{Priority: "high"}, "md")
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	g := guests[0]
	if err := makeDirtying(ctx, h1, g); err != nil {
		t.Fatal(err)
	}
	if out, err := Virsh(ctx, h1, "migrate-setspeed", g.Name, "--bandwidth", "2"); err != nil {
		t.Fatalf("limit the migration to 2 MiB/s: %v: %s", err, out)
	}
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	type result struct {
		res MigrateResult
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		r, err := e.Client(h1).Migrate(ctx, g.Name, MigrateRequest{Target: h2.Name()})
		done <- result{r, err, time.Now()}
	}()
	// Mid-flight: the source's migration job has moved data for a second.
	var job map[string]string
	if err := Poll(ctx, 30*time.Second, 50*time.Millisecond, func() (bool, error) {
		select {
		case r := <-done:
			return false, fmt.Errorf("the migration ended before the destination could be killed (make it slower): %+v, %v", r.res, r.err)
		default:
		}
		job = jobInfo(ctx, h1, g.Name)
		var ms int
		fmt.Sscanf(job["Time elapsed"], "%d ms", &ms)
		return job["Job type"] == "Unbounded" && ms >= 1000, nil
	}); err != nil {
		t.Fatalf("no migration in flight on %s: %v (last job info %v)", h1.Name(), err, job)
	}
	t.Logf("migration in flight, job on %s: %v", h1.Name(), job)
	t0 := time.Now()
	if err := e.PowerOff(h2); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the migration call has not returned 2 min after %s lost power", h2.Name())
	}
	t.Logf("migration call returned %v after the power loss: %+v, err %v", r.at.Sub(t0).Round(time.Millisecond), r.res, r.err)
	if r.err == nil {
		t.Errorf("the migration to the powered-off %s reported success", h2.Name())
	}
	// Past the lost host's verdict: nothing may restart the guest that never left.
	if err := Poll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
		st, _ := e.HostState(ctx, h3, h2)
		return st == "dead", nil
	}); err != nil {
		t.Errorf("%s never declared the powered-off %s dead: %v", h3.Name(), h2.Name(), err)
	}
	t.Logf("%s dead after %v", h2.Name(), time.Since(t0).Round(time.Millisecond))
	observe(3 * time.Second)
	placedOn(t, e, guests, h1.Name())
	if err := Poll(ctx, 20*time.Second, 100*time.Millisecond, func() (bool, error) {
		v, err := e.Client(h1).VM(ctx, g.Name)
		return err == nil && v.OwnerName == h1.Name() && !strings.HasPrefix(v.Migration, "started"), nil
	}); err != nil {
		v, _ := e.Client(h1).VM(ctx, g.Name)
		t.Errorf("the LUN record of %s: owner %q, migration %q; want owner %s and no migration in flight: %v", g.Name, v.OwnerName, v.Migration, h1.Name(), err)
	}
	if err := e.PowerOnAndRejoin(ctx, h2); err != nil {
		t.Fatal(err)
	}
	observe(time.Second)
	checkWatch(t, w)
	placedOn(t, e, guests, h1.Name())
	evs := eventsSince(t, ctx, e, h1, t0)
	noRestartEvents(t, removeKind(evs, "migration-failed"), guests)
}

// removeKind returns evs without the events of kind.
func removeKind(evs []Event, kind string) []Event {
	var out []Event
	for _, ev := range evs {
		if ev.Kind != kind {
			out = append(out, ev)
		}
	}
	return out
}

// TestSecondPowerLoss: in a 3-host cluster one host loses power and, after its VMs have been
// restarted, a second one does: the last host standing takes every VM (the first host's verdict
// took it out of the vote, DESIGN.md "Host states"), each within the bound, never two copies.
func TestSecondPowerLoss(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 2, Policy{Priority: "high"}, "sa", "sb")
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	w := e.StartWatch(guests, WatchOptions{})
	bound := fastD + 10*time.Second
	start := time.Now()
	for _, lost := range []*cluster.Host{h1, h2} {
		var off []*cluster.Host
		for _, h := range e.Hosts() {
			if !h.On() || h == lost {
				off = append(off, h)
			}
		}
		t0 := time.Now()
		if err := e.PowerOff(lost); err != nil {
			t.Fatal(err)
		}
		p, err := e.WaitRunningOnce(ctx, 90*time.Second, guests, off...)
		took := time.Since(t0)
		if err != nil {
			t.Fatalf("after the power loss of %s: %v", lost.Name(), err)
		}
		t.Logf("power loss of %s: every protected VM running again after %v: %v", lost.Name(), took.Round(time.Millisecond), p)
		if took > bound {
			t.Errorf("failover after the power loss of %s took %v, over D + 10 s = %v", lost.Name(), took, bound)
		}
	}
	placedOn(t, e, guests, h3.Name())
	observe(2 * time.Second)
	checkWatch(t, w)
	if st, err := e.Client(h3).Status(ctx); err != nil {
		t.Fatal(err)
	} else if !st.Quorate || !st.MayRunVMs {
		t.Errorf("the last host %s: quorate %v, may run VMs %v", h3.Name(), st.Quorate, st.MayRunVMs)
	}
	eventsSince(t, ctx, e, h3, start)
}

// isolate cuts h off the network and waits until other sees it isolated (not alive).
func isolate(t *testing.T, ctx context.Context, e *Env, h, other *cluster.Host) {
	t.Helper()
	if err := e.C.Partition(h); err != nil {
		t.Fatal(err)
	}
	var state string
	if err := Poll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
		state, _ = e.HostState(ctx, other, h)
		return state != "alive", nil
	}); err != nil {
		t.Fatalf("%s still sees %s alive: %v", other.Name(), h.Name(), err)
	}
	t.Logf("%s sees the partitioned %s as %q", other.Name(), h.Name(), state)
}

// heal puts h back on the network and rejoins it (rejoinAfterFault).
func heal(t *testing.T, ctx context.Context, e *Env, h *cluster.Host) {
	t.Helper()
	if err := e.C.Heal(h); err != nil {
		t.Fatal(err)
	}
	rejoinAfterFault(t, ctx, e, h)
}

// rejoinAfterFault starts h's wingmand again if it ended (the software watchdog may end it,
// exit 70, once it has stopped its guests) and waits until the whole cluster is healthy.
func rejoinAfterFault(t *testing.T, ctx context.Context, e *Env, h *cluster.Host) {
	t.Helper()
	if !h.WingmandRunning() {
		t.Logf("wingmand of %s had ended; starting it again", h.Name())
		if err := e.C.StartWingmand(ctx, h, e.WingmandOptions()); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.WaitHealthy(ctx, e.Hosts()...); err != nil {
		t.Fatal(err)
	}
}

// TestIsolationLeaveRunning: a host cut off the network but still writing the LUN is isolated,
// not dead: with the isolation response leave-running nothing restarts, its guests never stop,
// and after the heal all is as before.
func TestIsolationLeaveRunning(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 2, Policy{Priority: "high", Isolation: "leave-running"}, "il")
	h1, h2 := e.Hosts()[0], e.Hosts()[1]
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	t0 := time.Now()
	isolate(t, ctx, e, h1, h2)
	observe(fastD + 3*time.Second) // past D: an isolated host is never declared dead
	if state, _ := e.HostState(ctx, h2, h1); state == "dead" {
		t.Errorf("%s declared the isolated %s dead although it writes the LUN", h2.Name(), h1.Name())
	}
	placedOn(t, e, guests, h1.Name())
	heal(t, ctx, e, h1)
	observe(2 * time.Second)
	checkWatch(t, w)
	placedOn(t, e, guests, h1.Name())
	evs := eventsSince(t, ctx, e, h2, t0)
	if kept := countKind(evs, "isolation-kept", true); kept != len(guests) {
		t.Errorf("%d isolation-kept events (the isolated host applied leave-running), want %d", kept, len(guests))
	}
	noRestartEvents(t, evs, guests)
}

// TestIsolationStop: with the isolation response stop, the isolated host (told by a poison pill
// through its LUN mailbox) stops its guests and they restart on the others, never two at once;
// the test logs the time from the cut to every guest running again (isolation-to-restart).
func TestIsolationStop(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 2, Policy{Priority: "high", Isolation: "stop"}, "is")
	h1, h2 := e.Hosts()[0], e.Hosts()[1]
	w := e.StartWatch(guests, WatchOptions{})
	t0 := time.Now()
	if err := e.C.Partition(h1); err != nil {
		t.Fatal(err)
	}
	p, err := e.WaitRunningOnce(ctx, 60*time.Second, guests, h1)
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("isolation-to-restart: every guest of the isolated %s running again after %v: %v", h1.Name(), took.Round(time.Millisecond), p)
	if bound := fastD + 10*time.Second; took > bound {
		t.Errorf("isolation-to-restart took %v, over D + 10 s = %v", took, bound)
	}
	observe(2 * time.Second)
	heal(t, ctx, e, h1)
	observe(2 * time.Second)
	checkWatch(t, w)
	if _, err := e.WaitRunningOnce(ctx, 5*time.Second, guests, h1); err != nil {
		t.Errorf("after the heal: %v", err)
	}
	// The isolated host's own "isolated" event names no VM and is not counted.
	evs := eventsSince(t, ctx, e, h2, t0)
	if n := countKind(evs, "isolated", true); n != len(guests) {
		t.Errorf("%d isolated events (guest stopped by its isolated host), want %d", n, len(guests))
	}
}

// qemuOf finds the QEMU processes of guests on h: guest name to PID, for those that have one.
func qemuOf(t *testing.T, h *cluster.Host, guests []Guest) map[string]int {
	t.Helper()
	procs, err := h.Processes()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range procs {
		for _, g := range guests {
			if strings.Contains(p.Cmdline, "guest="+g.Name+",") {
				out[g.Name] = p.PID
			}
		}
	}
	return out
}

// TestLibvirtdCrash: libvirtd is killed on a host and stays down for longer than D: its guests
// keep running (their QEMU processes live on), nothing fails over, and when libvirtd is back
// wingmand works through it again (it reports the guests and live-migrates one).
func TestLibvirtdCrash(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 2, Policy{Priority: "high"}, "lc")
	h1, h2 := e.Hosts()[0], e.Hosts()[1]
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	t0 := time.Now()
	if err := e.C.KillLibvirtd(h1); err != nil {
		t.Fatal(err)
	}
	observe(fastD + 2*time.Second)
	if q := qemuOf(t, h1, guests); len(q) != len(guests) {
		t.Errorf("with libvirtd down, QEMU runs on %s only for %v, want all %d guests", h1.Name(), q, len(guests))
	}
	if st, _ := e.HostState(ctx, h2, h1); st != "alive" {
		t.Errorf("%s sees %s %q while only its libvirtd is down, want alive", h2.Name(), h1.Name(), st)
	}
	p, _ := e.Running(ctx) // h1 cannot answer: the others must not run its guests
	for _, g := range guests {
		if len(p[g.UUID]) > 0 {
			t.Errorf("%s runs on %v while %s's libvirtd is down", g.Name, p[g.UUID], h1.Name())
		}
	}
	if err := e.C.RestartLibvirtd(ctx, h1); err != nil {
		t.Fatal(err)
	}
	t.Logf("libvirtd of %s down for %v", h1.Name(), time.Since(t0).Round(time.Millisecond))
	// The harness's own libvirt connection to h1 redials in the background too.
	if _, err := e.WaitRunningOnce(ctx, 30*time.Second, guests); err != nil {
		t.Fatal(err)
	}
	placedOn(t, e, guests, h1.Name())
	var last string
	if err := Poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, error) {
		for _, g := range guests {
			v, err := e.Client(h1).VM(ctx, g.Name)
			if err != nil || v.State != "running" {
				last = fmt.Sprintf("%s: %q %v", g.Name, v.State, err)
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("wingmand of %s does not report its guests running after libvirtd came back: %v (last: %s)", h1.Name(), err, last)
	}
	reconnected := time.Since(t0)
	res, err := e.Client(h1).Migrate(ctx, guests[0].Name, MigrateRequest{Target: h2.Name()})
	if err != nil {
		t.Fatalf("live migration through the restarted libvirtd: %v", err)
	}
	t.Logf("wingmand works through the new libvirtd %v after the kill: migrated %s to %s in %v", reconnected.Round(time.Millisecond), res.VM, res.To, res.Duration)
	observe(time.Second)
	checkWatch(t, w)
	placedOn(t, e, guests[1:], h1.Name())
	placedOn(t, e, guests[:1], h2.Name())
	evs := eventsSince(t, ctx, e, h2, t0)
	noRestartEvents(t, evs, guests)
}

// TestTwoPowerLossesAtOnce: two hosts of three lose power at the same moment. The last host
// cannot tell them from a majority that still holds network leases it cannot see, so it restarts
// nothing at D (DESIGN.md: a minority that cannot prove the others dead does nothing; quorum's
// hiddenLeaseCheck) and not before the network-lease ceiling plus D (60 s + D here; after that
// it restarts them alone: TestTwoHostsAtOnceRestartAfterCeiling, or at once after a confirm-off:
// TestTwoHostsAtOnceConfirmOff). When one of the two boots again within that, the cluster is
// quorate again and every VM runs once more, never two copies.
func TestTwoPowerLossesAtOnce(t *testing.T) {
	full(t)
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 1, Policy{Priority: "high"}, "ta", "tb")
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	w := e.StartWatch(guests, WatchOptions{})
	t0 := time.Now()
	errs := make(chan error, 2)
	for _, h := range []*cluster.Host{h1, h2} {
		go func() { errs <- e.PowerOff(h) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	observe(2*fastD + 2*time.Second) // well past D: the last host must still wait
	noneRestarted(t, ctx, e, guests, "although the last host cannot prove both lost hosts dead")
	for _, h := range []*cluster.Host{h1, h2} {
		st, _ := e.HostState(ctx, h3, h)
		t.Logf("%v after the double power loss %s sees %s %q", time.Since(t0).Round(time.Millisecond), h3.Name(), h.Name(), st)
		if st == "dead" {
			t.Errorf("%s declared %s dead without proof that no lease it cannot see keeps it running", h3.Name(), h.Name())
		}
	}
	t1 := time.Now()
	if err := e.C.PowerOn(ctx, h1); err != nil {
		t.Fatal(err)
	}
	if err := e.C.StartWingmand(ctx, h1, e.WingmandOptions()); err != nil {
		t.Fatal(err)
	}
	p, err := e.WaitRunningOnce(ctx, 60*time.Second, guests, h2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s booted again: every VM running after %v: %v", h1.Name(), time.Since(t1).Round(time.Millisecond), p)
	observe(2 * time.Second)
	checkWatch(t, w)
	eventsSince(t, ctx, e, h3, t0)
}

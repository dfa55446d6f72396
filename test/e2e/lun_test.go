package e2e

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/test/cluster"
)

// Heartbeat LUN faults on one host. There is no device-mapper here (no dm-error, no dm-delay)
// and the LUN is a file every host shares, so a failed SAN path of one host is faked at that
// seam only: the test cluster's wingmand is built with -tags wingman_faults and wraps its LUN
// device in storagetest's fault device (cluster.SetLUNFault). Everything else is real.

// fast is the fast profile's timing rule, which these scenarios run with.
var fastTimings = storage.FastTimings()

// nothingHappens are the events of a failover or a fence: none may appear while a fault
// below the fence threshold lasts.
var nothingHappens = map[string]bool{"self-fence": true, "self-fence-failed": true, "declared-dead": true,
	"power-fence": true, "pill-sent": true, "isolated": true, "started": true, "restarted": true}

// lunFaultEnv starts a fast-profile cluster with two high-priority guests on its first host.
func lunFaultEnv(t *testing.T, prefix string) (*Env, context.Context, *cluster.Host, []Guest) {
	t.Helper()
	e := startEnv(t, Options{Profile: "fast"})
	ctx := ctxFor(t, 5*time.Minute)
	h1 := e.Hosts()[0]
	guests, err := e.NewGuests(ctx, h1, prefix, 2, "high")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitRunningOnce(ctx, 30*time.Second, guests); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.C.SetLUNFault(h1, "") })
	return e, ctx, h1, guests
}

// logSince is what h's wingmand wrote to its log after offset.
func logSince(h *cluster.Host, offset int64) string {
	b, err := os.ReadFile(h.WingmandLog())
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

func logSize(h *cluster.Host) int64 {
	st, err := os.Stat(h.WingmandLog())
	if err != nil {
		return 0
	}
	return st.Size()
}

// TestLUNErrorsIsolatedHost: every LUN I/O of one host fails (EIO) and the host is also cut
// off the network, so no network lease can keep it going: it must self-fence within F (destroy
// its protected guests), and the others restart them once its heartbeat has been still for D.
// Never two copies; after the heal the host rejoins and nothing runs twice.
func TestLUNErrorsIsolatedHost(t *testing.T) {
	full(t)
	lunFaultSelfFence(t, "eio", "le")
}

// TestLUNHangIsolatedHost is TestLUNErrorsIsolatedHost with LUN I/O that never returns: the
// daemon's I/O timeout must turn the hang into failed heartbeats and the same self-fence.
func TestLUNHangIsolatedHost(t *testing.T) {
	full(t)
	lunFaultSelfFence(t, "hang", "lh")
}

func lunFaultSelfFence(t *testing.T, fault, prefix string) {
	e, ctx, h1, guests := lunFaultEnv(t, prefix)
	h2 := e.Hosts()[1]
	w := e.StartWatch(guests, WatchOptions{})
	logAt := logSize(h1)

	t0 := time.Now()
	heal := cutOff(t, ctx, e, h1, fault)

	// The host's own guests stop: the self-fence.
	var fenced time.Duration
	if err := Poll(ctx, 30*time.Second, 50*time.Millisecond, func() (bool, error) {
		p, err := e.Running(ctx)
		if err != nil {
			return false, nil
		}
		for _, g := range guests {
			for _, h := range p[g.UUID] {
				if h == h1.Name() {
					return false, nil
				}
			}
		}
		fenced = time.Since(t0)
		return true, nil
	}); err != nil {
		t.Fatalf("the guests of %s with LUN %s and no network still run there: %v", h1.Name(), fault, err)
	}
	t.Logf("LUN %s + network cut on %s: its guests stopped after %v (F = %v)", fault, h1.Name(), fenced.Round(time.Millisecond), fastTimings.SelfFence)
	// The self-fence is decided at the start of a heartbeat cycle; a cycle whose I/O hangs lasts
	// io_timeout, so the decision may come up to io_timeout after F (D allows for it).
	bound := fastTimings.SelfFence + time.Second
	if fault == "hang" {
		bound += fastTimings.IOTimeout
	}
	if fenced > bound {
		t.Errorf("self-fence after %v: over %v", fenced.Round(time.Millisecond), bound)
	}

	p, err := e.WaitRunningOnce(ctx, 60*time.Second, guests, h1)
	back := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("LUN %s on %s: every protected guest running again after %v: %v", fault, h1.Name(), back.Round(time.Millisecond), p)
	// D counts from the host's last heartbeat write, which came up to R before the fault: a
	// restart sooner than D - R after the fault was not proven by the LUN.
	if early := fastTimings.Dead - fastTimings.Renew; back < early {
		t.Errorf("guests restarted %v after the fault, before D - R = %v: the host was never proven dead", back.Round(time.Millisecond), early)
	}
	if bound := fastTimings.Dead + 10*time.Second; back > bound {
		t.Errorf("failover took %v, over D + 10 s = %v", back.Round(time.Millisecond), bound)
	}
	log := logSince(h1, logAt)
	if !strings.Contains(log, "SELF-FENCE") {
		t.Errorf("%s's wingmand log has no SELF-FENCE line after the fault", h1.Name())
	}
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "SELF-FENCE") {
			t.Logf("%s: %s", h1.Name(), l)
			break
		}
	}
	evs, err := e.Client(h2).Events(ctx, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		t.Log(FormatEvent(ev))
	}

	// Heal: the path and the network come back; the fenced host rejoins without its old guests.
	heal(w, guests)
}

// cutOff breaks h's heartbeat LUN path with fault and takes h off the network. The function it
// returns heals both, waits until h is back in the cluster, then checks the never-two watch w
// and that every guest runs exactly once; if the test ends before, a cleanup heals the network.
func cutOff(t *testing.T, ctx context.Context, e *Env, h *cluster.Host, fault string) func(w *Watch, guests []Guest) {
	t.Helper()
	if err := e.C.SetLUNFault(h, fault); err != nil {
		t.Fatal(err)
	}
	if err := e.C.Partition(h); err != nil {
		t.Fatal(err)
	}
	healed := false
	t.Cleanup(func() {
		if !healed {
			e.C.Heal(h)
		}
	})
	return func(w *Watch, guests []Guest) {
		t.Helper()
		observe(2 * time.Second)
		if err := e.C.SetLUNFault(h, ""); err != nil {
			t.Fatal(err)
		}
		if err := e.C.Heal(h); err != nil {
			t.Fatal(err)
		}
		healed = true
		rejoin(t, ctx, e, h)
		observe(3 * time.Second)
		checkWatch(t, w)
		if _, err := e.WaitRunningOnce(ctx, 10*time.Second, guests, h); err != nil {
			t.Fatal(err)
		}
	}
}

// rejoin waits until h is back in the cluster. A self-fenced wingmand stops petting its
// watchdog and exits when the software watchdog expires; a wingmand that finds its generation
// declared dead exits asking to be started again (systemd would): start it until it stays.
func rejoin(t *testing.T, ctx context.Context, e *Env, h *cluster.Host) {
	t.Helper()
	if h.WingmandRunning() && e.WaitHealthy(ctx, e.Hosts()...) == nil {
		t.Logf("%s rejoined with the wingmand that fenced it", h.Name())
		return
	}
	if !h.WingmandRunning() {
		t.Logf("%s's wingmand has exited (its watchdog expired after the self-fence): starting it again", h.Name())
	}
	for attempt := 1; ; attempt++ {
		if h.WingmandRunning() {
			if err := e.C.StopWingmand(h, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		err := e.C.StartWingmand(ctx, h, e.WingmandOptions())
		if err == nil {
			break
		}
		t.Logf("start wingmand on %s (attempt %d): %v", h.Name(), attempt, err)
		if attempt == 2 {
			t.Fatal(err)
		}
	}
	if err := e.WaitHealthy(ctx, e.Hosts()...); err != nil {
		t.Fatal(err)
	}
}

// TestLUNErrorsKeepLease: every LUN I/O of one host fails but the host still talks to the
// others. DESIGN.md: losing the heartbeat LUN is not losing the host; it keeps its guests on a
// network lease granted by the majority, which then never declares it dead. Nothing stops,
// nothing restarts, for longer than D; when the path comes back all carries on.
func TestLUNErrorsKeepLease(t *testing.T) {
	full(t)
	e, ctx, h1, guests := lunFaultEnv(t, "ll")
	h2 := e.Hosts()[1]
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	logAt := logSize(h1)
	t0 := time.Now()
	if err := e.C.SetLUNFault(h1, "eio"); err != nil {
		t.Fatal(err)
	}
	// Past D with the fault, watching the host states as the others see them.
	states := map[string]bool{}
	leased := false
	until := time.Now().Add(fastTimings.Dead + 3*time.Second)
	for time.Now().Before(until) {
		if st, err := e.HostState(ctx, h2, h1); err == nil {
			states[st] = true
		}
		if s, err := e.Client(h1).Status(ctx); err == nil && s.LUN.NetworkLease {
			leased = true
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("with every LUN I/O of %s failing for %v: %s saw it as %v; network lease held: %v", h1.Name(),
		time.Since(t0).Round(time.Millisecond), h2.Name(), stateNames(states), leased)
	if states["dead"] {
		t.Errorf("%s declared %s dead although it held a network lease", h2.Name(), h1.Name())
	}
	if !leased {
		t.Errorf("%s never reported a network lease while its LUN failed", h1.Name())
	}
	if log := logSince(h1, logAt); strings.Contains(log, "SELF-FENCE") {
		t.Errorf("%s self-fenced although the majority granted it a network lease", h1.Name())
	}
	placedOn(t, e, guests, h1.Name())
	healed(t, ctx, e, w, guests, h1, t0, func() error { return e.C.SetLUNFault(h1, "") })
}

// TestLUNWriteLatencyBelowF: every heartbeat LUN write of one host takes 0.8 x io_timeout, close
// to counting as failed but below it, for longer than D. Nothing happens: no self-fence, no
// verdict, no restart, every guest keeps running, the daemon stays up; the host's status warns.
func TestLUNWriteLatencyBelowF(t *testing.T) {
	full(t)
	lunLatencyNothingHappens(t, "latency "+(fastTimings.IOTimeout*8/10).String()+" writes", "lw", true)
}

// TestLUNLatencyBelowF: every LUN I/O (reads and writes) of one host takes 20 ms, a slow SAN
// path far below io_timeout and F. Nothing may happen. (It found the VM manager's step, which
// reads every VM record, 768 I/Os, starving the watchdog guard: the daemon destroyed its
// guests at 20 ms of latency.)
func TestLUNLatencyBelowF(t *testing.T) {
	full(t)
	lunLatencyNothingHappens(t, "latency 20ms", "lt", false)
}

// lunLatencyNothingHappens holds fault on the first host's LUN path for longer than D and
// checks that nothing happens; with wantWarning the host's status must warn about the latency.
func lunLatencyNothingHappens(t *testing.T, fault, prefix string, wantWarning bool) {
	e, ctx, h1, guests := lunFaultEnv(t, prefix)
	h2 := e.Hosts()[1]
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	logAt := logSize(h1)
	t0 := time.Now()
	if err := e.C.SetLUNFault(h1, fault); err != nil {
		t.Fatal(err)
	}
	states := map[string]bool{}
	var warnings []string
	var worst time.Duration
	statusErrs := 0
	until := time.Now().Add(fastTimings.Dead + 5*time.Second)
	for time.Now().Before(until) {
		if st, err := e.HostState(ctx, h2, h1); err == nil {
			states[st] = true
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := e.Client(h1).Status(sctx)
		cancel()
		if err != nil {
			statusErrs++
		} else {
			worst = max(worst, s.LUN.WriteLatencyHi)
			for _, w := range s.Warnings {
				if strings.Contains(w, "LUN latency") && !slices.Contains(warnings, w) {
					warnings = append(warnings, w)
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("LUN %s on %s for %v: %s saw it as %v; worst heartbeat renewal %v; %d status calls failed; latency warnings %q",
		fault, h1.Name(), time.Since(t0).Round(time.Millisecond), h2.Name(), stateNames(states), worst, statusErrs, warnings)
	if len(states) != 1 || !states["alive"] {
		t.Errorf("%s saw %s as %v, want alive throughout", h2.Name(), h1.Name(), stateNames(states))
	}
	if wantWarning && len(warnings) == 0 {
		t.Errorf("%s's status never warned about the LUN latency (worst renewal %v)", h1.Name(), worst)
	}
	log := logSince(h1, logAt)
	for _, bad := range []string{"SELF-FENCE", "watchdog expired"} {
		if i := strings.Index(log, bad); i >= 0 {
			line := log[strings.LastIndex(log[:i], "\n")+1:]
			if n := strings.IndexByte(line, '\n'); n >= 0 {
				line = line[:n]
			}
			t.Errorf("%s with LUN %s: %s", h1.Name(), fault, line)
		}
	}
	if !h1.WingmandRunning() {
		t.Errorf("%s's wingmand exited with LUN %s", h1.Name(), fault)
	}
	if err := e.C.SetLUNFault(h1, ""); err != nil {
		t.Fatal(err)
	}
	observe(2 * time.Second)
	checkWatch(t, w)
	placedOn(t, e, guests, h1.Name())
	noFailoverEvents(t, ctx, e, h2, t0)
}

// noFailoverEvents fails the test on any fence or restart event since t0.
func noFailoverEvents(t *testing.T, ctx context.Context, e *Env, from *cluster.Host, t0 time.Time) {
	t.Helper()
	evs, err := e.Client(from).Events(ctx, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		t.Log(FormatEvent(ev))
		if nothingHappens[ev.Kind] {
			t.Errorf("unexpected event: %s", FormatEvent(ev))
		}
	}
}

func stateNames(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/test/cluster"
)

// TestRollingUpdate: `wingman rolling-update` (the real CLI binary, talking to kvm1's wingmand)
// patches the three hosts one at a time with a harmless command: each host is emptied by live
// migration, runs the command through its own wingmand, and takes its guest back. The 100 ms
// watch sees no guest stop and never two copies.
func TestRollingUpdate(t *testing.T) {
	full(t)
	testRollingUpdate(t, false)
}

// TestRollingUpdateReboot: the same with --reboot: the harness power-cycles each host when its
// wingmand runs the reboot command; kvm1, whose wingmand the CLI talks to, goes last and leaves
// maintenance by itself once back.
func TestRollingUpdateReboot(t *testing.T) {
	full(t)
	testRollingUpdate(t, true)
}

func testRollingUpdate(t *testing.T, reboot bool) {
	e := startEnv(t, Options{Profile: "fast"})
	ctx := ctxFor(t, 15*time.Minute)
	hosts := e.Hosts()
	var guests []Guest
	for i, h := range hosts {
		g, err := e.NewGuest(ctx, h, "ru"+string(rune('a'+i)), "")
		if err != nil {
			t.Fatal(err)
		}
		guests = append(guests, g)
	}
	if _, err := e.WaitRunningOnce(ctx, 30*time.Second, guests); err != nil {
		t.Fatal(err)
	}
	cli, err := cluster.BuildBinary(ctx, "./cmd/wingman", true)
	if err != nil {
		t.Fatal(err)
	}
	gens := map[string]uint64{}
	hs, err := e.Client(hosts[0]).Hosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		gens[h.Name] = h.Generation
	}
	// The cluster directory is visible at the same path inside every host; $(hostname) is the
	// host's own (UTS namespace).
	patch := "touch " + filepath.Join(e.C.Dir(), "patched-$(hostname)") + " && echo patched $(hostname)"
	args := []string{"-c", hosts[0].APISocket(), "rolling-update", "--exec", patch, "--timeout", "1m"}
	if reboot {
		args = append(args, "--reboot", "--reboot-timeout", "3m")
	}

	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	start := time.Now()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	took := time.Since(start)
	t.Logf("wingman %s (%v):\n%s", strings.Join(args[2:], " "), took.Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("rolling-update: %v", err)
	}
	// kvm1's daemon answers the CLI: it goes last.
	order := []string{hosts[1].Name(), hosts[2].Name(), hosts[0].Name()}
	if !strings.Contains(string(out), "rolling update of 3 hosts: "+strings.Join(order, ", ")) ||
		!strings.Contains(string(out), "rolling update done: 3 hosts updated") {
		t.Errorf("output lacks the order %v or the final line", order)
	}
	for _, h := range hosts {
		if _, err := os.Stat(filepath.Join(e.C.Dir(), "patched-"+h.Name())); err != nil {
			t.Errorf("the command did not run on %s: %v", h.Name(), err)
		}
		if !strings.Contains(string(out), "patched "+h.Name()) {
			t.Errorf("output lacks %s's command output", h.Name())
		}
	}
	// Every guest is back on its own host (failback), once.
	p, err := e.WaitRunningOnce(ctx, 30*time.Second, guests)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range guests {
		if got := p[g.UUID]; len(got) != 1 || got[0] != hosts[i].Name() {
			t.Errorf("%s runs on %v, want %s (failback)", g.Name, got, hosts[i].Name())
		}
	}
	checkWatch(t, w)
	if err := e.WaitHealthy(ctx, hosts...); err != nil {
		t.Fatal(err)
	}
	if !reboot {
		return
	}
	hs, err = e.Client(hosts[1]).Hosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Generation <= gens[h.Name] {
			t.Errorf("%s: generation %d after its reboot, was %d", h.Name, h.Generation, gens[h.Name])
		}
	}
	for _, h := range hosts {
		if n := h.Reboots(); n != 1 {
			t.Errorf("%s was rebooted %d times, want 1", h.Name(), n)
		}
	}
}

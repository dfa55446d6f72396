package e2e

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/test/cluster"
)

// TestDrill: three hosts, three protected guests on the first. Two have their disks in the
// shared directory; the third's disk is /var/lib/libvirt/drill-local.img, which each host sees
// in its own mount namespace: it exists on the first two hosts and is missing on the third. A
// drill of the first host's loss must report that guest failing on the third host only and
// everything else passing, through the API and the CLI (exit 1), without stopping any guest;
// the live drill migrates a throwaway guest around the three hosts and leaves nothing behind.
func TestDrill(t *testing.T) {
	full(t)
	e := startEnv(t, Options{Profile: "fast"})
	ctx := ctxFor(t, 5*time.Minute)
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	guests, err := e.NewGuests(ctx, h1, "dr", 2, "")
	if err != nil {
		t.Fatal(err)
	}

	// The guest whose disk exists on h1 and h2 only.
	const localDisk = "/var/lib/libvirt/drill-local.img"
	spec, err := e.C.NewGuest("drlocal")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []*cluster.Host{h1, h2} {
		if err := cluster.CreateDisk(filepath.Join(h.Dir(), "lib", filepath.Base(localDisk)), 1); err != nil {
			t.Fatal(err)
		}
	}
	spec.Disk, spec.Shareable = localDisk, true
	x, err := spec.XML()
	if err != nil {
		t.Fatal(err)
	}
	c1, err := e.conn(ctx, h1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Define(ctx, x); err != nil {
		t.Fatal(err)
	}
	if err := c1.Start(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	// Protect refuses a disk that a host cannot reach, naming the host and the path; --force
	// protects it anyway and lists what it accepted.
	_, err = e.Client(h1).Protect(ctx, spec.Name, ProtectRequest{})
	if err == nil || !strings.Contains(err.Error(), h3.Name()+": disk vda: "+localDisk+": no such file or directory") {
		t.Fatalf("protect of a guest whose disk %s lacks: %v, want a refusal naming the host and the disk", h3.Name(), err)
	}
	t.Logf("protect refused: %v", err)
	res, err := e.Client(h1).Protect(ctx, spec.Name, ProtectRequest{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DisksUnreachable) != 1 || !strings.HasPrefix(res.DisksUnreachable[0], h3.Name()+": ") {
		t.Errorf("protect --force: unreachable %v, want one problem on %s", res.DisksUnreachable, h3.Name())
	}
	// A disk with cache='unsafe' is refused, --force or not: it loses acknowledged writes.
	unsafe, err := e.C.NewGuest("drunsafe")
	if err != nil {
		t.Fatal(err)
	}
	ux, err := unsafe.XML()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Define(ctx, strings.Replace(ux, "cache='none' io='native'", "cache='unsafe'", 1)); err != nil {
		t.Fatal(err)
	}
	if err := c1.Start(ctx, unsafe.Name); err != nil {
		t.Fatal(err)
	}
	_, err = e.Client(h1).Protect(ctx, unsafe.Name, ProtectRequest{Force: true})
	if err == nil || !strings.Contains(err.Error(), "cache='unsafe'") {
		t.Errorf("protect --force of a cache='unsafe' guest: %v, want a refusal that names the cache mode", err)
	} else {
		t.Logf("protect refused: %v", err)
	}
	if err := c1.Destroy(ctx, unsafe.Name); err != nil {
		t.Fatal(err)
	}
	all := append(guests, Guest{Name: spec.Name, UUID: strings.ToLower(spec.UUID), Spec: spec})
	if _, err := e.WaitRunningOnce(ctx, 30*time.Second, all); err != nil {
		t.Fatal(err)
	}
	w := e.StartWatch(all, WatchOptions{MustNotStop: true})

	// Asked from h2: h2 checks locally, h3 answers over serf.
	start := time.Now()
	rep, err := e.Client(h2).Drill(ctx, api.DrillRequest{Host: h1.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drill of %s: pass=%v in %v (wall %v)", h1.Name(), rep.Pass, rep.Duration, time.Since(start))
	if rep.Pass || len(rep.VMs) != 3 {
		t.Fatalf("drill = %+v, want 3 VMs and a failure", rep)
	}
	for _, v := range rep.VMs {
		if v.Target == "" || v.Unplaced != "" || len(v.Checks) != 2 {
			t.Errorf("%s: target %q unplaced %q checks %+v, want a target and checks on two hosts", v.Name, v.Target, v.Unplaced, v.Checks)
		}
		for _, c := range v.Checks {
			wantFail := v.Name == spec.Name && c.Host == h3.Name()
			if (c.Problem != "") != wantFail {
				t.Errorf("%s on %s: problem %q, want a failure: %v", v.Name, c.Host, c.Problem, wantFail)
			}
			if wantFail && !strings.Contains(c.Problem, localDisk+": no such file or directory") {
				t.Errorf("%s on %s: problem %q, want the missing disk named", v.Name, c.Host, c.Problem)
			}
		}
		if v.Pass != (v.Name != spec.Name) {
			t.Errorf("%s: pass %v", v.Name, v.Pass)
		}
	}
	for _, h := range rep.Hosts {
		if h.Pass != (h.Name != h3.Name()) {
			t.Errorf("host %s = %+v, want only %s failing", h.Name, h, h3.Name())
		}
	}

	// The CLI: the table names the failure, and the exit code is 1.
	cli, err := cluster.BuildBinary(ctx, "./cmd/wingman", true)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, cli, "-c", h3.APISocket(), "drill").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("wingman drill: %v, want exit 1\n%s", err, out)
	}
	if want := spec.Name + " on " + h3.Name() + ": disk vda: " + localDisk + ": no such file or directory"; !strings.Contains(string(out), want) {
		t.Errorf("wingman drill output lacks %q:\n%s", want, out)
	}
	t.Logf("wingman drill (every host):\n%s", out)

	// Live: a throwaway guest around the ring h1 -> h2 -> h3 -> h1.
	rep, err = e.Client(h1).Drill(ctx, api.DrillRequest{Host: h2.Name(), Live: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Hops) != 3 {
		t.Fatalf("live drill hops = %+v, want 3", rep.Hops)
	}
	for _, hop := range rep.Hops {
		t.Logf("hop %s %s -> %s: %v, downtime %v %s", hop.Guest, hop.From, hop.To, hop.Duration, hop.Downtime, hop.Error)
		if !hop.Pass || hop.Downtime <= 0 || hop.Downtime > time.Second {
			t.Errorf("hop %+v: want a pass with a measured downtime under 1 s", hop)
		}
	}
	if !rep.Pass {
		t.Errorf("live drill of %s = %+v, want a pass (h2's VMs: none)", h2.Name(), rep)
	}
	for _, h := range e.Hosts() {
		out, err := Virsh(ctx, h, "list", "--all", "--name")
		if err != nil {
			t.Fatalf("virsh list on %s: %v: %s", h.Name(), err, out)
		}
		if strings.Contains(out, "wingman-drill-") {
			t.Errorf("%s still has a drill guest:\n%s", h.Name(), out)
		}
	}

	observe(time.Second)
	checkWatch(t, w)
	placedOn(t, e, all, h1.Name())
	evs, err := e.Client(h3).Events(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range evs {
		if strings.HasPrefix(ev.Kind, "drill-") {
			kinds = append(kinds, ev.Kind)
		}
	}
	if strings.Join(kinds, ",") != "drill-failed,drill-failed,drill-passed" {
		t.Errorf("drill events = %v, want failed, failed, passed", kinds)
	}
}

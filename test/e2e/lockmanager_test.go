package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/test/cluster"
)

// TestLockManagerRefusesSecondStart: libvirt's lock manager (virtlockd, its lockspace in the
// shared directory) is the second guard below Wingman. A protected guest runs on kvm1; kvm2
// starts a second copy of it directly through its libvirtd, as a Wingman whose own lease check
// were skipped would (that check only decides whether wingmand asks libvirt to start the
// guest; virsh asks the same libvirtd the same virDomainCreate). Each host reaches the disk
// through its own loop device over the one image file, under one path, as hosts reach a LUN,
// so QEMU's image locking, which on this one shared kernel would refuse the second opener of
// the file, does not interfere.
//
// Every wingmand reports the guest's lock manager (dominfo, drill) as its owner's libvirt has
// loaded it: lockd with, none without.
//
//   - without the lock manager (the control run) the second start succeeds: two copies run, and
//     the never-two checker sees them; the test then destroys the second;
//   - with it, libvirt refuses the second start with virtlockd's "resource busy" on the disk's
//     lease, the first copy runs on, and the checker sees one copy throughout.
func TestLockManagerRefusesSecondStart(t *testing.T) {
	for _, on := range []bool{false, true} {
		name := "without"
		if on {
			name = "with"
		}
		t.Run(name, func(t *testing.T) { lockManagerScenario(t, on) })
	}
}

func lockManagerScenario(t *testing.T, on bool) {
	e := startEnv(t, Options{Hosts: 2, LockManager: on})
	ctx := ctxFor(t, 3*time.Minute)
	h1, h2 := e.Hosts()[0], e.Hosts()[1]

	spec, err := e.C.NewGuest("locked1")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range e.Hosts() {
		path, detach, err := h.LoopDisk(spec.Disk, "locked1.raw")
		if err != nil {
			t.Fatal(err)
		}
		spec.Block = path
		t.Cleanup(func() {
			// The guest goes first, so that the loop device is free.
			_, _ = Virsh(ctx, h, "destroy", spec.Name)
			if err := detach(); err != nil {
				t.Error(err)
			}
		})
	}
	spec.Disk = ""
	x, err := spec.XML()
	if err != nil {
		t.Fatal(err)
	}
	xmlFile := filepath.Join(e.C.SharedDir(), "locked1.xml")
	if err := os.WriteFile(xmlFile, []byte(x), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*cluster.Host{h1, h2} {
		if out, err := Virsh(ctx, h, "define", xmlFile); err != nil {
			t.Fatalf("define on %s: %v: %s", h.Name(), err, out)
		}
	}
	if out, err := Virsh(ctx, h1, "start", spec.Name); err != nil {
		t.Fatalf("start on %s: %v: %s", h1.Name(), err, out)
	}
	if _, err := e.Client(h1).Protect(ctx, spec.Name, ProtectRequest{}); err != nil {
		t.Fatalf("protect: %v", err)
	}
	// Every host tells, for the guest, what its owner's libvirt actually loaded.
	want := "none"
	if on {
		want = "lockd"
	}
	for _, h := range e.Hosts() {
		v, err := e.Client(h).VM(ctx, spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		if v.LockManager != want {
			t.Errorf("dominfo %s from %s: lock manager %q, want %q", spec.Name, h.Name(), v.LockManager, want)
		}
	}
	rep, err := e.Client(h2).Drill(ctx, api.DrillRequest{Host: h1.Name()})
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	if len(rep.VMs) != 1 || rep.VMs[0].LockManager != want {
		t.Errorf("drill of %s: VMs %+v, want %s with lock manager %q", h1.Name(), rep.VMs, spec.Name, want)
	}
	g := Guest{Name: spec.Name, UUID: strings.ToLower(spec.UUID), Spec: spec}
	w := e.StartWatch([]Guest{g}, WatchOptions{})
	observe(time.Second)

	// Wingman itself must not be the one that refuses or removes the second copy: kvm2's
	// wingmand, seeing a protected guest it does not own start there, destroys it (a CI run
	// saw it kill QEMU during the control run's start). With it stopped, only libvirt and the
	// lock manager are left between the two copies; kvm2 runs no guest, so the stop moves none.
	if err := e.C.StopWingmand(h2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := Virsh(ctx, h2, "start", spec.Name)
	took := time.Since(start)
	if !on {
		if err != nil {
			t.Fatalf("control run without the lock manager: the second start on %s failed, so something other than the lock manager refuses it and the scenario proves nothing: %v: %s", h2.Name(), err, out)
		}
		t.Logf("without the lock manager: second copy started on %s in %v", h2.Name(), took.Round(time.Millisecond))
		observe(time.Second)
		if out, err := Virsh(ctx, h2, "destroy", spec.Name); err != nil {
			t.Logf("destroy the second copy on %s: %v: %s (already gone?)", h2.Name(), err, out)
		}
		v, n, _ := w.Stop()
		if len(v) == 0 {
			t.Errorf("the never-two checker saw no second copy in %d samples", n)
		}
		t.Logf("checker, as expected, saw the two copies: %d samples, first violation: %s", n, first(v))
		return
	}
	if err == nil {
		t.Fatalf("with the lock manager, the second start on %s succeeded: two copies of %s run", h2.Name(), spec.Name)
	}
	t.Logf("with the lock manager: second start refused in %v: %s", took.Round(time.Millisecond), strings.TrimSpace(out))
	if !strings.Contains(out, "Lockspace resource") || !strings.Contains(out, "is locked") {
		t.Errorf("the refusal is not the lock manager's (want virtlockd's \"Lockspace resource ... is locked\"): %s", out)
	}
	if strings.Contains(out, `"write" lock`) {
		t.Errorf("QEMU's own image locking refused the start, not the lock manager: %s", out)
	}
	observe(time.Second)
	checkWatch(t, w)
	p, err := e.Running(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := p[g.UUID]; len(got) != 1 || got[0] != h1.Name() {
		t.Errorf("%s runs on %v, want only on %s", spec.Name, got, h1.Name())
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return "(none)"
	}
	return v[0]
}

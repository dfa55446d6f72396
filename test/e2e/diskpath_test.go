package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/test/cluster"
)

// diskPathSocket is where every host's libvirt finds the guest's NBD disk: a path under
// /var/lib/libvirt, which each host's mount namespace binds to a directory of its own, so that
// one domain XML (the one stored on the LUN) reaches the disk through a different path on each
// host, as hosts reach a SAN LUN through their own ports and multipath groups.
const diskPathSocket = "/var/lib/libvirt/e2e-disk.sock"

// linkDiskPath points h's diskPathSocket at the NBD server s.
func linkDiskPath(t *testing.T, h *cluster.Host, s *cluster.NBDServer) {
	t.Helper()
	p := filepath.Join(h.Dir(), "lib", filepath.Base(diskPathSocket))
	_ = os.Remove(p)
	if err := os.Symlink(s.Socket, p); err != nil {
		t.Fatal(err)
	}
}

// TestDiskPathLossRestartsElsewhere: one host loses the path to a protected guest's disk while
// its heartbeat LUN and network are fine. kvm1 reaches the guest's disk through one qemu-nbd,
// which is killed, so QEMU pauses the guest on an I/O error; the other hosts reach the same
// image through a server of their own. After failover.disk_loss_grace, kvm1 destroys the paused
// copy and releases the VM, and it runs again on another host, never on two at once.
func TestDiskPathLossRestartsElsewhere(t *testing.T) {
	e := startEnv(t, Options{Profile: "fast"})
	ctx := ctxFor(t, 4*time.Minute)
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	const grace = 15 * time.Second // reconcile.MinDiskLossGrace, above the fast profile's D (7.5 s)
	if _, err := e.Client(h2).SetClusterSetting(ctx, "failover.disk_loss_grace", grace.String()); err != nil {
		t.Fatal(err)
	}

	spec, err := e.C.NewGuest("dpl1")
	if err != nil {
		t.Fatal(err)
	}
	image := spec.Disk
	first, err := e.C.ServeDiskNBD(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	linkDiskPath(t, h1, first)
	spec.Disk, spec.NBDSocket = "", diskPathSocket
	x, err := spec.XML()
	if err != nil {
		t.Fatal(err)
	}
	c1, err := e.Conn(ctx, h1)
	if err != nil {
		t.Fatal(err)
	}
	if err := defineAndStart(ctx, c1, x, spec.Name); err != nil {
		t.Fatal(err)
	}
	g := Guest{Name: spec.Name, UUID: strings.ToLower(spec.UUID), Spec: spec}
	if _, err := e.Client(h1).Protect(ctx, g.Name, ProtectRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitRunningOnce(ctx, 30*time.Second, []Guest{g}); err != nil {
		t.Fatal(err)
	}
	w := e.StartWatch([]Guest{g}, WatchOptions{})
	t.Cleanup(func() { w.Stop() })

	// kvm1's path dies; the others get theirs (qemu-nbd locks the image: one server at a time).
	killed := time.Now()
	if err := e.C.KillNBD(first); err != nil {
		t.Fatal(err)
	}
	second, err := e.C.ServeDiskNBD(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	linkDiskPath(t, h2, second)
	linkDiskPath(t, h3, second)

	var paused time.Time
	err = Poll(ctx, 20*time.Second, 50*time.Millisecond, func() (bool, error) {
		doms, err := c1.ListDomains(ctx)
		if err != nil {
			return false, nil
		}
		for _, d := range doms {
			if d.Name == g.Name && d.PausedOnIOError() {
				paused = time.Now()
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("%s did not pause on an I/O error on %s: %v", g.Name, h1.Name(), err)
	}
	p, err := e.WaitRunningOnce(ctx, grace+90*time.Second, []Guest{g}, h1)
	if err != nil {
		t.Fatal(err)
	}
	running := time.Now()
	on := p[g.UUID][0]
	observe(2 * time.Second)
	violations, samples, errs := w.Stop()
	if len(violations) > 0 {
		t.Fatalf("never-two checker: %v", violations)
	}

	// Every step is an event, visible from any host.
	want := []string{"paused-io-error", "disk-loss-grace-expired", "destroyed-paused-copy", "released", "started@" + on}
	at := map[string]time.Time{}
	var evs []Event
	err = Poll(ctx, 15*time.Second, 200*time.Millisecond, func() (bool, error) {
		evs, err = e.Client(h3).Events(ctx, killed.Add(-time.Second), 0)
		if err != nil {
			return false, nil
		}
		clear(at)
		for _, ev := range evs {
			if ev.VM != g.Name && !strings.EqualFold(ev.VM, g.UUID) {
				continue
			}
			key := ev.Kind
			if ev.Kind == "started" || ev.Kind == "restarted" {
				key = "started@" + ev.HostName
			}
			if _, ok := at[key]; !ok {
				at[key] = ev.Time
			}
		}
		for _, k := range want {
			if at[k].IsZero() {
				return false, nil
			}
		}
		return true, nil
	})
	for _, ev := range evs {
		if ev.VM == g.Name || strings.EqualFold(ev.VM, g.UUID) {
			t.Logf("%s", FormatEvent(ev))
		}
	}
	if err != nil {
		t.Fatalf("events of %s seen from %s: got %v, want each of %v", g.Name, h3.Name(), at, want)
	}
	destroyed := at["destroyed-paused-copy"]
	if d := destroyed.Sub(paused); d < grace-time.Second {
		t.Errorf("destroyed %v after the pause, before the grace of %v", d, grace)
	}
	t.Logf("%s: qemu-nbd killed -> paused on I/O error %v, pause -> destroyed on %s %v (grace %v), destroyed -> started on %s %v; pause -> seen running elsewhere %v; checker: %d samples, %d errors",
		g.Name, paused.Sub(killed).Round(time.Millisecond), h1.Name(), destroyed.Sub(paused).Round(time.Millisecond), grace,
		on, at["started@"+on].Sub(destroyed).Round(time.Millisecond), running.Sub(paused).Round(time.Millisecond), samples, errs)
}

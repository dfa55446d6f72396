package integration

import (
	"errors"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/test/cluster"
)

// TestGuestStartDestroyOnEachHost defines, starts, destroys and undefines a guest on every host
// through the adapter, and checks what it reports against the host's processes.
func TestGuestStartDestroyOnEachHost(t *testing.T) {
	c := sharedCluster(t)
	ctx := testContext(t)
	for _, h := range c.Hosts() {
		t.Run(h.Name(), func(t *testing.T) {
			conn := dial(t, h)
			if conn.Host() != h.Name() {
				t.Errorf("Host() = %q, want %q", conn.Host(), h.Name())
			}
			name := guestName(t, "vm")
			newGuest(t, ctx, c, conn, name)
			startGuest(t, ctx, conn, name)

			doms, err := conn.ListDomains(ctx)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(doms, func(d hypervisor.Domain) bool { return d.Name == name })
			if i < 0 {
				t.Fatalf("ListDomains on %s = %v, missing %q", h.Name(), doms, name)
			}
			d := doms[i]
			if d.State != hypervisor.StateRunning || d.Reason != "booted" || !d.Persistent || d.VCPUs != 1 ||
				d.MaxMemoryBytes != uint64(c.Config().GuestMemoryMiB)<<20 {
				t.Errorf("listed %+v, want running/booted, persistent, 1 vCPU, %d MiB", d, c.Config().GuestMemoryMiB)
			}
			if _, ok, err := guestProcess(h, name); err != nil || !ok {
				t.Errorf("no QEMU process of %q in %s's PID namespace (err %v)", name, h.Name(), err)
			}
			capa, err := conn.Capacity(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if capa.RunningGuests < 1 || capa.GuestMemoryBytes < uint64(c.Config().GuestMemoryMiB)<<20 || capa.CPUs < 1 || !capa.FreeMemoryKnown {
				t.Errorf("capacity %+v: want at least this guest, CPUs and free memory", capa)
			}
			if err := conn.Start(ctx, name); !errors.Is(err, hypervisor.ErrAlreadyRunning) {
				t.Errorf("second Start: %v, want ErrAlreadyRunning", err)
			}

			if err := conn.Destroy(ctx, name); err != nil {
				t.Fatal(err)
			}
			d = waitState(t, ctx, conn, name, hypervisor.StateShutoff)
			if d.Reason != "destroyed" {
				t.Errorf("after Destroy: reason %q, want destroyed", d.Reason)
			}
			waitFor(t, ctx, "QEMU of "+name+" gone", func() (bool, error) {
				_, ok, err := guestProcess(h, name)
				return !ok, err
			})
			if err := conn.Destroy(ctx, name); !errors.Is(err, hypervisor.ErrNotRunning) {
				t.Errorf("second Destroy: %v, want ErrNotRunning", err)
			}
			if err := conn.Undefine(ctx, name); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Lookup(ctx, name); !errors.Is(err, hypervisor.ErrNotFound) {
				t.Errorf("Lookup after Undefine: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestQEMUKilledIsCrash kills a guest's QEMU behind libvirt's back and expects the adapter to
// report a crash (libvirt's stopped/failed), not an orderly stop.
func TestQEMUKilledIsCrash(t *testing.T) {
	c := sharedCluster(t)
	ctx := testContext(t)
	h := c.Hosts()[0]
	conn := dial(t, h)
	name := guestName(t, "vm")
	newGuest(t, ctx, c, conn, name)
	events := subscribe(t, ctx, conn)
	startGuest(t, ctx, conn, name)

	p, ok, err := guestProcess(h, name)
	if err != nil || !ok {
		t.Fatalf("QEMU process of %q not found on %s (err %v)", name, h.Name(), err)
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill QEMU %d: %v", p.PID, err)
	}
	ev := waitEvent(t, ctx, events, "a crash event of "+name, func(ev hypervisor.Event) bool {
		return ev.Domain == name && (ev.Kind == hypervisor.EventCrashed || ev.Kind == hypervisor.EventStopped)
	})
	if ev.Kind != hypervisor.EventCrashed || (ev.Detail != "failed" && ev.Detail != "crashed") {
		t.Errorf("after its QEMU was killed: event %v, want crashed (failed or crashed)", ev)
	}
	d := waitState(t, ctx, conn, name, hypervisor.StateShutoff)
	if d.Reason != "crashed" && d.Reason != "failed" {
		t.Errorf("after its QEMU was killed: listed shutoff reason %q, want crashed", d.Reason)
	}
}

// TestLibvirtdRestartReconnects kills libvirtd under a running guest and starts it again: the
// adapter reports the loss, reconnects on its own, tells subscribers to resync, and its next
// listing shows the guest still running (the same QEMU process).
func TestLibvirtdRestartReconnects(t *testing.T) {
	c := sharedCluster(t)
	ctx := testContext(t)
	h := c.Hosts()[1]
	conn := dial(t, h)
	name := guestName(t, "vm")
	newGuest(t, ctx, c, conn, name)
	startGuest(t, ctx, conn, name)
	before, ok, err := guestProcess(h, name)
	if err != nil || !ok {
		t.Fatalf("QEMU process of %q not found on %s (err %v)", name, h.Name(), err)
	}
	events := subscribe(t, ctx, conn)
	t.Cleanup(func() {
		// Leave the host as found, whatever failed.
		if !conn.Connected() {
			_ = c.RestartLibvirtd(testContext(t), h)
		}
	})

	if err := c.KillLibvirtd(h); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, ctx, events, "a disconnect event", func(ev hypervisor.Event) bool {
		return ev.Kind == hypervisor.EventDisconnected
	})
	t.Logf("after libvirtd was killed: %v", ev)
	if _, err := conn.ListDomains(ctx); !errors.Is(err, hypervisor.ErrConnection) {
		t.Errorf("ListDomains with libvirtd dead: %v, want ErrConnection", err)
	}
	if conn.Connected() {
		t.Errorf("Connected() with libvirtd dead = true")
	}
	if _, ok, _ := guestProcess(h, name); !ok {
		t.Fatalf("the guest's QEMU died with libvirtd")
	}

	if err := c.RestartLibvirtd(ctx, h); err != nil {
		t.Fatal(err)
	}
	ev = waitEvent(t, ctx, events, "the reconnect's resync marker", func(ev hypervisor.Event) bool {
		return ev.Kind == hypervisor.EventResync
	})
	if ev.Detail != "reconnected" {
		t.Errorf("resync after restart: detail %q, want reconnected", ev.Detail)
	}
	if !conn.Connected() {
		t.Errorf("Connected() after the resync marker = false")
	}
	doms, err := conn.ListDomains(ctx)
	if err != nil {
		t.Fatalf("first listing after the reconnect: %v", err)
	}
	i := slices.IndexFunc(doms, func(d hypervisor.Domain) bool { return d.Name == name })
	if i < 0 || doms[i].State != hypervisor.StateRunning {
		t.Fatalf("first listing after the reconnect: %v, want %q running", doms, name)
	}
	after, ok, err := guestProcess(h, name)
	if err != nil || !ok || after.PID != before.PID {
		t.Errorf("QEMU of %q after the restart: %+v (found %v, err %v), want the same process %d", name, after, ok, err, before.PID)
	}
	// The reconnected Conn delivers events again. (Not a Destroy of the guest: libvirtd reconnects
	// to each QEMU in a thread of its own after it answers, and a destroy during that window is
	// done but reported as "domain is not running" by libvirt 9.0.)
	other := guestName(t, "other")
	newGuest(t, ctx, c, conn, other)
	waitEvent(t, ctx, events, "the define event of "+other+" after the reconnect", func(ev hypervisor.Event) bool {
		return ev.Domain == other && ev.Kind == hypervisor.EventDefined
	})
}

// TestDiskNBDKilledPausesOnIOError runs a guest whose disk is served by qemu-nbd, kills qemu-nbd,
// and expects the guest paused with reason I/O error (the guest reads its disk nine times a
// second, and the domain XML says error_policy='stop').
func TestDiskNBDKilledPausesOnIOError(t *testing.T) {
	c := sharedCluster(t)
	ctx := testContext(t)
	h := c.Hosts()[0]
	conn := dial(t, h)
	name := guestName(t, "vm")
	disk := filepath.Join(c.SharedDir(), name+".img")
	if err := cluster.CreateDisk(disk, c.Config().GuestDiskMiB); err != nil {
		t.Fatal(err)
	}
	srv, err := c.ServeDiskNBD(ctx, disk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.KillNBD(srv) })
	spec := cluster.GuestSpec{Name: name, Type: c.DomainType(), MemoryMiB: c.Config().GuestMemoryMiB, NBDSocket: srv.Socket}
	defineGuest(t, ctx, c, conn, spec)
	events := subscribe(t, ctx, conn)
	startGuest(t, ctx, conn, name)

	if err := c.KillNBD(srv); err != nil {
		t.Fatal(err)
	}
	d := waitState(t, ctx, conn, name, hypervisor.StatePaused)
	if !d.PausedOnIOError() || d.Reason != "ioerror" {
		t.Fatalf("after its NBD server died: %+v, want paused on I/O error", d)
	}
	// libvirt sends the I/O error event and then the pause; either order is accepted.
	var ioErr, paused bool
	waitEvent(t, ctx, events, "the I/O error and pause events of "+name, func(ev hypervisor.Event) bool {
		if ev.Domain == name && ev.Kind == hypervisor.EventIOError {
			t.Logf("I/O error event: %v", ev)
			ioErr = true
		}
		if ev.Domain == name && ev.Kind == hypervisor.EventPaused && ev.Detail == "ioerror" {
			paused = true
		}
		return ioErr && paused
	})
}

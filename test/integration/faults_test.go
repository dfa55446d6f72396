package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/test/cluster"
)

// TestPowerOffKillsEverything cuts the power of a host running a guest: every process of the
// host is gone, the adapter connected to it reports the connection lost, the other host does not
// notice, and after PowerOn the persistent definition is back, shut off.
func TestPowerOffKillsEverything(t *testing.T) {
	c := sharedCluster(t)
	ctx := testContext(t)
	h1, h2 := c.Hosts()[0], c.Hosts()[1]
	conn1, conn2 := dial(t, h1), dial(t, h2)
	name1, name2 := guestName(t, "vm1"), guestName(t, "vm2")
	newGuest(t, ctx, c, conn1, name1)
	newGuest(t, ctx, c, conn2, name2)
	// Registered after the guests, so it runs before their removal.
	t.Cleanup(func() {
		if !h2.On() {
			if err := c.PowerOn(testContext(t), h2); err != nil {
				t.Errorf("cleanup: power %s on again: %v", h2.Name(), err)
			}
		}
	})
	startGuest(t, ctx, conn1, name1)
	startGuest(t, ctx, conn2, name2)
	events := subscribe(t, ctx, conn2)

	procs, err := h2.Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) < 3 { // init, libvirtd, QEMU
		t.Fatalf("%s runs %d processes before the power cut, want init, libvirtd and QEMU: %+v", h2.Name(), len(procs), procs)
	}
	pidNS := h2.PIDNamespace()
	if err := c.PowerOff(h2); err != nil {
		t.Fatal(err)
	}
	if h2.On() || h2.InitPID() != 0 {
		t.Errorf("after PowerOff: On() = %v, InitPID() = %d", h2.On(), h2.InitPID())
	}
	for _, p := range procs {
		if link, err := os.Readlink("/proc/" + strconv.Itoa(p.PID) + "/ns/pid"); err == nil && link == pidNS {
			t.Errorf("after PowerOff: process %d (%s) of %s still runs", p.PID, p.Cmdline, h2.Name())
		}
	}
	waitEvent(t, ctx, events, "the disconnect of "+h2.Name(), func(ev hypervisor.Event) bool {
		return ev.Kind == hypervisor.EventDisconnected
	})
	if _, err := conn2.ListDomains(ctx); !errors.Is(err, hypervisor.ErrConnection) {
		t.Errorf("ListDomains on a powered-off host: %v, want ErrConnection", err)
	}
	if err := c.Partition(h2); err == nil {
		t.Errorf("Partition of a powered-off host succeeded")
	}
	// The other host and its guest are untouched.
	if d, err := conn1.Lookup(ctx, name1); err != nil || d.State != hypervisor.StateRunning {
		t.Errorf("%s on %s after %s lost power: %+v, %v; want running", name1, h1.Name(), h2.Name(), d, err)
	}

	if err := c.PowerOn(ctx, h2); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, events, "the reconnect to "+h2.Name(), func(ev hypervisor.Event) bool {
		return ev.Kind == hypervisor.EventResync && ev.Detail == "reconnected"
	})
	d, err := conn2.Lookup(ctx, name2)
	if err != nil {
		t.Fatalf("after the power came back: %v", err)
	}
	if d.State != hypervisor.StateShutoff || !d.Persistent {
		t.Errorf("after the power came back: %+v, want persistent and shut off", d)
	}
	if err := h1.Reach(ctx, h2.LibvirtdAddrPort()); err != nil {
		t.Errorf("after the power came back, %s does not reach %s: %v", h1.Name(), h2.Name(), err)
	}
	startGuest(t, ctx, conn2, name2)
}

// TestPartitionHeal cuts a host off the switch: neither host reaches the other's libvirtd over
// TCP, while the harness still reaches both; healing restores it.
func TestPartitionHeal(t *testing.T) {
	c := sharedCluster(t)
	ctx := testContext(t)
	h1, h2 := c.Hosts()[0], c.Hosts()[1]
	t.Cleanup(func() {
		if c.Partitioned(h1) {
			if err := c.Heal(h1); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	conn1 := dial(t, h1)
	reach := func(from, to *cluster.Host) error { return from.Reach(ctx, to.LibvirtdAddrPort()) }
	for _, p := range [][2]*cluster.Host{{h1, h2}, {h2, h1}} {
		if err := reach(p[0], p[1]); err != nil {
			t.Fatalf("before the partition: %v", err)
		}
	}

	if err := c.Partition(h1); err != nil {
		t.Fatal(err)
	}
	if !c.Partitioned(h1) || c.Partitioned(h2) {
		t.Errorf("Partitioned: %s %v, %s %v; want true, false", h1.Name(), c.Partitioned(h1), h2.Name(), c.Partitioned(h2))
	}
	for _, p := range [][2]*cluster.Host{{h1, h2}, {h2, h1}} {
		// Packets are dropped, not refused: the attempt hangs until this deadline.
		short, cancel := context.WithTimeout(ctx, time.Second)
		err := p[0].Reach(short, p[1].LibvirtdAddrPort())
		cancel()
		if err == nil {
			t.Errorf("partitioned: %s still reaches %s's libvirtd", p[0].Name(), p[1].Name())
		} else {
			t.Logf("partitioned, as expected: %v", err)
		}
	}
	// A host still reaches itself, and the harness still reaches the partitioned libvirtd.
	if err := reach(h1, h1); err != nil {
		t.Errorf("partitioned: %s does not reach its own libvirtd: %v", h1.Name(), err)
	}
	if _, err := conn1.ListDomains(ctx); err != nil {
		t.Errorf("partitioned: the harness cannot list %s: %v", h1.Name(), err)
	}

	if err := c.Heal(h1); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]*cluster.Host{{h1, h2}, {h2, h1}} {
		waitFor(t, ctx, fmt.Sprintf("healed: %s reaches %s", p[0].Name(), p[1].Name()), func() (bool, error) {
			err := reach(p[0], p[1])
			return err == nil, err
		})
	}
}

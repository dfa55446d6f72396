// Command demo shows Wingman at work on a throwaway three-host cluster on this machine (make
// demo, as root, after make deps): it builds wingmand and wingman, starts three test hosts (each
// its own namespaces, libvirtd and wingmand, sharing a heartbeat LUN file), creates a real guest
// (Debian's cloud kernel with a small service that keeps a ledger on its shared disk, fsync'd
// before each acknowledgement) and two tiny guests without an OS, and protects them with
// different priorities. A client on the test LAN writes to the real guest all along. The demo
// cuts the power of a host and shows the failover timeline and what the client saw, live-migrates
// the real guest, puts a host in maintenance and back, and checks the ledger at the end.
// Everything is torn down at the end, also on Ctrl-C. It uses the fast timing profile (D 7.5 s).
//
// It owns nothing but this walk-through; it must never run on a production host (it starts its
// own libvirtd instances and kills whole test hosts).
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/wingmanha/wingman/test/cluster"
	"github.com/wingmanha/wingman/test/e2e"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo: %v\n", err)
		os.Exit(1)
	}
}

var start = time.Now()

func step(format string, a ...any) {
	fmt.Printf("\n\033[1m[%5.1fs] %s\033[0m\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
}

func run() error {
	if err := cluster.Prerequisites(); err != nil {
		return fmt.Errorf("%v\n(the demo needs root and the packages of `make deps`)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	step("building wingmand and wingman")
	cli, err := cluster.BuildBinary(ctx, "./cmd/wingman", true)
	if err != nil {
		return err
	}
	if _, err := cluster.BuildBinary(ctx, "./cmd/wingmand", false); err != nil {
		return err
	}

	step("starting 3 test hosts (namespaces + libvirtd each), a heartbeat LUN file and wingmand on each (fast profile: D = 7.5 s)")
	// Ctrl-C: test/cluster's signal handler closes the cluster (every host, guest and daemon)
	// and removes its directory before the process dies.
	env, err := e2e.Start(ctx, e2e.Options{Profile: "fast"})
	if err != nil {
		return err
	}
	defer func() {
		step("tearing everything down")
		if err := env.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "demo: close: %v\n", err)
		}
	}()
	hosts := env.Hosts()
	kvm1, kvm2, kvm3 := hosts[0], hosts[1], hosts[2]
	wingman := func(h *cluster.Host, args ...string) {
		fmt.Printf("$ wingman %s    (on %s)\n", strings.Join(args, " "), h.Name())
		cmd := exec.CommandContext(ctx, cli, append([]string{"-c", h.APISocket()}, args...)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		if err := cmd.Run(); err != nil {
			fmt.Printf("(wingman %s: %v)\n", args[0], err)
		}
	}

	step("creating db on kvm1: a real guest (Debian cloud kernel, 128 MiB, 1 vCPU, qemu-guest-agent) whose service keeps a ledger on its shared ext4 disk; protecting it, high priority")
	db, err := env.NewRealGuest(ctx, kvm1, "db", e2e.Policy{Priority: "high"})
	if err != nil {
		return err
	}
	fmt.Printf("db's service answers at %s (from the LAN, whichever host runs it)\n", db.Addr)
	step("creating web (medium, on kvm1) and batch (low, on kvm2): tiny guests without an OS")
	guests := []e2e.Guest{db.Guest}
	for _, g := range []struct {
		host           *cluster.Host
		name, priority string
	}{{kvm1, "web", "medium"}, {kvm2, "batch", "low"}} {
		guest, err := env.NewGuest(ctx, g.host, g.name, g.priority)
		if err != nil {
			return err
		}
		guests = append(guests, guest)
	}
	if _, err := env.WaitRunningOnce(ctx, 30*time.Second, guests); err != nil {
		return err
	}
	step("a client on the LAN writes records to db continuously; each is acknowledged only once on disk")
	writer := env.Writer(ctx, db, 2*time.Second)
	for len(writer.Log().Acks) < 20 {
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("%d records acknowledged so far\n", len(writer.Log().Acks))
	wingman(kvm3, "status")
	fmt.Println()
	wingman(kvm3, "list")

	step("cutting the power of kvm1 (its init is killed: libvirtd, QEMU and wingmand die at once)")
	t0 := time.Now()
	if err := env.PowerOff(kvm1); err != nil {
		return err
	}
	p, err := env.WaitRunningOnce(ctx, 90*time.Second, guests, kvm1)
	if err != nil {
		return err
	}
	took := time.Since(t0)
	fmt.Printf("every protected VM runs again, once, %.1f s after the power loss:\n", took.Seconds())
	for _, g := range guests {
		fmt.Printf("  %-6s on %s\n", g.Name, strings.Join(p[g.UUID], ","))
	}
	_ = e2e.Poll(ctx, time.Minute, 50*time.Millisecond, func() (bool, error) {
		_, ok := writer.Log().AnsweredAgain(t0)
		return ok, nil
	})
	var back time.Duration
	if d, ok := writer.Log().AnsweredAgain(t0); ok {
		back = d
		fmt.Printf("the client saw db's service answer again %.1f s after the power loss (libvirt: running again at %.1f s; the rest is the guest booting)\n", d.Seconds(), took.Seconds())
	} else {
		fmt.Println("the client has not seen db's service answer again yet")
	}
	fmt.Println("\nfailover timeline (time since the power loss):")
	evs, err := env.Client(kvm2).Events(ctx, t0, 0)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		fmt.Printf("  +%5.2fs %s\n", ev.Time.Sub(t0).Seconds(), e2e.FormatEvent(ev))
	}
	fmt.Println()
	wingman(kvm2, "host-list")

	step("powering kvm1 on again; its wingmand rejoins")
	if err := env.PowerOnAndRejoin(ctx, kvm1); err != nil {
		return err
	}
	wingman(kvm1, "host-list")

	step("live-migrating db to kvm1 through the API, while the client writes")
	tm := time.Now()
	res, err := env.Client(kvm1).Migrate(ctx, "db", e2e.MigrateRequest{Target: kvm1.Name()})
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	migGap, _ := writer.Log().LongestGap(tm, time.Now())
	fmt.Printf("db: %s -> %s in %v, guest paused for %v (libvirt), %d KiB sent\n", res.From, res.To,
		res.Duration.Round(time.Millisecond), res.Downtime, res.Bytes>>10)
	fmt.Printf("the client's longest wait for an acknowledgement during the migration: %v, failed requests: %d\n",
		migGap.Round(time.Millisecond), len(writer.Log().FailuresIn(tm, time.Now())))

	step("putting kvm1 in maintenance: its VMs, db among them, leave by live migration")
	t1 := time.Now()
	if _, err := env.Client(kvm2).Maintenance(ctx, kvm1.Name(), e2e.MaintenanceRequest{Enter: true}); err != nil {
		return err
	}
	fmt.Printf("kvm1 is empty after %.1f s\n", time.Since(t1).Seconds())
	evs, _ = env.Client(kvm2).Events(ctx, t1, 0)
	for _, ev := range evs {
		if strings.HasPrefix(ev.Kind, "maintenance") || ev.Kind == "evacuated" || ev.Kind == "evacuation-failed" {
			fmt.Printf("  %s\n", e2e.FormatEvent(ev))
		}
	}
	time.Sleep(time.Second)
	evacGap, _ := writer.Log().LongestGap(t1, time.Now())
	fmt.Printf("the client's longest wait for an acknowledgement during the evacuation: %v, failed requests: %d\n",
		evacGap.Round(time.Millisecond), len(writer.Log().FailuresIn(t1, time.Now())))
	// The destination takes the lease over on its next step; wait for the LUN to say so.
	_ = e2e.Poll(ctx, 10*time.Second, 100*time.Millisecond, func() (bool, error) {
		vms, err := env.Client(kvm2).VMs(ctx)
		for _, v := range vms {
			if v.Protected && v.OwnerName == kvm1.Name() {
				return false, nil
			}
		}
		return err == nil, nil
	})
	wingman(kvm2, "list")
	step("kvm1 leaves maintenance")
	if _, err := env.Client(kvm2).Maintenance(ctx, kvm1.Name(), e2e.MaintenanceRequest{Enter: false}); err != nil {
		return err
	}
	if err := env.WaitHealthy(ctx, hosts...); err != nil {
		return err
	}
	wingman(kvm2, "host-list")

	step("what db's client saw, and its ledger read back from the guest")
	log := writer.Stop()
	v, err := env.CheckLedger(ctx, db, log)
	if err != nil {
		return err
	}
	fmt.Printf("  service answered again after the power loss: %.1f s\n", back.Seconds())
	fmt.Printf("  longest wait during the live migration: %v; during the maintenance evacuation: %v\n",
		migGap.Round(time.Millisecond), evacGap.Round(time.Millisecond))
	fmt.Printf("  ledger: %v\n", v)
	if !v.OK() {
		return fmt.Errorf("acknowledged records were lost or damaged: lost %v, damaged %v", v.Lost, v.Damaged)
	}
	return nil
}

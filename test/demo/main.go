// Command demo shows Wingman at work on a throwaway three-host cluster on this machine (make
// demo, as root, after make deps): it builds wingmand and wingman, starts three test hosts (each
// its own namespaces, libvirtd and wingmand, sharing a heartbeat LUN file), creates three tiny
// KVM guests and protects them with different priorities, then cuts the power of a host and
// shows the failover timeline, live-migrates a guest, and puts a host in maintenance and back.
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

	step("creating 3 guests (64 MiB, 1 vCPU, no OS) and protecting them: db high, web medium on kvm1; batch low on kvm2")
	var guests []e2e.Guest
	for _, g := range []struct {
		host           *cluster.Host
		name, priority string
	}{{kvm1, "db", "high"}, {kvm1, "web", "medium"}, {kvm2, "batch", "low"}} {
		guest, err := env.NewGuest(ctx, g.host, g.name, g.priority)
		if err != nil {
			return err
		}
		guests = append(guests, guest)
	}
	if _, err := env.WaitRunningOnce(ctx, 30*time.Second, guests); err != nil {
		return err
	}
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

	step("live-migrating db to kvm1 through the API")
	res, err := env.Client(kvm1).Migrate(ctx, "db", e2e.MigrateRequest{Target: kvm1.Name()})
	if err != nil {
		return err
	}
	fmt.Printf("db: %s -> %s in %v, guest paused for %v, %d KiB sent\n", res.From, res.To,
		res.Duration.Round(time.Millisecond), res.Downtime, res.Bytes>>10)

	step("putting kvm2 in maintenance: its VMs leave by live migration")
	t1 := time.Now()
	if _, err := env.Client(kvm1).Maintenance(ctx, kvm2.Name(), e2e.MaintenanceRequest{Enter: true}); err != nil {
		return err
	}
	fmt.Printf("kvm2 is empty after %.1f s\n", time.Since(t1).Seconds())
	evs, _ = env.Client(kvm1).Events(ctx, t1, 0)
	for _, ev := range evs {
		if strings.HasPrefix(ev.Kind, "maintenance") || ev.Kind == "evacuated" || ev.Kind == "evacuation-failed" {
			fmt.Printf("  %s\n", e2e.FormatEvent(ev))
		}
	}
	// The destination takes the lease over on its next step; wait for the LUN to say so.
	_ = e2e.Poll(ctx, 10*time.Second, 100*time.Millisecond, func() (bool, error) {
		vms, err := env.Client(kvm1).VMs(ctx)
		for _, v := range vms {
			if v.Protected && v.OwnerName == kvm2.Name() {
				return false, nil
			}
		}
		return err == nil, nil
	})
	wingman(kvm1, "list")
	step("kvm2 leaves maintenance")
	if _, err := env.Client(kvm1).Maintenance(ctx, kvm2.Name(), e2e.MaintenanceRequest{Enter: false}); err != nil {
		return err
	}
	if err := env.WaitHealthy(ctx, hosts...); err != nil {
		return err
	}
	wingman(kvm1, "host-list")
	return nil
}

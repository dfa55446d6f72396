package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/storage"
)

// TestIdleCost measures what wingmand costs at rest, in this process, without
// a test cluster: three daemons with the production defaults (LUN geometry
// and timings, serf's default profile) on a real O_DIRECT file, libvirt's
// test:/// driver and serf on loopback, one protected VM, watched for
// WINGMAN_IDLE (a duration, e.g. 30s) once settled. It reports the CPU time
// per host and simulated minute, the LUN reads and writes per host and
// second, and the allocations; WINGMAN_IDLE_PROFILE names a file for a CPU
// profile of the window. Skipped unless WINGMAN_IDLE is set: it takes that
// long and is a measurement, not a check.
func TestIdleCost(t *testing.T) {
	window, err := time.ParseDuration(os.Getenv("WINGMAN_IDLE"))
	if err != nil || window <= 0 {
		t.Skip("set WINGMAN_IDLE=30s to measure wingmand at rest")
	}
	lun := formatLUNWith(t, storage.DefaultTimings(), storage.DefaultGeometry())
	ports := []int{freePort(t), freePort(t), freePort(t)}
	var ds []*testDaemon
	for i, name := range []string{"kvm1", "kvm2", "kvm3"} {
		var join []string
		for j, p := range ports {
			if j != i {
				join = append(join, fmt.Sprintf("127.0.0.1:%d", p))
			}
		}
		cfg := testConfig(t, lun, name, i+1, join, ports[i])
		cfg.Serf.Profile = "default"
		ds = append(ds, startDaemon(t, cfg))
	}
	ctx := context.Background()
	waitFor(t, "three hosts alive and quorate", func() bool {
		for _, d := range ds {
			s, err := d.client.Status(ctx)
			if err != nil || !s.Quorate || len(s.Hosts) != 3 {
				return false
			}
			for _, h := range s.Hosts {
				if h.State != "alive" {
					return false
				}
			}
		}
		return true
	})
	if _, err := ds[0].client.Protect(ctx, "web1", api.ProtectRequest{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // let the protect's steps and serf settle

	if p := os.Getenv("WINGMAN_IDLE_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	io0 := make([]storage.IOStats, len(ds))
	for i, d := range ds {
		io0[i] = d.d.lun.IOStats()
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, start := cpuTime(t), time.Now()
	time.Sleep(window)
	cpu1, elapsed := cpuTime(t), time.Since(start)
	runtime.ReadMemStats(&ms1)

	hosts := float64(len(ds))
	perMin := (cpu1 - cpu0).Seconds() / hosts / elapsed.Minutes()
	t.Logf("over %v: %.2f s CPU per host per minute (%.2f %% of a core), %.0f allocations/s per host (%.1f MiB/s)",
		elapsed.Round(time.Millisecond), perMin, 100*perMin/60, float64(ms1.Mallocs-ms0.Mallocs)/hosts/elapsed.Seconds(),
		float64(ms1.TotalAlloc-ms0.TotalAlloc)/hosts/elapsed.Seconds()/(1<<20))
	for i, d := range ds {
		io := d.d.lun.IOStats()
		t.Logf("%s: %.1f LUN reads/s, %.1f writes/s", d.d.cfg.HostName,
			float64(io.Reads-io0[i].Reads)/elapsed.Seconds(), float64(io.Writes-io0[i].Writes)/elapsed.Seconds())
	}
}

// cpuTime is the user and system CPU time this process used so far.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

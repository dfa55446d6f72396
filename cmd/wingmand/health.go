package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/storage"
)

// diskCheck remembers which protected VMs' disks this host cannot reach,
// so that status shows it and an event says it once, before a failover
// would try to start the VM here.
type diskCheck struct {
	mu      sync.Mutex
	missing map[string]string // VM name -> problem
}

// unreachableDisks lists, per protected VM, the file and block disks that
// do not exist on this host.
func (d *Daemon) unreachableDisks(ctx context.Context) map[string]string {
	out := map[string]string{}
	recs, _ := d.lun.ReadVMs(ctx)
	for _, r := range recs {
		if !r.Protected() {
			continue
		}
		spec, err := hypervisor.ParseDomainXML(string(r.Config.XML))
		if err != nil {
			continue
		}
		var gone []string
		for _, disk := range spec.Disks {
			if (disk.Type != "file" && disk.Type != "block") || disk.Source == "" || disk.Device == "cdrom" {
				continue
			}
			if _, err := os.Stat(disk.Source); err != nil {
				gone = append(gone, disk.Source)
			}
		}
		if len(gone) > 0 {
			out[r.Config.Name] = fmt.Sprintf("VM %s cannot run on %s: disk %s not reachable here (check the SAN/NFS mount)", r.Config.Name, d.cfg.HostName, strings.Join(gone, ", "))
		}
	}
	return out
}

// checkDisks runs unreachableDisks every interval and writes an event when
// a VM's disks become unreachable from this host.
func (d *Daemon) checkDisks(ctx context.Context, interval time.Duration) {
	for {
		cctx, cancel := context.WithTimeout(ctx, interval)
		now := d.unreachableDisks(cctx)
		cancel()
		d.disks.mu.Lock()
		for name, why := range now {
			if _, seen := d.disks.missing[name]; !seen {
				d.event(storage.SevWarning, "disk-unreachable", d.slot.HostID(), "%s", why)
			}
		}
		d.disks.missing = now
		d.disks.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func (d *Daemon) diskWarnings() []string {
	d.disks.mu.Lock()
	defer d.disks.mu.Unlock()
	var w []string
	for _, why := range d.disks.missing {
		w = append(w, why)
	}
	sort.Strings(w)
	return w
}

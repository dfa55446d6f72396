package drill

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

// Records reads the LUN's VM records (*storage.LUN).
type Records interface {
	ReadVMs(ctx context.Context) ([]storage.VMRecord, []error)
}

// DiskWatch remembers which protected VMs' disks this host cannot reach,
// so that status shows it and an event says it once, before a failover
// would try to start the VM here.
type DiskWatch struct {
	cfg     Config
	records Records
	events  Events

	mu      sync.Mutex
	missing map[string]string // VM name -> problem
}

// NewDiskWatch returns a DiskWatch of this host.
func NewDiskWatch(cfg Config, records Records, events Events) *DiskWatch {
	return &DiskWatch{cfg: cfg, records: records, events: events}
}

// Unreachable lists, per protected VM, the file and block disks that do
// not exist on this host.
func (w *DiskWatch) Unreachable(ctx context.Context) map[string]string {
	out := map[string]string{}
	recs, _ := w.records.ReadVMs(ctx)
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
			out[r.Config.Name] = fmt.Sprintf("VM %s cannot run on %s: disk %s not reachable here (check the SAN/NFS mount)", r.Config.Name, w.cfg.HostName, strings.Join(gone, ", "))
		}
	}
	return out
}

// Run checks the disks every interval, until ctx ends, and writes an event
// when a VM's disks become unreachable from this host.
func (w *DiskWatch) Run(ctx context.Context, interval time.Duration) {
	for {
		cctx, cancel := context.WithTimeout(ctx, interval)
		now := w.Unreachable(cctx)
		cancel()
		w.mu.Lock()
		for name, why := range now {
			if _, seen := w.missing[name]; !seen {
				w.events.Event(storage.SevWarning, "disk-unreachable", storage.UUID{}, w.cfg.HostID, "%s", why)
			}
		}
		w.missing = now
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Warnings are the problems the last check found, sorted.
func (w *DiskWatch) Warnings() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, why := range w.missing {
		out = append(out, why)
	}
	sort.Strings(out)
	return out
}

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

// DiskWatch remembers which protected VMs' disks this host cannot reach,
// so that status shows it and an event says it once, before a failover
// would try to start the VM here.
type DiskWatch struct {
	cfg     Config
	records storage.VMReader
	events  Events

	scan     storage.InUse // Run's reads: the records in use, all of them every fullScanEvery
	lastFull time.Time

	mu      sync.Mutex
	missing map[string]string // VM name -> problem
}

// fullScanEvery is how often Run reads every VM record to find VMs
// protected since; between full scans it reads the records in use. A
// VM protected meanwhile is checked here at the latest when the VM
// manager's failover rescans (the start then fails on the missing disk and
// goes to the next host) or after this period.
const fullScanEvery = 5 * time.Minute

// NewDiskWatch returns a DiskWatch of this host.
func NewDiskWatch(cfg Config, records storage.VMReader, events Events) *DiskWatch {
	return &DiskWatch{cfg: cfg, records: records, events: events}
}

// Unreachable reads every VM record and lists, per protected VM, the file
// and block disks that do not exist on this host.
func (w *DiskWatch) Unreachable(ctx context.Context) map[string]string {
	recs, _ := w.records.ReadVMs(ctx)
	return w.unreachable(recs)
}

// unreachable lists, per protected VM of recs, the file and block disks
// that do not exist on this host.
func (w *DiskWatch) unreachable(recs []storage.VMRecord) map[string]string {
	out := map[string]string{}
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
		w.check(ctx, interval)
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// check reads the records (see fullScanEvery) and checks their disks. A
// read that fails keeps the last result: a VM that was not read is not
// known to be fine.
func (w *DiskWatch) check(ctx context.Context, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	full := time.Since(w.lastFull) >= fullScanEvery
	recs, errs := w.scan.Read(ctx, w.records, full)
	if len(errs) > 0 {
		return
	}
	if full {
		w.lastFull = time.Now()
	}
	now := w.unreachable(recs)
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, why := range now {
		if _, seen := w.missing[name]; !seen {
			w.events.Event(storage.SevWarning, "disk-unreachable", storage.UUID{}, w.cfg.HostID, "%s", why)
		}
	}
	w.missing = now
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

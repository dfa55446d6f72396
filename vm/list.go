package vm

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/storage"
)

// Listed is one VM as this host sees it: a protected VM from its record on
// the LUN (with this host's domain of it, if any), or an unprotected
// domain of this host.
type Listed struct {
	Name      string
	UUID      string // lower case
	Protected bool
	Policy    RecordPolicy
	// LeaseEpoch and Owner are the lease's (Owner 0: nobody holds it);
	// Migration is a migration in flight ("started -> host 2"), or "".
	LeaseEpoch  uint64
	Owner       int
	Migration   string
	MemoryBytes uint64
	VCPUs       int
	// Local is this host's domain of the VM, if it has one.
	Local *hypervisor.Domain
}

// List lists the protected VMs of the LUN and this host's unprotected
// domains, by name. Unreadable records are skipped while some can be read.
func List(ctx context.Context, lun interface {
	ReadVMs(ctx context.Context) ([]storage.VMRecord, []error)
}, hv interface {
	ListDomains(ctx context.Context) ([]hypervisor.Domain, error)
}) ([]Listed, error) {
	recs, errs := lun.ReadVMs(ctx)
	if len(errs) > 0 && len(recs) == 0 {
		return nil, fmt.Errorf("read VM records: %w", errs[0])
	}
	doms, err := hv.ListDomains(ctx)
	if err != nil {
		return nil, err
	}
	local := map[string]hypervisor.Domain{}
	for _, dm := range doms {
		local[strings.ToLower(dm.UUID)] = dm
	}
	var out []Listed
	for _, r := range recs {
		if !r.Protected() {
			continue
		}
		id := strings.ToLower(r.Config.UUID.String())
		rp, _ := UnmarshalRecordPolicy(r.Config.Policy)
		spec, _ := hypervisor.ParseDomainXML(string(r.Config.XML))
		l := Listed{Name: r.Config.Name, UUID: id, Protected: true, Policy: rp, LeaseEpoch: r.Lease.Epoch,
			MemoryBytes: spec.MemoryBytes, VCPUs: spec.VCPUs}
		if r.Lease.Held() {
			l.Owner = r.Lease.Owner.Host
		}
		if r.Lease.Migration.Phase != storage.MigrationNone {
			l.Migration = fmt.Sprintf("%s -> host %d", r.Lease.Migration.Phase, r.Lease.Migration.Target)
		}
		if dm, ok := local[id]; ok {
			l.Local = &dm
			delete(local, id)
		}
		out = append(out, l)
	}
	for id, dm := range local {
		out = append(out, Listed{Name: dm.Name, UUID: id, MemoryBytes: dm.MemoryBytes, VCPUs: dm.VCPUs, Local: &dm})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

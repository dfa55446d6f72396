package vm

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

// FullScanEvery bounds how long Step goes without reading every VM record.
//
// Between full scans a step reads only the records that were in use at the
// last one (storage.InUse), so it sees every change to those (leases,
// migrations, guest-up marks, policies, removals) as before. What it would
// miss is a VM that another host protected in a record that was blank, and
// with it that VM's later release by its owner (a disk-loss response, a
// cold move, a release-all, a reclaim), which another host must see to
// restart it. So every host bumps a counter in its heartbeat slot when it
// protects a VM or releases or reclaims a lease (Config.RecordsChanged,
// storage.SlotRecord.Records), and a change of any host's counter forces a
// full scan here, as do the other events that could make this host act on
// such a VM: a change in the decision (a host dead, left, isolated or back,
// quorum, a verdict), a guest that appears or disappears here (a live
// migration in), and a protect on this host. So the period only bounds how
// stale a view may get that no event should change (a writer older than
// the counter); at 30 s the full scans were most of the LUN reads of a host
// at rest.
const FullScanEvery = 5 * time.Minute

// recordScan is what the last full scan of the VM records ran on.
type recordScan struct {
	in    storage.InUse
	at    time.Time  // the step's now
	hosts []scanHost // the decision's hosts, as reconcile reads them
	dead  []quorum.Verdict
	run   [2]bool  // Quorate, MayRunVMs
	local []string // the local domains' UUIDs, sorted
}

type scanHost struct {
	id      int
	gen     uint64
	state   quorum.HostState
	records uint32 // its slot's VM-records counter
}

// readRecords reads the VM records for a step from lun: all of them when a
// full scan is due (see FullScanEvery; rescan forces one), else those in use
// at the last one, and remembers in last what a full scan ran on.
func readRecords(ctx context.Context, lun LUN, last *recordScan, rescan bool, dec quorum.Decision, doms []hypervisor.Domain, now time.Time) ([]storage.VMRecord, []error) {
	s := recordScan{at: now, dead: slices.Clone(dec.Verdicts), run: [2]bool{dec.Quorate, dec.MayRunVMs}}
	for _, h := range dec.Hosts {
		s.hosts = append(s.hosts, scanHost{h.ID, h.Gen, h.State, h.Records})
	}
	for _, d := range doms {
		s.local = append(s.local, strings.ToLower(d.UUID))
	}
	slices.Sort(s.local)
	due := rescan || !last.in.Scanned() || now.Before(last.at) || now.Sub(last.at) >= FullScanEvery ||
		!slices.Equal(s.hosts, last.hosts) || !slices.Equal(s.dead, last.dead) || s.run != last.run || !slices.Equal(s.local, last.local)
	recs, errs := last.in.Read(ctx, lun, due)
	if due && len(errs) == 0 {
		s.in = last.in
		*last = s
	}
	return recs, errs
}

// decodedConfig is what a step took from a record's policy and domain XML,
// kept while those bytes stay the same: decoding them (JSON and XML) was
// a good part of a step at rest, for bytes that change only when the VM's
// policy or definition does.
type decodedConfig struct {
	policy, xml []byte // as decoded (the record's own, never changed after the read)
	rp          RecordPolicy
	rpErr       error
	memory      uint64
	vcpus       int
}

// decodeConfig returns the decoded policy and size of a record's config,
// from prev (the last step's) when its bytes are unchanged.
func decodeConfig(prev map[string]decodedConfig, c *storage.VMConfig) decodedConfig {
	id := c.UUID.String()
	if d, ok := prev[id]; ok && bytes.Equal(d.policy, c.Policy) && bytes.Equal(d.xml, c.XML) {
		return d
	}
	d := decodedConfig{policy: c.Policy, xml: c.XML}
	d.rp, d.rpErr = UnmarshalRecordPolicy(c.Policy)
	spec, _ := hypervisor.ParseDomainXML(string(c.XML))
	d.memory, d.vcpus = spec.MemoryBytes, spec.VCPUs
	return d
}

package main

import (
	"context"

	"github.com/wingmanha/wingman/cmd/internal/metrics"
)

// metricsSnapshot is the daemon's state at a scrape: its decision, its
// heartbeat's freshness and latency, LUN I/O, events and the protected
// VMs' states (one read of the VM records).
func (d apiServer) metricsSnapshot() metrics.Snapshot {
	s := metrics.Snapshot{Decision: d.decision(), Input: d.loop.Input(), Events: d.events.Counts(), EventsDropped: d.loopEvs.Dropped(),
		LUN: d.lun.IOStats(), Quarantined: d.quarantine.Set()}
	s.Renew, s.RenewMax = d.renewLatency.Get()
	ctx, cancel := context.WithTimeout(context.Background(), 2*d.hdr.Timings.IOTimeout)
	defer cancel()
	vms, _ := d.apiVMs(ctx)
	for _, v := range vms {
		if v.Protected {
			s.VMs = append(s.VMs, metrics.VMState{Name: v.Name, UUID: v.UUID, State: v.State})
		}
	}
	return s
}

package reconcile

import (
	"fmt"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm/plan"
)

// BenchmarkReconcile1000Hosts: 1,000 hosts, 50,000 VMs, host 1000 (500
// VMs) lost; the view of host 1, which runs 50 VMs itself.
func BenchmarkReconcile1000Hosts(b *testing.B) {
	in := Input{Now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), Self: 1, SelfGen: 1, MayRunVMs: true, Quorate: true, Config: DefaultConfig()}
	for h := 1; h <= 1000; h++ {
		st := quorum.StateAlive
		if h == 1000 {
			st = quorum.StateDead
		}
		in.Hosts = append(in.Hosts, Host{ID: h, Name: fmt.Sprintf("kvm%d", h), Gen: 1, State: st, Memory: 512 << 30, CPUs: 64})
	}
	in.Verdicts = []quorum.Verdict{{ID: 1000, Gen: 1}}
	for i := range 50000 {
		owner := 1 + i/50
		p := plan.DefaultPolicy()
		p.Priority = plan.Priority(i % 1001)
		in.Records = append(in.Records, Record{Index: i, UUID: fmt.Sprintf("u%05d", i), Name: fmt.Sprintf("vm%05d", i),
			Lease: Lease{Epoch: 1, Owner: Owner{owner, 1}}, Policy: p, Memory: 4 << 30, VCPUs: 2})
		if owner == 1 {
			in.Local = append(in.Local, Domain{UUID: fmt.Sprintf("u%05d", i), Name: fmt.Sprintf("vm%05d", i), State: DomainRunning, Active: true})
		}
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(Reconcile(in))
	}
	b.ReportMetric(float64(n), "actions")
}

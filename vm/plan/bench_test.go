package plan

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// bigCluster: hosts of 512 GiB / 64 CPUs at about 60% memory, VMs of 2-16
// GiB, a tenth of them in one of 50 anti-affinity groups, mixed priorities
// and tiers. Host 1 holds lostVMs VMs and is dead.
func bigCluster(hosts, vms, lostVMs int) Input {
	r := rand.New(rand.NewPCG(42, 42))
	in := Input{Config: DefaultConfig(), Now: scenarioNow}
	for i := range hosts {
		in.Hosts = append(in.Hosts, Host{ID: i + 1, Name: fmt.Sprintf("kvm%d", i+1), State: HostAlive, Memory: 512 << 30, CPUs: 64})
	}
	in.Hosts[0].State = HostDead
	for i := range vms {
		p := DefaultPolicy()
		p.Priority = Priority(r.IntN(1001))
		p.StartOrder = r.IntN(3)
		if r.IntN(10) == 0 {
			p.AntiAffinity = fmt.Sprintf("g%d", r.IntN(50))
		}
		owner := 1
		if i >= lostVMs {
			owner = 2 + r.IntN(hosts-1)
		}
		in.VMs = append(in.VMs, VM{
			UUID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), Name: fmt.Sprintf("vm%d", i),
			Owner: owner, Memory: uint64(1+r.IntN(4)) << 30, VCPUs: 1 + r.IntN(4), Running: true, Policy: p,
		})
	}
	return in
}

// BenchmarkFailover1000Hosts: 1,000 hosts, 50,000 VMs, one host with 500
// VMs lost. Target: under 100 ms per plan.
func BenchmarkFailover1000Hosts(b *testing.B) {
	in := bigCluster(1000, 50_000, 500)
	b.ResetTimer()
	for b.Loop() {
		p, err := Failover(in)
		if err != nil || len(p.Unplaced) != 0 || len(p.Steps()) != 500 {
			b.Fatalf("plan: %d steps, %d unplaced, %v", len(p.Steps()), len(p.Unplaced), err)
		}
	}
}

// BenchmarkSurvivableK1: admission control, N+1, at 100 hosts and 2,000 VMs.
func BenchmarkSurvivableK1(b *testing.B) {
	in := bigCluster(100, 2000, 20)
	in.Hosts[0].State = HostAlive
	for b.Loop() {
		s, err := Survivable(in, 1)
		if err != nil || !s.OK || s.Scenarios != 100 {
			b.Fatalf("survivable: %+v %v", s, err)
		}
	}
}

// BenchmarkSurvivableK2: 4,950 scenarios at 100 hosts and 2,000 VMs.
func BenchmarkSurvivableK2(b *testing.B) {
	in := bigCluster(100, 2000, 20)
	in.Hosts[0].State = HostAlive
	for b.Loop() {
		if _, err := Survivable(in, 2); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWhatIf: one host lost, at 100 hosts and 2,000 VMs.
func BenchmarkWhatIf(b *testing.B) {
	in := bigCluster(100, 2000, 20)
	in.Hosts[0].State = HostAlive
	for b.Loop() {
		p, err := WhatIf(in, 1)
		if err != nil || len(p.Unplaced) != 0 {
			b.Fatal(err)
		}
	}
}

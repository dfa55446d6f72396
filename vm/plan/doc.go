// Package plan decides where protected VMs go: it owns the VM policy (its
// versioned encoding stored opaquely in the LUN's VM record), the failover
// planner, the maintenance evacuation planner and admission control (can the
// cluster restart every protected VM after losing any k hosts?).
//
// Every entry point is a pure, deterministic function of its Input: the hosts
// with their states and capacities, the VM inventory with policies, the
// placement Config and Now. The same Input, in any slice order, yields the
// same Plan. The caller's duties:
//
//  1. Build an Input from the LUN view (host states, VM records and owners),
//     the serf view (host capacity tags) and the policy of each VM
//     (Unmarshal of the record's policy bytes).
//  2. Call Failover when hosts are declared dead or left, Evacuate when a host
//     enters maintenance, Survivable or WhatIf before admitting a new VM or
//     taking a host down.
//  3. Execute the Plan wave by wave: a wave begins once every step of the
//     previous wave has started (or migrated) and the guest agents listed in
//     its AwaitAgents answer; each step waits its Delay after its wave began.
//     Each start still takes the VM's lease on the LUN first: a plan is a
//     proposal, the lease is what keeps a VM from running twice.
//  4. Record Unplaced and Skipped as events with their reasons.
//
// What it must never do: I/O, read a clock (Now is an input), sleep, start
// goroutines, or import anything but the standard library. It never moves a
// VM whose owner is alive (Failover), never targets a host that is not alive,
// never places a VM twice, never exceeds the overcommit ratios counting the
// load already on a host, and never puts two VMs of one anti-affinity group on
// one host. These rules are checked by property tests over random clusters.
package plan

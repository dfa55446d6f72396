package plan

import (
	"cmp"
	"fmt"
	"slices"
)

// Failover plans the restart of the VMs of every dead or left host on the
// alive hosts. VMs whose restart policy says no, or whose restart limit is
// reached, are Skipped; VMs that do not fit are Unplaced, lowest priority
// first to lose out. VMs of alive, suspect or maintenance hosts are never
// moved.
//
// Cost: O(V + H log H) to read the input, then O(L log L) to order the L VMs
// of lost hosts and, per VM, a scan of the host index that normally stops at
// its first entry plus O(H) to keep the index sorted. At 1,000 hosts,
// 50,000 VMs and 500 VMs to restart it takes about 10 ms, most of it
// validating and indexing the input (BenchmarkFailover1000Hosts).
func Failover(in Input) (Plan, error) {
	if err := in.Validate(); err != nil {
		return Plan{}, err
	}
	c := newCluster(&in)
	var lost []int32
	for hi, h := range c.hosts {
		if h.state.lost() {
			lost = append(lost, int32(hi))
		}
	}
	return c.failover(lost, true), nil
}

// failover plans for the VMs owned by the lost hosts; hosts that are alive
// in the input and not in lost are the targets.
func (c *cluster) failover(lost []int32, limits bool) Plan {
	var p Plan
	queue, skipped := c.candidates(lost, limits)
	p.Skipped = skipped
	c.indexGroups(groupsOf(c.in.VMs, queue))
	isLost := make(map[int32]bool, len(lost))
	for _, hi := range lost {
		isLost[hi] = true
	}
	s := c.newScenario(func(hi int) bool { return c.hosts[hi].state == HostAlive && !isLost[int32(hi)] })
	steps, unplaced := s.run(queue, ActionStart)
	slices.SortFunc(steps, executionOrder)
	p.Waves = waves(steps, c.in.Config.MaxConcurrentStarts, c.maxStarts, true)
	p.Unplaced = unplaced
	return p
}

// candidates returns the VMs of the lost hosts to restart, in placement
// order, and those skipped (including VMs whose owner is unknown), by name.
func (c *cluster) candidates(lost []int32, limits bool) ([]int32, []Skipped) {
	var queue []int32
	var skipped []Skipped
	for _, hi := range lost {
		for _, vi := range c.owned[hi] {
			v := &c.in.VMs[vi]
			if ok, why := c.restartable(v, limits); !ok {
				skipped = append(skipped, Skipped{VM: v.UUID, Name: v.Name, From: v.Owner, Reason: why})
				continue
			}
			queue = append(queue, vi)
		}
	}
	for _, vi := range c.orphans {
		v := &c.in.VMs[vi]
		skipped = append(skipped, Skipped{VM: v.UUID, Name: v.Name, From: v.Owner,
			Reason: fmt.Sprintf("owner host %d is not among the hosts; not moved", v.Owner)})
	}
	slices.SortFunc(queue, c.placementOrder)
	sortSkipped(skipped)
	return queue, skipped
}

func sortSkipped(s []Skipped) {
	slices.SortFunc(s, func(a, b Skipped) int {
		if r := cmp.Compare(a.Name, b.Name); r != 0 {
			return r
		}
		return cmp.Compare(a.VM, b.VM)
	})
}

func groupsOf(vms []VM, queue []int32) map[string]struct{} {
	g := make(map[string]struct{})
	for _, vi := range queue {
		if a := vms[vi].Policy.AntiAffinity; a != "" {
			g[a] = struct{}{}
		}
	}
	return g
}

// Evacuate plans live migrations of every running VM off host (entering
// maintenance) to the other alive hosts, highest priority first, in waves of
// at most MaxConcurrentMigrations (MaxMigrationsPerHost per target).
// Restart policies and limits do not apply: a migration stops nothing.
// VMs that are not running have nothing to migrate and are Skipped.
func Evacuate(in Input, host int) (Plan, error) {
	if err := in.Validate(); err != nil {
		return Plan{}, err
	}
	c := newCluster(&in)
	src, ok := c.byID[host]
	if !ok {
		return Plan{}, fmt.Errorf("evacuate host %d: %w", host, ErrUnknownHost)
	}
	if st := c.hosts[src].state; st.lost() {
		return Plan{}, fmt.Errorf("%w: evacuate host %d: it is %s; its VMs are restarted by Failover, not migrated", ErrInvalidInput, host, st)
	}
	var p Plan
	var queue []int32
	for _, vi := range c.owned[src] {
		v := &in.VMs[vi]
		if !v.Running {
			p.Skipped = append(p.Skipped, Skipped{VM: v.UUID, Name: v.Name, From: v.Owner, Reason: "not running: nothing to migrate"})
			continue
		}
		queue = append(queue, vi)
	}
	slices.SortFunc(queue, c.placementOrder)
	sortSkipped(p.Skipped)
	c.indexGroups(groupsOf(in.VMs, queue))
	s := c.newScenario(func(hi int) bool { return c.hosts[hi].state == HostAlive && int32(hi) != src })
	steps, unplaced := s.run(queue, ActionMigrate)
	p.Waves = waves(steps, in.Config.MaxConcurrentMigrations, func(int) int { return in.Config.MaxMigrationsPerHost }, false)
	p.Unplaced = unplaced
	return p, nil
}

package plan

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
)

// cluster is the read-only part of one Input, prepared once: hosts sorted
// by id with their capacity and existing load, VMs grouped by owner. Every
// planner run (a failover, an evacuation, each admission scenario) starts a
// scenario from it.
type cluster struct {
	in      *Input
	hosts   []hostInfo     // sorted by id
	byID    map[int]int32  // host id -> index in hosts
	byRef   map[string]int // host name, then decimal id -> index, for preferred hosts
	owned   [][]int32      // per host index: its VMs (indices into in.VMs)
	orphans []int32        // VMs whose owner id is not among the hosts
	// groupOn holds (group, host) for every running VM of a group that
	// matters to this run, so anti-affinity counts VMs already running.
	groupOn map[groupKey]struct{}
}

type hostInfo struct {
	id     int
	name   string
	state  HostState
	memCap int64 // after reserve and overcommit
	cpuCap int64
	starts int   // failover starts at once
	memUse int64 // other load plus running VMs
	cpuUse int64
}

type groupKey struct {
	group string
	host  int32
}

func clampInt64(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}

// newCluster prepares in; O(H log H + V). in must be valid.
func newCluster(in *Input) *cluster {
	cfg := in.Config
	c := &cluster{
		in:    in,
		hosts: make([]hostInfo, len(in.Hosts)),
		byID:  make(map[int]int32, len(in.Hosts)),
		byRef: make(map[string]int, 2*len(in.Hosts)),
		owned: make([][]int32, len(in.Hosts)),
	}
	for i, h := range in.Hosts {
		lim := cfg.Limits()
		if h.Limits != nil {
			lim = *h.Limits
		}
		var mem int64
		if h.Memory > lim.ReservedMemory {
			mem = int64(math.Min(float64(h.Memory-lim.ReservedMemory)*lim.MemoryOvercommit, math.MaxInt64/2))
		}
		c.hosts[i] = hostInfo{
			id: h.ID, name: h.Name, state: h.State,
			memCap: mem,
			cpuCap: int64(math.Floor(float64(h.CPUs)*lim.CPUOvercommit + 1e-9)),
			starts: lim.MaxStarts,
			memUse: clampInt64(h.OtherMemory),
			cpuUse: int64(h.OtherCPUs),
		}
	}
	slices.SortFunc(c.hosts, func(a, b hostInfo) int { return cmp.Compare(a.id, b.id) })
	for i, h := range c.hosts {
		c.byID[h.id] = int32(i)
	}
	// Names win over ids so a host named "3" is found by name; ids fill in.
	for i, h := range c.hosts {
		if h.name != "" {
			if _, dup := c.byRef[h.name]; !dup {
				c.byRef[h.name] = i
			}
		}
	}
	for i, h := range c.hosts {
		ref := strconv.Itoa(h.id)
		if _, taken := c.byRef[ref]; !taken {
			c.byRef[ref] = i
		}
	}
	for i := range in.VMs {
		v := &in.VMs[i]
		if v.Owner == 0 {
			continue
		}
		hi, ok := c.byID[v.Owner]
		if !ok {
			c.orphans = append(c.orphans, int32(i))
			continue
		}
		c.owned[hi] = append(c.owned[hi], int32(i))
		if v.Running {
			h := &c.hosts[hi]
			h.memUse = satAdd(h.memUse, clampInt64(v.Memory))
			h.cpuUse = satAdd(h.cpuUse, int64(v.VCPUs))
		}
	}
	return c
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// indexGroups records where the running VMs of the given groups are. Only
// groups of VMs being placed matter, which keeps a 50,000-VM cluster cheap.
// maxStarts is how many failover starts host id takes at once.
func (c *cluster) maxStarts(id int) int {
	if i, ok := c.byID[id]; ok {
		return c.hosts[i].starts
	}
	return c.in.Config.MaxStartsPerHost
}

func (c *cluster) indexGroups(groups map[string]struct{}) {
	c.groupOn = make(map[groupKey]struct{})
	if len(groups) == 0 {
		return
	}
	for hi, vms := range c.owned {
		for _, vi := range vms {
			v := &c.in.VMs[vi]
			if g := v.Policy.AntiAffinity; g != "" && v.Running {
				if _, ok := groups[g]; ok {
					c.groupOn[groupKey{g, int32(hi)}] = struct{}{}
				}
			}
		}
	}
}

// placementOrder hands out capacity: highest priority first, then lower
// tier, then name and UUID so the order never depends on input order.
func (c *cluster) placementOrder(a, b int32) int {
	va, vb := &c.in.VMs[a], &c.in.VMs[b]
	if r := cmp.Compare(vb.Policy.Priority, va.Policy.Priority); r != 0 {
		return r
	}
	if r := cmp.Compare(va.Policy.StartOrder, vb.Policy.StartOrder); r != 0 {
		return r
	}
	if r := cmp.Compare(va.Name, vb.Name); r != 0 {
		return r
	}
	return cmp.Compare(va.UUID, vb.UUID)
}

// restartable reports whether a VM of a lost host is restarted, and why not.
// Restart limits are checked only when limits is set: admission control asks
// about capacity, not about a VM's crash history.
func (c *cluster) restartable(v *VM, limits bool) (bool, string) {
	switch v.Policy.Restart {
	case RestartNever:
		return false, "restart policy never"
	case RestartOnFailure:
		if !v.Running {
			return false, "not running and restart policy on-failure"
		}
	}
	if lim := v.Policy.RestartLimit; limits && lim.Max > 0 {
		since := c.in.Now.Add(-lim.Window)
		n := 0
		for _, t := range v.Restarts {
			if t.After(since) {
				n++
			}
		}
		if n >= lim.Max {
			return false, fmt.Sprintf("restart limit reached: %d restarts within %v", n, lim.Window)
		}
	}
	return true, ""
}

// scenario is one planner run's mutable state over a cluster.
type scenario struct {
	c       *cluster
	memFree []int64 // per host index; may be negative on an overcommitted host
	cpuFree []int64
	target  []bool
	index   []int32 // target hosts, best first: most free memory, then CPU, then lowest id
	added   map[groupKey]struct{}
	ntarget int
}

func (c *cluster) newScenario(isTarget func(hi int) bool) *scenario {
	s := &scenario{
		c:       c,
		memFree: make([]int64, len(c.hosts)),
		cpuFree: make([]int64, len(c.hosts)),
		target:  make([]bool, len(c.hosts)),
		added:   make(map[groupKey]struct{}),
	}
	for hi := range c.hosts {
		h := &c.hosts[hi]
		s.memFree[hi] = h.memCap - h.memUse
		s.cpuFree[hi] = h.cpuCap - h.cpuUse
		if isTarget(hi) {
			s.target[hi] = true
			s.index = append(s.index, int32(hi))
		}
	}
	s.ntarget = len(s.index)
	slices.SortFunc(s.index, s.compareHosts)
	return s
}

// without copies s with the given hosts no longer targets; O(H), and the
// index stays sorted because filtering keeps order.
func (s *scenario) without(lost []int32) *scenario {
	n := &scenario{
		c:       s.c,
		memFree: slices.Clone(s.memFree),
		cpuFree: slices.Clone(s.cpuFree),
		target:  slices.Clone(s.target),
		added:   make(map[groupKey]struct{}),
	}
	for _, hi := range lost {
		n.target[hi] = false
	}
	n.index = make([]int32, 0, len(s.index))
	for _, hi := range s.index {
		if n.target[hi] {
			n.index = append(n.index, hi)
		}
	}
	n.ntarget = len(n.index)
	return n
}

// compareHosts orders the index: a host with more free memory first, then
// more free CPU, then the lower id. Placing a VM on the first host that fits
// is therefore "most free memory after placement", which spreads load.
func (s *scenario) compareHosts(a, b int32) int {
	if r := cmp.Compare(s.memFree[b], s.memFree[a]); r != 0 {
		return r
	}
	if r := cmp.Compare(s.cpuFree[b], s.cpuFree[a]); r != 0 {
		return r
	}
	return cmp.Compare(s.c.hosts[a].id, s.c.hosts[b].id)
}

func (s *scenario) blocked(group string, hi int32) bool {
	if group == "" {
		return false
	}
	k := groupKey{group, hi}
	if _, ok := s.c.groupOn[k]; ok {
		return true
	}
	_, ok := s.added[k]
	return ok
}

func (s *scenario) fits(v *VM, hi int32) bool {
	return s.memFree[hi] >= clampInt64(v.Memory) && s.cpuFree[hi] >= int64(v.VCPUs) && !s.blocked(v.Policy.AntiAffinity, hi)
}

// place finds the host for v and commits it: a preferred host with room if
// any (the one with the most free memory), else the best host of the index.
// Cost: O(P log H) for P preferred hosts, else the index scan stops at the
// first host that fits, which is usually the first; plus an O(log H) search
// and an O(H) memmove to keep the index sorted.
func (s *scenario) place(v *VM) (int32, Reason, string) {
	if s.ntarget == 0 {
		return -1, ReasonNoAliveHost, "no host is alive"
	}
	mem := clampInt64(v.Memory)
	best := int32(-1)
	for _, ref := range v.Policy.PreferredHosts {
		hi, ok := s.c.byRef[ref]
		if !ok || !s.target[hi] || !s.fits(v, int32(hi)) {
			continue
		}
		if best < 0 || s.compareHosts(int32(hi), best) < 0 {
			best = int32(hi)
		}
	}
	pos := -1
	if best >= 0 {
		pos = s.find(best)
	} else {
		sawRoom := false
		for i, hi := range s.index {
			if s.memFree[hi] < mem {
				break // sorted: no later host has more memory
			}
			if s.cpuFree[hi] < int64(v.VCPUs) {
				continue
			}
			if s.blocked(v.Policy.AntiAffinity, hi) {
				sawRoom = true
				continue
			}
			pos, best = i, hi
			break
		}
		if pos < 0 {
			need := fmt.Sprintf("needs %s and %d vCPUs", formatBytes(mem), v.VCPUs)
			if sawRoom {
				return -1, ReasonAntiAffinity, fmt.Sprintf("%s; every host with room runs a VM of group %q", need, v.Policy.AntiAffinity)
			}
			top := s.index[0]
			return -1, ReasonNoCapacity, fmt.Sprintf("%s; most free: %s and %d vCPUs on %s",
				need, formatBytes(max(s.memFree[top], 0)), max(s.cpuFree[top], 0), s.c.hosts[top].name)
		}
	}
	s.memFree[best] -= mem
	s.cpuFree[best] -= int64(v.VCPUs)
	if g := v.Policy.AntiAffinity; g != "" {
		s.added[groupKey{g, best}] = struct{}{}
	}
	s.resort(pos)
	return best, "", ""
}

// find returns the index position of a target host by binary search on its
// (unique) key.
func (s *scenario) find(hi int32) int {
	i, ok := slices.BinarySearchFunc(s.index, hi, s.compareHosts)
	if !ok {
		panic("plan: host index out of order") // a bug in this file, not bad input
	}
	return i
}

// resort moves index[pos], whose free resources just shrank, right to its
// place.
func (s *scenario) resort(pos int) {
	x := s.index[pos]
	rest := s.index[pos+1:]
	k := sort.Search(len(rest), func(j int) bool { return s.compareHosts(x, rest[j]) < 0 })
	copy(s.index[pos:pos+k], rest[:k])
	s.index[pos+k] = x
}

// run places queue (already in placement order) and returns steps in the
// same order plus the VMs that did not fit. Admission control only needs
// the latter and passes action "" to skip building steps.
func (s *scenario) run(queue []int32, action Action) ([]Step, []Unplaced) {
	c := s.c
	var unplaced []Unplaced
	var steps []Step
	if action != "" {
		steps = make([]Step, 0, len(queue))
	}
	for _, vi := range queue {
		v := &c.in.VMs[vi]
		from := c.hosts[c.byID[v.Owner]]
		hi, reason, detail := s.place(v)
		if hi < 0 {
			unplaced = append(unplaced, Unplaced{VM: v.UUID, Name: v.Name, From: v.Owner, Priority: v.Policy.Priority, Reason: reason, Detail: detail})
			continue
		}
		if action == "" {
			continue
		}
		to := c.hosts[hi]
		st := Step{
			Action: action, VM: v.UUID, Name: v.Name,
			From: from.id, FromName: from.name, To: to.id, ToName: to.name,
			Priority: v.Policy.Priority, Tier: v.Policy.StartOrder,
		}
		if action == ActionStart {
			st.Delay = v.Policy.StartDelay
			st.WaitGuestAgent = v.Policy.WaitGuestAgent
		}
		steps = append(steps, st)
	}
	return steps, unplaced
}

// executionOrder: lower tier first, then placement order.
func executionOrder(a, b Step) int {
	if r := cmp.Compare(a.Tier, b.Tier); r != 0 {
		return r
	}
	if r := cmp.Compare(b.Priority, a.Priority); r != 0 {
		return r
	}
	if r := cmp.Compare(a.Name, b.Name); r != 0 {
		return r
	}
	return cmp.Compare(a.VM, b.VM)
}

// waves cuts steps (already in execution order) into consecutive waves of
// at most total steps and perHost(target) steps per target. With tiered set, a wave
// holds one tier only and the first wave of a tier awaits the guest agents
// of earlier tiers' WaitGuestAgent steps. Waves are consecutive runs of the
// list, never reordered to pack tighter, so no VM starts before one of
// higher priority in its tier. O(S).
func waves(steps []Step, total int, perHost func(host int) int, tiered bool) []Wave {
	var out []Wave
	var awaiting, tierAgents []string
	var load map[int]int
	for i, st := range steps {
		newTier := i == 0 || tiered && st.Tier != steps[i-1].Tier
		if newTier {
			awaiting = append(awaiting, tierAgents...)
			tierAgents = nil
		}
		if newTier || len(out[len(out)-1].Steps) == total || load[st.To] >= perHost(st.To) {
			out = append(out, Wave{})
			load = make(map[int]int)
			if newTier && len(awaiting) > 0 {
				out[len(out)-1].AwaitAgents, awaiting = awaiting, nil
			}
		}
		w := &out[len(out)-1]
		w.Steps = append(w.Steps, st)
		load[st.To]++
		if st.WaitGuestAgent {
			tierAgents = append(tierAgents, st.VM)
		}
	}
	return out
}

package plan

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

const gib = 1 << 30

// randomInput builds a small random cluster. ample gives every alive host
// far more room than all VMs need and drops anti-affinity groups.
func randomInput(r *rand.Rand, ample bool) Input {
	states := []HostState{HostAlive, HostAlive, HostAlive, HostAlive, HostAlive, HostDead, HostDead, HostLeft, HostMaintenance, HostSuspect}
	nh := 1 + r.IntN(12)
	in := Input{Now: scenarioNow, Config: Config{
		MemoryOvercommit:        1 + float64(r.IntN(5))/4,
		CPUOvercommit:           float64(1 + r.IntN(8)),
		ReservedMemory:          uint64(r.IntN(3)) * gib / 2,
		MaxConcurrentStarts:     1 + r.IntN(5),
		MaxStartsPerHost:        1 + r.IntN(3),
		MaxConcurrentMigrations: 1 + r.IntN(3),
		MaxMigrationsPerHost:    1 + r.IntN(2),
	}}
	for i := range nh {
		h := Host{ID: i + 1 + r.IntN(2)*100, Name: "kvm" + strconv.Itoa(i+1), State: states[r.IntN(len(states))],
			Memory: uint64(8+r.IntN(120)) * gib, CPUs: 2 + r.IntN(30)}
		if r.IntN(4) == 0 {
			h.OtherMemory, h.OtherCPUs = uint64(r.IntN(16))*gib, r.IntN(8)
		}
		if ample {
			h.Memory, h.CPUs = 1<<50, 1<<20
		}
		in.Hosts = append(in.Hosts, h)
	}
	groups := []string{"", "", "", "a", "b", "c"}
	nv := r.IntN(60)
	for i := range nv {
		p := DefaultPolicy()
		p.Priority = Priority(r.IntN(int(MaxPriority) + 1))
		if r.IntN(2) == 0 {
			p.Priority = []Priority{PriorityLow, PriorityMedium, PriorityHigh}[r.IntN(3)]
		}
		p.Restart = []RestartPolicy{RestartAlways, RestartAlways, RestartOnFailure, RestartNever}[r.IntN(4)]
		if !ample {
			p.AntiAffinity = groups[r.IntN(len(groups))]
		}
		for range r.IntN(3) {
			ref := in.Hosts[r.IntN(nh)].Name
			if r.IntN(2) == 0 {
				ref = strconv.Itoa(in.Hosts[r.IntN(nh)].ID)
			}
			if !slices.Contains(p.PreferredHosts, ref) {
				p.PreferredHosts = append(p.PreferredHosts, ref)
			}
		}
		p.StartOrder = r.IntN(3)
		p.StartDelay = time.Duration(r.IntN(3)) * time.Second
		p.WaitGuestAgent = r.IntN(3) == 0
		v := VM{
			UUID: fmt.Sprintf("%08x-%d", r.Uint32(), i), Name: "vm" + strconv.Itoa(r.IntN(nv)), // names may repeat
			Owner:  in.Hosts[r.IntN(nh)].ID,
			Memory: uint64(1+r.IntN(32)) * gib / 2, VCPUs: 1 + r.IntN(8),
			Running: r.IntN(8) != 0, Policy: p,
		}
		switch r.IntN(20) {
		case 0:
			v.Owner = 0
		case 1:
			v.Owner = 999 // unknown
		}
		for range r.IntN(4) {
			v.Restarts = append(v.Restarts, scenarioNow.Add(-time.Duration(r.IntN(120))*time.Minute))
		}
		in.VMs = append(in.VMs, v)
	}
	return in
}

func shuffled(r *rand.Rand, in Input) Input {
	out := in
	out.Hosts = slices.Clone(in.Hosts)
	out.VMs = slices.Clone(in.VMs)
	r.Shuffle(len(out.Hosts), func(i, j int) { out.Hosts[i], out.Hosts[j] = out.Hosts[j], out.Hosts[i] })
	r.Shuffle(len(out.VMs), func(i, j int) { out.VMs[i], out.VMs[j] = out.VMs[j], out.VMs[i] })
	return out
}

// world is the checker's own model of capacity, written independently of
// the planner's.
type world struct {
	in      Input
	host    map[int]Host
	vm      map[string]VM
	mem     map[int]int64 // used after the plan
	cpu     map[int]int64
	groups  map[int]map[string]int
	targets map[int]bool // hosts that received a VM
}

func newWorld(in Input) *world {
	w := &world{in: in, host: map[int]Host{}, vm: map[string]VM{}, mem: map[int]int64{}, cpu: map[int]int64{},
		groups: map[int]map[string]int{}, targets: map[int]bool{}}
	for _, h := range in.Hosts {
		w.host[h.ID] = h
		w.mem[h.ID] = int64(h.OtherMemory)
		w.cpu[h.ID] = int64(h.OtherCPUs)
		w.groups[h.ID] = map[string]int{}
	}
	for _, v := range in.VMs {
		w.vm[v.UUID] = v
		if _, ok := w.host[v.Owner]; ok && v.Running {
			w.add(v, v.Owner)
		}
	}
	return w
}

func (w *world) add(v VM, host int) {
	w.mem[host] += int64(v.Memory)
	w.cpu[host] += int64(v.VCPUs)
	if v.Policy.AntiAffinity != "" {
		w.groups[host][v.Policy.AntiAffinity]++
	}
}

func (w *world) remove(v VM, host int) {
	w.mem[host] -= int64(v.Memory)
	w.cpu[host] -= int64(v.VCPUs)
	if v.Policy.AntiAffinity != "" {
		w.groups[host][v.Policy.AntiAffinity]--
	}
}

func (w *world) caps(id int) (int64, int64) {
	h := w.host[id]
	var mem float64
	if h.Memory > w.in.Config.ReservedMemory {
		mem = math.Floor(float64(h.Memory-w.in.Config.ReservedMemory) * w.in.Config.MemoryOvercommit)
	}
	return int64(mem), int64(math.Floor(float64(h.CPUs)*w.in.Config.CPUOvercommit + 1e-9))
}

func (w *world) fits(v VM, id int) bool {
	mc, cc := w.caps(id)
	return w.mem[id]+int64(v.Memory) <= mc && w.cpu[id]+int64(v.VCPUs) <= cc &&
		(v.Policy.AntiAffinity == "" || w.groups[id][v.Policy.AntiAffinity] == 0)
}

// checkPlan verifies the safety properties every plan must have. exclude
// is a host that must not be a target (the evacuated one), or 0.
func checkPlan(t *testing.T, in Input, p Plan, evacuated int) {
	t.Helper()
	w := newWorld(in)
	seen := map[string]bool{}
	once := func(uuid, what string) {
		if seen[uuid] {
			t.Fatalf("vm %s appears twice (%s)\nplan:\n%s", uuid, what, p)
		}
		seen[uuid] = true
	}
	cfg := in.Config
	total, perHost := cfg.MaxConcurrentStarts, cfg.MaxStartsPerHost
	if evacuated != 0 {
		total, perHost = cfg.MaxConcurrentMigrations, cfg.MaxMigrationsPerHost
	}
	var prev *Step
	for wi, wave := range p.Waves {
		if len(wave.Steps) == 0 || len(wave.Steps) > total {
			t.Fatalf("wave %d has %d steps, limit %d", wi+1, len(wave.Steps), total)
		}
		load := map[int]int{}
		for _, st := range wave.Steps {
			load[st.To]++
			if load[st.To] > perHost {
				t.Fatalf("wave %d sends %d VMs to host %d, limit %d", wi+1, load[st.To], st.To, perHost)
			}
			if evacuated == 0 && st.Tier != wave.Steps[0].Tier {
				t.Fatalf("wave %d mixes tiers", wi+1)
			}
		}
		for i := range wave.Steps {
			st := &wave.Steps[i]
			once(st.VM, "step")
			v, ok := w.vm[st.VM]
			if !ok {
				t.Fatalf("step for unknown vm %s", st.VM)
			}
			if to := w.host[st.To]; to.State != HostAlive || st.To == evacuated {
				t.Fatalf("vm %s sent to host %d which is %s (evacuated %d)", st.VM, st.To, to.State, evacuated)
			}
			if st.From != v.Owner {
				t.Fatalf("vm %s: step from %d, owner %d", st.VM, st.From, v.Owner)
			}
			if owner := w.host[v.Owner]; evacuated == 0 && !owner.State.lost() {
				t.Fatalf("failover moves vm %s whose owner %d is %s", st.VM, v.Owner, owner.State)
			}
			if evacuated != 0 && (v.Owner != evacuated || !v.Running) {
				t.Fatalf("evacuation moves vm %s of host %d (running %v)", st.VM, v.Owner, v.Running)
			}
			if !w.fits(v, st.To) {
				mc, cc := w.caps(st.To)
				t.Fatalf("vm %s does not fit on %d: mem %d+%d > %d or cpu %d+%d > %d or group %q taken\nplan:\n%s",
					st.VM, st.To, w.mem[st.To], v.Memory, mc, w.cpu[st.To], v.VCPUs, cc, v.Policy.AntiAffinity, p)
			}
			if v.Running && v.Owner == evacuated {
				w.remove(v, v.Owner)
			}
			w.add(v, st.To)
			w.targets[st.To] = true
			if prev != nil {
				if evacuated == 0 && prev.Tier > st.Tier {
					t.Fatalf("tier %d starts after tier %d", st.Tier, prev.Tier)
				}
				if (evacuated != 0 || prev.Tier == st.Tier) && prev.Priority < st.Priority {
					t.Fatalf("priority rises within a tier: %s (%d) before %s (%d)", prev.Name, prev.Priority, st.Name, st.Priority)
				}
			}
			prev = st
		}
	}
	for _, u := range p.Unplaced {
		once(u.VM, "unplaced")
		v := w.vm[u.VM]
		for _, h := range in.Hosts {
			if h.State == HostAlive && h.ID != evacuated && w.fits(v, h.ID) {
				t.Fatalf("vm %s unplaced (%s) but fits on host %d in the final state\nplan:\n%s", u.VM, u.Reason, h.ID, p)
			}
		}
	}
	for _, s := range p.Skipped {
		once(s.VM, "skipped")
	}
	// Every VM of a lost (or the evacuated) host is accounted for.
	for _, v := range in.VMs {
		h, known := w.host[v.Owner]
		mine := evacuated == 0 && known && h.State.lost() || evacuated != 0 && v.Owner == evacuated
		if evacuated == 0 && !known && v.Owner != 0 {
			mine = true // orphan: skipped
		}
		if mine != seen[v.UUID] {
			t.Fatalf("vm %s (owner %d, known %v) accounted %v, want %v\nplan:\n%s", v.UUID, v.Owner, known, seen[v.UUID], mine, p)
		}
	}
}

const propertyRuns = 3000

func TestFailoverProperties(t *testing.T) {
	for seed := range uint64(propertyRuns) {
		r := rand.New(rand.NewPCG(seed, 1))
		in := randomInput(r, false)
		p, err := Failover(in)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		checkPlan(t, in, p, 0)
		q, err := Failover(shuffled(r, in))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("seed %d: shuffled input gives another plan:\n%s\nvs\n%s", seed, p, q)
		}
	}
}

func TestFailoverPlacesEverythingWhenAmple(t *testing.T) {
	for seed := range uint64(propertyRuns) {
		r := rand.New(rand.NewPCG(seed, 2))
		in := randomInput(r, true)
		if !slices.ContainsFunc(in.Hosts, func(h Host) bool { return h.State == HostAlive }) {
			continue
		}
		p, err := Failover(in)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		checkPlan(t, in, p, 0)
		if len(p.Unplaced) > 0 {
			t.Fatalf("seed %d: ample capacity but unplaced: %+v", seed, p.Unplaced)
		}
	}
}

func TestEvacuateProperties(t *testing.T) {
	for seed := range uint64(propertyRuns) {
		r := rand.New(rand.NewPCG(seed, 3))
		in := randomInput(r, false)
		h := in.Hosts[r.IntN(len(in.Hosts))]
		p, err := Evacuate(in, h.ID)
		if h.State.lost() {
			if err == nil {
				t.Fatalf("seed %d: evacuating a %s host succeeded", seed, h.State)
			}
			continue
		}
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		checkPlan(t, in, p, h.ID)
		q, _ := Evacuate(shuffled(r, in), h.ID)
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("seed %d: shuffled input gives another plan", seed)
		}
	}
}

// TestSurvivableMatchesWhatIf: admission control's shortcut (one prepared
// cluster, scenarios derived from it) agrees with planning each loss from
// scratch.
func TestSurvivableMatchesWhatIf(t *testing.T) {
	for seed := range uint64(propertyRuns / 3) {
		r := rand.New(rand.NewPCG(seed, 4))
		in := randomInput(r, false)
		for i := range in.VMs {
			in.VMs[i].Restarts = nil // WhatIf honours restart limits, Survivable does not
		}
		s, err := Survivable(in, 1)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		fails := 0
		var firstLost []int
		for _, h := range slices.SortedFunc(slices.Values(in.Hosts), func(a, b Host) int { return a.ID - b.ID }) {
			if h.State.lost() {
				continue
			}
			p, err := WhatIf(in, h.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Unplaced) > 0 {
				fails++
				if firstLost == nil {
					firstLost = []int{h.ID}
					if !reflect.DeepEqual(s.Failures[0].Unplaced, p.Unplaced) {
						t.Fatalf("seed %d: survivable says %+v, what-if says %+v", seed, s.Failures[0].Unplaced, p.Unplaced)
					}
				}
			}
		}
		alive := slices.ContainsFunc(in.Hosts, func(h Host) bool { return !h.State.lost() })
		if alive && (s.FailureCount != fails || s.OK != (fails == 0)) {
			t.Fatalf("seed %d: survivable %+v, what-if failures %d", seed, s, fails)
		}
		if firstLost != nil && !reflect.DeepEqual(s.Failures[0].Lost, firstLost) {
			t.Fatalf("seed %d: first failure %v, want %v", seed, s.Failures[0].Lost, firstLost)
		}
	}
}

func TestSurvivableK2Determinism(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 5))
		in := randomInput(r, false)
		a, err := Survivable(in, 2)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Survivable(shuffled(r, in), 2)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: shuffled input changes the answer", seed)
		}
	}
}

func TestSurvivableRefusesHugeK(t *testing.T) {
	in := Input{Config: DefaultConfig()}
	for i := range 64 {
		in.Hosts = append(in.Hosts, Host{ID: i + 1, Name: "h", State: HostAlive, Memory: 64 * gib, CPUs: 8})
	}
	if _, err := Survivable(in, 3); err != nil {
		t.Fatalf("k=3 of 64: %v", err)
	}
	if _, err := Survivable(in, 4); err == nil {
		t.Fatal("k=4 of 64 hosts accepted")
	}
	if _, err := Survivable(in, -1); err == nil {
		t.Fatal("k=-1 accepted")
	}
}

func TestBinomial(t *testing.T) {
	for _, c := range []struct{ n, k, want int }{{5, 0, 1}, {5, 5, 1}, {5, 2, 10}, {64, 3, 41664}, {64, 4, MaxScenarios + 1}, {1000, 500, MaxScenarios + 1}} {
		if got := binomial(c.n, c.k); got != c.want {
			t.Errorf("binomial(%d,%d) = %d, want %d", c.n, c.k, got, c.want)
		}
	}
}

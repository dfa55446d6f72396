package reconcile

import (
	"flag"
	"fmt"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm/plan"
)

var seeds = flag.Int("seeds", 2000, "random histories per property test")

// TestNeverTwoAndAlwaysBack runs thousands of random histories over 2 to 6
// hosts: hosts reconcile on their own snapshots and execute actions
// interleaved with power losses, verdicts, returns at a new generation,
// guest crashes, panics, I/O errors, operator stops and live migrations cut
// at random points. No VM may ever run on two hosts (checked after every
// operation). Once faults stop, every VM that should run (restart always,
// not stopped) runs on exactly one live host, which holds its lease.
func TestNeverTwoAndAlwaysBack(t *testing.T) {
	n := *seeds
	if testing.Short() {
		n = 200
	}
	for seed := range uint64(n) {
		s := newSim(t, seed, 2+int(seed%5), 5+int(seed%26))
		s.failRate = 0.05
		s.chaos(300 + int(seed%300))
		if !s.settle() {
			t.Fatalf("seed %d: did not settle\n%s", seed, s.tail())
		}
		s.checkAlwaysBack(seed)
	}
}

func (s *sim) checkAlwaysBack(seed uint64) {
	s.t.Helper()
	for _, v := range s.vms {
		var on []*simHost
		for _, h := range s.hosts {
			if d := h.domains[v.uuid]; h.powered && d != nil && d.Active {
				on = append(on, h)
			}
		}
		if v.stopped {
			if len(on) > 0 {
				s.t.Fatalf("seed %d: %s stopped by the operator still runs on host %d\n%s", seed, v.name, on[0].id, s.tail())
			}
			continue
		}
		if v.policy.Restart != plan.RestartAlways {
			continue
		}
		if len(on) != 1 {
			s.t.Fatalf("seed %d: %s should run on one host, runs on %d (lease %+v)\n%s", seed, v.name, len(on), v.lease, s.tail())
		}
		if h := on[0]; v.lease.Owner != (Owner{h.id, h.gen}) || v.lease.Released {
			s.t.Fatalf("seed %d: %s runs on host %d gen %d but the lease is %+v\n%s", seed, v.name, h.id, h.gen, v.lease, s.tail())
		}
	}
}

// TestMigrationCutAtEveryStep cuts a live migration after each of its steps
// by powering off the source, the target, or neither, and checks that
// exactly one host runs the VM at every point and after settling.
func TestMigrationCutAtEveryStep(t *testing.T) {
	for cut := 0; cut <= 3; cut++ {
		for _, victim := range []string{"none", "source", "target"} {
			for _, bystanders := range []bool{false, true} {
				t.Run(fmt.Sprintf("cut%d-%s-steps%v", cut, victim, bystanders), func(t *testing.T) {
					s := newSim(t, 1, 3, 0)
					src, dst := s.host(1), s.host(2)
					p := plan.DefaultPolicy()
					v := &simVM{idx: 0, uuid: "u0", name: "web", policy: p, mem: 1 << 30, lease: Lease{Epoch: 3, Owner: Owner{1, 1}}}
					s.vms = []*simVM{v}
					src.domains[v.uuid] = &Domain{UUID: v.uuid, Name: v.name, State: DomainRunning, Active: true}
					s.migrate(src, v, dst)
					// Steps: 0 = Started written; 1 = switched over; 2 = Completed; 3 = claimed.
					for i := 0; i < cut; i++ {
						if i < 2 {
							s.runOp()
						} else {
							s.step(dst)
							for s.runOp() {
							}
						}
						if bystanders {
							for _, h := range s.hosts {
								s.step(h)
							}
							for s.runOp() {
							}
						}
					}
					switch victim {
					case "source":
						s.powerOff(src)
					case "target":
						s.powerOff(dst)
					}
					s.check()
					if !s.settle() {
						t.Fatalf("did not settle\n%s", s.tail())
					}
					s.checkAlwaysBack(0)
				})
			}
		}
	}
}

// TestDeclaredDeadDestroysFirst: a host declared dead that comes back at a
// new generation with copies of VMs still in libvirt destroys each of them
// first and starts none of them, even where the plan would have given them
// to it.
func TestDeclaredDeadDestroysFirst(t *testing.T) {
	for seed := range uint64(500) {
		s := newSim(t, seed, 3, 12)
		old := s.host(1)
		stale := map[string]bool{}
		for k := range old.domains {
			stale[k] = true
		}
		// Host 1 froze and was declared dead at gen 1; some of its VMs
		// were taken over, the others not yet.
		s.verdicts = append(s.verdicts, quorum.Verdict{ID: 1, Gen: 1})
		for _, v := range s.vms {
			if v.lease.Owner.Host == 1 && s.rng.IntN(2) == 0 {
				v.lease = Lease{Epoch: v.lease.Epoch + 1, Owner: Owner{2, 1}}
			}
		}
		in := s.input(old)
		in.SelfGen = 2
		for i := range in.Hosts {
			if in.Hosts[i].ID == 1 {
				in.Hosts[i].Gen = 2
			}
		}
		acts := Reconcile(in)
		destroyed := map[string]bool{}
		done := false
		for _, a := range acts {
			switch {
			case a.Kind == Notice:
			case a.Kind == DestroyStale:
				if done {
					t.Fatalf("seed %d: destroy after another action: %v", seed, acts)
				}
				destroyed[a.VM] = true
			default:
				done = true
				if stale[a.VM] && (a.Starts() || a.TakesLease()) && !destroyed[a.VM] {
					t.Fatalf("seed %d: %v acts on a stale copy it did not destroy: %v", seed, a, acts)
				}
			}
		}
		for k := range stale {
			if !destroyed[k] {
				t.Fatalf("seed %d: stale copy %s not destroyed: %v", seed, k, acts)
			}
		}
	}
}

// TestPriorityOrder: when one host with many VMs is lost and capacity is
// short, the VMs started are the highest-priority ones, and no VM starts
// before a VM of higher priority (same tier) that is still waiting.
func TestPriorityOrder(t *testing.T) {
	for seed := range uint64(300) {
		s := newSim(t, seed, 4, 40)
		for _, v := range s.vms {
			v.policy.Restart = plan.RestartAlways
			v.mem = uint64(1+s.rng.IntN(4)) << 30
		}
		lost := s.host(1)
		s.powerOff(lost)
		s.declareDead(lost)
		// Started order across all survivors, with their priorities.
		var order []plan.Priority
		for round := 0; round < 100; round++ {
			s.now = s.now.Add(time.Second)
			for _, h := range s.hosts[1:] {
				s.step(h)
			}
			before := map[string]uint64{}
			for _, v := range s.vms {
				before[v.uuid] = v.lease.Epoch
			}
			for s.runOp() {
			}
			var round []plan.Priority
			for _, v := range s.vms {
				if v.lease.Epoch != before[v.uuid] {
					round = append(round, v.policy.Priority)
				}
			}
			slices.Sort(round)
			slices.Reverse(round)
			order = append(order, round...)
		}
		if !slices.IsSortedFunc(order, func(a, b plan.Priority) int { return int(b) - int(a) }) {
			t.Fatalf("seed %d: takeovers out of priority order: %v", seed, order)
		}
		s.checkAlwaysBack(seed)
	}
}

// TestStartOrder: a host with VMs in several start tiers is lost. Every VM
// comes back; no VM starts while a VM of a lower tier is still to be taken
// or, where that VM waits for its guest agent, before the agent answered or
// Config.GuestAgentWait passed since it was taken; no VM starts before its
// own start delay has passed since the failover. Some agents never answer.
func TestStartOrder(t *testing.T) {
	wait := DefaultConfig().GuestAgentWait
	for seed := range uint64(300) {
		s := newSim(t, seed, 2+int(seed%4), 8+int(seed%20))
		s.agentRate = 0.8
		for _, v := range s.vms {
			v.policy.Restart = plan.RestartAlways
			v.policy.StartOrder = s.rng.IntN(3)
			v.policy.WaitGuestAgent = s.rng.IntN(3) == 0
			if s.rng.IntN(3) == 0 {
				v.policy.StartDelay = time.Duration(s.rng.IntN(40)) * time.Second
			}
		}
		lost := s.host(1)
		s.powerOff(lost)
		s.declareDead(lost)
		failedAt := s.now
		var moved []*simVM
		for _, v := range s.vms {
			if v.lease.Owner.Host == lost.id {
				moved = append(moved, v)
			}
		}
		if !s.settle() {
			t.Fatalf("seed %d: did not settle\n%s", seed, s.tail())
		}
		s.checkAlwaysBack(seed)
		for _, v := range moved {
			if d := v.policy.StartDelay; v.startedAt.Sub(failedAt) < d {
				t.Fatalf("seed %d: %s started %v after the failover, before its start delay of %v\n%s", seed, v.name, v.startedAt.Sub(failedAt), d, s.tail())
			}
			for _, u := range moved {
				if u.policy.StartOrder >= v.policy.StartOrder {
					continue
				}
				if u.takenAt.After(v.takenAt) {
					t.Fatalf("seed %d: %s (tier %d) taken before %s (tier %d)\n%s", seed, v.name, v.policy.StartOrder, u.name, u.policy.StartOrder, s.tail())
				}
				if u.policy.WaitGuestAgent && (u.upAt.IsZero() || u.upAt.After(v.takenAt)) && v.takenAt.Sub(u.takenAt) < wait {
					t.Fatalf("seed %d: %s (tier %d) taken at %s, before the guest agent of %s (tier %d, taken %s) answered\n%s",
						seed, v.name, v.policy.StartOrder, v.takenAt.Format("15:04:05"), u.name, u.policy.StartOrder, u.takenAt.Format("15:04:05"), s.tail())
				}
			}
		}
	}
}

// TestCoordinatorLostMidFailover: the survivors of a first loss start its
// VMs; mid-way a second host (the lowest-id one, the coordinator) is lost
// too; the rest still bring every VM back.
func TestCoordinatorLostMidFailover(t *testing.T) {
	for seed := range uint64(500) {
		s := newSim(t, seed, 5, 30)
		for _, v := range s.vms {
			v.policy.Restart = plan.RestartAlways
		}
		s.powerOff(s.host(5))
		s.declareDead(s.host(5))
		for _, h := range s.hosts[:4] {
			s.step(h)
		}
		for range s.rng.IntN(len(s.ops) + 1) {
			s.runOp()
		}
		s.powerOff(s.host(1))
		for range 3 {
			s.runOp()
		}
		if !s.settle() {
			t.Fatalf("seed %d: did not settle\n%s", seed, s.tail())
		}
		s.checkAlwaysBack(seed)
	}
}

// TestPureImports: this package decides; it imports only the standard
// library, vm/plan and quorum (DESIGN.md, "Decisions are pure").
func TestPureImports(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	allowed := map[string]bool{"github.com/wingmanha/wingman/vm/plan": true, "github.com/wingmanha/wingman/quorum": true}
	forbidden := []string{"os", "os/exec", "net", "syscall", "unsafe", "C", "io/fs"}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(p, ".") && !allowed[p] || slices.Contains(forbidden, p) {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}

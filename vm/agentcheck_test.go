package vm_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/plan"
)

// switchedAgent is the guest agent of the test guests (which have no
// operating system to run one), switched by the test: answering, silent, or
// its guest paused. A paused guest's domain lists as paused and its ping
// fails as libvirt's does.
type switchedAgent struct {
	*heldStarts

	mu             sync.Mutex
	silent, paused bool
	pings          int
}

func (a *switchedAgent) PingAgent(ctx context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pings++
	if a.silent || a.paused {
		return fmt.Errorf("ping guest agent of domain %q: %w", name, hypervisor.ErrAgentUnavailable)
	}
	return nil
}

func (a *switchedAgent) ListDomains(ctx context.Context) ([]hypervisor.Domain, error) {
	doms, err := a.heldStarts.ListDomains(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, d := range doms {
		if a.paused && strings.HasPrefix(d.Name, "steps-") && d.State == hypervisor.StateRunning {
			doms[i].State, doms[i].Reason = hypervisor.StatePaused, "user"
		}
	}
	return doms, err
}

func (a *switchedAgent) set(silent, paused bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.silent, a.paused = silent, paused
}

func (a *switchedAgent) pingCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pings
}

// eventList records the manager's events.
type eventList struct {
	mu     sync.Mutex
	events []storage.Event
}

func (l *eventList) Append(_ context.Context, e storage.Event) (storage.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return e, nil
}

// of returns the events of kind.
func (l *eventList) of(kind string) []storage.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []storage.Event
	for _, e := range l.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// agentEnv is a manager whose guest agent check runs, with what the tests
// switch and read.
type agentEnv struct {
	m      *vm.Manager
	agent  *switchedAgent
	events *eventList
	lun    *storage.LUN
	dec    quorum.Decision // step decides on this
}

// step runs one Step on env.dec and lets what it started run.
func (env *agentEnv) step(t *testing.T) {
	t.Helper()
	if _, err := env.m.Step(context.Background(), env.dec, time.Now()); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
}

// agentCheckFixture: one VM protected with WaitGuestAgent, owned by host 1,
// which is dead, on the LUN and the test:/// driver (both opened outside the
// bubble). Inside the bubble, it starts the manager of host 2, which takes
// the VM over; its agent answers and the lease is marked guest-up; the next
// step starts the agent's check. Then run; then the manager is closed, and
// the bubble proves that every check ended.
func agentCheckFixture(t *testing.T, run func(t *testing.T, env *agentEnv)) {
	pol := plan.DefaultPolicy()
	pol.WaitGuestAgent = true
	var agent *switchedAgent
	_, held, dec, lun := policyFixture(t, []plan.Policy{pol}, func(h *heldStarts) vm.Hypervisor {
		agent = &switchedAgent{heldStarts: h}
		return agent
	})
	close(held.hold)
	synctest.Test(t, func(t *testing.T) {
		env := &agentEnv{agent: agent, events: &eventList{}, lun: lun, dec: dec}
		var err error
		if env.m, err = vm.NewManager(vm.Config{Host: 2, Gen: 1}, lun, agent, env.events); err != nil {
			t.Fatal(err)
		}
		defer env.m.Close()
		env.step(t)
		if len(env.events.of("guest-up")) != 1 {
			t.Fatalf("after the takeover: events %+v; want guest-up", env.events.events)
		}
		env.step(t)
		run(t, env)
	})
}

// after advances the bubble's clock by d and lets the checks run.
func after(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// An agent that stops answering is reported lost once, after 30 s and 3
// pings, with how long and why; when it answers again, back once.
func TestAgentLostAndBack(t *testing.T) {
	agentCheckFixture(t, func(t *testing.T, env *agentEnv) {
		after(15 * time.Second) // the check's first ping, at 10 s, is answered
		env.agent.set(true, false)
		after(20 * time.Second) // unanswered at 20 s and 30 s
		if ev := env.events.of("guest-agent-lost"); len(ev) != 0 {
			t.Fatalf("after 25 s of silence: %+v; want nothing yet", ev)
		}
		after(10 * time.Second) // and at 40 s
		lost := env.events.of("guest-agent-lost")
		if len(lost) != 1 {
			t.Fatalf("after 35 s of silence: %d guest-agent-lost events, want 1", len(lost))
		}
		want := "steps-01: guest agent silent for 30s, 3 pings unanswered (reported only; the VM keeps running): ping guest agent of domain \"steps-01\": guest agent unavailable"
		if lost[0].Severity != storage.SevWarning || lost[0].Message != want || lost[0].VM.String() != "00000000-0000-0000-0000-000000000501" {
			t.Errorf("lost event: %v %q for %s; want a warning %q for the VM", lost[0].Severity, lost[0].Message, lost[0].VM, want)
		}
		env.step(t) // a step changes nothing
		after(2 * time.Minute)
		if n := len(env.events.of("guest-agent-lost")); n != 1 {
			t.Errorf("after 2 min more of silence: %d guest-agent-lost events, want still 1", n)
		}
		if running(t, env.agent) != 1 {
			t.Errorf("the VM no longer runs: a silent agent must not stop it")
		}

		env.agent.set(false, false) // answers at 2m50s, 2m40s after its last answer
		after(10 * time.Second)
		back := env.events.of("guest-agent-back")
		if len(back) != 1 {
			t.Fatalf("after the agent answered: %d guest-agent-back events, want 1", len(back))
		}
		if want := "steps-01: guest agent answers again after 2m40s silent"; back[0].Severity != storage.SevInfo || back[0].Message != want {
			t.Errorf("back event: %v %q; want info %q", back[0].Severity, back[0].Message, want)
		}
		after(time.Minute)
		if n, l := len(env.events.of("guest-agent-back")), len(env.events.of("guest-agent-lost")); n != 1 || l != 1 {
			t.Errorf("a minute later: %d back and %d lost events, want 1 and 1", n, l)
		}
	})
}

// An agent that answered the owner's wait after the takeover and hangs at
// once is lost after the normal grace: the check counts from that answer,
// not from a first answer of its own (which would take 5 minutes).
func TestAgentLostRightAfterTheWaitHeardIt(t *testing.T) {
	agentCheckFixture(t, func(t *testing.T, env *agentEnv) {
		env.agent.set(true, false) // silent before the check's first ping
		after(35 * time.Second)    // unanswered at 10, 20, 30 s
		lost := env.events.of("guest-agent-lost")
		if len(lost) != 1 || !strings.Contains(lost[0].Message, "3 pings unanswered") {
			t.Fatalf("35 s after the agent hung: %+v; want one guest-agent-lost after 3 pings", lost)
		}
	})
}

// A paused guest's agent cannot answer: no report however long the pause,
// and after the resume the silence counts from the resume.
func TestAgentNotLostWhilePaused(t *testing.T) {
	agentCheckFixture(t, func(t *testing.T, env *agentEnv) {
		after(15 * time.Second) // answered at 10 s
		env.agent.set(false, true)
		after(2 * time.Minute)
		env.step(t)            // the step sees the guest paused and keeps its check
		after(3 * time.Minute) // 5m15s: last ping, of a paused guest, at 5m10s
		if ev := env.events.of("guest-agent-lost"); len(ev) != 0 {
			t.Fatalf("after a 5 min pause: %+v; want no guest-agent-lost", ev)
		}
		pings := env.agent.pingCount()
		env.agent.set(true, false) // resumed, its agent silent: 5m20s, 5m30s, ...
		after(20 * time.Second)
		if ev := env.events.of("guest-agent-lost"); len(ev) != 0 || env.agent.pingCount() != pings+2 {
			t.Fatalf("20 s after the resume: %+v, %d pings; want no guest-agent-lost and 2 pings", ev, env.agent.pingCount()-pings)
		}
		after(10 * time.Second)
		lost := env.events.of("guest-agent-lost")
		if len(lost) != 1 || !strings.Contains(lost[0].Message, "silent for 30s,") {
			t.Errorf("30 s after the resume: %+v; want one guest-agent-lost, silent for 30s", lost)
		}
	})
}

// When the VM moves away (another host holds its lease now), the next step
// ends the check: no more pings, no report, though the agent was silent.
func TestAgentCheckEndsWhenTheVMMovesAway(t *testing.T) {
	agentCheckFixture(t, func(t *testing.T, env *agentEnv) {
		after(15 * time.Second) // answered at 10 s
		env.agent.set(true, false)
		after(10 * time.Second) // unanswered at 20 s
		ctx := context.Background()
		l, err := env.lun.ReadLease(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.lun.AcquireLease(ctx, 0, l.Epoch, storage.Owner{Host: 3, Gen: 1, Nonce: 7}); err != nil {
			t.Fatal(err)
		}
		env.dec.Hosts = append(env.dec.Hosts[:len(env.dec.Hosts):len(env.dec.Hosts)], quorum.Host{ID: 3, Name: "kvm3", Gen: 1, State: quorum.StateAlive})
		env.step(t)
		pings := env.agent.pingCount()
		after(2 * time.Minute)
		if n := env.agent.pingCount() - pings; n != 0 {
			t.Errorf("%d pings after the VM moved away, want none", n)
		}
		if ev := env.events.of("guest-agent-lost"); len(ev) != 0 {
			t.Errorf("after the VM moved away: %+v; want no guest-agent-lost", ev)
		}
	})
}

// Unprotecting the VM ends its check too.
func TestAgentCheckEndsWhenUnprotected(t *testing.T) {
	agentCheckFixture(t, func(t *testing.T, env *agentEnv) {
		before := env.agent.pingCount()
		after(15 * time.Second)
		pings := env.agent.pingCount()
		if pings != before+1 {
			t.Fatalf("%d pings in the first 15 s of the check, want 1", pings-before)
		}
		if err := env.m.Unprotect(context.Background(), "steps-01"); err != nil {
			t.Fatal(err)
		}
		env.step(t)
		env.agent.set(true, false)
		after(2 * time.Minute)
		if n := env.agent.pingCount() - pings; n != 0 || len(env.events.of("guest-agent-lost")) != 0 {
			t.Errorf("after unprotect: %d pings, events %+v; want none", n, env.events.of("guest-agent-lost"))
		}
	})
}

// When the VM stops, its check ends; when it starts again, a new check
// gives the booting guest's agent 5 min to answer before it is lost.
func TestAgentCheckAfterARestart(t *testing.T) {
	agentCheckFixture(t, func(t *testing.T, env *agentEnv) {
		ctx := context.Background()
		after(15 * time.Second) // answered at 10 s
		if err := env.m.Stop(ctx, "steps-01"); err != nil {
			t.Fatal(err)
		}
		env.step(t)
		pings := env.agent.pingCount()
		env.agent.set(true, false)
		after(time.Minute)
		if n := env.agent.pingCount() - pings; n != 0 || running(t, env.agent) != 0 {
			t.Fatalf("a minute after the stop: %d pings, %d running; want none", n, running(t, env.agent))
		}
		if err := env.m.Start(ctx, "steps-01"); err != nil {
			t.Fatal(err)
		}
		env.step(t) // starts it
		env.step(t) // and its new check
		after(4*time.Minute + 55*time.Second)
		if ev := env.events.of("guest-agent-lost"); len(ev) != 0 || env.agent.pingCount() == pings {
			t.Fatalf("4m55s after the start: %+v, %d pings; want no guest-agent-lost yet, and pings", ev, env.agent.pingCount()-pings)
		}
		after(10 * time.Second)
		lost := env.events.of("guest-agent-lost")
		if len(lost) != 1 || !strings.Contains(lost[0].Message, "silent for 5m0s, 30 pings") {
			t.Errorf("5m05s after the start: %+v; want guest-agent-lost, silent for 5m0s, 30 pings", lost)
		}
	})
}

// A guest started again on its owner (same lease epoch) gets a new wait for
// its agent, which says guest-up again once the new boot's agent answers.
func TestGuestUpAgainAfterARestartInPlace(t *testing.T) {
	agentCheckFixture(t, func(t *testing.T, env *agentEnv) {
		ctx := context.Background()
		after(15 * time.Second)
		if err := env.m.Stop(ctx, "steps-01"); err != nil {
			t.Fatal(err)
		}
		env.step(t)
		if err := env.m.Start(ctx, "steps-01"); err != nil {
			t.Fatal(err)
		}
		env.step(t) // starts it; its wait hears the agent
		after(5 * time.Second)
		if up := env.events.of("guest-up"); len(up) != 2 || !strings.Contains(up[1].Message, "after the start") {
			t.Fatalf("after the restart: guest-up events %+v; want a second one, after the start", up)
		}
	})
}

// running counts the test VMs running.
func running(t *testing.T, hv vm.Hypervisor) int {
	t.Helper()
	doms, err := hv.ListDomains(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range doms {
		if strings.HasPrefix(d.Name, "steps-") && d.State == hypervisor.StateRunning {
			n++
		}
	}
	return n
}

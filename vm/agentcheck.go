package vm

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/reconcile"
)

// agentCheck is the running check of one VM's guest agent.
type agentCheck struct {
	epoch uint64 // the lease epoch it checks under
	stop  context.CancelFunc
}

// checkAgents keeps one check of its guest agent running for each VM this
// host owns (no migration in flight) and runs or holds paused, whose policy
// says WaitGuestAgent and whose agent has answered at the lease's epoch (the
// lease is marked guest-up), and ends the checks of every other VM: one
// stopped, moved away, unprotected or no longer WaitGuestAgent. A new epoch
// (the VM came back), and a new start of the guest, get a new check.
//
// The check only reports, with a "guest-agent-lost" and a
// "guest-agent-back" event. Wingman never restarts, resets or stops a VM
// because its agent is silent: the agent is not the application (a guest
// busy with a long fsck, or an administrator who stopped qemu-ga, is no
// reason to reset it), and resetting guests on a missing heartbeat, as
// vSphere's VM monitoring does, is a policy Wingman does not offer.
func (m agentWatcher) checkAgents(snap *snapshot, doms []hypervisor.Domain) {
	if _, ok := m.hv.(AgentPinger); !ok {
		return
	}
	active := make(map[string]string, len(doms))
	for _, d := range doms {
		if d.State.Active() {
			active[strings.ToLower(d.UUID)] = d.Name
		}
	}
	type wanted struct {
		id    storage.UUID
		name  string
		epoch uint64
	}
	want := map[string]wanted{}
	for _, rec := range snap.in.Records {
		name, ok := active[rec.UUID]
		if !ok || !rec.Policy.WaitGuestAgent || rec.Stopped || !rec.Lease.GuestUp || snap.in.MigratingOut[rec.UUID] {
			continue
		}
		r := snap.recs[rec.UUID]
		if ph := r.Lease.Migration.Phase; !owns(m.cfg, r.Lease) || ph == storage.MigrationStarted || ph == storage.MigrationCompleted {
			continue
		}
		want[rec.UUID] = wanted{r.Config.UUID, name, r.Lease.Epoch}
	}
	m.agentMu.Lock()
	defer m.agentMu.Unlock()
	for key, c := range m.agentChecks {
		if w, ok := want[key]; !ok || w.epoch != c.epoch {
			c.stop()
			delete(m.agentChecks, key)
		}
	}
	if m.fenced.Load() || m.life.Err() != nil {
		return
	}
	for key, w := range want {
		if _, ok := m.agentChecks[key]; ok {
			continue
		}
		ctx, stop := context.WithCancel(m.life)
		m.agentChecks[key] = agentCheck{epoch: w.epoch, stop: stop}
		heard := m.agentHeard[key]
		delete(m.agentHeard, key)
		m.background.Add(1)
		go func() {
			defer m.background.Done()
			m.checkAgent(ctx, w.id, w.name, heard)
		}()
	}
}

// endAgentCheck ends the check of the VM uuid key, if one runs. After a
// start (a restart in place keeps the lease and its guest-up mark) the next
// step begins a new one, which gives the booting guest's agent
// AgentCheck.FirstAnswerWithin to answer.
func (m agentWatcher) endAgentCheck(key string) {
	m.agentMu.Lock()
	defer m.agentMu.Unlock()
	if c, ok := m.agentChecks[key]; ok {
		c.stop()
		delete(m.agentChecks, key)
	}
	delete(m.agentHeard, key)
}

// agentAnswered notes that this host's wait after a start or adoption heard
// the agent of the VM uuid key just now.
func (m agentWatcher) agentAnswered(key string) {
	m.agentMu.Lock()
	defer m.agentMu.Unlock()
	m.agentHeard[key] = time.Now()
}

// checkAgent pings the guest agent of the local domain name every
// AgentCheck.Interval, one ping at a time, until ctx ends or this host fences
// itself, and writes an event when reconcile.AgentLiveness reports a change.
// It never blocks a step.
//
// heard, if not zero, is when the wait before it last heard the agent: the
// agent has answered in this boot already, so its silence counts from then
// with the normal grace (AgentCheck.LostAfter), not FirstAnswerWithin.
func (m agentWatcher) checkAgent(ctx context.Context, id storage.UUID, name string, heard time.Time) {
	p := m.hv.(AgentPinger)
	live := reconcile.NewAgentLiveness(m.cfg.AgentCheck, time.Now())
	if !heard.IsZero() {
		live.Observe(heard, reconcile.AgentAnswered)
	}
	t := time.NewTicker(m.cfg.AgentCheck.Interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.fenced.Load() {
			return
		}
		ping, err := m.pingAgent(ctx, p, name)
		if ping == 0 {
			continue // nothing learnt about the agent
		}
		if err != nil {
			lastErr = hypervisor.Brief(err)
		}
		// Written under the manager's life, not ctx: a step that ends this
		// check right now must not swallow the transition it saw.
		switch ch := live.Observe(time.Now(), ping); ch.Kind {
		case reconcile.AgentLost:
			writeEvent(m.life, m.events, storage.SevWarning, "guest-agent-lost", id, 0,
				"%s: guest agent silent for %v, %d pings unanswered (reported only; the VM keeps running): %s",
				name, ch.Silent.Round(time.Second), ch.Pings, lastErr)
		case reconcile.AgentBack:
			writeEvent(m.life, m.events, storage.SevInfo, "guest-agent-back", id, 0,
				"%s: guest agent answers again after %v silent", name, ch.Silent.Round(time.Second))
		}
	}
}

// pingAgent pings name's guest agent once and says what that tells about the
// agent, with the ping's error; 0: nothing (libvirt itself is unreachable,
// the guest is gone or shutting down). A failed ping of a guest that is
// paused says AgentPaused: libvirt cannot tell that from a silent agent by
// its error, so the domain's state decides.
func (m agentWatcher) pingAgent(ctx context.Context, p AgentPinger, name string) (reconcile.AgentPing, error) {
	pctx, cancel := context.WithTimeout(ctx, agentPingTimeout)
	err := p.PingAgent(pctx, name)
	cancel()
	switch {
	case err == nil:
		return reconcile.AgentAnswered, nil
	case ctx.Err() != nil,
		errors.Is(err, hypervisor.ErrNotFound), errors.Is(err, hypervisor.ErrNotRunning),
		errors.Is(err, hypervisor.ErrConnection), errors.Is(err, hypervisor.ErrClosed),
		errors.Is(err, hypervisor.ErrUnsupported):
		return 0, err
	}
	d, lerr := findLocal(ctx, m.hv, m.cfg.Host, name)
	if lerr != nil {
		return 0, err
	}
	switch d.State {
	case hypervisor.StateRunning, hypervisor.StateBlocked:
		return reconcile.AgentSilent, err
	case hypervisor.StatePaused, hypervisor.StatePMSuspended:
		return reconcile.AgentPaused, err
	}
	return 0, err
}

// agentWatcher is the manager's watch over the guest agents of the VMs it
// runs with WaitGuestAgent: the wait for a first answer after a start, and
// the check that follows (its state is the manager's agent fields).
type agentWatcher struct{ *Manager }

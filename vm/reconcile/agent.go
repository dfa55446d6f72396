package reconcile

import (
	"fmt"
	"time"
)

// AgentCheckConfig says how often the owner of a running VM with
// WaitGuestAgent pings its guest agent once the agent has answered, and when
// an agent that stopped answering counts as lost.
type AgentCheckConfig struct {
	// Interval between two pings of one agent (one ping in flight at most).
	Interval time.Duration
	// LostAfter and LostPings: an agent is lost once it has not answered for
	// LostAfter (the caller's clock, not counting time the guest spent
	// paused) and LostPings pings in a row went unanswered. Both, so that
	// neither a single slow ping nor a burst of fast failures is an alarm.
	LostAfter time.Duration
	LostPings int
	// FirstAnswerWithin replaces LostAfter until the agent has answered a
	// check once: a check begins again with every start of the guest, whose
	// agent answers only once it has booted.
	FirstAnswerWithin time.Duration
}

// DefaultAgentCheckConfig: a ping every 10 s; lost after 30 s and 3
// unanswered pings, or 5 min before the first answer (as long as the
// owner waits for an agent after a start).
func DefaultAgentCheckConfig() AgentCheckConfig {
	return AgentCheckConfig{Interval: 10 * time.Second, LostAfter: 30 * time.Second, LostPings: 3, FirstAnswerWithin: 5 * time.Minute}
}

// Validate rejects values that would ping a guest agent without pause or
// report it lost on its first miss.
func (c AgentCheckConfig) Validate() error {
	if c.Interval < time.Second {
		return fmt.Errorf("guest agent check: interval %v: use at least 1s (default 10s)", c.Interval)
	}
	if c.LostPings < 2 || c.LostAfter < c.Interval {
		return fmt.Errorf("guest agent check: lost after %v and %d pings: use at least 2 pings and at least the interval %v (default 30s and 3)",
			c.LostAfter, c.LostPings, c.Interval)
	}
	if c.FirstAnswerWithin < c.LostAfter {
		return fmt.Errorf("guest agent check: first answer within %v: use at least lost after %v (default 5m)", c.FirstAnswerWithin, c.LostAfter)
	}
	return nil
}

// AgentPing is the outcome of one ping of a guest agent, as the caller saw
// it. A ping that tells nothing about the agent (libvirt itself unreachable,
// the guest gone) is not an AgentPing: the caller leaves it out.
type AgentPing uint8

const (
	// AgentAnswered: the agent answered (an error reply is an answer too).
	AgentAnswered AgentPing = iota + 1
	// AgentSilent: the guest runs and its agent did not answer.
	AgentSilent
	// AgentPaused: the guest is paused, so its agent cannot answer; that
	// says nothing about the agent, and the silence counts from the resume.
	AgentPaused
)

// AgentChangeKind is what an AgentChange reports.
type AgentChangeKind uint8

const (
	AgentNoChange AgentChangeKind = iota
	// AgentLost: the agent has been silent for the grace.
	AgentLost
	// AgentBack: a lost agent answers again.
	AgentBack
)

// AgentChange is a transition to report, once.
type AgentChange struct {
	Kind AgentChangeKind
	// Silent: for AgentLost, how long the agent has not answered while the
	// guest ran (since its last answer, the start of the check or the end
	// of a pause); for AgentBack, since its last answer (or the start of
	// the check).
	Silent time.Duration
	// Pings: for AgentLost, the unanswered pings in a row.
	Pings int
}

// AgentLiveness follows the pings of one guest agent that has answered
// before (the lease is marked guest-up) and says when it becomes lost and
// when it is back, once per transition. It only reports: what to do about
// a silent agent is not its question (Wingman restarts nothing for it: the
// agent is not the application, and a guest busy with a long fsck or a
// stopped qemu-ga is no reason to reset it).
//
// It is pure: the caller pings, reads its clock and passes both to Observe.
type AgentLiveness struct {
	cfg        AgentCheckConfig
	heard      bool      // it answered this check at least once
	answered   time.Time // last answer, or the start of the check
	since      time.Time // start of the silence that counts toward the grace
	unanswered int
	lost       bool
}

// NewAgentLiveness starts following an agent at now. Until its first
// answer, it has FirstAnswerWithin to give one.
func NewAgentLiveness(cfg AgentCheckConfig, now time.Time) *AgentLiveness {
	return &AgentLiveness{cfg: cfg, answered: now, since: now}
}

// Lost reports whether the agent is lost (AgentLost reported, AgentBack not
// yet).
func (a *AgentLiveness) Lost() bool { return a.lost }

// Observe takes the outcome of one ping at now and returns the transition
// to report, if any.
func (a *AgentLiveness) Observe(now time.Time, p AgentPing) AgentChange {
	switch p {
	case AgentAnswered:
		ch := AgentChange{}
		if a.lost {
			ch = AgentChange{Kind: AgentBack, Silent: now.Sub(a.answered)}
		}
		a.heard, a.answered, a.since, a.unanswered, a.lost = true, now, now, 0, false
		return ch
	case AgentPaused:
		a.since, a.unanswered = now, 0
	case AgentSilent:
		a.unanswered++
		grace := a.cfg.LostAfter
		if !a.heard {
			grace = a.cfg.FirstAnswerWithin
		}
		if !a.lost && a.unanswered >= a.cfg.LostPings && now.Sub(a.since) >= grace {
			a.lost = true
			return AgentChange{Kind: AgentLost, Silent: now.Sub(a.since), Pings: a.unanswered}
		}
	}
	return AgentChange{}
}

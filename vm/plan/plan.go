package plan

import (
	"fmt"
	"strings"
	"time"
)

// Action is what a step does to a VM.
type Action string

const (
	// ActionStart takes the VM's lease and starts it on the target (failover).
	ActionStart Action = "start"
	// ActionMigrate live-migrates the running VM to the target (evacuation).
	ActionMigrate Action = "migrate"
)

// Step moves one VM to one host.
type Step struct {
	Action   Action
	VM       string // UUID
	Name     string
	From     int // host that owned it (lost, or being evacuated)
	FromName string
	To       int // target host, always alive in the Input
	ToName   string
	Priority Priority
	Tier     int
	// Delay is waited after the step's wave begins, before acting.
	Delay time.Duration
	// WaitGuestAgent: waves of later tiers list this VM in AwaitAgents.
	WaitGuestAgent bool
}

// Wave is a batch of steps that may run at once: it respects the
// concurrency limits and never mixes start tiers.
type Wave struct {
	Steps []Step
	// AwaitAgents lists VMs (UUIDs) of earlier tiers whose guest agent must
	// answer before this wave begins.
	AwaitAgents []string
}

// Reason says why a VM was left without a host.
type Reason string

const (
	ReasonNoCapacity   Reason = "no capacity"   // no alive host has the memory or CPU left
	ReasonAntiAffinity Reason = "anti-affinity" // hosts with room all run a VM of its group
	ReasonNoAliveHost  Reason = "no alive host" // there is no host to go to at all
)

// Unplaced is a VM the plan could not find a host for.
type Unplaced struct {
	VM       string
	Name     string
	From     int
	Priority Priority
	Reason   Reason
	Detail   string // what it needs, for the event text
}

// Skipped is a VM of a lost (or evacuated) host that the plan deliberately
// does not move, with the reason.
type Skipped struct {
	VM     string
	Name   string
	From   int
	Reason string
}

// Plan is the planner's proposal. Steps run wave by wave (see the package
// doc); capacity was handed out in priority order, so Unplaced holds the
// lowest-priority VMs that did not fit.
type Plan struct {
	Waves    []Wave
	Unplaced []Unplaced
	Skipped  []Skipped
}

// Steps returns every step in execution order.
func (p Plan) Steps() []Step {
	var n int
	for _, w := range p.Waves {
		n += len(w.Steps)
	}
	out := make([]Step, 0, n)
	for _, w := range p.Waves {
		out = append(out, w.Steps...)
	}
	return out
}

// String renders the plan one line per item, the form used by the golden
// scenario files and by event details.
func (p Plan) String() string {
	var b strings.Builder
	for i, w := range p.Waves {
		fmt.Fprintf(&b, "wave %d", i+1)
		if len(w.AwaitAgents) > 0 {
			fmt.Fprintf(&b, " after agents %s", strings.Join(w.AwaitAgents, ","))
		}
		b.WriteByte('\n')
		for _, s := range w.Steps {
			fmt.Fprintf(&b, "  %s %s %s->%s prio=%s tier=%d", s.Action, s.Name, s.FromName, s.ToName, s.Priority, s.Tier)
			if s.Delay > 0 {
				fmt.Fprintf(&b, " delay=%v", s.Delay)
			}
			if s.WaitGuestAgent {
				b.WriteString(" agent")
			}
			b.WriteByte('\n')
		}
	}
	for _, u := range p.Unplaced {
		fmt.Fprintf(&b, "unplaced %s from %d prio=%s: %s (%s)\n", u.Name, u.From, u.Priority, u.Reason, u.Detail)
	}
	for _, s := range p.Skipped {
		fmt.Fprintf(&b, "skipped %s from %d: %s\n", s.Name, s.From, s.Reason)
	}
	if b.Len() == 0 {
		return "nothing to do\n"
	}
	return b.String()
}

// formatBytes prints sizes the way people size VMs: 512MiB, 8GiB, 1.5GiB.
func formatBytes(n int64) string {
	const gib, mib = 1 << 30, 1 << 20
	switch {
	case n >= gib && n%(gib/2) == 0:
		return fmt.Sprintf("%gGiB", float64(n)/gib)
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%dMiB", n/mib)
	}
	return fmt.Sprintf("%dB", n)
}

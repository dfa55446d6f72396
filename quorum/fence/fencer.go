package fence

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/wingmanha/wingman/quorum"
)

// Fencer holds the fence agents of the cluster's hosts, by host id (the
// host's heartbeat slot, as in package quorum).
type Fencer struct {
	agents map[int]*Agent
}

// NewFencer validates every host's Config and returns a Fencer for them. A
// Config without Host is named "host N" in messages.
func NewFencer(hosts map[int]Config) (*Fencer, error) {
	f := &Fencer{agents: make(map[int]*Agent, len(hosts))}
	for _, id := range slices.Sorted(maps.Keys(hosts)) {
		cfg := hosts[id]
		if cfg.Host == "" {
			cfg.Host = "host " + strconv.Itoa(id)
		}
		a, err := New(cfg)
		if err != nil {
			return nil, fmt.Errorf("fence config of host %d (%s): %w", id, cfg.Host, err)
		}
		f.agents[id] = a
	}
	return f, nil
}

// Hosts lists the ids of the hosts that can be power-fenced, in order
// (quorum.Input.PowerFenceable).
func (f *Fencer) Hosts() []int { return slices.Sorted(maps.Keys(f.agents)) }

// Agent returns host's agent, for Status, Monitor and On.
func (f *Fencer) Agent(host int) (*Agent, bool) {
	a, ok := f.agents[host]
	return a, ok
}

// PowerOff fences host through its agent; see Agent.PowerOff. A host
// without an agent gets a Result whose Err wraps ErrUnknownHost.
func (f *Fencer) PowerOff(ctx context.Context, host int) Result {
	a, ok := f.agents[host]
	if !ok {
		return Result{Host: "host " + strconv.Itoa(host), Action: "off",
			Err: fmt.Errorf("power off host %d: configure a fence agent for it, or rely on the disk timeout: %w", host, ErrUnknownHost)}
	}
	return a.PowerOff(ctx)
}

// ByName holds the hosts' fencing levels configured by host name and finds
// them by host id through names, read at each call (slot id -> host name,
// from the latest cluster view): a host that joins later is covered.
type ByName struct {
	hosts  map[string]*Levels
	names  func() map[int]string
	report func(host int, a Attempt)
}

// NewByName validates every host's Topology (keyed by host name) and
// returns a ByName over them. report, if not nil, receives every device's
// attempt of every fence (an event each); it may block for a bounded
// write, since fences run off the heartbeat cycle.
func NewByName(hosts map[string]Topology, names func() map[int]string, report func(host int, a Attempt)) (*ByName, error) {
	f := &ByName{hosts: make(map[string]*Levels, len(hosts)), names: names, report: report}
	for _, name := range slices.Sorted(maps.Keys(hosts)) {
		l, err := NewLevels(name, hosts[name])
		if err != nil {
			return nil, fmt.Errorf("fence.%s: %w", name, err)
		}
		f.hosts[name] = l
	}
	return f, nil
}

// Levels returns host id's fencing levels.
func (f *ByName) Levels(host int) (*Levels, bool) {
	l, ok := f.hosts[f.names()[host]]
	return l, ok
}

// PowerOff fences host id through its levels and says whether one
// confirmed the power-off (heartbeat.PowerFencer). The error of an
// unconfirmed fence names every level's failure.
func (f *ByName) PowerOff(ctx context.Context, host int) (bool, error) {
	l, ok := f.Levels(host)
	if !ok {
		return false, fmt.Errorf("power off host %d: no fence agent is configured for it: %w", host, ErrUnknownHost)
	}
	r := l.PowerOff(ctx, func(a Attempt) {
		if f.report != nil {
			f.report(host, a)
		}
	})
	return r.Confirmed, r.Err
}

// Fenceable is the set of host ids that have an agent now.
func (f *ByName) Fenceable() quorum.Set {
	var s quorum.Set
	for id, name := range f.names() {
		if _, ok := f.hosts[name]; ok {
			s.Add(id)
		}
	}
	return s
}

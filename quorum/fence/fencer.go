package fence

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
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

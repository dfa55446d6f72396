package heartbeat

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/quorum/gossip"
)

// LeaseQuery is the serf query name of network-lease requests.
const LeaseQuery = "wingman-lease"

// SerfMembership adapts a gossip.Agent to Membership.
type SerfMembership struct {
	Agent *gossip.Agent
}

// Alive is the set of host ids serf sees alive.
func (m SerfMembership) Alive() quorum.Set {
	var s quorum.Set
	for id, ok := range m.Agent.AliveSet() {
		if ok {
			s.Add(id)
		}
	}
	return s
}

type leaseAnswer struct {
	Host    int    `json:"host"`
	Granted bool   `json:"granted"`
	Why     string `json:"why,omitempty"`
}

// AskLease sends a lease request to every member and returns who granted it.
func (m SerfMembership) AskLease(ctx context.Context, req LeaseRequest) (quorum.Set, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return quorum.Set{}, fmt.Errorf("ask lease: the context needs a deadline")
	}
	resps, err := m.Agent.Query(ctx, LeaseQuery, EncodeLeaseRequest(req), time.Until(dl))
	if err != nil {
		return quorum.Set{}, fmt.Errorf("ask lease: %w", err)
	}
	var granted quorum.Set
	for _, r := range resps {
		if r.Err != nil {
			continue
		}
		var a leaseAnswer
		if json.Unmarshal(r.Payload, &a) == nil && a.Granted && a.Host != req.Host {
			granted.Add(a.Host)
		}
	}
	return granted, nil
}

// ServeLeases answers lease requests on agent with loop's decisions.
func ServeLeases(agent *gossip.Agent, self int, loop *Loop) error {
	return agent.HandleQuery(LeaseQuery, func(_ string, payload []byte) ([]byte, error) {
		req, err := DecodeLeaseRequest(payload)
		if err != nil {
			return nil, err
		}
		ok, why := loop.GrantLease(req)
		return json.Marshal(leaseAnswer{Host: self, Granted: ok, Why: why})
	})
}

// WakeQuery is the serf query name of a wake: "read the LUN now". A host
// sends it after writing a new dead verdict, so the others start their part
// of the failover without waiting up to R for their next cycle. It carries
// no payload and no authority: a woken host decides only on what it reads.
const WakeQuery = "wingman-wake"

// Announcer returns a Config.Announce that sends a wake to every member of
// agent without blocking the caller; a lost wake only costs the wait for the
// next cycle.
func Announcer(agent *gossip.Agent, timeout time.Duration) func() {
	return func() {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_, _ = agent.Query(ctx, WakeQuery, nil, timeout)
		}()
	}
}

// ServeWakes runs a cycle of loop at once whenever another host sends a
// wake (answering the query is all the sender gets back).
func ServeWakes(agent *gossip.Agent, loop *Loop) error {
	return agent.HandleQuery(WakeQuery, func(string, []byte) ([]byte, error) {
		loop.Kick()
		return nil, nil
	})
}

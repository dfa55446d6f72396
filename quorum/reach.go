package quorum

import "time"

// Reach is what a host publishes in its slot of its isolation addresses
// (the gateway, say: vSphere's das.isolationaddress, Pacemaker's ping): a
// host cut off from its peers that still reaches one of them is not
// isolated, only cut off from the others.
type Reach uint8

const (
	// ReachUnknown: no address configured (or a writer older than the field).
	ReachUnknown Reach = iota
	// ReachLost: addresses configured, none reached for F.
	ReachLost
	// ReachOK: one of its addresses reached less than F ago.
	ReachOK
)

var reachNames = [...]string{"unknown", "lost", "ok"}

func (r Reach) String() string {
	if int(r) < len(reachNames) {
		return reachNames[r]
	}
	return "reach(?)"
}

// selfReach is what this host publishes: a probe round that reached one of
// its addresses counts for F, so that a blip shorter than that changes no
// tie (as a blip shorter than the pill grace fences nobody).
func selfReach(in Input) Reach {
	switch {
	case !in.Addresses:
		return ReachUnknown
	case in.AddressReached != Never && in.Now-in.AddressReached < in.Timings.SelfFence:
		return ReachOK
	}
	return ReachLost
}

// addressReach is what the slots, as read, say of the voters' isolation
// addresses: who reaches one, who has lost them all.
type addressReach struct {
	ok, lost Set
	// settled: no slot's flag changed within reachSettle on this clock.
	settled bool
}

func readReach(in Input, now Mono) addressReach {
	r := addressReach{settled: true}
	wait := reachSettle(in.Timings)
	for _, s := range in.Slots {
		switch s.Reach {
		case ReachOK:
			r.ok.Add(s.ID)
		case ReachLost:
			r.lost.Add(s.ID)
		}
		if s.ReachSince != Never && now-s.ReachSince < wait {
			r.settled = false
		}
	}
	return r
}

// reachSettle is how long a changed flag keeps pills and fences waiting: a
// peer whose reads lag by up to F, or a half that has not noticed the cut
// (serf), must see the same flags before the tie they break can act.
func reachSettle(t Timings) time.Duration {
	return max(t.serfDetect()+2*t.Renew, t.SelfFence)
}

// quorate is IsQuorate with the isolation addresses breaking a tie: at
// exactly half, the half where a host reaches its addresses wins over the
// half where none does and one has lost them; when both halves are alike
// (or no address is configured), the half holding the lowest voter id wins.
// Both halves read the same slots, so at most one wins.
func (r addressReach) quorate(p, voters Set) bool {
	p = p.Intersect(voters)
	n, v := p.Len(), voters.Len()
	if v == 0 || 2*n != v {
		return IsQuorate(p, voters)
	}
	var other Set
	for i := range other {
		other[i] = voters[i] &^ p[i]
	}
	switch pr, or := r.half(p), r.half(other); {
	case pr == ReachOK && or == ReachLost:
		return true
	case pr == ReachLost && or == ReachOK:
		return false
	}
	return IsQuorate(p, voters)
}

// half is what a half's slots say of its addresses: ok if one of its hosts
// reaches one, lost if none does and one has lost them, else unknown.
func (r addressReach) half(h Set) Reach {
	switch {
	case h.Intersect(r.ok).Len() > 0:
		return ReachOK
	case h.Intersect(r.lost).Len() > 0:
		return ReachLost
	}
	return ReachUnknown
}

package quorum

// RawSlot is a heartbeat slot as read from the LUN, before observation.
type RawSlot struct {
	ID       int
	Name     string
	Gen      uint64
	Seq      uint64
	State    SlotState
	SerfView Set
	Granted  Set
	Dead     []Verdict
}

// Observer turns successive reads of the heartbeat slots into Slots with
// change times on this host's monotonic clock. It is the memory of the
// heartbeat loop; it reads no clock itself.
type Observer struct {
	slots map[int]Slot
	dead  map[int]uint64 // host -> generation seen declared dead
	// started: a first read was done, at start; slots first seen later joined later.
	started bool
	start   Mono
}

// Start is when the first read was recorded (Never before it).
func (o *Observer) Start() Mono {
	if !o.started {
		return Never
	}
	return o.start
}

// NewObserver returns an observer that has seen nothing.
func NewObserver() *Observer {
	return &Observer{slots: map[int]Slot{}, dead: map[int]uint64{}}
}

// KnownDead returns, per host, the generation that some slot published as
// declared dead. It holds until the host shows another generation.
func (o *Observer) KnownDead() map[int]uint64 {
	out := make(map[int]uint64, len(o.dead))
	for id, gen := range o.dead {
		out[id] = gen
	}
	return out
}

// Update records a read of every used slot completed at now and returns the
// observed slots. A slot seen for the first time, or whose generation or
// sequence changed, counts as changed at now. A grant for a host published
// in any slot refreshes that host's GrantSeen.
func (o *Observer) Update(now Mono, read []RawSlot) []Slot {
	seen := map[int]bool{}
	var granted Set
	dead := map[Verdict]bool{}
	for _, r := range read {
		for _, id := range r.Granted.IDs() {
			if id != r.ID {
				granted.Add(id)
			}
		}
		for _, v := range r.Dead {
			if v.ID != r.ID {
				dead[v] = true
			}
		}
	}
	out := make([]Slot, 0, len(read))
	for _, r := range read {
		seen[r.ID] = true
		prev, ok := o.slots[r.ID]
		s := Slot{ID: r.ID, Name: r.Name, Gen: r.Gen, Seq: r.Seq, State: r.State, SerfView: r.SerfView,
			Granted: r.Granted, Dead: r.Dead, Changed: prev.Changed, GrantSeen: prev.GrantSeen}
		if !ok || prev.Gen != r.Gen || prev.Seq != r.Seq {
			s.Changed = now
		}
		switch {
		case !ok:
			s.GenSince = Never // present before this observer started
			if o.started {
				s.GenSince = now
			}
		case prev.Gen != r.Gen:
			s.GenSince = now
		default:
			s.GenSince = prev.GenSince
		}
		if g, ok := o.dead[r.ID]; ok && g != r.Gen {
			delete(o.dead, r.ID) // it rejoined
		}
		if dead[Verdict{r.ID, r.Gen}] {
			o.dead[r.ID] = r.Gen
		}
		if !ok {
			s.GrantSeen = Never
		}
		if granted.Has(r.ID) {
			s.GrantSeen = now
		}
		o.slots[r.ID] = s
		out = append(out, s)
	}
	if !o.started {
		o.started, o.start = true, now
	}
	for id := range o.slots {
		if !seen[id] {
			delete(o.slots, id) // released slot
			delete(o.dead, id)
		}
	}
	return out
}

// Slots returns the slots as last observed.
func (o *Observer) Slots() []Slot {
	out := make([]Slot, 0, len(o.slots))
	for _, s := range o.slots {
		out = append(out, s)
	}
	return out
}

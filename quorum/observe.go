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
	Ack      Ack // the mailbox message the slot's owner last answered
	// Disarm is the newest disarm request the owner has seen; Disarmed,
	// that it acknowledges being disarmed by it.
	Disarm   Disarm
	Disarmed bool
	// Reach is what the owner says of its isolation addresses.
	Reach Reach
	// Records is the owner's VM-records change counter (data only).
	Records uint32
	// Damaged: the slot read damaged or zeroed; only ID is set. A slot that
	// was read before keeps what it held (its owner rewrites it, or its
	// heartbeat stays unchanged), for a slot that was written never reads
	// as released; one never read before is left out.
	Damaged bool
}

// Observer turns successive reads of the heartbeat slots into Slots with
// change times on this host's monotonic clock. It is the memory of the
// heartbeat loop (held by its Node); it reads no clock itself.
type Observer struct {
	slots slotTable
	dead  map[int]uint64 // host -> generation seen declared dead
	// started: a first read was done, at start; slots first seen later joined later.
	started bool
	start   Mono
	last    Mono // the latest read
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
	return &Observer{dead: map[int]uint64{}}
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
	var seen, granted Set
	var seenOther map[int]bool
	for _, r := range read {
		g := r.Granted
		g.Remove(r.ID)
		granted = granted.Union(g)
	}
	declared := declaredDead(read)
	out := make([]Slot, 0, len(read))
	for i := range read {
		r := &read[i]
		if r.Damaged {
			prev, ok := o.slots.get(r.ID)
			if !ok {
				continue
			}
			r = &RawSlot{ID: prev.ID, Name: prev.Name, Gen: prev.Gen, Seq: prev.Seq, State: prev.State,
				SerfView: prev.SerfView, Granted: prev.Granted, Dead: prev.Dead, Reach: prev.Reach, Records: prev.Records,
				Ack: Ack{Kind: MsgFence, Nonce: prev.Isolated, Done: prev.Isolated != 0}}
		}
		if seen.Add(r.ID); !seen.Has(r.ID) {
			if seenOther == nil {
				seenOther = map[int]bool{}
			}
			seenOther[r.ID] = true // outside a Set's range
		}
		prev, ok := o.slots.lookup(r.ID)
		s := Slot{ID: r.ID, Name: r.Name, Gen: r.Gen, Seq: r.Seq, State: r.State, SerfView: r.SerfView,
			Granted: r.Granted, Dead: r.Dead, Changed: prev.Changed, PrevChanged: prev.PrevChanged, PrevSeen: prev.PrevSeen, GrantSeen: prev.GrantSeen,
			Disarm: r.Disarm, Disarmed: r.Disarmed, DisarmSeen: Never, Reach: r.Reach, ReachSince: prev.ReachSince,
			Records: r.Records}
		if r.Ack.Kind == MsgFence && r.Ack.Done {
			s.Isolated = r.Ack.Nonce
		}
		if r.Disarmed {
			// Its timer started before this acknowledgement landed.
			s.DisarmSeen = now
			if ok && prev.Disarmed && prev.Disarm == r.Disarm && prev.Gen == r.Gen {
				s.DisarmSeen = prev.DisarmSeen
			}
		}
		switch {
		case !ok || prev.Gen != r.Gen:
			s.Changed, s.PrevChanged, s.PrevSeen = now, Never, Never
		case prev.Seq != r.Seq,
			// An acknowledged arm or disarm is a sign of life even when it
			// does not count as a heartbeat (of three LUNs, a record that
			// landed late or on one LUN: RawSlot.Seq is its Beat): the
			// disarm rule counts an armed peer's silence from its
			// acknowledgement, and a host that re-armed after living
			// without its LUN self-fences from then.
			prev.Disarmed != r.Disarmed || prev.Disarm != r.Disarm:
			s.Changed, s.PrevChanged, s.PrevSeen = now, prev.Changed, o.last
		}
		switch {
		case ok && prev.Reach != r.Reach, !ok && r.Reach != ReachUnknown:
			s.ReachSince = now // a flag that breaks ties: new to this observer
		case !ok:
			s.ReachSince = Never
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
		if declared(r.ID, r.Gen) {
			o.dead[r.ID] = r.Gen
		}
		if !ok {
			s.GrantSeen = Never
		}
		if granted.Has(r.ID) {
			s.GrantSeen = now
		}
		o.slots.put(s)
		out = append(out, s)
	}
	if !o.started {
		o.started, o.start = true, now
	}
	o.last = now
	if o.slots.len() == seen.Len()+len(seenOther) {
		return out // every slot kept was read now: none released
	}
	for _, id := range o.slots.ids() {
		if !seen.Has(id) && !seenOther[id] {
			o.slots.remove(id) // released slot
			delete(o.dead, id)
		}
	}
	return out
}

// declaredDead returns whether some other slot of read publishes a verdict
// for slot r's host at r's generation.
func declaredDead(read []RawSlot) func(id int, gen uint64) bool {
	// The LUN's slots have distinct ids 1..255: a verdict can then only
	// concern the one slot of its id, and an array does instead of hashing.
	var gens [256]uint64
	var ids, hit Set
	for i := range read {
		r := &read[i]
		if !inSetRange(r.ID) || ids.Has(r.ID) {
			return declaredDeadAny(read)
		}
		ids.Add(r.ID)
		gens[r.ID] = r.Gen
	}
	for i := range read {
		r := &read[i]
		for _, v := range r.Dead {
			if v.ID != r.ID && ids.Has(v.ID) && gens[v.ID] == v.Gen {
				hit.Add(v.ID)
			}
		}
	}
	return func(id int, _ uint64) bool { return hit.Has(id) }
}

// declaredDeadAny is declaredDead for any ids.
func declaredDeadAny(read []RawSlot) func(id int, gen uint64) bool {
	dead := map[Verdict]bool{}
	for _, r := range read {
		for _, v := range r.Dead {
			if v.ID != r.ID {
				dead[v] = true
			}
		}
	}
	return func(id int, gen uint64) bool { return dead[Verdict{id, gen}] }
}

// Slots returns the slots as last observed.
func (o *Observer) Slots() []Slot {
	out := make([]Slot, 0, o.slots.len())
	for _, id := range o.slots.ids() {
		s, _ := o.slots.get(id)
		out = append(out, s)
	}
	return out
}

// slotTable holds the observed slots by host id: in an array for the ids a
// Set can hold (every id the LUN has), so that a read of many slots costs no
// hashing; in a map for any other.
type slotTable struct {
	byID  []Slot // index id, for ids 1..255; valid where have holds the id
	have  Set
	other map[int]Slot
}

func (t *slotTable) get(id int) (Slot, bool) {
	p, ok := t.lookup(id)
	return *p, ok
}

// lookup is get without a copy; the zero Slot when id is not held.
func (t *slotTable) lookup(id int) (*Slot, bool) {
	if !inSetRange(id) {
		s, ok := t.other[id]
		return &s, ok
	}
	if !t.have.Has(id) {
		return &Slot{}, false
	}
	return &t.byID[id], true
}

func (t *slotTable) put(s Slot) {
	if !inSetRange(s.ID) {
		if t.other == nil {
			t.other = map[int]Slot{}
		}
		t.other[s.ID] = s
		return
	}
	if s.ID >= len(t.byID) {
		t.byID = append(t.byID, make([]Slot, s.ID+1-len(t.byID))...)
	}
	t.byID[s.ID] = s
	t.have.Add(s.ID)
}

func (t *slotTable) remove(id int) {
	if !inSetRange(id) {
		delete(t.other, id)
		return
	}
	t.have.Remove(id)
	if id < len(t.byID) {
		t.byID[id] = Slot{}
	}
}

func (t *slotTable) len() int { return t.have.Len() + len(t.other) }

// ids lists the ids held: those of the array in increasing order, then the others.
func (t *slotTable) ids() []int {
	ids := t.have.IDs()
	for id := range t.other {
		ids = append(ids, id)
	}
	return ids
}

func inSetRange(id int) bool { return id > 0 && id < 256 }

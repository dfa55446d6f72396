package quorum

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Decide computes host states, quorum, the coordinator and the actions for
// this host from in. It is deterministic and does no I/O.
func Decide(in Input) Decision {
	t := in.Timings
	d := Decision{Disarm: in.Disarm, Reach: selfReach(in), reach: readReach(in, in.Now)}

	// After a disarm, this host's self-fence clock counts from its re-arm.
	writeAge := in.Now - max(in.LastWrite, in.Disarm.ExemptEnded)
	// A network lease counts only up to the ceiling C: the survivors then
	// know, by this host's silence, that it runs nothing (CeilingWait).
	pastCeiling := writeAge >= t.Ceiling()
	leaseValid := in.Now < in.LeaseUntil && !pastCeiling
	d.MayRunVMs = writeAge < t.SelfFence || leaseValid || in.Disarm.Exempt
	declared := in.SelfGen != 0 && in.KnownDead[in.Self] == in.SelfGen
	switch {
	case declared:
		// The cluster declared this very generation dead (it was frozen, or
		// cut off, for longer than D): its VMs may run elsewhere already.
		d.MayRunVMs = false
		d.Actions = append(d.Actions, Action{Kind: ActSelfFence, Host: in.Self, Gen: in.SelfGen,
			Reason: "the cluster declared this host dead at this generation; rejoin with a new one"})
	case !d.MayRunVMs:
		since := ""
		if in.Disarm.ExemptEnded > in.LastWrite {
			since = " since HA re-armed"
		}
		why := fmt.Sprintf("no completed heartbeat write for %v%s (F = %v) and no network lease", age(writeAge), since, t.SelfFence)
		if pastCeiling && in.Now < in.LeaseUntil {
			why = fmt.Sprintf("no completed heartbeat write for %v%s: past the network-lease ceiling (C = %v)", age(writeAge), since, t.Ceiling())
		}
		d.Actions = append(d.Actions, Action{Kind: ActSelfFence, Host: in.Self, Gen: in.SelfGen, Reason: why})
	}
	// A heartbeat write is overdue: keep a network lease ahead of F.
	if d.MayRunVMs && !in.Disarm.Exempt && writeAge >= t.Renew+t.IOTimeout && (!leaseValid || in.LeaseUntil-in.Now < t.SelfFence/2) {
		d.Actions = append(d.Actions, Action{Kind: ActRequestLease, Host: in.Self, Gen: in.SelfGen,
			Reason: fmt.Sprintf("no completed heartbeat write for %v", age(writeAge))})
	}

	// The observer may only pronounce others dead while its own view of the
	// LUN is fresh and has been for D: any grant published for a host in that
	// time was seen.
	observerFresh := in.Now-in.LastWrite < t.SelfFence && in.Now-in.LastRead < t.SelfFence &&
		in.ReadFreshSince != Never && in.Now-in.ReadFreshSince >= t.Dead

	slots := in.Slots
	byID := func(a, b Slot) int { return cmp.Compare(a.ID, b.ID) }
	if !slices.IsSortedFunc(slots, byID) {
		slots = slices.Clone(slots)
		slices.SortFunc(slots, byID)
	}
	for _, s := range slots {
		if s.State == SlotFree {
			continue
		}
		if d.Hosts == nil {
			d.Hosts = make([]Host, 0, len(slots))
		}
		d.Hosts = append(d.Hosts, classify(in, s, observerFresh, d.MayRunVMs))
	}

	hiddenLeaseCheck(in, &d)
	for _, h := range d.Hosts {
		if !h.State.Gone() {
			d.Voters.Add(h.ID)
		}
		if h.State == StateDead && in.KnownDead[h.ID] == h.Gen {
			d.Verdicts = append(d.Verdicts, Verdict{h.ID, h.Gen})
		}
	}
	// This host's partition: itself and the voters serf sees alive. While
	// this host reads the LUN, a peer whose heartbeat has stalled counts
	// only if it holds a network lease: serf may not have noticed yet that
	// it is gone. (Without the LUN, serf is all there is.)
	readFresh := in.Now-in.LastRead < t.SelfFence
	d.serfAlive = in.SerfAlive
	if d.Voters.Has(in.Self) {
		for _, h := range d.Hosts {
			if h.ID == in.Self || !d.Voters.Has(h.ID) || !in.SerfAlive.Has(h.ID) {
				continue
			}
			if readFresh && h.State == StateSuspect && !h.leased {
				continue
			}
			d.Partition.Add(h.ID)
		}
		d.Partition.Add(in.Self)
		d.Quorate = d.MayRunVMs && d.reach.quorate(d.Partition, d.Voters)
		settle := t.serfDetect() + 2*t.Renew
		settled := d.Partition
		for _, id := range d.Partition.IDs() {
			if since, ok := in.SerfAliveSince[id]; ok && id != in.Self && in.Now-since < settle {
				settled.Remove(id)
			}
		}
		d.settled = settled
		d.Settled = d.Quorate && d.reach.quorate(settled, d.Voters) && d.reach.settled
		// A host that has just written "left" or "fenced" changed the vote
		// count; other partitions may not have seen it yet.
		for _, h := range d.Hosts {
			if h.State.Gone() && h.Stale < settle {
				d.Settled = false
			}
		}
	}
	if in.HeaderChanged != "" {
		// A LUN whose header changed may no longer be the one whose layout
		// this host knows: keep writing the own slot (nobody falls back on
		// network leases), but act on nobody else's.
		d.Quorate, d.Settled = false, false
	}
	// The coordinator is chosen "per the LUN": a host whose own reads are
	// not fresh sees every other host stale and must not elect itself.
	if d.Quorate && readFresh {
		for _, h := range d.Hosts {
			if d.Partition.Has(h.ID) && (h.State == StateAlive || h.State == StateMaintenance) {
				d.Coordinator = h.ID
				break
			}
		}
	}

	for id, at := range in.GrantedAt {
		if in.Now-at < 2*t.SelfFence {
			d.GrantSet.Add(id)
		}
	}

	d.Actions = append(d.Actions, mailboxActions(in)...)
	// A disarmed coordinator declares nobody dead and fences nobody.
	if d.Coordinator == in.Self && d.Coordinator != 0 && !in.Disarm.Disarmed {
		d.Actions = append(d.Actions, coordinatorActions(in, d)...)
		for _, a := range d.Actions {
			if a.Kind == ActDeclareDead && in.KnownDead[a.Host] != a.Gen {
				d.Verdicts = append(d.Verdicts, Verdict{a.Host, a.Gen})
			}
		}
	}
	return d
}

// IsQuorate reports whether partition p holds a quorum of voters: more than
// half of them, or exactly half including the lowest voter id (so two halves
// never both win, and the LUN breaks a two-host tie).
func IsQuorate(p, voters Set) bool {
	p = p.Intersect(voters)
	n, v := p.Len(), voters.Len()
	if v == 0 {
		return false
	}
	return 2*n > v || (2*n == v && p.Has(voters.Min()))
}

// classify computes one host's state.
func classify(in Input, s Slot, observerFresh, selfMayRun bool) Host {
	t := in.Timings
	// Staleness is measured up to this host's last completed read, not up
	// to now: a heartbeat written after that read is one this host has not
	// had the chance to see.
	stale := max(in.LastRead-s.Changed, 0)
	h := Host{ID: s.ID, Name: s.Name, Gen: s.Gen, Stale: stale, Records: s.Records, Isolated: s.Isolated, changed: s.Changed, genSince: s.GenSince, goneAt: Never}
	// Silence, towards a verdict, counts from this host's re-arm, and for a
	// peer whose slot says it is disarmed, from the first sight of that
	// plus the disarm's length and margin: it may not have heard an arm.
	silentFrom, why := s.Changed, ""
	if in.ArmedAt > silentFrom {
		silentFrom, why = in.ArmedAt, "this host re-armed"
	}
	if s.Disarmed && s.Disarm.For > 0 {
		end := s.DisarmSeen + s.Disarm.For + DisarmMargin(s.Disarm.For)
		if end > silentFrom {
			silentFrom, why = end, fmt.Sprintf("its disarm for %v ran out here", s.Disarm.For)
		}
		h.disarmed = in.LastRead < end
	}
	silent := max(in.LastRead-silentFrom, 0)
	h.signSince = max(silentFrom, s.GrantSeen)
	set := func(st HostState, format string, a ...any) Host {
		h.State, h.Reason = st, format
		if len(a) > 0 {
			h.Reason = fmt.Sprintf(format, a...)
		}
		return h
	}
	live := func() Host {
		switch s.State {
		case SlotJoining:
			return set(StateJoining, "joining")
		case SlotMaintenance:
			return set(StateMaintenance, "in maintenance")
		}
		return set(StateAlive, "heartbeat fresh")
	}
	if s.ID == in.Self {
		if !selfMayRun {
			return set(StateSuspect, "this host: heartbeat not written for %v and no network lease: self-fencing", age(in.Now-in.LastWrite))
		}
		return live()
	}
	h.goneAt = s.Changed
	switch s.State {
	case SlotLeft:
		return set(StateLeft, "left the cluster cleanly")
	case SlotFenced:
		return set(StateDead, "wrote that it fenced itself")
	}
	h.goneAt = Never
	if g, ok := in.KnownDead[s.ID]; ok && g == s.Gen {
		return set(StateDead, "declared dead by a coordinator")
	}
	if p, ok := in.Power[s.ID]; ok && p.Confirmed && p.Gen == s.Gen {
		h.goneAt = p.At
		if p.By != "" {
			return set(StateDead, "confirmed off by the operator (%s)", p.By)
		}
		return set(StateDead, "power off confirmed by its fence agent")
	}
	grantStale := in.Now - s.GrantSeen
	if stale >= t.Dead && (silent < t.Dead || in.Disarm.Disarmed) {
		if in.Disarm.Disarmed {
			return set(StateSuspect, "heartbeat unchanged for %v; HA is disarmed: no verdict", age(stale))
		}
		return set(StateSuspect, "heartbeat unchanged for %v, silent for %v since %s (D = %v)", age(stale), age(silent), why, t.Dead)
	}
	if stale >= t.Dead {
		switch {
		case grantStale < t.Dead:
			h.leased = true
			return set(StateSuspect, "heartbeat unchanged for %v, but a network lease for it was seen %v ago", age(stale), age(grantStale))
		case !observerFresh:
			return set(StateSuspect, "heartbeat unchanged for %v, but this host's own LUN access is not fresh: no verdict", age(stale))
		}
		h.byStaleness = true
		return set(StateDead, "heartbeat unchanged for %v (D = %v)", age(stale), t.Dead)
	}
	if stale > t.Renew+t.IOTimeout {
		if grantStale < t.Dead {
			h.leased = true
			return set(StateSuspect, "heartbeat unchanged for %v; holds a network lease", age(stale))
		}
		return set(StateSuspect, "heartbeat unchanged for %v", age(stale))
	}
	if s.State == SlotJoining {
		// Its daemon is still starting (serf may not be up yet): not an
		// isolated host, and no pill is meant for it.
		return set(StateJoining, "joining")
	}
	if !in.SerfAlive.Has(s.ID) {
		if in.PillAcked[s.ID] == s.Gen && s.Gen != 0 {
			return set(StateIsolated, "serf sees it failed, heartbeat fresh; poison pill acknowledged")
		}
		if s.Reach == ReachOK {
			return set(StateIsolated, "serf sees it failed, heartbeat fresh; it reaches its isolation addresses: cut off from its peers only, no poison pill")
		}
		return set(StateIsolated, "serf sees it failed, heartbeat fresh")
	}
	return live()
}

// hiddenLeaseCheck withholds verdicts by staleness that a network lease
// this host cannot see might contradict. A lease is granted to a stalled host
// X by a strict majority of the voters X knew when it lost the LUN, one of
// them at least another host. Granters that write the LUN publish their
// grants, so a lease can be hidden only if every granter has a stalled
// heartbeat too. For each candidate X, count the voters X can know (live
// voters that joined before X stalled: a host that joined later is unknown to
// X, and leaving known-dead hosts out only makes the count stricter) and the
// stalled ones among them without a visible grant; if those could be a strict
// majority of two or more, wait. Sequential failures still leave the last host
// standing, because a published verdict takes the dead host out of the
// count. Two hosts of three lost at the same moment wait for a power fence,
// the operator (Node.ConfirmOff), or the network-lease ceiling: a host that
// has shown no sign of life for CeilingWait has fenced itself, leases or not.
func hiddenLeaseCheck(in Input, d *Decision) {
	t := in.Timings
	for i, x := range d.Hosts {
		if !x.byStaleness {
			continue
		}
		// Stalled hosts (x among them) may all be x's granters and always
		// count. A live host counts only if x surely knew it: it was in its
		// current generation before x stalled, which this host can only tell
		// if it saw x's heartbeat change after it started observing.
		var known, stalled int
		informative := x.changed > in.ObserverStart
		for _, h := range d.Hosts {
			// A host gone by other proof than staleness votes no more, but
			// for 2F it may still have leases of its granting running.
			recentlyGone := h.State.Gone() && h.goneAt != Never && in.Now-h.goneAt < 2*t.SelfFence
			if h.State.Gone() && !h.byStaleness && !recentlyGone {
				continue
			}
			if h.ID != in.Self && (recentlyGone || h.Stale > t.Renew+t.IOTimeout) {
				known++
				stalled++
				continue
			}
			if informative && (h.genSince == Never || h.genSince < x.changed) {
				known++
			}
		}
		if quiet := in.LastRead - x.signSince; stalled >= 2 && 2*stalled > known && quiet >= t.CeilingWait() {
			d.Hosts[i].Reason = fmt.Sprintf("no sign of life for %v: past the network-lease ceiling plus D (C + D = %v), it runs nothing whatever leases %d stalled hosts might grant it",
				age(quiet), age(t.CeilingWait()), stalled)
		} else if stalled >= 2 && 2*stalled > known {
			d.Hosts[i].State = StateSuspect
			d.Hosts[i].byStaleness = false
			d.Hosts[i].Reason = fmt.Sprintf("heartbeat unchanged for %v, but %d of the %d voters it knows have stalled heartbeats: they could hold network leases this host cannot see; waiting %v more for the lease ceiling (C + D = %v), or a power fence, or `wingman host confirm-off`",
				age(x.Stale), stalled, known, age(t.CeilingWait()-(in.LastRead-x.signSince)), age(t.CeilingWait()))
		}
	}
}

// mailboxActions answers a message in this host's own mailbox.
func mailboxActions(in Input) []Action {
	m := in.Mailbox
	if m.Kind == MsgNone || m.Nonce == 0 || m.Nonce == in.AckedNonce {
		return nil
	}
	if m.ToGen != in.SelfGen {
		return nil // meant for an earlier incarnation of this host: stale
	}
	switch m.Kind {
	case MsgFence:
		return []Action{{Kind: ActApplyIsolation, Host: in.Self, Gen: in.SelfGen, Nonce: m.Nonce,
			Reason: fmt.Sprintf("poison pill from host %d", m.From)}}
	case MsgTest:
		return []Action{{Kind: AckTest, Host: in.Self, Gen: in.SelfGen, Nonce: m.Nonce,
			Reason: fmt.Sprintf("test message from host %d", m.From)}}
	}
	return nil
}

// coordinatorActions are the verdicts and fences of the coordinator.
func coordinatorActions(in Input, d Decision) []Action {
	t := in.Timings
	var acts []Action
	for _, h := range d.Hosts {
		if h.ID == in.Self {
			continue
		}
		failedFor := time.Duration(-1)
		if since, ok := in.SerfFailedSince[h.ID]; ok && !in.SerfAlive.Has(h.ID) {
			failedFor = in.Now - since
		}
		switch h.State {
		case StateDead:
			acts = append(acts, Action{Kind: ActDeclareDead, Host: h.ID, Gen: h.Gen, Reason: h.Reason})
			continue
		}
		if !d.Settled {
			continue // the partition is still forming: fence nobody yet
		}
		if h.disarmed {
			continue // it may not have heard an arm: it is not fenced
		}
		if !agreeUnreachable(in, d, h.ID) {
			continue // a peer of this partition still sees it: the split is not settled
		}
		switch h.State {
		case StateIsolated:
			// One that reaches its isolation addresses is cut off from
			// its peers only: its guests still serve their users.
			if failedFor >= t.pillGrace() && in.PillAcked[h.ID] != h.Gen && !d.reach.ok.Has(h.ID) {
				acts = append(acts, Action{Kind: ActSendPill, Host: h.ID, Gen: h.Gen,
					Reason: fmt.Sprintf("serf has seen it failed for %v while its heartbeat is fresh: isolated from a quorate partition", age(failedFor))})
			}
		}
		if h.State.Gone() || !in.PowerFenceable.Has(h.ID) {
			continue
		}
		if p, ok := in.Power[h.ID]; ok && p.Gen == h.Gen {
			continue // one attempt per generation; a failure falls back to D
		}
		// Serf's own failure detection has already waited; the LUN must
		// also have shown no heartbeat for S.
		if failedFor >= 0 && h.Stale >= t.PowerFence {
			acts = append(acts, Action{Kind: ActPowerFence, Host: h.ID, Gen: h.Gen,
				Reason: fmt.Sprintf("serf sees it failed and its heartbeat has not changed for %v", age(h.Stale))})
		}
	}
	return acts
}

// agreeUnreachable reports whether the settled members of this host's
// partition that do not see target alive (in the serf views they publish on
// the LUN) still make a quorum. A peer that sees both sides of a split is
// counted by neither side for a fence.
func agreeUnreachable(in Input, d Decision, target int) bool {
	agree := SetOf(in.Self)
	for _, s := range in.Slots {
		if s.ID != in.Self && d.settled.Has(s.ID) && !s.SerfView.Has(target) {
			agree.Add(s.ID)
		}
	}
	return d.reach.quorate(agree, d.Voters)
}

// GrantLease reports whether this host, having decided d, may grant from a
// network lease: only a quorate partition grants, and only to a host serf
// sees alive that the LUN does not show gone (its heartbeat may have
// stalled: that is why it asks).
func GrantLease(d Decision, from int) (bool, string) {
	switch {
	case !d.Quorate:
		return false, "this host's partition is not quorate"
	case !d.serfAlive.Has(from):
		return false, fmt.Sprintf("host %d is not alive in this host's serf view", from)
	}
	if h, ok := d.Host(from); !ok || h.State.Gone() {
		return false, fmt.Sprintf("host %d is not a live member of the cluster", from)
	}
	return true, ""
}

// LeaseHeld reports whether grants from the hosts in granters (at least
// one), plus this host's own vote, make a strict majority of the voters. The lowest-id
// tie-break of IsQuorate does not apply: it stands for the LUN, which a host
// asking for a lease cannot reach.
func LeaseHeld(d Decision, self int, granters Set) bool {
	g := granters
	g.Remove(self)
	if g.Intersect(d.Voters).Len() == 0 {
		return false // a lease is a promise of others; a lone host has none
	}
	g.Add(self)
	g = g.Intersect(d.Voters)
	return 2*g.Len() > d.Voters.Len()
}

func age(d time.Duration) time.Duration {
	if d > 1<<50 {
		return time.Duration(1 << 50) // "forever", for messages about Never
	}
	return d.Round(time.Millisecond)
}

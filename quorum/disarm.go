package quorum

import (
	"errors"
	"fmt"
	"time"
)

// A disarm (DESIGN.md, promise 6) stops failover and fencing for a while,
// cluster-wide, for planned network or SAN work:
//
//   - The host that accepts `ha disarm` publishes a request in its slot:
//     a generation one above the highest seen, how long, by whom, why.
//     Every host adopts the newest request it reads in any slot and
//     republishes it with its acknowledgement, "disarmed" or "armed".
//   - Each host times a disarm on its own monotonic clock from the moment
//     it first saw the request, and re-arms by itself when that runs out.
//     `ha arm` is a newer request that lasts 0: it re-arms early the hosts
//     that can read it.
//   - While disarmed, a host declares nobody dead, sends no pill and
//     fences no host. Once its acknowledgement of the disarm has landed on
//     the LUN (and not before), losing the LUN and network leases does not
//     make it self-fence; its watchdog is still fed only while every loop
//     of the daemon progresses.
//   - After re-arming, this host's own self-fence clock (F since its last
//     write) and every peer's silence count from the re-arm.
//   - Never two: an observer counts the silence of a peer whose slot says
//     "disarmed" only from its own first sight of that acknowledgement plus
//     the disarm's length and DisarmMargin, then D after that. The peer
//     started its timer before its acknowledgement landed, so by then it
//     has re-armed, and F + W later it has fenced itself, even if it never
//     heard an early arm.

// Disarm is a cluster-wide disarm request as published in heartbeat slots.
type Disarm struct {
	Gen    uint64        // cluster-wide generation: the highest wins (then By); 0: none ever
	By     int           // the host that accepted the command
	For    time.Duration // how long each host stays disarmed from its first sight; 0: arm
	Reason string
}

// Newer reports whether request a supersedes b.
func (a Disarm) Newer(b Disarm) bool { return a.Gen > b.Gen || a.Gen == b.Gen && a.By > b.By }

// DisarmStatus is this host's disarm state.
type DisarmStatus struct {
	Request  Disarm // the newest request this host has seen (Gen 0: none)
	Disarmed bool   // Request's timer runs here: no verdict, pill or fence by this host
	Since    Mono   // when this host first saw Request: its timer started then
	Until    Mono   // when this host re-arms by itself (while Disarmed)
	// Exempt: an acknowledgement of a disarm landed on the LUN and its
	// timer runs: lost LUN or network access does not self-fence this host
	// before Until.
	Exempt bool
	// ExemptEnded is when the latest exemption ended (Never: none did):
	// this host's self-fence clock counts from then.
	ExemptEnded Mono
}

// DisarmMax bounds one disarm: longer work is disarmed again before the
// time runs out (a second disarm extends the first).
const DisarmMax = 24 * time.Hour

// DisarmMargin is what an observer adds to a peer's disarm before it counts
// the peer's silence: the two monotonic clocks may run at different rates.
// 1% is twenty times the 500 ppm NTP ever slews a clock by, and ten times
// the simulator's default drift.
func DisarmMargin(d time.Duration) time.Duration { return d / 100 }

// Errors of Node.Disarm, for errors.Is.
var (
	ErrDisarmInvalid = errors.New("invalid disarm")
	ErrDisarmRefused = errors.New("disarm refused")
)

// DisarmRequest is an operator's `ha disarm` (For > 0) or `ha arm` (For 0).
type DisarmRequest struct {
	For    time.Duration
	Reason string
	// Force lets a disarm end sooner than the one that runs.
	Force bool
	// Failover says what failover is in progress (the VM manager knows:
	// VMs of a host declared dead not yet running again); "" if none. A
	// disarm is refused meanwhile: it would not stop that failover (its
	// verdict stands), and the operator should see it end first.
	Failover string
}

// maxDisarmReason is how much of a reason a slot carries.
const maxDisarmReason = 100

// Disarm accepts at now an operator's disarm (or arm, For 0) on this host
// and returns the request this host publishes with its next write. A
// disarm that would end before the one running is refused without Force;
// so is any request while this host cannot write its heartbeat (nobody
// else would see it).
func (n *Node) Disarm(now Mono, req DisarmRequest) (Disarm, error) {
	switch {
	case req.For < 0 || req.For > DisarmMax:
		return Disarm{}, fmt.Errorf("%w: duration %v: give one from 1s to %v (disarm again to extend)", ErrDisarmInvalid, req.For, DisarmMax)
	case req.For > 0 && req.For < time.Second:
		return Disarm{}, fmt.Errorf("%w: duration %v: give at least 1s", ErrDisarmInvalid, req.For)
	case len(req.Reason) > maxDisarmReason:
		return Disarm{}, fmt.Errorf("%w: reason is %d bytes: keep it within %d", ErrDisarmInvalid, len(req.Reason), maxDisarmReason)
	case now-n.lastWrite >= n.t.SelfFence:
		return Disarm{}, fmt.Errorf("%w: this host has not written its heartbeat for %v, so no other host would see the request: run it on a host that writes the LUN", ErrDisarmRefused, age(now-n.lastWrite))
	}
	if req.For > 0 && req.Failover != "" {
		return Disarm{}, fmt.Errorf("%w: a failover is in progress (%s): wait until 'wingman status' shows it done, then disarm", ErrDisarmRefused, req.Failover)
	}
	st := n.disarmStatus(now)
	if req.For > 0 && st.Disarmed && now+req.For < st.Until && !req.Force {
		return Disarm{}, fmt.Errorf("%w: HA is disarmed for %v more (by host %d): a disarm for %v would end sooner; give a longer duration, or --force to shorten it",
			ErrDisarmRefused, age(st.Until-now), st.Request.By, req.For)
	}
	dm := Disarm{Gen: max(n.disarm.Gen, maxDisarmGen(n.slots)) + 1, By: n.self, For: req.For, Reason: req.Reason}
	n.adopt(now, dm, true)
	if dm.For == 0 {
		n.emit(Event{Kind: "ha-armed", Subject: n.self, Message: "HA armed by the operator" + reasonSuffix(dm.Reason)})
	} else {
		n.emit(Event{Kind: "ha-disarmed", Subject: n.self, Message: fmt.Sprintf("HA disarmed for %v by the operator%s: no failover or fencing until it re-arms", dm.For, reasonSuffix(dm.Reason))})
	}
	return dm, nil
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

// maxDisarmGen is the highest disarm generation in slots.
func maxDisarmGen(slots []Slot) uint64 {
	var g uint64
	for _, s := range slots {
		g = max(g, s.Disarm.Gen)
	}
	return g
}

// DisarmStatus is this host's disarm state at now.
func (n *Node) DisarmStatus(now Mono) DisarmStatus { n.disarmTick(now); return n.disarmStatus(now) }

func (n *Node) disarmStatus(now Mono) DisarmStatus {
	st := DisarmStatus{Request: n.disarm, Since: n.disarmAt, Until: Never, ExemptEnded: n.exemptEnded}
	if n.disarm.For > 0 && now < n.disarmAt+n.disarm.For {
		st.Disarmed, st.Until = true, n.disarmAt+n.disarm.For
	}
	st.Exempt = n.exemptUntil != Never && now < n.exemptUntil
	return st
}

// adoptNewest adopts at now the newest request in the slots last read, if
// newer than this host's. A disarm is adopted only while it is live: a
// peer whose heartbeat changed while this host watched acknowledges being
// disarmed by it. A request that ran out everywhere stays on the LUN; a
// host that starts later must not disarm itself for it again, and neither
// must it for the last write of a host that has since died.
func (n *Node) adoptNewest(now Mono) {
	newest := n.disarm
	for _, s := range n.slots {
		if !s.Disarm.Newer(newest) {
			continue
		}
		live := s.Disarm.For == 0 || s.ID != n.self && s.Disarmed && s.Changed > n.obs.Start()
		if live {
			newest = s.Disarm
		}
	}
	if newest != n.disarm {
		n.adopt(now, newest, false)
	}
}

// adopt makes dm this host's request from now; its timer starts now. An
// arm ends an exemption at once; a newer disarm replaces it once its own
// acknowledgement has landed (disarmAcked): until then observers count on
// the one they saw.
func (n *Node) adopt(now Mono, dm Disarm, byOperator bool) {
	n.disarmTick(now)
	wasRunning := n.running
	if dm.For == 0 && n.exemptUntil != Never {
		n.exemptEnded = max(n.exemptEnded, now)
		n.exemptUntil = Never
	}
	if dm.For == 0 && wasRunning {
		n.armedAt = max(n.armedAt, now)
	}
	n.disarm, n.disarmAt, n.running = dm, now, dm.For > 0
	if !byOperator && wasRunning && dm.For == 0 {
		n.emit(Event{Kind: "ha-armed", Subject: n.self, Message: fmt.Sprintf("HA re-armed early by host %d%s", dm.By, reasonSuffix(dm.Reason))})
	}
}

// disarmAcked records that a write acknowledging w's disarm completed.
func (n *Node) disarmAcked(w SlotWrite) {
	if w.Disarmed && w.Disarm == n.disarm && n.disarm.For > 0 {
		n.exemptUntil = n.disarmAt + n.disarm.For
	}
}

// disarmTick re-arms this host at now if its disarm has run out: peers'
// silence counts from the end of its timer, its own self-fence clock from
// the end of its exemption.
func (n *Node) disarmTick(now Mono) {
	if n.exemptUntil != Never && now >= n.exemptUntil {
		n.exemptEnded = max(n.exemptEnded, n.exemptUntil)
		n.exemptUntil = Never
	}
	if end := n.disarmAt + n.disarm.For; n.running && now >= end {
		n.running = false
		n.armedAt = max(n.armedAt, end)
		n.emit(Event{Kind: "ha-rearmed", Subject: n.self, Message: fmt.Sprintf("HA re-armed by itself: the disarm for %v by host %d ran out", n.disarm.For, n.disarm.By)})
	}
}

package luns

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

// Member is one heartbeat LUN of a set as this host last used it.
type Member struct {
	Index int // 1..3
	Path  string
	// Problem says what is wrong ("I/O errors: ...", "I/O timed out",
	// "header changed: ..."); "" while the member works.
	Problem string
	// Since is when this host first saw the current problem.
	Since time.Time
	// okSince is when a failing member was first seen working again: it
	// is back once it has worked for backAfter.
	okSince time.Time
}

// backAfter is how long a failing member must work before it counts as
// back: a LUN that fails every few seconds is one warning, not a stream of
// events.
const backAfter = 10 * time.Second

// Change is a member going bad, or working again: an event of its own.
type Change struct {
	Member Member
	Total  int // members in the set
	Bad    bool
}

// Kind is the event's kind.
func (c Change) Kind() string {
	if c.Bad {
		return "lun-member-failed"
	}
	return "lun-member-back"
}

// Severity is the event's severity: a failing member is a warning, as the
// other two still carry every heartbeat.
func (c Change) Severity() storage.Severity {
	if c.Bad {
		return storage.SevWarning
	}
	return storage.SevInfo
}

// Message is the event's text.
func (c Change) Message() string {
	m := c.Member
	if c.Bad {
		return fmt.Sprintf("heartbeat LUN %d of %d (%s) is failing: %s; %s", m.Index, c.Total, m.Path, m.Problem, consequence)
	}
	return fmt.Sprintf("heartbeat LUN %d of %d (%s) works again", m.Index, c.Total, m.Path)
}

// consequence is what one failing member of three means, and what to do.
const consequence = "the other two carry every heartbeat, so nothing moves; if a second one fails, the hosts run on network leases as when the only LUN is lost: check the storage path of this LUN (multipath -ll, dmesg) and repair or replace it"

// Health is what this host knows of each member of its LUN set: whether it
// works (polled by Run), and on how many members each host's heartbeat is
// fresh (noted at each renewal). It decides nothing: the quorum layer judges
// a host alive from the set's merged heartbeat.
type Health struct {
	lun   *storage.LUN
	paths Paths
	// fresh is how recently a member's copy of a host's heartbeat must
	// have changed to count: R + io_timeout, the quorum layer's own bound
	// before a host counts as suspect.
	fresh time.Duration

	mu      sync.Mutex
	copies  map[int][]heartbeatCopy // host id -> per member
	members []Member                // at the latest poll
}

// heartbeatCopy is one member's copy of a host's heartbeat sequence.
type heartbeatCopy struct {
	seq     uint64
	changed time.Time
}

// NewHealth watches the members of lun, opened from paths.
func NewHealth(lun *storage.LUN, paths Paths) *Health {
	t := lun.Header().Timings
	h := &Health{lun: lun, paths: paths, fresh: t.Renew + t.IOTimeout, copies: map[int][]heartbeatCopy{}}
	for i, p := range paths {
		h.members = append(h.members, Member{Index: i + 1, Path: p})
	}
	return h
}

// Note records the heartbeats that a renewal at now read, member by member.
// It is cheap: the heartbeat loop calls it.
func (h *Health) Note(now time.Time, views []storage.SlotView) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range views {
		seqs := memberSeqs(v, len(h.paths))
		cs := h.copies[v.HostID]
		if len(cs) != len(seqs) {
			cs = make([]heartbeatCopy, len(seqs))
			h.copies[v.HostID] = cs
		}
		for i, s := range seqs {
			if s != 0 && s != cs[i].seq {
				cs[i] = heartbeatCopy{seq: s, changed: now}
			}
		}
	}
}

// fresh says on how many members host's heartbeat changed within the bound.
func (h *Health) freshOn(host int, now time.Time) int {
	n := 0
	for _, c := range h.copies[host] {
		if !c.changed.IsZero() && now.Sub(c.changed) <= h.fresh {
			n++
		}
	}
	return n
}

// AliveBy fills in how each host is alive (api.Host.AliveBy): on how many
// members its heartbeat is fresh, or, short of a majority, through a
// network lease (self: whether this host holds one).
func (h *Health) AliveBy(hosts []api.Host, dec quorum.Decision, self int, selfLease bool, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	total := len(h.paths)
	for i := range hosts {
		qh, ok := dec.Host(hosts[i].ID)
		if !ok || qh.State == quorum.StateDead || qh.State == quorum.StateLeft {
			continue
		}
		fresh := h.freshOn(hosts[i].ID, now)
		if total > 1 && fresh <= total/2 && qh.Stale <= h.fresh {
			// Its Beat, a write a majority of the members took, is fresh:
			// this host reads only some of them (its own path to one failed,
			// the writer's to another).
			fresh = total/2 + 1
		}
		// A lease seen for it, one this host grants it (while this host
		// cannot read the LUN either), or this host's own.
		leased := qh.OnLease() || dec.GrantSet.Has(hosts[i].ID) || (hosts[i].ID == self && selfLease)
		hosts[i].AliveBy = aliveBy(fresh, total, leased)
	}
}

// aliveBy is the text of api.Host.AliveBy.
func aliveBy(fresh, total int, leased bool) string {
	switch {
	case fresh > total/2 && total == 1:
		return "disk"
	case fresh > total/2:
		return fmt.Sprintf("disk %d/%d", fresh, total)
	case leased:
		return "network lease"
	case total == 1:
		return "disk (not fresh)"
	default:
		return fmt.Sprintf("disk %d/%d (not fresh)", fresh, total)
	}
}

// Run polls the members every interval until ctx ends, and calls emit for
// each member that goes bad or works again. A single LUN has no members to
// watch: its failures are the heartbeat's own.
func (h *Health) Run(ctx context.Context, every time.Duration, emit func(Change)) {
	if len(h.paths) < 2 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, c := range h.poll(time.Now(), memberProblems(h.lun)) {
			emit(c)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll records the members' problems (by index, "" when it works) seen at
// now and returns the changes since the previous poll.
func (h *Health) poll(now time.Time, problems map[int]string) []Change {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Change
	for i := range h.members {
		m := &h.members[i]
		p := problems[m.Index]
		wasBad := m.Problem != ""
		switch {
		case p != "" && !wasBad:
			m.Problem, m.Since = p, now
			out = append(out, Change{Member: *m, Total: len(h.members), Bad: true})
		case p != "":
			m.Problem, m.okSince = p, time.Time{} // the same trouble, told anew; since when it began
		case wasBad && m.okSince.IsZero():
			m.okSince = now
		case wasBad && now.Sub(m.okSince) >= backAfter:
			m.Problem, m.Since, m.okSince = "", time.Time{}, time.Time{}
			out = append(out, Change{Member: *m, Total: len(h.members)})
		}
	}
	return out
}

// Members are the members as status shows them (none for a single LUN).
func (h *Health) Members() []api.LUNMember {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.members) < 2 {
		return nil
	}
	out := make([]api.LUNMember, 0, len(h.members))
	for _, m := range h.members {
		out = append(out, api.LUNMember{Index: m.Index, Path: m.Path, OK: m.Problem == "", Problem: m.Problem, Since: m.Since})
	}
	return out
}

// Warnings are the status warnings of the members that fail, one each.
func (h *Health) Warnings() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, m := range h.members {
		if m.Problem != "" {
			out = append(out, fmt.Sprintf("heartbeat LUN %d of %d (%s) failing since %s: %s; %s",
				m.Index, len(h.members), m.Path, m.Since.Format(time.DateTime), m.Problem, consequence))
		}
	}
	return out
}

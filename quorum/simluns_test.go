package quorum

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Three heartbeat LUNs in the simulator, as storage's LUN set uses them: a
// host writes its slot to every LUN it reaches, and the write counts once
// two landed within io_timeout; a read needs two LUNs and takes, for each
// slot, the newest record any LUN read holds (storage's mergeSlot), whose
// sequence for liveness is its Beat: the writer's last write that two LUNs
// took, as the writer knew when it wrote the record. A LUN is lost for every host (lunLost), slow for
// every host (lunLatency), or lost on one host's path (pathLost).

// lunsMajority is how many of three LUNs must answer.
const lunsMajority = 2

// setLUNs gives the cluster three heartbeat LUNs; call it before the first run.
func (s *sim) setLUNs() {
	s.counted = make([]*lunSlot, len(s.lun))
	for id := range s.counted {
		s.counted[id] = &lunSlot{}
	}
	s.extra = make([][]*lunSlot, 2)
	for i := range s.extra {
		s.extra[i] = make([]*lunSlot, len(s.lun))
		for id, sl := range s.lun {
			if sl != nil {
				s.extra[i][id] = &lunSlot{raw: sl.raw}
			}
		}
	}
}

// member is LUN m's slots (0..2).
func (s *sim) member(m int) []*lunSlot {
	if m == 0 {
		return s.lun
	}
	return s.extra[m-1]
}

// reaches reports whether h's I/O to LUN m completes within io_timeout.
func (s *sim) reaches(h *simHost, m int) bool {
	return !s.lunLost[m] && !h.pathLost[m] && h.latency+s.lunLatency[m] <= s.t.IOTimeout
}

// readable is how many LUNs h reads.
func (s *sim) readable(h *simHost) int {
	n := 0
	for m := range 3 {
		if s.reaches(h, m) {
			n++
		}
	}
	return n
}

// merged is slot id as h reads it from the LUNs it reaches: the newest
// copy read (by generation, then sequence), with its Beat as the sequence.
func (s *sim) merged(h *simHost, id int) RawSlot {
	var read []*lunSlot
	for m := range 3 {
		if s.reaches(h, m) {
			read = append(read, s.member(m)[id])
		}
	}
	slices.SortStableFunc(read, func(a, b *lunSlot) int {
		return cmp.Or(cmp.Compare(b.raw.Gen, a.raw.Gen), cmp.Compare(b.raw.Seq, a.raw.Seq))
	})
	raw := read[0].raw
	raw.Seq = read[0].beat
	return raw
}

// writeMembers issues h's next heartbeat write to every LUN it reaches
// whose earlier write has landed (storage's ErrIOPending for the others).
func (s *sim) writeMembers(h *simHost, now Mono) {
	var free []int
	for m := range 3 {
		if sl := s.member(m)[h.id]; !s.lunLost[m] && !h.pathLost[m] && sl.next == nil {
			free = append(free, m)
		}
	}
	if len(free) == 0 {
		return
	}
	raw, w := s.nextWrite(h)
	beat := min(h.acked, raw.Seq)
	acks := new(int)
	for _, m := range free {
		sl := s.member(m)[h.id]
		lat := h.latency + s.lunLatency[m]
		sl.next = &lunSlot{raw: raw, write: w, lands: s.now + lat, issued: s.now, issuedMono: now, acks: acks, beat: beat}
		if lat < s.step {
			sl.raw, sl.beat, sl.next = raw, beat, nil
			sl.markLanded(s.now, s.t)
			*acks++
		}
	}
	if *acks >= lunsMajority {
		s.counted[h.id].markLanded(s.now, s.t)
		h.acked = max(h.acked, raw.Seq)
		h.node.Wrote(now, w)
	}
}

// landMembers lands the writes due on every LUN; a write's writer learns
// of it when it has landed on two within io_timeout.
func (s *sim) landMembers() {
	for m := range 3 {
		for id, sl := range s.member(m) {
			if sl == nil || sl.next == nil || s.now < sl.next.lands {
				continue
			}
			w := sl.next
			sl.raw, sl.beat, sl.next = w.raw, w.beat, nil
			sl.markLanded(s.now, s.t)
			if w.lands-w.issued > s.t.IOTimeout {
				continue
			}
			if *w.acks++; *w.acks == lunsMajority {
				s.counted[id].markLanded(s.now, s.t)
				if h := s.host(id); h.gen == w.raw.Gen {
					h.acked = max(h.acked, w.raw.Seq)
					h.node.Wrote(w.issuedMono, w.write)
				}
			}
		}
	}
}

// lastLanded is what says when host id's heartbeat last landed where it
// counts: its slot on the LUN, or, of three, when its writes last landed on
// two within io_timeout.
func (s *sim) lastLanded(id int) *lunSlot {
	if s.extra == nil {
		return s.lun[id]
	}
	return s.counted[id]
}

// execLUNsCommand runs a scenario command about one of three LUNs:
//
//	lun-member-lost M, lun-member-back M     LUN M (1..3) lost, or back, for every host
//	lun-member-latency M DURATION            every I/O to LUN M takes DURATION more
//	path-lost H M, path-back H M             host H's path to LUN M lost, or back
func execLUNsCommand(s *sim, f []string) error {
	if s.extra == nil {
		return fmt.Errorf("the cluster has one LUN: start it with `cluster ... luns=3`")
	}
	num := func(i, hi int) int {
		if i >= len(f) {
			return 0
		}
		if n, err := strconv.Atoi(f[i]); err == nil && n >= 1 && n <= hi {
			return n
		}
		return 0
	}
	switch f[0] {
	case "lun-member-lost", "lun-member-back":
		m := num(1, 3)
		if m == 0 {
			return fmt.Errorf("want %s M, M a LUN from 1 to 3", f[0])
		}
		s.lunLost[m-1] = f[0] == "lun-member-lost"
		s.logf("LUN %d %s on every host", m, strings.TrimPrefix(f[0], "lun-member-"))
	case "lun-member-latency":
		m := num(1, 3)
		d, err := time.ParseDuration(strings.Join(f[2:], ""))
		if m == 0 || err != nil || d < 0 {
			return fmt.Errorf("want lun-member-latency M DURATION, M a LUN from 1 to 3")
		}
		s.lunLatency[m-1] = d
		s.logf("LUN %d latency on every host: +%v", m, d)
	case "path-lost", "path-back":
		h, m := num(1, len(s.hosts)), num(2, 3)
		if h == 0 || m == 0 {
			return fmt.Errorf("want %s H M, H a host id, M a LUN from 1 to 3", f[0])
		}
		s.host(h).pathLost[m-1] = f[0] == "path-lost"
		s.logf("host %d: path to LUN %d %s", h, m, strings.TrimPrefix(f[0], "path-"))
	}
	return nil
}

// lunFault is fault kind k (0..2) of a random schedule on three LUNs: one
// LUN lost, or back, for every host; one LUN slow (up to twice io_timeout)
// or fast again; or host h's path to one LUN lost, or back.
//
// With a merge of a slot as the newest record that two of the LUNs read
// hold, these schedules found violations: two hosts whose paths to two
// different LUNs failed read different pairs and saw each other's heartbeat
// stalled (`path-lost 1 3` and `path-lost 2 1` on three hosts declared host
// 1 dead within D), and a host left with one LUN read, for a peer, an older
// record than it read before (its disarm, for one, gone). Storage merges a
// slot as the newest record any LUN read holds (a write that two LUNs took
// is on one of any two read) and counts liveness by its Beat, so that a host
// left with one LUN, which keeps writing there, is silent for the others.
func lunFault(s *sim, rng *rand.Rand, h *simHost, k int, do func(string)) {
	m := 1 + rng.IntN(3)
	switch k {
	case 0:
		if s.lunLost[m-1] {
			do(fmt.Sprintf("lun-member-back %d", m))
		} else {
			do(fmt.Sprintf("lun-member-lost %d", m))
		}
	case 1:
		do(fmt.Sprintf("lun-member-latency %d %v", m, time.Duration(rng.IntN(int(2*s.t.IOTimeout/time.Millisecond)))*time.Millisecond))
	case 2:
		if h.pathLost[m-1] {
			do(fmt.Sprintf("path-back %d %d", h.id, m))
		} else {
			do(fmt.Sprintf("path-lost %d %d", h.id, m))
		}
	}
}

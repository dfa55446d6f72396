package storage

import (
	"context"
	"fmt"
)

// DamagedEvent is an entry of an event ring that was written and now
// reads damaged: a bad checksum, another host's id, or zeros where the
// ring's sequence says an event was.
type DamagedEvent struct {
	Host  int    // the ring's host
	Block int64  // the LUN block that holds the entry
	Entry int    // the entry's position in the ring, from 0
	Seq   uint64 // the sequence the entry should hold, 0 if unknown
	Err   error  // a *BlockError of class ErrCorrupt
}

// CheckEvents reads every host's event ring and returns its damaged
// entries (ReadEvents skips them). An entry is damaged when it is neither
// blank nor a valid event of its ring's host, or when it is blank although
// the ring's newest sequence says it holds one of the last events.
func (i Integrity) CheckEvents(ctx context.Context) ([]DamagedEvent, error) {
	l := i.l
	g := l.hdr.Geometry
	n := g.EventBlocks * eventsPerBlock
	var out []DamagedEvent
	for h := 1; h <= g.MaxHosts; h++ {
		b, err := l.readEvents(ctx, h, g.eventBase(h)*BlockSize, g.EventBlocks*BlockSize)
		if err != nil {
			return out, fmt.Errorf("read event ring of host %d: %w", h, err)
		}
		blank := make([]bool, n)
		var newest uint64
		var bad []DamagedEvent
		for p := range n {
			r := b[p*eventLen : (p+1)*eventLen]
			e, ok := decodeEvent(r)
			switch {
			case ok && e.Host == h:
				newest = max(newest, e.Seq)
			case allZero(r):
				blank[p] = true
			default:
				why := "bad magic or checksum (a torn write or damaged block)"
				if ok {
					why = fmt.Sprintf("it names host %d", e.Host)
				}
				bad = append(bad, damagedEvent(l, h, p, 0, why))
			}
		}
		// The last min(newest, n) sequences occupy known positions.
		for seq := newest; seq >= 1 && seq+uint64(n) > newest; seq-- {
			if p := int((seq - 1) % uint64(n)); blank[p] {
				bad = append(bad, damagedEvent(l, h, p, seq, fmt.Sprintf("blank, but the ring's newest event is %d: event %d was written here and lost", newest, seq)))
			}
		}
		out = append(out, bad...)
	}
	return out, nil
}

func damagedEvent(l *LUN, host, entry int, seq uint64, why string) DamagedEvent {
	g := l.hdr.Geometry
	block := g.eventBase(host) + int64(entry/eventsPerBlock)
	return DamagedEvent{Host: host, Block: block, Entry: entry, Seq: seq,
		Err: l.blockErr(block, fmt.Sprintf("event ring of host %d, entry %d", host, entry), fmt.Errorf("%w: %s", ErrCorrupt, why),
			"the event is lost; the host goes on writing its ring, which overwrites the entry in turn; check the storage (dmesg)")}
}

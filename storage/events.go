package storage

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Severity of an event.
type Severity uint8

const (
	SevInfo Severity = iota
	SevWarning
	SevError
)

var sevNames = [...]string{"info", "warning", "error"}

func (s Severity) String() string {
	if int(s) < len(sevNames) {
		return sevNames[s]
	}
	return fmt.Sprintf("severity(%d)", s)
}

// Event is one entry of a host's event ring: a decision or an action with
// its reason. Wall times of different hosts order events for display only.
type Event struct {
	Host     int    // writer
	Seq      uint64 // per-writer sequence, from 1
	Time     time.Time
	Severity Severity
	Kind     string // short machine-readable kind, e.g. "declared-dead" (<= 23 bytes)
	VM       UUID   // the VM concerned, if any
	Subject  int    // the host concerned, if any
	Message  string // human-readable reason (<= 175 bytes)
}

const (
	eventLen       = 256
	eventsPerBlock = BlockSize / eventLen
)

var eventMagic = []byte("WGEV")

func (e *Event) encodeInto(b []byte) {
	clear(b[:eventLen])
	copy(b[0:4], eventMagic)
	le.PutUint16(b[4:], uint16(e.Host))
	b[6] = byte(e.Severity)
	le.PutUint64(b[8:], e.Seq)
	le.PutUint64(b[16:], uint64(e.Time.UnixNano()))
	copy(b[24:40], e.VM[:])
	le.PutUint16(b[40:], uint16(e.Subject))
	putString(b[48:72], e.Kind)
	putString(b[72:248], e.Message)
	sealRecord(b[:eventLen])
}

func decodeEvent(b []byte) (Event, bool) {
	r := b[:eventLen]
	if !bytes.Equal(r[0:4], eventMagic) || !recordOK(r) {
		return Event{}, false // empty, or torn by an interrupted write: skipped
	}
	e := Event{Host: int(le.Uint16(r[4:])), Severity: Severity(r[6]), Seq: le.Uint64(r[8:]),
		Time: time.Unix(0, int64(le.Uint64(r[16:]))), Subject: int(le.Uint16(r[40:])),
		Kind: getString(r[48:72]), Message: getString(r[72:248])}
	copy(e.VM[:], r[24:40])
	return e, true
}

// EventLog appends to one host's event ring. Only the slot's holder may write it.
type EventLog struct {
	lun  *LUN
	host int

	mu    sync.Mutex
	next  uint64 // sequence of the next event
	block []byte // current content of the block that next lands in
	bidx  int64  // which ring block `block` is, -1 if not loaded

	countMu sync.Mutex        // its own: a count must not wait for a write
	counts  map[string]uint64 // appends by kind, for metrics
}

// Counts returns how many events of each kind were appended (written or
// not) since the log was opened.
func (el *EventLog) Counts() map[string]uint64 {
	el.countMu.Lock()
	defer el.countMu.Unlock()
	return maps.Clone(el.counts)
}

// EventLog opens host's event ring for appending, continuing after the
// highest sequence found on disk.
func (l *LUN) EventLog(ctx context.Context, host int) (*EventLog, error) {
	if err := l.hdr.Geometry.checkHost(l.Path(), host); err != nil {
		return nil, err
	}
	evs, err := l.readRing(ctx, host)
	if err != nil {
		return nil, err
	}
	el := &EventLog{lun: l, host: host, next: 1, bidx: -1}
	for _, e := range evs {
		if e.Seq >= el.next {
			el.next = e.Seq + 1
		}
	}
	return el, nil
}

func (l *LUN) readRing(ctx context.Context, host int) ([]Event, error) {
	g := l.hdr.Geometry
	b, err := l.readEvents(ctx, host, g.eventBase(host)*BlockSize, g.EventBlocks*BlockSize)
	if err != nil {
		return nil, fmt.Errorf("read event ring of host %d: %w", host, err)
	}
	var evs []Event
	for off := 0; off < len(b); off += eventLen {
		if e, ok := decodeEvent(b[off:]); ok && e.Host == host {
			evs = append(evs, e)
		}
	}
	return evs, nil
}

// Append writes e (Host, Seq and a zero Time are filled in) and returns it.
func (el *EventLog) Append(ctx context.Context, e Event) (Event, error) {
	el.countMu.Lock()
	if el.counts == nil {
		el.counts = map[string]uint64{}
	}
	el.counts[e.Kind]++
	el.countMu.Unlock()
	el.mu.Lock()
	defer el.mu.Unlock()
	g := el.lun.hdr.Geometry
	e.Host, e.Seq = el.host, el.next
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	pos := int64((e.Seq - 1) % uint64(g.EventBlocks*eventsPerBlock))
	bidx := pos / eventsPerBlock
	addr := (g.eventBase(el.host) + bidx) * BlockSize
	if el.bidx != bidx {
		b, err := el.lun.readEvents(ctx, el.host, addr, BlockSize)
		if err != nil {
			return e, fmt.Errorf("append event: %w", err)
		}
		el.block, el.bidx = b, bidx
	}
	nb := bytes.Clone(el.block)
	e.encodeInto(nb[(pos%eventsPerBlock)*eventLen:])
	if _, err := el.lun.write(ctx, addr, nb); err != nil {
		return e, fmt.Errorf("append event %q: %w", e.Kind, err)
	}
	el.block = nb
	el.next++
	return e, nil
}

// ReadEvents returns every event of every host's ring newer than since (zero:
// all), ordered by time, then host, then sequence.
func (l *LUN) ReadEvents(ctx context.Context, since time.Time) ([]Event, error) {
	var all []Event
	for h := 1; h <= l.hdr.Geometry.MaxHosts; h++ {
		evs, err := l.readRing(ctx, h)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			if since.IsZero() || e.Time.After(since) {
				all = append(all, e)
			}
		}
	}
	slices.SortFunc(all, func(a, b Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		if a.Host != b.Host {
			return a.Host - b.Host
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	return all, nil
}

// readEvents reads n bytes of host's event ring at off. Of a set it merges
// the members entry by entry: the valid event of the highest sequence any
// member holds there, else a damaged entry (for CheckEvents), else blank.
// Appending writes the merged block back, which catches up a member that
// missed writes.
func (l *lunSet) readEvents(ctx context.Context, host int, off int64, n int) ([]byte, error) {
	bufs, err := l.readEach(ctx, false, off, n)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, b := range bufs {
		if b == nil {
			continue
		}
		if out == nil {
			out = b
			continue
		}
		for p := 0; p < n; p += eventLen {
			cur, have := out[p:p+eventLen], b[p:p+eventLen]
			ec, okc := decodeEvent(cur)
			eh, okh := decodeEvent(have)
			okc, okh = okc && ec.Host == host, okh && eh.Host == host
			if (okh && (!okc || eh.Seq > ec.Seq)) || (!okc && !okh && allZero(cur)) {
				copy(cur, have)
			}
		}
	}
	return out, nil
}

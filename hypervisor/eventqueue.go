package hypervisor

import "sync"

// eventQueue is one subscription's bounded buffer between libvirt's event
// loop (the producer, which must never block: a blocked callback stalls every
// libvirt event and keepalive of the process) and the consumer.
//
// When the buffer is full, push drops the event and raises the overflow
// flag; from then on every event is dropped until the consumer has drained
// the buffer, at which point pop returns a resync marker instead. The
// consumer re-lists on the marker, and the listing is newer than every
// dropped event, so nothing is lost silently.
type eventQueue struct {
	mu       sync.Mutex
	buf      []Event // buf[head:] are queued
	head     int
	limit    int
	overflow bool
	notify   chan struct{}
}

func newEventQueue(limit int) *eventQueue {
	return &eventQueue{limit: limit, notify: make(chan struct{}, 1)}
}

// push queues ev, or drops it and marks the overflow. It never blocks.
func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	switch {
	case q.overflow:
	case len(q.buf)-q.head >= q.limit:
		q.overflow = true
	default:
		if q.head > 0 && len(q.buf) == cap(q.buf) {
			// Reuse the consumed front instead of growing.
			n := copy(q.buf, q.buf[q.head:])
			clear(q.buf[n:])
			q.buf = q.buf[:n]
			q.head = 0
		}
		q.buf = append(q.buf, ev)
	}
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// pop returns the next event: queued events first, then, if events were
// dropped, one resync marker. ok is false when there is nothing.
func (q *eventQueue) pop() (ev Event, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head < len(q.buf) {
		ev = q.buf[q.head]
		q.buf[q.head] = Event{}
		q.head++
		if q.head == len(q.buf) {
			q.buf, q.head = q.buf[:0], 0
		}
		return ev, true
	}
	if q.overflow {
		q.overflow = false
		return Event{Kind: EventResync, Detail: "overflow"}, true
	}
	return Event{}, false
}

// overflowed reports whether events are being dropped right now.
func (q *eventQueue) overflowed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.overflow
}

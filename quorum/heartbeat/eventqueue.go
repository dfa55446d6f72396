package heartbeat

import (
	"context"
	"sync"
)

// DefaultEventQueueCapacity is how many events an EventQueue holds before it
// sheds informational ones: far more than one incident emits, few enough
// that a flood (a network lease renewed every cycle while the LUN is gone)
// stays small.
const DefaultEventQueueCapacity = 64

// EventQueue carries the loop's events (Config.OnEvent is its Push) to a
// writer that may block, such as the LUN's event ring, where one event can
// take a read and a write of up to io_timeout each. Push never waits: the
// heartbeat must not be late because storage is slow to take an event.
//
// The queue is bounded. When it is full, Push drops the oldest informational
// event (see quorum.Event.Verdict) to make room, and counts it; a new
// informational event that finds only verdicts queued is dropped itself.
// A verdict is never dropped: it goes in even past the capacity (verdicts
// are a few per incident, so this cannot grow without bound).
type EventQueue struct {
	deliver  func(Event)
	capacity int
	ready    chan struct{} // one token: something was pushed

	mu      sync.Mutex
	queue   []Event
	dropped uint64
}

// NewEventQueue returns a queue that hands each event to deliver, in order,
// from Run's goroutine. capacity 0: DefaultEventQueueCapacity.
func NewEventQueue(capacity int, deliver func(Event)) *EventQueue {
	if capacity <= 0 {
		capacity = DefaultEventQueueCapacity
	}
	return &EventQueue{deliver: deliver, capacity: capacity, ready: make(chan struct{}, 1)}
}

// Push queues e without waiting.
func (q *EventQueue) Push(e Event) {
	q.mu.Lock()
	if len(q.queue) >= q.capacity {
		q.shedLocked(e)
	} else {
		q.queue = append(q.queue, e)
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// shedLocked makes room for e in a full queue, or drops e.
func (q *EventQueue) shedLocked(e Event) {
	for i, old := range q.queue {
		if !old.Verdict() {
			q.queue = append(q.queue[:i], q.queue[i+1:]...)
			q.queue = append(q.queue, e)
			q.dropped++
			return
		}
	}
	if !e.Verdict() {
		q.dropped++
		return
	}
	q.queue = append(q.queue, e)
}

// Run delivers queued events until ctx ends. Then it delivers the verdicts
// still queued, which are few, and drops (and counts) the rest: a daemon
// that stops must not wait on a slow LUN for informational events.
func (q *EventQueue) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			q.flushVerdicts()
			return
		case <-q.ready:
		}
		for ctx.Err() == nil {
			e, ok := q.pop()
			if !ok {
				break
			}
			q.deliver(e)
		}
	}
}

func (q *EventQueue) flushVerdicts() {
	for {
		e, ok := q.pop()
		if !ok {
			return
		}
		if !e.Verdict() {
			q.mu.Lock()
			q.dropped++
			q.mu.Unlock()
			continue
		}
		q.deliver(e)
	}
}

func (q *EventQueue) pop() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return Event{}, false
	}
	e := q.queue[0]
	q.queue[0] = Event{}
	q.queue = q.queue[1:]
	return e, true
}

// Dropped is how many events were dropped: the queue was full, or they
// were informational and still queued when Run ended.
func (q *EventQueue) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// Len is how many events wait to be delivered.
func (q *EventQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

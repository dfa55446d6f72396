package heartbeat

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func kinds(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

// TestEventQueueShedsInformationalFirst: a full queue drops its oldest
// informational event for a new one, drops a new informational event when
// only verdicts are queued, counts each drop, and takes every verdict even
// past its capacity.
func TestEventQueueShedsInformationalFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []Event
		q := NewEventQueue(3, func(e Event) { mu.Lock(); got = append(got, e); mu.Unlock() })
		info := func(n string) Event { return Event{Kind: "network-lease", Message: n} }
		dead := func(n string) Event { return Event{Kind: "declared-dead", Message: n} }
		steps := []struct {
			push    Event
			queued  []string // messages queued after the push
			dropped uint64
		}{
			{info("a"), []string{"a"}, 0},
			{dead("V1"), []string{"a", "V1"}, 0},
			{info("b"), []string{"a", "V1", "b"}, 0},
			{dead("V2"), []string{"V1", "b", "V2"}, 1}, // full: the oldest informational goes
			{info("c"), []string{"V1", "V2", "c"}, 2},
			{dead("V3"), []string{"V1", "V2", "V3"}, 3},
			{info("d"), []string{"V1", "V2", "V3"}, 4},        // only verdicts queued: d itself goes
			{dead("V4"), []string{"V1", "V2", "V3", "V4"}, 4}, // a verdict is never dropped
		}
		for _, s := range steps {
			q.Push(s.push)
			q.mu.Lock()
			var queued []string
			for _, e := range q.queue {
				queued = append(queued, e.Message)
			}
			q.mu.Unlock()
			if !slices.Equal(queued, s.queued) || q.Dropped() != s.dropped {
				t.Fatalf("after pushing %s: queued %v, %d dropped; want %v, %d dropped", s.push.Message, queued, q.Dropped(), s.queued, s.dropped)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { q.Run(ctx); close(done) }()
		synctest.Wait()
		cancel()
		<-done
		var msgs []string
		for _, e := range got {
			msgs = append(msgs, e.Message)
		}
		if want := []string{"V1", "V2", "V3", "V4"}; !slices.Equal(msgs, want) {
			t.Errorf("delivered %v, want %v in order", msgs, want)
		}
		if q.Len() != 0 {
			t.Errorf("%d events still queued after Run delivered them", q.Len())
		}
	})
}

// TestEventQueueDeliversVerdictsWhenStopped: when Run ends, the verdicts
// still queued are delivered; the informational events are dropped and
// counted.
func TestEventQueueDeliversVerdictsWhenStopped(t *testing.T) {
	var got []Event
	q := NewEventQueue(0, func(e Event) { got = append(got, e) })
	q.Push(Event{Kind: "network-lease"})
	q.Push(Event{Kind: "self-fence"})
	q.Push(Event{Kind: "test-message"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.Run(ctx)
	if k := kinds(got); !slices.Equal(k, []string{"self-fence"}) || q.Dropped() != 2 || q.Len() != 0 {
		t.Errorf("after Run on an ended ctx: delivered %v, %d dropped, %d queued; want [self-fence], 2 dropped, none queued", k, q.Dropped(), q.Len())
	}
}

// TestHeartbeatOnTimeWhileEventWriteHangs: host 1 declares host 3 dead
// while every event write (the LUN's event ring) hangs for 2 × io_timeout.
// Through an EventQueue, as the daemon wires it, every renewal stays within
// R of the one before and the renewal that publishes the verdict runs at
// once; the event is written after its hang. Delivered straight from the
// loop, the same write delays the heartbeat by the whole hang: that case
// shows the test can see a late heartbeat.
func TestHeartbeatOnTimeWhileEventWriteHangs(t *testing.T) {
	timings := quorumTimings(testTimings())
	r, hang := timings.Renew, 2*timings.IOTimeout
	for _, queued := range []bool{true, false} {
		name := map[bool]string{true: "through the queue", false: "straight from the loop"}[queued]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var emitted, written []time.Duration // when declared-dead was emitted and written
				var epoch = time.Now()
				write := func(e Event) {
					time.Sleep(hang) // the event ring's read and write, each at io_timeout
					if e.Kind == "declared-dead" {
						mu.Lock()
						written = append(written, time.Since(epoch))
						mu.Unlock()
					}
				}
				q := NewEventQueue(0, write)
				onEvent := func(e Event) {
					if e.Kind == "declared-dead" {
						mu.Lock()
						emitted = append(emitted, time.Since(epoch))
						mu.Unlock()
					}
					if queued {
						q.Push(e)
					} else {
						write(e)
					}
				}
				qctx, qcancel := context.WithCancel(context.Background())
				qdone := make(chan struct{})
				go func() { q.Run(qctx); close(qdone) }()

				last := 10*r + time.Millisecond
				h := startFakeWith(t, 0, map[int]peer{2: {first: time.Millisecond}, 3: {first: time.Millisecond, last: last}}, onEvent)
				time.Sleep(last + timings.Dead + 2*r + hang)
				synctest.Wait()
				h.stop(t)
				qcancel()
				<-qdone

				h.slots.mu.Lock()
				renews := slices.Clone(h.slots.renews)
				h.slots.mu.Unlock()
				var worst time.Duration
				for i := 1; i < len(renews); i++ {
					worst = max(worst, renews[i]-renews[i-1])
				}
				mu.Lock()
				defer mu.Unlock()
				if len(emitted) != 1 {
					t.Fatalf("host 3 declared dead %d times, want once", len(emitted))
				}
				publish := renews[slices.IndexFunc(renews, func(at time.Duration) bool { return at >= emitted[0] })]
				t.Logf("declared dead at %v, published by the renewal at %v, event written at %v; longest gap between renewals %v",
					emitted[0], publish, written, worst)
				if !queued {
					if worst < hang {
						t.Errorf("a synchronous event write that hangs %v delayed no renewal by it (longest gap %v): the test cannot see a late heartbeat", hang, worst)
					}
					return
				}
				if worst > r {
					t.Errorf("a renewal came %v after the one before, more than R = %v, while an event write hung", worst, r)
				}
				if publish != emitted[0] {
					t.Errorf("the verdict declared at %v was published at %v, want at once", emitted[0], publish)
				}
				if len(written) != 1 || written[0] != emitted[0]+hang {
					t.Errorf("the declared-dead event was written at %v, want once at %v (after its hang)", written, emitted[0]+hang)
				}
				if q.Dropped() != 0 {
					t.Errorf("%d events dropped from a queue that never filled", q.Dropped())
				}
			})
		})
	}
}

package hypervisor

import (
	"fmt"
	"strings"
	"testing"
)

// queueScript runs a script of queue operations and returns what pop saw:
// "+name" pushes an event for domain name, "-" pops once. pop results are
// the domain name, "RESYNC(detail)" for a marker, or "EMPTY".
func queueScript(limit int, script string) string {
	q := newEventQueue(limit)
	var out []string
	for _, op := range strings.Fields(script) {
		switch {
		case op == "-":
			ev, ok := q.pop()
			switch {
			case !ok:
				out = append(out, "EMPTY")
			case ev.Kind == EventResync:
				out = append(out, fmt.Sprintf("RESYNC(%s)", ev.Detail))
			default:
				out = append(out, ev.Domain)
			}
		case strings.HasPrefix(op, "+"):
			q.push(Event{Kind: EventStarted, Domain: op[1:]})
		default:
			panic("bad op " + op)
		}
	}
	return strings.Join(out, " ")
}

func TestEventQueue(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int
		script string
		want   string
	}{
		{"empty", 2, "-", "EMPTY"},
		{"fifo", 3, "+a +b +c - - - -", "a b c EMPTY"},
		{"interleaved", 2, "+a - +b +c - - -", "a b c EMPTY"},
		// Full: d and e are dropped; the marker comes after what was kept.
		{"overflow", 3, "+a +b +c +d +e - - - - -", "a b c RESYNC(overflow) EMPTY"},
		// While overflowing, room made by pops is not refilled: an event
		// accepted after a dropped one would reorder history.
		{"no refill before the marker", 2, "+a +b +c - +d - - -", "a b RESYNC(overflow) EMPTY"},
		// After the marker, events are queued again.
		{"recovers", 1, "+a +b - - +c - -", "a RESYNC(overflow) c EMPTY"},
		// One marker, however many were dropped.
		{"one marker", 1, "+a +b +c +d +e +f - - - -", "a RESYNC(overflow) EMPTY EMPTY"},
		// Many cycles through a small buffer reuse its front.
		{"wraps", 2, strings.Repeat("+x +y - - ", 50) + "-", strings.Repeat("x y ", 50) + "EMPTY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := queueScript(tc.limit, tc.script); got != tc.want {
				t.Errorf("limit %d, %q:\n got %s\nwant %s", tc.limit, tc.script, got, tc.want)
			}
		})
	}
}

// push is called on libvirt's event loop: it must return at once, full or not.
func TestEventQueuePushNeverBlocks(t *testing.T) {
	q := newEventQueue(4)
	for i := range 10000 {
		q.push(Event{Kind: EventDefined, Domain: fmt.Sprint(i)})
	}
	if !q.overflowed() {
		t.Fatal("10000 pushes into a queue of 4 did not overflow")
	}
	if n := len(q.buf) - q.head; n != 4 {
		t.Errorf("queue holds %d events, want its limit 4", n)
	}
	// One wake-up is pending, however many pushes there were.
	if len(q.notify) != 1 {
		t.Errorf("notify holds %d wake-ups, want 1", len(q.notify))
	}
}

func TestEventQueueDoesNotGrow(t *testing.T) {
	// A consumer that keeps a few events queued at all times exercises the
	// reuse of the consumed front.
	q := newEventQueue(8)
	next, want := 0, 0
	pop := func() {
		ev, ok := q.pop()
		if !ok || ev.Domain != fmt.Sprint(want) {
			t.Fatalf("pop = %v %v, want event %d", ev, ok, want)
		}
		want++
	}
	for range 1000 {
		for range 5 {
			q.push(Event{Domain: fmt.Sprint(next)})
			next++
		}
		for range 3 {
			pop()
		}
		for range 3 {
			q.push(Event{Domain: fmt.Sprint(next)})
			next++
		}
		for range 5 {
			pop()
		}
	}
	if q.overflowed() {
		t.Fatal("overflowed below the limit")
	}
	if c := cap(q.buf); c > 16 {
		t.Errorf("buffer capacity grew to %d for a limit of 8", c)
	}
}

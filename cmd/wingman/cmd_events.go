package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/spf13/pflag"

	"github.com/wingmanha/wingman/cmd/api"
)

// timelineGap separates two failover timelines: events closer than this
// belong to the same incident and share a relative time column.
const timelineGap = time.Minute

// followOverlap is how far back each poll of events --follow reaches before
// the newest event it has seen: hosts write their events with their own
// clocks, so a late event may carry an older time. Duplicates are dropped
// by (host, seq).
const followOverlap = 30 * time.Second

var eventsCmd = command{
	name:    "events",
	summary: "show the cluster's event log, grouped into failover timelines",
	help: `Prints the events of every host in time order. Events less than a minute
apart form one timeline (a failover: suspect, fence, lease taken, restart)
with a column of the time since its first event. Times are the writing
host's clock.

--since takes a duration back from the daemon's clock (10m, 2h) or an
RFC 3339 time; --limit keeps the newest N. --follow keeps polling every
second and prints each new event once, until interrupted; it starts after
the newest event, or, with --since or --limit, prints those first. With
--json it prints one JSON object a line. An event that reaches the LUN
late with an older time (another host's clock) is printed when it comes.`,
	nargs: [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		follow := fs.BoolP("follow", "f", false, "keep printing new events")
		since := fs.String("since", "", "only events after `WHEN`: a duration back (30m) or an RFC 3339 time")
		limit := fs.Int("limit", 0, "at most the newest `N` events (0: all)")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, _ []string) error {
			if *limit < 0 {
				return usagef("--limit %d: use 0 (all) or more", *limit)
			}
			from, err := sinceTime(ctx, c, *since)
			if err != nil {
				return err
			}
			if *follow {
				return followEvents(ctx, s, c, from, *limit, *since != "" || *limit > 0, *asJSON)
			}
			evs, err := c.Events(ctx, from, *limit)
			if err != nil {
				return daemonErr(err, "", "")
			}
			sortEvents(evs)
			p := &eventPrinter{w: s.out, json: *asJSON}
			if err := p.resolveNames(ctx, c, evs); err != nil {
				return err
			}
			if *asJSON {
				if evs == nil {
					evs = []api.Event{}
				}
				return writeJSON(s.out, evs)
			}
			if len(evs) == 0 {
				fmt.Fprintln(s.errOut, "no events")
			}
			p.print(evs)
			return nil
		})
	},
}

// followEvents prints the events after from (the newest limit of them;
// none unless show: following starts after the newest event), then every
// new event as it comes, until ctx ends.
func followEvents(ctx context.Context, s stdio, c *api.Client, from time.Time, limit int, show, asJSON bool) error {
	// Every event there is now is known, printed or not: a later poll
	// that reaches back over it must not print it.
	evs, err := c.Events(ctx, from, 0)
	if err != nil {
		return daemonErr(err, "", "")
	}
	sortEvents(evs)
	f := &eventFollower{seen: map[eventKey]time.Time{}, newest: from}
	f.fresh(evs)
	if !show {
		evs = nil
	}
	if limit > 0 && len(evs) > limit {
		evs = evs[len(evs)-limit:]
	}
	p := &eventPrinter{w: s.out, json: asJSON}
	for {
		if err := p.resolveNames(ctx, c, evs); err != nil {
			return err
		}
		p.print(evs)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pollEvery):
		}
		evs, err = c.Events(ctx, f.next(), 0)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return daemonErr(err, "", "")
		}
		sortEvents(evs)
		evs = f.fresh(evs)
	}
}

// eventKey names one event: its host and its sequence number there.
type eventKey struct {
	host int
	seq  uint64
}

// eventFollower remembers the events --follow knows (printed, or there
// before it began), so that overlapping polls print each new event once.
type eventFollower struct {
	seen   map[eventKey]time.Time // event -> its time
	newest time.Time
}

// fresh returns the events of evs (sorted) not known before, and knows them.
func (f *eventFollower) fresh(evs []api.Event) []api.Event {
	var out []api.Event
	for _, e := range evs {
		k := eventKey{e.Host, e.Seq}
		if _, ok := f.seen[k]; ok {
			continue
		}
		f.seen[k] = e.Time
		out = append(out, e)
		if e.Time.After(f.newest) {
			f.newest = e.Time
		}
	}
	for k, t := range f.seen {
		if t.Before(f.newest.Add(-2 * followOverlap)) {
			delete(f.seen, k) // older than any later poll reaches
		}
	}
	return out
}

// next is where the next poll starts: followOverlap before the newest
// event known, for a late event that carries an older time.
func (f *eventFollower) next() time.Time {
	if f.newest.IsZero() {
		return time.Time{}
	}
	return f.newest.Add(-followOverlap)
}

// sinceTime parses --since: empty, a duration back from the daemon's clock
// (not ours: the CLI may run elsewhere), or an RFC 3339 time.
func sinceTime(ctx context.Context, c *api.Client, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, usagef("--since %q: give a duration back such as 30m or 2h, or an RFC 3339 time such as 2025-03-01T10:00:00Z", v)
	}
	st, err := c.Status(ctx)
	if err != nil {
		return time.Time{}, daemonErr(err, "", "")
	}
	return st.Now.Add(-d), nil
}

func sortEvents(evs []api.Event) {
	sort.SliceStable(evs, func(i, j int) bool {
		if !evs[i].Time.Equal(evs[j].Time) {
			return evs[i].Time.Before(evs[j].Time)
		}
		if evs[i].Host != evs[j].Host {
			return evs[i].Host < evs[j].Host
		}
		return evs[i].Seq < evs[j].Seq
	})
}

// eventPrinter prints events as timelines; it keeps the current timeline
// across calls so --follow continues it.
type eventPrinter struct {
	w     io.Writer
	json  bool
	names map[int]string // host id -> name, for events that lack one and for subjects
	start time.Time      // first event of the current timeline
	last  time.Time
}

// resolveNames fetches the host list once if an event names a host only by id.
func (p *eventPrinter) resolveNames(ctx context.Context, c *api.Client, evs []api.Event) error {
	if p.names != nil || p.json {
		return nil
	}
	need := false
	for _, e := range evs {
		need = need || e.HostName == "" || e.Subject != 0
	}
	if !need {
		return nil
	}
	hosts, err := c.Hosts(ctx)
	if err != nil {
		return daemonErr(err, "", "")
	}
	p.names = map[int]string{}
	for _, h := range hosts {
		p.names[h.ID] = h.Name
	}
	return nil
}

func (p *eventPrinter) host(id int, name string) string {
	if name != "" {
		return name
	}
	if n := p.names[id]; n != "" {
		return n
	}
	return fmt.Sprintf("host%d", id)
}

func (p *eventPrinter) print(evs []api.Event) {
	for _, e := range evs {
		if p.json {
			b, _ := json.Marshal(e)
			fmt.Fprintf(p.w, "%s\n", b)
			continue
		}
		if p.start.IsZero() || e.Time.Sub(p.last) > timelineGap {
			if !p.start.IsZero() {
				fmt.Fprintln(p.w)
			}
			p.start = e.Time
			fmt.Fprintf(p.w, "--- %s\n", e.Time.Local().Format("2006-01-02 15:04:05 MST"))
			fmt.Fprintf(p.w, "%-12s  %-8s  %-10s  %-8s  %-18s  %-12s  %s\n", "TIME", "+REL", "HOST", "SEVERITY", "KIND", "VM", "MESSAGE")
		}
		if e.Time.After(p.last) {
			p.last = e.Time
		}
		msg := e.Message
		if e.Subject != 0 {
			msg += " [" + p.host(e.Subject, "") + "]"
		}
		fmt.Fprintf(p.w, "%-12s  %-8s  %-10s  %-8s  %-18s  %-12s  %s\n", e.Time.Local().Format("15:04:05.000"),
			"+"+humanDuration(e.Time.Sub(p.start)), p.host(e.Host, e.HostName), e.Severity, e.Kind, orDash(e.VM), msg)
	}
}

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
RFC 3339 time. --follow keeps polling every second and prints new events
until interrupted; with --json it prints one JSON object a line.`,
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
			evs, err := c.Events(ctx, from, *limit)
			if err != nil {
				return daemonErr(err, "", "")
			}
			sortEvents(evs)
			p := &eventPrinter{w: s.out, json: *asJSON, follow: *follow}
			if err := p.resolveNames(ctx, c, evs); err != nil {
				return err
			}
			if !*follow {
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
			}
			seen := map[[2]uint64]time.Time{} // (host, seq) -> event time
			newest := from
			for {
				var fresh []api.Event
				for _, e := range evs {
					k := [2]uint64{uint64(e.Host), e.Seq}
					if _, ok := seen[k]; !ok {
						seen[k] = e.Time
						fresh = append(fresh, e)
					}
					if e.Time.After(newest) {
						newest = e.Time
					}
				}
				for k, t := range seen {
					if t.Before(newest.Add(-2 * followOverlap)) {
						delete(seen, k) // older than any later poll reaches
					}
				}
				if err := p.resolveNames(ctx, c, fresh); err != nil {
					return err
				}
				p.print(fresh)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(pollEvery):
				}
				q := time.Time{}
				if !newest.IsZero() {
					q = newest.Add(-followOverlap)
				}
				evs, err = c.Events(ctx, q, 0)
				if ctx.Err() != nil {
					return nil
				}
				if err != nil {
					return daemonErr(err, "", "")
				}
				sortEvents(evs)
			}
		})
	},
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
	w      io.Writer
	json   bool
	follow bool
	names  map[int]string // host id -> name, for events that lack one and for subjects
	start  time.Time      // first event of the current timeline
	last   time.Time
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

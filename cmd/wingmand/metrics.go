package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// eventCounter passes events to the LUN's event log and counts them by
// kind, for the metrics.
type eventCounter struct {
	log *storage.EventLog
	mu  sync.Mutex
	n   map[string]uint64
}

func (c *eventCounter) Append(ctx context.Context, e storage.Event) (storage.Event, error) {
	c.count(e.Kind)
	return c.log.Append(ctx, e)
}

func (c *eventCounter) count(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]uint64{}
	}
	c.n[kind]++
}

func (c *eventCounter) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// metricsHandler serves Prometheus's text format: host states, quorum,
// heartbeat latency, and counts of failovers, migrations and fences.
func (d *Daemon) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		gauge := func(name, help string) { fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name) }
		counter := func(name, help string) { fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name) }
		bool01 := func(v bool) int {
			if v {
				return 1
			}
			return 0
		}
		dec := d.decision()
		in := d.loop.Input()
		gauge("wingman_quorate", "1 if this host's partition is quorate")
		fmt.Fprintf(&b, "wingman_quorate %d\n", bool01(dec.Quorate))
		gauge("wingman_may_run_vms", "1 if this host may run protected VMs (fresh heartbeat or network lease)")
		fmt.Fprintf(&b, "wingman_may_run_vms %d\n", bool01(dec.MayRunVMs))
		gauge("wingman_coordinator", "host id of the coordinator (0: none)")
		fmt.Fprintf(&b, "wingman_coordinator %d\n", dec.Coordinator)
		gauge("wingman_host_state", "1 for the state each host is in, as this host computes it")
		for _, h := range dec.Hosts {
			fmt.Fprintf(&b, "wingman_host_state{host=%q,state=%q} 1\n", h.Name, h.State.String())
		}
		last, worst := d.latency()
		gauge("wingman_heartbeat_renew_seconds", "duration of the last heartbeat renewal (read all slots, write own)")
		fmt.Fprintf(&b, "wingman_heartbeat_renew_seconds %g\n", last.Seconds())
		gauge("wingman_heartbeat_renew_max_seconds", "longest heartbeat renewal in the last minute")
		fmt.Fprintf(&b, "wingman_heartbeat_renew_max_seconds %g\n", worst.Seconds())
		gauge("wingman_heartbeat_age_seconds", "time since the last completed heartbeat write was issued")
		fmt.Fprintf(&b, "wingman_heartbeat_age_seconds %g\n", time.Duration(in.Now-in.LastWrite).Seconds())
		counter("wingman_events_total", "events this host wrote, by kind (started, declared-dead, migration-completed, ...)")
		counts := d.counter.snapshot()
		kinds := make([]string, 0, len(counts))
		for k := range counts {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			fmt.Fprintf(&b, "wingman_events_total{kind=%q} %d\n", k, counts[k])
		}
		io := d.lun.IOStats()
		counter("wingman_lun_reads_total", "I/Os this host issued to read the heartbeat LUN (one or more blocks each)")
		fmt.Fprintf(&b, "wingman_lun_reads_total %d\n", io.Reads)
		counter("wingman_lun_writes_total", "I/Os this host issued to write the heartbeat LUN")
		fmt.Fprintf(&b, "wingman_lun_writes_total %d\n", io.Writes)
		counter("wingman_events_dropped_total", "informational heartbeat events dropped because the LUN took events slower than they came")
		fmt.Fprintf(&b, "wingman_events_dropped_total %d\n", d.loopEvs.Dropped())
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, b.String())
	})
}

// serveMetrics listens on addr (host:port) for Prometheus until ctx ends.
func (d *Daemon) serveMetrics(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", d.metricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go srv.Serve(l)
	return nil
}

package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
)

// metricsHandler serves Prometheus's text format: host states, quorum,
// heartbeat latency, and counts of failovers, migrations and fences.
func (d apiServer) metricsHandler() http.Handler {
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
		last, worst := d.renewLatency.Get()
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
	mux.Handle("/metrics", apiServer{d}.metricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go srv.Serve(l)
	return nil
}

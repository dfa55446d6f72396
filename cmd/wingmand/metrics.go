package main

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum/heartbeat"
)

// metricsHandler serves Prometheus's text format: host states, quorum,
// heartbeat latency, and counts of failovers, migrations and fences.
func (d apiServer) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := heartbeat.Metrics{Decision: d.decision(), Input: d.loop.Input(), Events: d.events.Counts(),
			LUN: d.lun.IOStats(), EventsDropped: d.loopEvs.Dropped()}
		m.Last, m.Worst = d.renewLatency.Get()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		m.WriteText(w)
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
	go api.Serve(ctx, l, mux)
	return nil
}

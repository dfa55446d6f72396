package heartbeat

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

// Metrics is what this host exposes to Prometheus: its decision, its
// heartbeat's freshness and latency, and the events it wrote by kind.
type Metrics struct {
	Decision quorum.Decision
	Input    quorum.Input
	// Last and Worst are RenewLatency.Get's.
	Last, Worst time.Duration
	Events      map[string]uint64 // by kind
	// LUN is the I/O this host issued to the heartbeat LUN (LUN.IOStats).
	LUN storage.IOStats
	// EventsDropped is EventQueue.Dropped of the loop's events.
	EventsDropped uint64
}

// WriteText writes m in Prometheus's text format (version 0.0.4).
func (m Metrics) WriteText(w io.Writer) error {
	var b strings.Builder
	gauge := func(name, help string) { fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name) }
	bool01 := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	dec, in := m.Decision, m.Input
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
	gauge("wingman_heartbeat_renew_seconds", "duration of the last heartbeat renewal (read all slots, write own)")
	fmt.Fprintf(&b, "wingman_heartbeat_renew_seconds %g\n", m.Last.Seconds())
	gauge("wingman_heartbeat_renew_max_seconds", "longest heartbeat renewal in the last minute")
	fmt.Fprintf(&b, "wingman_heartbeat_renew_max_seconds %g\n", m.Worst.Seconds())
	gauge("wingman_heartbeat_age_seconds", "time since the last completed heartbeat write was issued")
	fmt.Fprintf(&b, "wingman_heartbeat_age_seconds %g\n", time.Duration(in.Now-in.LastWrite).Seconds())
	counter := func(name, help string) { fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name) }
	counter("wingman_events_total", "events this host wrote, by kind (started, declared-dead, migration-completed, ...)")
	for _, k := range slices.Sorted(maps.Keys(m.Events)) {
		fmt.Fprintf(&b, "wingman_events_total{kind=%q} %d\n", k, m.Events[k])
	}
	counter("wingman_lun_reads_total", "I/Os this host issued to read the heartbeat LUN (one or more blocks each)")
	fmt.Fprintf(&b, "wingman_lun_reads_total %d\n", m.LUN.Reads)
	counter("wingman_lun_writes_total", "I/Os this host issued to write the heartbeat LUN")
	fmt.Fprintf(&b, "wingman_lun_writes_total %d\n", m.LUN.Writes)
	counter("wingman_events_dropped_total", "informational heartbeat events dropped because the LUN took events slower than they came")
	fmt.Fprintf(&b, "wingman_events_dropped_total %d\n", m.EventsDropped)
	_, err := io.WriteString(w, b.String())
	return err
}

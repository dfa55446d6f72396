// Package metrics is wingmand's Prometheus exposition, the one package of
// the module that imports prometheus/client_golang: the build, the process
// and the Go runtime; the daemon's state read at each scrape (quorum, host
// and VM states, heartbeat freshness, LUN I/O, events); and the durations
// observed as they happen (failovers, migrations, LUN I/O latency) and the
// notifications delivered, through hooks whose signatures name no
// Prometheus type (vm.Observer, storage.OpenOptions.ObserveIO, Notified).
//
// It must never decide anything nor do I/O of its own: a scrape reads what
// the Snapshot function returns.
package metrics

import (
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

// Snapshot is the daemon's state at a scrape.
type Snapshot struct {
	Decision quorum.Decision
	Input    quorum.Input
	// Renew and RenewMax are the last heartbeat renewal's duration and the
	// longest of the last minute (heartbeat.RenewLatency).
	Renew, RenewMax time.Duration
	Events          map[string]uint64 // events this host wrote, by kind
	EventsDropped   uint64            // heartbeat events dropped (heartbeat.EventQueue)
	LUN             storage.IOStats
	VMs             []VMState
	Quarantined     quorum.Set // hosts quarantined for flapping (vm/quarantine)
}

// VMState is one protected VM's state as this host sees it.
type VMState struct {
	Name, UUID, State string
}

// Metrics holds the daemon's registry and the metrics observed between
// scrapes. Its methods are safe for concurrent use and never block.
type Metrics struct {
	reg           *prometheus.Registry
	failover      prometheus.Histogram
	migration     prometheus.Histogram
	downtime      prometheus.Histogram
	lunLatency    *prometheus.HistogramVec
	notifySent    *prometheus.CounterVec
	notifyFailed  *prometheus.CounterVec
	snapshot      func() Snapshot
	quorate       *prometheus.Desc
	mayRun        *prometheus.Desc
	coordinator   *prometheus.Desc
	hostState     *prometheus.Desc
	quarantined   *prometheus.Desc
	vmState       *prometheus.Desc
	renew         *prometheus.Desc
	renewMax      *prometheus.Desc
	heartbeatAge  *prometheus.Desc
	disarmed      *prometheus.Desc
	events        *prometheus.Desc
	eventsDropped *prometheus.Desc
	lunIOs        *prometheus.Desc
	lunErrors     *prometheus.Desc
}

// New returns the metrics of a daemon of version whose state snapshot
// returns at each scrape.
func New(version string, snapshot func() Snapshot) *Metrics {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("wingman_"+name, help, labels, nil)
	}
	m := &Metrics{reg: prometheus.NewRegistry(), snapshot: snapshot,
		failover: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wingman_failover_duration_seconds",
			Help:    "Time from the last heartbeat of a failed host to the start here of each of its VMs.",
			Buckets: []float64{1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600}}),
		migration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wingman_migration_duration_seconds",
			Help:    "Wall time of the live migrations from this host that completed.",
			Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800}}),
		downtime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wingman_migration_downtime_seconds",
			Help:    "Time the guest was paused at the end of each completed live migration from this host.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5}}),
		lunLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wingman_lun_io_duration_seconds",
			Help:    "Duration of each I/O to the heartbeat LUN, failed ones included (a timed-out one counts io_timeout).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15)}, []string{"op"}),
		notifySent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wingman_notifications_sent_total",
			Help: "Notifications this host delivered, by target and the target's kind (mail, webhook, exec)."}, []string{"target", "kind"}),
		notifyFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wingman_notifications_failed_total",
			Help: "Notification delivery attempts that failed, by target and the target's kind (mail, webhook, exec)."}, []string{"target", "kind"}),
		quorate:       desc("quorate", "1 if this host's partition is quorate."),
		mayRun:        desc("may_run_vms", "1 if this host may run protected VMs (fresh heartbeat or network lease)."),
		coordinator:   desc("coordinator_host_id", "Slot id of the coordinator (0: none)."),
		hostState:     desc("host_state", "1 for the state each host is in, as this host computes it.", "host", "state"),
		quarantined:   desc("host_quarantined", "1 for each host quarantined for flapping (it takes no new VM), 0 for the others.", "host"),
		vmState:       desc("vm_state", "1 for the state each protected VM is in, as this host sees it.", "vm", "uuid", "state"),
		renew:         desc("heartbeat_renew_seconds", "Duration of the last heartbeat renewal (read all slots, write own)."),
		renewMax:      desc("heartbeat_renew_max_seconds", "Longest heartbeat renewal in the last minute."),
		heartbeatAge:  desc("heartbeat_age_seconds", "Time since the last completed heartbeat write was issued."),
		disarmed:      desc("ha_disarmed", "Seconds until this host re-arms HA by itself (wingman ha disarm); 0 while armed."),
		events:        desc("events_total", "Events this host wrote, by kind (started, declared-dead, migration-completed, ...).", "kind"),
		eventsDropped: desc("events_dropped_total", "Informational heartbeat events dropped because the LUN took events slower than they came."),
		lunIOs:        desc("lun_io_operations_total", "I/Os this host issued to the heartbeat LUN (one or more blocks each), by op.", "op"),
		lunErrors:     desc("lun_io_errors_total", "I/Os to the heartbeat LUN that failed (error, timeout, canceled), by op.", "op"),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "wingman_build_info", Help: "1, labelled with the wingmand version and the Go version that built it.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}})
	build.Set(1)
	m.reg.MustRegister(build, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.failover, m.migration, m.downtime, m.lunLatency, m.notifySent, m.notifyFailed, stateCollector{m})
	return m
}

// Handler serves the registry in Prometheus's exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// FailedOver observes a failover start (vm.Observer).
func (m *Metrics) FailedOver(took time.Duration) { m.failover.Observe(took.Seconds()) }

// Migrated observes a completed live migration (vm.Observer).
func (m *Metrics) Migrated(wall, downtime time.Duration) {
	m.migration.Observe(wall.Seconds())
	m.downtime.Observe(downtime.Seconds())
}

// ObserveIO observes one LUN I/O (storage.OpenOptions.ObserveIO).
func (m *Metrics) ObserveIO(write bool, took time.Duration, _ error) {
	m.lunLatency.WithLabelValues(opName(write)).Observe(took.Seconds())
}

// Notified counts one delivery attempt to target (its configured name) of
// kind (mail, webhook, exec): sent when err is nil, failed otherwise.
func (m *Metrics) Notified(target, kind string, err error) {
	if err != nil {
		m.notifyFailed.WithLabelValues(target, kind).Inc()
		return
	}
	m.notifySent.WithLabelValues(target, kind).Inc()
}

func opName(write bool) string {
	if write {
		return "write"
	}
	return "read"
}

// stateCollector turns a Snapshot into metrics at each scrape.
type stateCollector struct{ m *Metrics }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	m := c.m
	for _, d := range []*prometheus.Desc{m.quorate, m.mayRun, m.coordinator, m.hostState, m.quarantined, m.vmState, m.renew, m.renewMax,
		m.heartbeatAge, m.disarmed, m.events, m.eventsDropped, m.lunIOs, m.lunErrors} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	m, s := c.m, c.m.snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(m.quorate, bool01(s.Decision.Quorate))
	gauge(m.mayRun, bool01(s.Decision.MayRunVMs))
	gauge(m.coordinator, float64(s.Decision.Coordinator))
	for _, h := range s.Decision.Hosts {
		gauge(m.hostState, 1, h.Name, h.State.String())
		gauge(m.quarantined, bool01(s.Quarantined.Has(h.ID)), h.Name)
	}
	for _, v := range s.VMs {
		gauge(m.vmState, 1, v.Name, v.UUID, v.State)
	}
	gauge(m.renew, s.Renew.Seconds())
	gauge(m.renewMax, s.RenewMax.Seconds())
	gauge(m.heartbeatAge, time.Duration(s.Input.Now-s.Input.LastWrite).Seconds())
	if dm := s.Input.Disarm; dm.Disarmed {
		gauge(m.disarmed, time.Duration(dm.Until-s.Input.Now).Seconds())
	} else {
		gauge(m.disarmed, 0)
	}
	for kind, n := range s.Events {
		counter(m.events, n, kind)
	}
	counter(m.eventsDropped, s.EventsDropped)
	counter(m.lunIOs, s.LUN.Reads, "read")
	counter(m.lunIOs, s.LUN.Writes, "write")
	counter(m.lunErrors, s.LUN.ReadErrors, "read")
	counter(m.lunErrors, s.LUN.WriteErrors, "write")
}

func bool01(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

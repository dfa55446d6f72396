package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/apiview"
	"github.com/wingmanha/wingman/cmd/internal/fenceconfig"
	"github.com/wingmanha/wingman/cmd/internal/forward"
	"github.com/wingmanha/wingman/cmd/internal/journallog"
	"github.com/wingmanha/wingman/cmd/internal/luns"
	"github.com/wingmanha/wingman/cmd/internal/metrics"
	"github.com/wingmanha/wingman/cmd/internal/systemd"
	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/quorum/fence"
	"github.com/wingmanha/wingman/quorum/gossip"
	"github.com/wingmanha/wingman/quorum/heartbeat"
	"github.com/wingmanha/wingman/quorum/isolation"
	"github.com/wingmanha/wingman/quorum/watchdog"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/drill"
	"github.com/wingmanha/wingman/vm/maintenance"
	"github.com/wingmanha/wingman/vm/notify"
	"github.com/wingmanha/wingman/vm/quarantine"
	"github.com/wingmanha/wingman/vm/settings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Daemon is one running wingmand.
type Daemon struct {
	cfg Config
	log *slog.Logger

	lock    *os.File
	lun     *storage.LUN
	members *luns.Health // each heartbeat LUN of a set of three
	hdr     storage.Header
	slot    *storage.Heartbeat
	events  *storage.EventLog
	hv      *hypervisor.Conn
	serf    *gossip.Agent
	vms     *vm.Manager
	loop    *heartbeat.Loop
	loopEvs *heartbeat.EventQueue // the loop's events, on their way to the LUN
	wd      watchdog.Watchdog
	wdNote  string
	guard   *watchdog.Guard
	fencer  *fence.ByName
	probe   *isolation.Prober // nil: no isolation address

	started  time.Time
	sdNotify func(state string) // systemd sd_notify

	decisions chan quorum.Decision
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	ops        *ops                // the API's operations, run on the host that must act
	metrics    *metrics.Metrics    // Prometheus: read at each scrape, observed by the LUN and the VM manager
	maint      *maintenance.Host   // maintenance, evacuation, rolling update, freeze
	drills     *drill.Runner       // drills and the disk checks of protect
	disks      *drill.DiskWatch    // the protected VMs' disks this host cannot reach
	notify     *notify.Service     // notifications: incidents (as coordinator) and warnings
	config     *settings.Service   // the cluster-wide keys: the LUN's values over wingman.toml's
	quarantine *quarantine.Service // flapping hosts: counted as coordinator, given no VM

	mu           sync.Mutex
	renewLatency heartbeat.RenewLatency
	names        map[int]string // slot id -> host name, from the last decision
	badLimits    sync.Map       // peers whose placement limits were ignored, warned once
}

// status reports what the daemon is doing, to systemd and the log.
func (d *Daemon) status(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	d.log.Info(msg)
	if d.sdNotify != nil {
		d.sdNotify("STATUS=" + msg)
	}
}

// Start brings the daemon up: lock, LUN, libvirt, slot, serf, VM manager,
// heartbeat loop, watchdog. It returns when the host has joined.
func Start(ctx context.Context, cfg Config, log *slog.Logger, sdNotify func(string)) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: log, sdNotify: sdNotify, started: time.Now(), decisions: make(chan quorum.Decision, 1)}
	d.metrics = metrics.New(version, apiServer{d}.metricsSnapshot)
	ok := false
	defer func() {
		if !ok {
			d.closeAll()
		}
	}()
	if err := d.takeLock(); err != nil {
		return nil, err
	}

	d.status("opening heartbeat LUN %s", cfg.LUN)
	wrap := func(m int, dev storage.Device) storage.Device { return lunDevice(m, dev, cfg.StateDir, d.log) } // faults in the test build only
	lun, err := luns.Open(ctx, cfg.LUN, wrap, storage.OpenOptions{ClusterName: cfg.Cluster, ObserveIO: d.metrics.ObserveIO})
	if err != nil {
		return nil, fmt.Errorf("heartbeat LUN: %w", err)
	}
	d.lun, d.hdr, d.members = lun, lun.Header(), luns.NewHealth(lun, cfg.LUN)
	if err := d.hdr.Timings.Validate(); err != nil {
		return nil, fmt.Errorf("heartbeat LUN %s holds unsafe timings: %w; reformat it with a valid profile", cfg.LUN, err)
	}

	d.status("connecting to libvirt at %s", cfg.Libvirt.URI)
	hcfg := hypervisor.DefaultConfig()
	hcfg.URI, hcfg.HostName = cfg.Libvirt.URI, cfg.HostName
	if d.hv, err = hypervisor.Dial(ctx, hcfg); err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}

	d.status("acquiring heartbeat slot for %s (waits %v to rule out another writer)", cfg.HostName, 2*d.hdr.Timings.IOTimeout+d.hdr.Timings.Renew)
	d.slot, err = lun.AcquireSlot(ctx, storage.AcquireOptions{HostName: cfg.HostName, HostID: cfg.HostID,
		Progress: func(msg string) { d.status("%s", msg) }, Resume: d.resumeIncarnation(ctx)})
	if err != nil {
		return nil, fmt.Errorf("heartbeat slot: %w", err)
	}
	self := d.slot.HostID()
	d.log = d.log.With("host", cfg.HostName, "id", self)
	if d.events, err = lun.EventLog(ctx, self); err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	d.event(storage.SevInfo, "joining", self, "wingmand %s joining as host %d generation %d", version, self, d.slot.Generation())

	if err := d.startSerf(ctx, self); err != nil {
		return nil, err
	}
	if err := d.startFencing(); err != nil {
		return nil, err
	}

	d.config = settings.NewService(settings.Config{HostName: cfg.HostName, HostID: self, File: cfg.clusterFile(), HostNames: d.slotNames, Log: d.log},
		storage.NewClusterRecords(lun), d)
	d.config.Refresh(ctx) // a failure is logged: the file's values apply until Run reads the LUN
	checkDisksOn := func(ctx context.Context, host int, disks []hypervisor.DiskSpec) ([]string, error) {
		return d.drills.CheckDisksOn(ctx, host, disks)
	}
	d.vms, err = vm.NewManager(vm.Config{Host: self, Gen: d.slot.Generation(), Capacity: d.capacities, GuestAgentWait: d.config.GuestAgentWait, DiskLoss: d.config.DiskLoss, DeadAfter: d.hdr.Timings.Dead,
		MigrationURI: d.migrationURI, UnsafeMigration: cfg.Libvirt.UnsafeMigration, CheckDisksOn: checkDisksOn, Observe: d.metrics,
		RecordsChanged: d.slot.BumpRecords, Quarantined: func() quorum.Set { return d.quarantine.Set() }}, lun, d.hv, journallog.Events{Ring: d.events, Log: d.log})
	if err != nil {
		return nil, err
	}
	dcfg := drill.Config{HostName: cfg.HostName, HostID: self, UnsafeMigration: cfg.Libvirt.UnsafeMigration}
	d.drills = drill.New(dcfg, d.vms, d.hv, clusterView{d}, drillPeers{apiServer{d}}, d)
	d.disks = drill.NewDiskWatch(dcfg, lun, d)
	d.maint = maintenance.New(maintenance.Config{HostName: cfg.HostName, HostID: self, Generation: d.slot.Generation(),
		StateDir: cfg.StateDir, ConfigPath: cfg.path, Renew: d.hdr.Timings.Renew, IOTimeout: d.hdr.Timings.IOTimeout,
		Defaults: d.config.Maintenance, AllowExec: cfg.Maintenance.AllowExec, RebootCommand: cfg.Maintenance.RebootCommand,
		Log: d.log}, d.vms, lun, d.hv, clusterView{d}, d)
	d.notify, err = notify.NewService(notify.ServiceConfig{Cluster: d.hdr.ClusterName, HostName: cfg.HostName, HostID: self, Log: d.log,
		OnResult: func(r notify.Result) { d.metrics.Notified(r.Target, r.Kind, r.Err) }},
		storage.NewClusterRecords(lun), lun, clusterView{d}, d, d.notifyChecks)
	if err != nil {
		return nil, err
	}
	d.quarantine = quarantine.New(quarantine.Config{HostID: self, Policy: d.config.Quarantine, Log: d.log}, storage.NewClusterRecords(lun), clusterView{d}, d, d.vms)
	d.quarantine.Refresh(ctx) // a failure is logged by Run's rounds; nobody is quarantined until then

	d.guard = watchdog.NewGuard(time.Now)
	hbTick, vmTick := d.guard.Loop("heartbeat"), d.guard.LoopWithin("vm-manager", vmLoopMaxAge)
	wcfg := watchdog.DefaultConfig()
	wcfg.Mode, wcfg.Device, wcfg.Logger = watchdog.Mode(cfg.Watchdog.Mode), cfg.Watchdog.Device, d.log
	wcfg.Timeout = d.hdr.Timings.Watchdog.Round(time.Second)
	if wcfg.Timeout < time.Second {
		wcfg.Timeout = time.Second
	}
	wcfg.OnExpire = d.watchdogExpired
	if d.wd, d.wdNote, err = watchdog.Open(wcfg); err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	if d.wdNote != "" {
		d.event(storage.SevWarning, "watchdog-warning", self, "%s", d.wdNote)
	}

	t := d.hdr.Timings
	var power heartbeat.PowerFencer
	if d.fencer != nil {
		power = d.fencer
	}
	d.loopEvs = heartbeat.NewEventQueue(0, d.onLoopEvent)
	d.probe = isolation.New(cfg.Isolation, t.Renew)
	d.loop, err = heartbeat.New(heartbeat.Config{Addresses: d.probe,
		Timings: heartbeat.Timings(t, d.serfDetect()),
		Slot:    latencySlot{Heartbeat: d.slot, d: d}, LUN: lun, Serf: heartbeat.SerfMembership{Agent: d.serf}, VMs: d.vms, Power: power,
		Watchdog: petter{d}, Healthy: func() bool { hbTick.Tick(); return d.guard.Healthy(time.Now(), d.loopMaxAge()) },
		OnDecision: d.onDecision, OnEvent: d.loopEvs.Push, Logger: d.log, Header: lun.Integrity().HeaderChanged,
		Announce: heartbeat.Announcer(d.serf, t.IOTimeout),
	})
	if err != nil {
		return nil, err
	}
	if err := heartbeat.ServeLeases(d.serf, self, d.loop); err != nil {
		return nil, err
	}
	if err := heartbeat.ServeWakes(d.serf, d.loop); err != nil {
		return nil, err
	}
	table := forward.New(self, d.serf, apiview.Classify)
	d.ops = apiServer{d}.register(table)
	d.ops.domain = forward.Register(table, "domain", d.domainHere)
	if err := table.Serve(); err != nil {
		return nil, err
	}

	// The first cycle runs here, so READY means the slot is renewed and a
	// decision exists.
	if err := d.loop.Cycle(ctx); err != nil {
		return nil, err
	}
	if in := d.loop.Input(); in.KnownDead[self] == d.slot.Generation() {
		// Resumed a generation the cluster declared dead while wingmand
		// was down: the cycle above destroyed its guests (they run
		// elsewhere now). Start over with a new generation.
		d.resumeFile().Remove()
		return nil, fmt.Errorf("this host was declared dead while wingmand was down; its protected VMs were destroyed here and run elsewhere; start wingmand again to rejoin")
	}
	d.slot.SetState(storage.SlotAlive)
	// A host in maintenance when wingmand stopped stays there until
	// `wingman maintenance exit` (or a rolling update's reboot request).
	d.maint.Restore(ctx)
	d.maint.Thaw(ctx)

	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.wg.Add(10)
	go func() { defer d.wg.Done(); d.config.Run(runCtx) }()
	go func() { defer d.wg.Done(); d.quarantine.Run(runCtx) }()
	go func() { defer d.wg.Done(); d.probe.Run(runCtx) }()
	go func() {
		defer d.wg.Done()
		d.members.Run(runCtx, t.Renew, func(c luns.Change) { d.event(c.Severity(), c.Kind(), self, "%s", c.Message()) })
	}()
	go func() {
		defer d.wg.Done()
		d.notify.Run(runCtx) // its own goroutine: a hanging target never reaches the heartbeat
	}()
	go func() {
		defer d.wg.Done()
		d.loopEvs.Run(runCtx) // the heartbeat never waits on an event write
	}()
	go func() {
		defer d.wg.Done()
		d.disks.Run(runCtx, 30*time.Second)
	}()
	go func() {
		defer d.wg.Done()
		// Its own thread, above the guests' CPU load: a heartbeat that
		// misses W under load makes the watchdog reset a healthy host.
		if prio, err := heartbeat.LockThread(); err != nil {
			d.log.Warn("heartbeat priority", "err", err)
		} else {
			d.log.Info("heartbeat loop thread", "priority", prio)
		}
		if err := d.loop.Run(runCtx); err != nil {
			d.log.Error("heartbeat loop ended", "err", err)
			d.event(storage.SevError, "heartbeat-stopped", self, "heartbeat loop ended: %v", err)
		}
	}()
	go func() {
		defer d.wg.Done()
		vm.Run(runCtx, d.vms, d.decisions, vmTick, d.log)
	}()
	go func() {
		defer d.wg.Done()
		// A rolling update rebooted this host and asked it to rejoin by itself.
		d.maint.RejoinAfterReboot(runCtx)
	}()
	d.status("running: host %d generation %d, %s watchdog", self, d.slot.Generation(), d.wd.Kind())
	ok = true
	return d, nil
}

func (d *Daemon) takeLock() error {
	if err := os.MkdirAll(d.cfg.StateDir, 0o750); err != nil {
		return fmt.Errorf("state_dir %s: %w", d.cfg.StateDir, err)
	}
	p := filepath.Join(d.cfg.StateDir, "wingmand.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(p)
		f.Close()
		return fmt.Errorf("another wingmand already runs on this host (pid %s, lock %s): stop it first (systemctl stop wingmand)", strings.TrimSpace(string(b)), p)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	d.lock = f
	return nil
}

// serfDetect is the longest time serf's profile takes to see a failed host
// as failed (at 16 hosts).
func (d *Daemon) serfDetect() time.Duration {
	t := gossip.DefaultTiming()
	if d.cfg.Serf.Profile == "fast" {
		t = gossip.FastTiming()
	}
	_, hi := t.SuspicionTimeout(16)
	return hi
}

func (d *Daemon) startSerf(ctx context.Context, self int) error {
	host, port, _ := splitHostPort(d.cfg.Serf.Bind)
	gcfg := gossip.DefaultConfig()
	gcfg.NodeName, gcfg.HostID, gcfg.BindAddr, gcfg.BindPort = d.cfg.HostName, self, host, port
	if d.cfg.Serf.Advertise != "" {
		ah, ap, _ := splitHostPort(d.cfg.Serf.Advertise)
		gcfg.AdvertiseAddr, gcfg.AdvertisePort = ah, ap
	}
	gcfg.Join = d.cfg.Serf.Join
	gcfg.KeyringFile, gcfg.Insecure = d.cfg.Serf.Keyring, d.cfg.Serf.Insecure
	gcfg.SnapshotPath = filepath.Join(d.cfg.StateDir, "serf.snapshot")
	if d.cfg.Serf.Profile == "fast" {
		gcfg.Timing = gossip.FastTiming()
		gcfg.JoinRetryInterval = 200 * time.Millisecond
	}
	gcfg.Logger = d.log
	gcfg.Tags = d.tags(ctx, self)
	d.status("starting serf on %s, joining %v", d.cfg.Serf.Bind, d.cfg.Serf.Join)
	a, err := gossip.Start(ctx, gcfg)
	if err != nil {
		return fmt.Errorf("serf: %w", err)
	}
	d.serf = a
	d.slot.SetGossipKey(a.KeyFingerprint()) // others tell from the LUN whose key differs
	return nil
}

func (d *Daemon) tags(ctx context.Context, self int) gossip.Tags {
	pl := d.cfg.Placement
	t := gossip.Tags{HostID: self, ClusterUUID: d.hdr.ClusterUUID.String(), Version: version, Maintenance: d.maint != nil && d.maint.Active(),
		CPUOvercommit: pl.CPUOvercommit, MemoryOvercommit: pl.MemoryOvercommit, ReservedMiB: pl.ReservedMemoryMiB, MaxStarts: pl.ParallelStarts}
	t.LockManager, _ = hypervisor.LockManagerInUse("/proc") // "": not told
	if c, err := d.hv.Capacity(ctx); err == nil {
		t.MemoryTotalMiB, t.CPUs = c.MemoryBytes>>20, c.CPUs
		if c.MemoryBytes > c.GuestMemoryBytes {
			t.MemoryFreeMiB = (c.MemoryBytes - c.GuestMemoryBytes) >> 20
		}
	}
	return t
}

func (d *Daemon) startFencing() error {
	if len(d.cfg.Fence) == 0 {
		return nil
	}
	// Agents are configured by host name; the heartbeat loop fences by slot
	// id, resolved at fence time, so a host that joins later is covered.
	hosts, err := fenceconfig.Topologies(d.cfg.Fence, d.cfg.FenceDevice, d.log)
	if err != nil {
		return fmt.Errorf("%s: %w", d.cfg.path, err)
	}
	f, err := fence.NewByName(hosts, d.slotNames, func(host int, a fence.Attempt) {
		d.event(map[bool]storage.Severity{true: storage.SevInfo, false: storage.SevWarning}[a.Outcome == fence.Confirmed], "fence-attempt", host, "%s", a)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", d.cfg.path, err)
	}
	d.fencer = f
	return nil
}

// petter pets the watchdog and tells systemd (WATCHDOG=1) that every loop
// progresses: the heartbeat loop calls it only when that holds and this
// host may run VMs.
type petter struct{ d *Daemon }

func (p petter) Pet() error {
	if p.d.sdNotify != nil {
		p.d.sdNotify("WATCHDOG=1")
	}
	return p.d.wd.Pet()
}

// latencySlot measures each renewal for status and warnings.
type latencySlot struct {
	*storage.Heartbeat
	d *Daemon
}

func (s latencySlot) Renew(ctx context.Context) ([]storage.SlotView, error) {
	t0 := time.Now()
	b0, _ := heartbeat.BootTime()
	v, err := s.Heartbeat.Renew(ctx)
	s.d.renewLatency.Record(time.Now(), time.Since(t0))
	s.d.members.Note(time.Now(), v)
	if err == nil {
		s.d.noteWrite(b0)
	}
	return v, err
}

// capacities are every host's size and placement limits, from serf tags. A
// host that advertises no limits, or limits out of range, is planned with
// the defaults: one bad peer must not stop every failover plan.
func (d *Daemon) capacities() map[int]vm.Capacity {
	out := map[int]vm.Capacity{}
	for _, m := range d.serf.Members() {
		if m.TagsErr != nil || m.HostID == 0 || m.Tags.MemoryTotalMiB == 0 {
			continue
		}
		l, err := m.Tags.PlacementLimits()
		if err != nil && !d.warnedOnce(m.Name) {
			d.log.Warn("a peer advertises placement limits out of range; planning it with the defaults", "peer", m.Name, "err", err)
		}
		out[m.HostID] = vm.Capacity{Memory: m.Tags.MemoryTotalMiB << 20, CPUs: m.Tags.CPUs, Limits: l}
	}
	return out
}

// notifyChecks are the warnings this host sends (vm/notify): its own, and
// the cluster's capacity when it coordinates.
func (d *Daemon) notifyChecks(ctx context.Context, coordinator bool) []notify.Check {
	_, worst := d.renewLatency.Get()
	t := d.hdr.Timings
	checks := append(notify.HostChecks(d.cfg.HostName, heartbeat.LatencyWarning(worst, t.IOTimeout, t.SelfFence), d.wd.Kind() == watchdog.KindSoftware), d.config.Check())
	checks = append(append(checks, notify.LUNCheck(d.cfg.HostName, d.lun.Integrity().HeaderChanged(), d.lun.Integrity().Damaged()),
		notify.LUNMemberCheck(d.cfg.HostName, d.members.Warnings())), d.quarantine.Checks(coordinator)...)
	if !coordinator {
		return checks
	}
	v := apiServer{d}.capacityVerdict(ctx, d.decision())
	st, left := d.loop.DisarmStatus()
	return append(checks, notify.CapacityCheck(v.Survivable, v.Problems), notify.DisarmCheck(st, left))
}

// warnedOnce reports whether host's limits were warned about, and marks them.
func (d *Daemon) warnedOnce(host string) bool {
	_, ok := d.badLimits.LoadOrStore(host, true)
	return ok
}

// migrationURI is host's libvirt URI as seen from here.
func (d *Daemon) migrationURI(host int) (string, error) {
	for _, m := range d.serf.Members() {
		if m.HostID == host && m.TagsErr == nil {
			return strings.ReplaceAll(d.cfg.Libvirt.MigrationURI, "{addr}", m.Addr.Addr().String()), nil
		}
	}
	return "", fmt.Errorf("host %d is not a serf member: cannot tell its address", host)
}

// slotNames maps slot ids to host names as of the last decision. It takes
// only the daemon's own lock: the heartbeat loop calls it while deciding.
func (d *Daemon) slotNames() map[int]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.names
}

func (d *Daemon) onDecision(dec quorum.Decision) {
	names := make(map[int]string, len(dec.Hosts))
	for _, h := range dec.Hosts {
		names[h.ID] = h.Name
	}
	d.mu.Lock()
	d.names = names
	d.mu.Unlock()
	select { // keep only the newest; never block the heartbeat loop
	case <-d.decisions:
	default:
	}
	d.decisions <- dec
}

func (d *Daemon) onLoopEvent(e heartbeat.Event) {
	sev := storage.SevInfo
	if e.Error {
		sev = storage.SevError
	}
	d.event(sev, e.Kind, e.Subject, "%s", e.Message)
}

// event appends to this host's event ring; it never blocks the caller for
// longer than one bounded LUN write.
func (d *Daemon) event(sev storage.Severity, kind string, subject int, format string, a ...any) {
	d.Event(sev, kind, storage.UUID{}, subject, format, a...)
}

// Event is event about one VM (zero: none), so that `wingman events`
// can be filtered by it.
func (d *Daemon) Event(sev storage.Severity, kind string, vmID storage.UUID, subject int, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if len(msg) > 175 {
		msg = msg[:172] + "..."
	}
	if d.events == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*d.hdr.Timings.IOTimeout)
	defer cancel()
	if _, err := (journallog.Events{Ring: d.events, Log: d.log}).Append(ctx, storage.Event{Severity: sev, Kind: kind, VM: vmID, Subject: subject, Message: msg}); err != nil {
		d.log.Warn("event not written to the LUN", "kind", kind, "err", err)
	}
}

// vmLoopMaxAge is how long the VM manager may go without progress before the
// watchdog is no longer petted. It has no fencing duty (the heartbeat loop
// self-fences and applies isolation), so it gets far longer than the other
// loops: under a 30-VM failover on a loaded host one step's libvirt calls
// took over 6 s, and a host that fences itself for being slow kills the
// guests it just restarted. A VM manager hung this long is broken.
const vmLoopMaxAge = 2 * time.Minute

// loopMaxAge is how long a loop of the daemon may go without progress
// before the watchdog is no longer petted.
func (d *Daemon) loopMaxAge() time.Duration {
	t := d.hdr.Timings
	return 3*t.Renew + t.IOTimeout + time.Second
}

// watchdogExpired is the software watchdog's last resort: the loops stopped
// making progress, so nothing guarantees this host stops its VMs in time.
func (d *Daemon) watchdogExpired() {
	var stale []watchdog.Stale // which loop stopped petting: the post-mortem starts there
	if d.guard != nil {
		stale = d.guard.Stale(time.Now(), d.loopMaxAge())
	}
	d.log.Error("software watchdog expired: destroying protected VMs and exiting", "stalled_loops", watchdog.Describe(stale),
		"goroutines", watchdog.DumpGoroutines(d.cfg.StateDir, time.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d.vms != nil {
		_ = d.vms.SelfFence(ctx, "software watchdog expired")
	}
	os.Exit(70)
}

// Stop applies the shutdown policy when the host itself goes down; when
// only wingmand stops (restart, upgrade) the guests stay here, protected,
// for the next wingmand (vm/maintenance's PlanStop).
func (d *Daemon) Stop(ctx context.Context) error {
	down, why := maintenance.StopCause(ctx, filepath.Join(filepath.Dir(d.cfg.API.Socket), maintenance.HostShutdownFile), systemd.Manager{})
	t := d.hdr.Timings
	plan := maintenance.PlanStop(maintenance.StopInput{Policy: maintenance.ShutdownPolicy(d.cfg.Shutdown.Policy), HostDown: down,
		HardwareWatchdog: d.wd != nil && d.wd.Kind() != watchdog.KindSoftware, Host: d.cfg.HostName,
		Resume: heartbeat.ResumeWindow(t), Watchdog: t.Watchdog, Dead: t.Dead})
	d.status("stopping (%s): %s", why, plan.Reason)
	if plan.Notice != "" {
		level := slog.LevelInfo
		if plan.Warn {
			level = slog.LevelWarn
		}
		d.log.Log(ctx, level, plan.Notice)
		d.event(storage.SevInfo, "stopping", d.slot.HostID(), "wingmand stopping, guests stay: restart within %v", plan.Window)
	}
	err := d.maint.ApplyStop(ctx, plan)
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
	if plan.Leave && err == nil {
		rctx, cancel := context.WithTimeout(context.Background(), 2*d.hdr.Timings.IOTimeout+time.Second)
		if rerr := d.slot.Release(rctx, storage.SlotLeft); rerr != nil {
			d.log.Warn("could not write left to the heartbeat slot", "err", rerr)
		}
		cancel()
		d.event(storage.SevInfo, "left", d.slot.HostID(), "host left the cluster cleanly")
		if d.serf != nil {
			lctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_ = d.serf.Leave(lctx)
			cancel()
		}
	}
	if plan.KeepWatchdogArmed {
		// Leave the hardware watchdog armed: if wingmand is not back in
		// time, it resets the host before others restart its VMs.
		d.wd = nil
	}
	d.closeAll()
	return err
}

func (d *Daemon) closeAll() {
	if d.vms != nil {
		d.vms.Close() // its guest agent checks use libvirt and the LUN
	}
	if d.serf != nil {
		d.serf.Shutdown()
	}
	if d.wd != nil {
		d.wd.Close()
	}
	if d.hv != nil {
		d.hv.Close()
	}
	if d.lun != nil {
		d.lun.Close()
	}
	if d.lock != nil {
		d.lock.Close()
	}
}

// listenSocket opens the API socket: mode 0660, group cfg.API.Group.
func listenSocket(path, group string) (net.Listener, error) {
	l, err := api.ListenSocket(path, group)
	if err != nil {
		return nil, fmt.Errorf("api.socket %s: %w", path, err)
	}
	return l, nil
}

// clusterView is the cluster as the library packages (vm/maintenance,
// vm/drill) see it and speak to it.
type clusterView struct{ d *Daemon }

func (c clusterView) Decision() quorum.Decision                 { return c.d.decision() }
func (c clusterView) ResolveHost(s string) (quorum.Host, error) { return c.d.resolveHost(s) }
func (c clusterView) MigrationURI(host int) (string, error)     { return c.d.migrationURI(host) }

// SetMaintenance shows this host in maintenance, or not, in its slot and
// its serf tags.
func (c clusterView) SetMaintenance(ctx context.Context, on bool) error {
	state := storage.SlotAlive
	if on {
		state = storage.SlotMaintenance
	}
	c.d.slot.SetState(state)
	return c.d.serf.SetTags(c.d.tags(ctx, c.d.slot.HostID()))
}

// MigrateHere asks VM id's owner to live-migrate it to this host.
func (c clusterView) MigrateHere(ctx context.Context, id string) error {
	_, err := onOwner(ctx, apiServer{c.d}, c.d.ops.migrate, id, api.MigrateRequest{Target: c.d.cfg.HostName})
	return err
}

// domainHere says whether this host's libvirt has domain name, and runs it.
func (d *Daemon) domainHere(ctx context.Context, name string, _ none) (domainHere, error) {
	doms, err := d.hv.ListDomains(ctx)
	if err != nil {
		return domainHere{}, err
	}
	for _, dm := range doms {
		if dm.Name == name || strings.EqualFold(dm.UUID, name) {
			return domainHere{Defined: true, Running: dm.Active()}, nil
		}
	}
	return domainHere{}, nil
}

// A restarted wingmand takes its heartbeat slot back at once when it can
// prove the previous daemon of this host wrote it less than F ago (see
// heartbeat.ResumeFile).
func (d *Daemon) resumeFile() heartbeat.ResumeFile {
	return heartbeat.ResumeFile(filepath.Join(filepath.Dir(d.cfg.API.Socket), "heartbeat.state"))
}

// noteWrite records a completed heartbeat write for a later resume.
func (d *Daemon) noteWrite(issued time.Duration) {
	if d.slot != nil {
		d.resumeFile().Note(d.slot.Record().Incarnation, issued)
	}
}

// resumeIncarnation returns the incarnation to resume, or 0. If the
// previous daemon's last write is F old or older, the guests it left have
// run unwatched for too long: they are destroyed first, as the self-fence
// at F would have done.
func (d *Daemon) resumeIncarnation(ctx context.Context) uint64 {
	inc, age, ok := d.resumeFile().Take()
	if !ok {
		return 0
	}
	t := d.hdr.Timings
	if age >= 0 && age < heartbeat.ResumeWindow(t) {
		d.status("resuming after a restart: the last heartbeat was written %v ago", age.Round(time.Millisecond))
		return inc
	}
	d.log.Error("the previous wingmand stopped heartbeating more than F ago: destroying this host's protected VMs before rejoining", "age", age, "F", t.SelfFence)
	if err := vm.DestroyProtected(ctx, d.lun, d.hv); err != nil {
		d.log.Error("destroying the protected VMs failed", "err", err)
	}
	return 0
}

// fence fences a host or tests the path (fence.Manual).
func (d *Daemon) fence(ctx context.Context, hostName string, req api.FenceRequest) (api.FenceResult, error) {
	h, err := d.resolveHost(hostName)
	if err != nil {
		return api.FenceResult{}, err
	}
	if !req.Test && d.fencer == nil {
		return api.FenceResult{Host: h.Name}, api.Fail(api.ErrInvalid, "configure [fence."+h.Name+"] in wingman.toml", "no fence agent is configured for %s", h.Name)
	}
	res, err := fence.Manual(ctx, d.fencer, h, req.Test, func(ctx context.Context) (bool, error) {
		return heartbeat.TestMailbox(ctx, d.lun, d.hdr.Timings, d.slot.HostID(), d.slot.Generation(), h.ID, h.Gen, "wingman fence --test")
	}, func(warning bool, msg string) {
		sev, kind := storage.SevInfo, "fence-test"
		if warning {
			sev, kind = storage.SevWarning, "manual-fence"
		}
		d.event(sev, kind, h.ID, "%s", msg)
	})
	return api.FenceResult(res), err
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
)

// evacTracker follows this host's evacuation for the API: what is planned,
// which migrations run now and how far they are, what ended.
type evacTracker struct {
	mu     sync.Mutex
	cur    api.Evacuation
	active map[string]api.MigrationProgress // by VM UUID
}

func (t *evacTracker) start(host string, parallel int, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cur = api.Evacuation{Host: host, Running: true, Started: now, Parallel: parallel}
	t.active = map[string]api.MigrationProgress{}
}

func (t *evacTracker) running() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur.Running
}

func (t *evacTracker) planned(moves []vm.Move) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cur.Planned = len(moves)
}

func (t *evacTracker) progress(mv vm.Move, p hypervisor.MigrationProgress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active == nil {
		return
	}
	t.active[mv.UUID] = api.MigrationProgress{VM: mv.Name, To: mv.ToName, Elapsed: p.Elapsed, Percent: p.Percent,
		Processed: p.DataProcessed, Total: p.DataTotal, ETA: eta(p)}
}

func (t *evacTracker) done(mv vm.Move, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.active, mv.UUID)
	if err == nil {
		t.cur.Done++
		return
	}
	t.cur.Failed++
	t.cur.Errors = append(t.cur.Errors, shorten(mv.Name+": "+err.Error(), 120))
}

// end marks the evacuation ended with err; it ends only a running one.
func (t *evacTracker) end(err error, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.cur.Running {
		return
	}
	t.cur.Running, t.cur.Ended = false, now
	t.active = nil
	switch {
	case errors.Is(err, context.Canceled):
		t.cur.Error = "aborted: the migrations in flight were cancelled, no new one started"
	case err != nil:
		t.cur.Error = shorten(err.Error(), 200)
	}
}

// evacuationAnswerLimit keeps the answer within one serf query response
// (about 1,000 bytes with the forwarding envelope).
const evacuationAnswerLimit = 640

// snapshot is the evacuation as the API shows it: the migrations in flight
// by VM name, and no more of them and of the errors than fit in limit bytes
// of JSON (Hidden counts the migrations left out).
func (t *evacTracker) snapshot(limit int) api.Evacuation {
	t.mu.Lock()
	e := t.cur
	e.Errors = append([]string(nil), t.cur.Errors...)
	e.Active = make([]api.MigrationProgress, 0, len(t.active))
	for _, p := range t.active {
		e.Active = append(e.Active, p)
	}
	t.mu.Unlock()
	sort.Slice(e.Active, func(i, j int) bool { return e.Active[i].VM < e.Active[j].VM })
	for {
		b, _ := json.Marshal(e)
		if len(b) <= limit {
			return e
		}
		switch {
		case len(e.Errors) > 1:
			e.Errors = e.Errors[:len(e.Errors)-1]
		case len(e.Active) > 0:
			e.Active = e.Active[:len(e.Active)-1]
			e.Hidden++
		default:
			e.Errors, e.Error = nil, shorten(e.Error, 80)
			return e
		}
	}
}

// eta is the time the rest of a migration takes at its rate so far
// (0: not known yet). The remaining bytes grow when the guest dirties
// memory, so it is an estimate, like virsh domjobinfo's.
func eta(p hypervisor.MigrationProgress) time.Duration {
	if p.DataProcessed == 0 || p.Elapsed <= 0 {
		return 0
	}
	rate := float64(p.DataProcessed) / p.Elapsed.Seconds() // bytes per second
	return time.Duration(float64(p.DataRemaining) / rate * float64(time.Second)).Round(100 * time.Millisecond)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// evacuation answers GET /v1/hosts/{host}/evacuation on the host itself.
func (d *Daemon) evacuation() api.Evacuation {
	e := d.evac.snapshot(evacuationAnswerLimit)
	e.Host = d.cfg.HostName
	return e
}

// evacuate live-migrates this host's protected VMs away, by priority,
// maintenance.parallel_migrations at a time (and, with all, its
// unprotected running domains afterwards). Its progress shows in the
// evacuation tracker, which the caller may have started already.
func (d *Daemon) evacuate(ctx context.Context, all bool) (err error) {
	self := d.slot.HostID()
	parallel := d.cfg.Maintenance.ParallelMigrations
	if !d.evac.running() {
		d.evac.start(d.cfg.HostName, parallel, time.Now())
		defer func() { d.evac.end(err, time.Now()) }()
	}
	err = d.vms.Evacuate(ctx, d.decision(), vm.EvacuateOptions{
		Parallel: parallel,
		ColdMove: d.cfg.Maintenance.OnMigrationFailure == "cold-move",
		Planned:  d.evac.planned,
		Progress: d.evac.progress,
		Done: func(m vm.Move, r hypervisor.MigrationResult, err error) {
			d.evac.done(m, err)
			id, _ := storage.ParseUUID(m.UUID)
			if err != nil {
				d.vmEvent(storage.SevError, "evacuation-failed", id, m.To, "%s to %s: %v", m.Name, m.ToName, err)
				return
			}
			if m.Cold { // the VM manager recorded it; another host starts the VM
				d.noteMoved(m.UUID)
				return
			}
			d.vmEvent(storage.SevInfo, "evacuated", id, m.To, "%s moved to %s in %v (downtime %v)", m.Name, m.ToName, r.Wall.Round(time.Millisecond), r.Downtime)
			d.noteMoved(m.UUID)
		},
	})
	if !all {
		return err
	}
	doms, lerr := d.hv.ListDomains(ctx)
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	protected := map[string]bool{}
	recs, _ := d.lun.ReadVMs(ctx)
	for _, r := range recs {
		if r.Protected() {
			protected[strings.ToLower(r.Config.UUID.String())] = true
		}
	}
	var targets []int
	for _, h := range d.decision().Hosts {
		if h.State == quorum.StateAlive && h.ID != self {
			targets = append(targets, h.ID)
		}
	}
	for i, dm := range doms {
		if !dm.Active() || protected[strings.ToLower(dm.UUID)] || len(targets) == 0 {
			continue
		}
		uri, uerr := d.migrationURI(targets[i%len(targets)])
		if uerr == nil {
			_, uerr = d.hv.Migrate(ctx, dm.Name, hypervisor.MigrateOptions{DestURI: uri, Unsafe: d.cfg.Libvirt.UnsafeMigration})
		}
		if uerr != nil {
			err = errors.Join(err, fmt.Errorf("unprotected %s: %w", dm.Name, uerr))
		}
	}
	return err
}

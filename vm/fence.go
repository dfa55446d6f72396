package vm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/plan"
)

// selfFenceReadBound is how long a self-fence waits for the VM records: it
// needs them only to spare unprotected guests, and the LUN is often what
// hangs when a host fences itself (a scan of every record would wait
// io_timeout per I/O while the guests keep running).
const selfFenceReadBound = 500 * time.Millisecond

// selfFenceReportBound is how long a self-fence waits, once its guests are
// destroyed, for the events that report it (see SelfFence).
const selfFenceReportBound = 500 * time.Millisecond

// SelfFence destroys every protected VM that runs on this host, at once and
// without a graceful shutdown: the heartbeat loop calls it when this host
// may no longer run VMs (no heartbeat write for F and no network lease, or
// the cluster declared it dead). It reads the LUN only for names and does
// not need it: every local domain whose UUID has a record is destroyed, and
// if the records cannot be read, every running domain is (an unprotected
// VM is never worth the risk of a protected one running twice). It waits
// for the records at most selfFenceReadBound.
func (m *Manager) SelfFence(ctx context.Context, reason string) error {
	m.fenced.Store(true) // first: no start still running in a step may begin after this
	doms, err := m.hv.ListDomains(ctx)
	if err != nil {
		return fmt.Errorf("self-fence: list domains: %w", err)
	}
	protected := map[string]bool{}
	rctx, cancel := context.WithTimeout(ctx, selfFenceReadBound)
	recs, errs := m.lun.ReadVMs(rctx)
	cancel()
	// A record not read may be a protected VM running here.
	all := len(errs) > 0
	for _, r := range recs {
		if r.Protected() {
			protected[strings.ToLower(r.Config.UUID.String())] = true
		}
	}
	// Every guest at once: each one left running a moment longer is a
	// moment in which it may write beside its restarted copy.
	var failed []error
	var mu sync.Mutex
	var destroyed, reported sync.WaitGroup
	for _, d := range doms {
		if !d.State.Active() || !(all || protected[strings.ToLower(d.UUID)]) {
			continue
		}
		destroyed.Add(1)
		reported.Add(1)
		go func() {
			defer reported.Done()
			err := m.hv.Destroy(ctx, d.Name)
			if err != nil {
				mu.Lock()
				failed = append(failed, fmt.Errorf("destroy %q: %w", d.Name, err))
				mu.Unlock()
			}
			destroyed.Done()
			if err == nil {
				writeEvent(ctx, m.events, storage.SevError, "self-fenced", parseUUID(d.UUID), m.cfg.Host, "destroyed %s: %s", d.Name, reason)
			}
		}()
	}
	destroyed.Wait()
	// The events go to the LUN's event ring, one after the other, each up
	// to two I/Os of io_timeout on the LUN that may be what hangs: the
	// heartbeat loop, which waits for this call, waits for them only a
	// moment. They are still written, later, if the LUN answers.
	done := make(chan struct{})
	go func() { reported.Wait(); close(done) }()
	t := time.NewTimer(selfFenceReportBound)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 {
		return fmt.Errorf("self-fence: %w", errors.Join(failed...))
	}
	return nil
}

// ApplyIsolation answers a poison pill: each local protected VM owned by
// this host whose isolation response is "stop" is destroyed and its lease
// released, so that another host may start it; VMs set to "leave running"
// keep running and keep their lease.
func (m *Manager) ApplyIsolation(ctx context.Context, reason string) error {
	// A step with failover starts still to launch may hold the lock for a
	// while on a loaded host: it launches no more of them from now on.
	m.isolating.Add(1)
	m.mu.Lock()
	m.isolating.Add(-1)
	defer m.mu.Unlock()
	doms, err := m.hv.ListDomains(ctx)
	if err != nil {
		return fmt.Errorf("isolation: list domains: %w", err)
	}
	running := map[string]string{}
	for _, d := range doms {
		if d.State.Active() {
			running[strings.ToLower(d.UUID)] = d.Name
		}
	}
	recs, errs := m.lun.ReadVMs(ctx)
	if len(errs) > 0 {
		return fmt.Errorf("isolation: %d VM records unreadable, first: %w", len(errs), errs[0])
	}
	var failed []error
	for _, r := range recs {
		if !r.Protected() || !owns(m.cfg, r.Lease) {
			continue
		}
		rp, err := UnmarshalRecordPolicy(r.Config.Policy)
		if err != nil {
			rp = RecordPolicy{Policy: plan.DefaultPolicy()}
		}
		if rp.Policy.Isolation != plan.IsolationStop {
			writeEvent(ctx, m.events, storage.SevWarning, "isolation-kept", r.Config.UUID, m.cfg.Host, "%s keeps running on the isolated host (isolation response: leave running)", r.Config.Name)
			continue
		}
		if name, ok := running[strings.ToLower(r.Config.UUID.String())]; ok {
			if err := m.hv.Destroy(ctx, name); err != nil {
				failed = append(failed, fmt.Errorf("destroy %q: %w", name, err))
				continue // never release the lease of a VM that may still run
			}
		}
		if err := m.lun.ReleaseLease(ctx, r.Index, r.Lease); err != nil {
			failed = append(failed, fmt.Errorf("release lease of %q: %w", r.Config.Name, err))
			continue
		}
		writeEvent(ctx, m.events, storage.SevWarning, "isolated", r.Config.UUID, m.cfg.Host, "%s stopped and released: %s", r.Config.Name, reason)
	}
	if len(failed) > 0 {
		return fmt.Errorf("isolation: %w", errors.Join(failed...))
	}
	return nil
}

func parseUUID(s string) storage.UUID {
	u, _ := storage.ParseUUID(s)
	return u
}

// DestroyProtected destroys every local running domain that has a
// protected-VM record on the LUN, or every running domain when no record
// can be read: what the self-fence at F would have done, for a daemon that
// comes back after its host ran unwatched for longer. It needs no Manager
// (there is no heartbeat slot yet).
func DestroyProtected(ctx context.Context, lun interface {
	ReadVMs(ctx context.Context) ([]storage.VMRecord, []error)
}, hv interface {
	ListDomains(ctx context.Context) ([]hypervisor.Domain, error)
	Destroy(ctx context.Context, name string) error
}) error {
	recs, errs := lun.ReadVMs(ctx)
	protected := map[string]bool{}
	for _, r := range recs {
		if r.Protected() {
			protected[strings.ToLower(r.Config.UUID.String())] = true
		}
	}
	doms, err := hv.ListDomains(ctx)
	if err != nil {
		return fmt.Errorf("list domains to fence them: %w", err)
	}
	var failed []error
	for _, dm := range doms {
		if dm.Active() && (protected[strings.ToLower(dm.UUID)] || (len(errs) > 0 && len(recs) == 0)) {
			if err := hv.Destroy(ctx, dm.Name); err != nil {
				failed = append(failed, fmt.Errorf("destroy %s: %w", dm.Name, err))
			}
		}
	}
	return errors.Join(failed...)
}

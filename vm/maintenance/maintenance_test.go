package maintenance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
)

// fakeVMs is the VM manager: it records the evacuations asked of it.
type fakeVMs struct {
	mu        sync.Mutex
	evacuated []vm.EvacuateOptions
	plan      []vm.Move // what EvacuationPlan answers
	migrated  []string  // "name->host" of each Migrate
	released  []string  // the reason of each ReleaseAll
}

func (f *fakeVMs) Evacuate(_ context.Context, _ quorum.Decision, opts vm.EvacuateOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evacuated = append(f.evacuated, opts)
	return nil
}

func (f *fakeVMs) evacuations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.evacuated)
}

func (f *fakeVMs) Find(_ context.Context, id string) (storage.VMRecord, vm.RecordPolicy, error) {
	return storage.VMRecord{}, vm.RecordPolicy{}, fmt.Errorf("VM %q: %w", id, vm.ErrNotFound)
}
func (f *fakeVMs) EvacuationPlan(context.Context, quorum.Decision) ([]vm.Move, []string, error) {
	return f.plan, nil, nil
}
func (f *fakeVMs) Migrate(_ context.Context, name string, target int) (hypervisor.MigrationResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.migrated = append(f.migrated, fmt.Sprintf("%s->%d", name, target))
	return hypervisor.MigrationResult{Wall: time.Second, Downtime: 20 * time.Millisecond, DataTransferred: 1 << 20}, nil
}
func (f *fakeVMs) ReleaseAll(_ context.Context, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, reason)
	return nil
}
func (f *fakeVMs) Start(context.Context, string) error { return nil }
func (f *fakeVMs) Stop(context.Context, string) error  { return nil }

// empty is a LUN without VM records and a libvirt without domains.
type empty struct{}

func (empty) ReadVMs(context.Context) ([]storage.VMRecord, []error)    { return nil, nil }
func (empty) ListDomains(context.Context) ([]hypervisor.Domain, error) { return nil, nil }
func (empty) Connected() bool                                          { return true }

type fakeCluster struct {
	mu sync.Mutex
	on bool
}

func (c *fakeCluster) Decision() quorum.Decision {
	return quorum.Decision{Quorate: true, MayRunVMs: true}
}
func (c *fakeCluster) ResolveHost(s string) (quorum.Host, error) {
	for _, h := range []quorum.Host{{ID: 1, Name: "kvm1"}, {ID: 2, Name: "kvm2"}} {
		if h.Name == s || fmt.Sprint(h.ID) == s {
			return h, nil
		}
	}
	return quorum.Host{}, fmt.Errorf("no host named %q", s)
}
func (c *fakeCluster) SetMaintenance(_ context.Context, on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = on
	return nil
}
func (c *fakeCluster) MigrateHere(context.Context, string) error { return nil }

// events passes each event's kind and message on.
type events chan string

func (e events) Event(_ storage.Severity, kind string, _ storage.UUID, _ int, format string, a ...any) {
	e <- kind + ": " + fmt.Sprintf(format, a...)
}

func newHost(t *testing.T, edit func(*Config)) (*Host, *fakeVMs, *fakeCluster, events) {
	cfg := Config{HostName: "kvm1", HostID: 1, Generation: 3, StateDir: t.TempDir(), ConfigPath: "/etc/wingman/wingman.toml",
		Renew: time.Second, IOTimeout: 2 * time.Second, ParallelMigrations: 2, AllowExec: true, ExecTimeout: time.Minute,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if edit != nil {
		edit(&cfg)
	}
	vms, cl, ev := &fakeVMs{}, &fakeCluster{}, make(events, 100)
	return New(cfg, vms, empty{}, empty{}, cl, ev), vms, cl, ev
}

// waitEvent returns the first event of kind, failing the test after 10 s.
func waitEvent(t *testing.T, ev events, kind string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-ev:
			if strings.HasPrefix(e, kind+": ") {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

// A site may forbid remote execution and reboots; the refusals say which
// key allows them, and in which file.
func TestExecAndRebootMayBeForbidden(t *testing.T) {
	h, _, _, _ := newHost(t, func(c *Config) { c.AllowExec = false })
	_, err := h.Exec(context.Background(), ExecRequest{Command: "true"})
	if !errors.Is(err, vm.ErrForbidden) || !strings.Contains(err.Error(), "maintenance.allow_exec = false") {
		t.Errorf("exec with allow_exec = false: %v", err)
	}
	var rf *vm.Refusal
	if !errors.As(err, &rf) || !strings.Contains(rf.Hint, "/etc/wingman/wingman.toml") {
		t.Errorf("exec refusal's hint: %+v", rf)
	}
	if _, err := h.Reboot(context.Background(), RebootRequest{}); !errors.Is(err, vm.ErrForbidden) || !strings.Contains(err.Error(), "reboot_command is empty") {
		t.Errorf("reboot without a reboot command: %v", err)
	}
}

// Enter waits until the others can see the maintenance state before it
// plans the evacuation, and goes on after the request when asked not to
// wait.
func TestEnterWaitsForTheOthersToSeeIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, vms, cl, ev := newHost(t, nil)
		if err := h.Set(context.Background(), Request{Enter: true, All: true, NoWait: true}); err != nil {
			t.Fatal(err)
		}
		if !h.Active() || !cl.on || !h.Evacuation(640).Running {
			t.Fatalf("after enter: active %v, shown %v, evacuation %+v", h.Active(), cl.on, h.Evacuation(640))
		}
		time.Sleep(h.settle() - time.Millisecond)
		synctest.Wait()
		if vms.evacuations() != 0 {
			t.Fatal("the evacuation started before the others could see the maintenance state")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if vms.evacuations() != 1 || !vms.evacuated[0].Unprotected || vms.evacuated[0].Parallel != 2 {
			t.Fatalf("evacuations: %+v", vms.evacuated)
		}
		if e := h.Evacuation(640); e.Running || e.Error != "" || e.Host != "kvm1" {
			t.Errorf("evacuation after the end: %+v", e)
		}
		waitEvent(t, ev, "maintenance-empty")

		if err := h.Set(context.Background(), Request{Abort: true}); !errors.Is(err, vm.ErrInvalid) {
			t.Errorf("abort without an evacuation: %v", err)
		}
		if err := h.Set(context.Background(), Request{Enter: false}); err != nil || h.Active() || cl.on {
			t.Errorf("exit: %v, active %v, shown %v", err, h.Active(), cl.on)
		}
	})
}

// An abort cancels the evacuation during its wait; the host stays in
// maintenance and the evacuation says it was aborted.
func TestAbortStopsTheEvacuation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, vms, _, _ := newHost(t, nil)
		if err := h.Set(context.Background(), Request{Enter: true, NoWait: true}); err != nil {
			t.Fatal(err)
		}
		if err := h.Set(context.Background(), Request{Abort: true}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if e := h.Evacuation(640); e.Running || !strings.HasPrefix(e.Error, "aborted") || vms.evacuations() != 0 || !h.Active() {
			t.Errorf("after the abort: %+v, %d evacuations, active %v", e, vms.evacuations(), h.Active())
		}
	})
}

// A reboot command that fails leaves the host in maintenance, with an
// event, and without the request to leave maintenance after the reboot.
func TestFailedRebootStaysInMaintenance(t *testing.T) {
	h, _, _, ev := newHost(t, func(c *Config) {
		c.RebootCommand = "echo no reboot for you >&2; exit 7"
		c.Renew, c.IOTimeout = time.Millisecond, time.Millisecond
	})
	ctx := context.Background()
	if _, err := h.Reboot(ctx, RebootRequest{ExitMaintenance: true}); !errors.Is(err, vm.ErrConflict) || !strings.Contains(err.Error(), "kvm1 is not in maintenance") {
		t.Errorf("reboot of a host in service: %v", err)
	}
	if err := h.Set(ctx, Request{Enter: true}); err != nil {
		t.Fatal(err)
	}
	res, err := h.Reboot(ctx, RebootRequest{ExitMaintenance: true, Failback: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Host != "kvm1" || res.Generation != 3 || res.Command != "echo no reboot for you >&2; exit 7" {
		t.Errorf("reboot result = %+v", res)
	}
	if exit, failback := h.RebootRequested(); !exit || !failback {
		t.Errorf("exit-after-reboot not saved: exit %v failback %v", exit, failback)
	}
	if e := waitEvent(t, ev, "reboot-failed"); !strings.Contains(e, "no reboot for you") {
		t.Errorf("event: %s", e)
	}
	if exit, _ := h.RebootRequested(); exit {
		t.Error("a failed reboot left the exit-after-reboot request behind")
	}
	if !h.Active() {
		t.Error("a failed reboot took the host out of maintenance")
	}
}

// With Defaults, each evacuation takes the cluster-wide values current
// when it starts (vm/settings), not those the host was built with.
func TestEvacuationTakesTheDefaultsOfTheMoment(t *testing.T) {
	def := Defaults{ParallelMigrations: 5, ColdMove: true, ExecTimeout: time.Hour}
	h, vms, _, _ := newHost(t, func(c *Config) { c.Defaults = func() Defaults { return def } })
	if err := h.Evacuate(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	def.ParallelMigrations, def.ColdMove = 1, false
	if err := h.Evacuate(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got := vms.evacuated; len(got) != 2 || got[0].Parallel != 5 || !got[0].ColdMove || got[1].Parallel != 1 || got[1].ColdMove {
		t.Fatalf("evacuations: %+v, want 5 with cold moves, then 1 without", got)
	}
}

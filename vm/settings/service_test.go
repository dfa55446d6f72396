package settings

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
)

// ring writes a service's events to its host's real ring on the LUN, as
// wingmand does.
type ring struct {
	t   *testing.T
	log *storage.EventLog
}

func (r ring) Event(sev storage.Severity, kind string, vm storage.UUID, subject int, format string, a ...any) {
	if _, err := r.log.Append(context.Background(), storage.Event{Severity: sev, Kind: kind, VM: vm, Subject: subject, Message: fmt.Sprintf(format, a...)}); err != nil {
		r.t.Error(err)
	}
}

// hostsOn returns the services of kvm1 and kvm2 on one fresh LUN, each
// through its own handle; kvm2's wingman.toml sets guest_agent_wait 1m.
func hostsOn(t *testing.T) (kvm1, kvm2 *Service, lun *storage.LUN) {
	t.Helper()
	ctx := context.Background()
	tm := storage.Timings{Renew: 10 * time.Millisecond, IOTimeout: 200 * time.Millisecond, SelfFence: 210 * time.Millisecond, Watchdog: 10 * time.Millisecond}
	tm.Dead = tm.MinDead()
	path := storagetest.LUNFile(t, storage.FormatOptions{ClusterName: "lab", Timings: tm,
		Geometry: storage.Geometry{MaxHosts: 4, MaxVMs: 2, EventBlocks: 1, ConfigBlks: 2}})
	open := func(id int, file File) (*Service, *storage.LUN) {
		l, err := storage.OpenPath(ctx, path, storage.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		log, err := l.EventLog(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return NewService(Config{HostName: fmt.Sprintf("kvm%d", id), HostID: id, File: file}, storage.NewClusterRecords(l), ring{t, log}), l
	}
	fileWait := Defaults()
	fileWait.GuestAgentWait = time.Minute
	kvm1, lun = open(1, File{Path: "/etc/wingman/wingman.toml", Values: Defaults()})
	kvm2, _ = open(2, File{Path: "/etc/wingman/wingman.toml", Values: fileWait, Keys: []string{"failover.guest_agent_wait"}})
	return kvm1, kvm2, lun
}

// A key set on one host is read back on another, with who set it; the
// change is an event with the old and the new value; kvm2, whose file
// sets the key differently, applies the cluster's and warns.
func TestSetOnOneHostReadOnAnother(t *testing.T) {
	kvm1, kvm2, lun := hostsOn(t)
	ctx := context.Background()
	if got := kvm2.GuestAgentWait(); got != time.Minute {
		t.Fatalf("before any read kvm2 applies %v, want its file's 1m", got)
	}
	if w := kvm2.Warnings(); len(w) != 1 || !strings.Contains(w[0], "so this host alone uses 1m") {
		t.Fatalf("kvm2 warns %q", w)
	}
	e, v, err := kvm1.Set(ctx, "failover.guest_agent_wait", "600s")
	if err != nil {
		t.Fatal(err)
	}
	if e.Value != "10m" || e.Source != SourceCluster || e.Host != 1 || v.Generation != 1 {
		t.Fatalf("set: %+v at generation %d", e, v.Generation)
	}
	if kvm1.GuestAgentWait() != 10*time.Minute {
		t.Fatalf("kvm1 applies %v after its own set", kvm1.GuestAgentWait())
	}

	got, v, err := kvm2.Get(ctx, "failover.guest_agent_wait")
	if err != nil {
		t.Fatal(err)
	}
	if got.Value != "10m" || got.Source != SourceCluster || got.Host != 1 || got.File != "1m" || v.Generation != 1 {
		t.Fatalf("kvm2 reads %+v at generation %d", got, v.Generation)
	}
	if kvm2.GuestAgentWait() != 10*time.Minute {
		t.Fatalf("kvm2 applies %v, want the cluster's 10m", kvm2.GuestAgentWait())
	}
	want := "kvm2: /etc/wingman/wingman.toml sets failover.guest_agent_wait = 1m, the cluster uses 10m; remove it from /etc/wingman/wingman.toml"
	if w := kvm2.Warnings(); len(w) != 1 || w[0] != want {
		t.Fatalf("kvm2 warns %q, want %q", w, want)
	}
	if c := kvm2.Check(); !c.Active || c.Host != "kvm2" || !strings.Contains(c.Text, "the cluster uses 10m") {
		t.Fatalf("kvm2's warning check %+v", c)
	}

	// The same value again changes nothing: no new generation, no event.
	if _, v, err := kvm2.Set(ctx, "failover.guest_agent_wait", "10m"); err != nil || v.Generation != 1 {
		t.Fatalf("setting the same value: generation %d, %v", v.Generation, err)
	}
	// Back to the default: kvm2 uses its file again.
	if e, v, err := kvm2.Unset(ctx, "failover.guest_agent_wait"); err != nil || e.Source != SourceFile || e.Value != "1m" || v.Generation != 2 {
		t.Fatalf("unset on kvm2: %+v generation %d, %v", e, v.Generation, err)
	}
	if _, err := kvm1.Refresh(ctx); err != nil || kvm1.GuestAgentWait() != 5*time.Minute {
		t.Fatalf("kvm1 after the unset applies %v, %v; want the default", kvm1.GuestAgentWait(), err)
	}

	evs, err := lun.ReadEvents(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, e := range evs {
		if e.Kind == "config-changed" {
			changes = append(changes, fmt.Sprintf("host %d: %s", e.Host, e.Message))
		}
	}
	wantEvs := []string{
		"host 1: failover.guest_agent_wait = 10m, was 5m (default); by kvm1, settings generation 1",
		"host 2: failover.guest_agent_wait = 5m (default), was 10m; by kvm2, settings generation 2",
	}
	if strings.Join(changes, "\n") != strings.Join(wantEvs, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(changes, "\n"), strings.Join(wantEvs, "\n"))
	}
}

// Bad input changes nothing on the LUN.
func TestSetRefusesBadInput(t *testing.T) {
	kvm1, _, _ := hostsOn(t)
	ctx := context.Background()
	for _, c := range []struct {
		key, value string
		class      error
	}{
		{"failover.guest_agent_wait", "2s", ErrBadValue},
		{"shutdown.policy", "keep", ErrPerHost},
		{"failover.guest_agent", "1m", ErrUnknownKey},
	} {
		if _, _, err := kvm1.Set(ctx, c.key, c.value); !errors.Is(err, c.class) {
			t.Errorf("set %s %s: got %v, want %v", c.key, c.value, err, c.class)
		}
	}
	if _, _, err := kvm1.Unset(ctx, "placement.parallel_starts"); !errors.Is(err, ErrPerHost) {
		t.Errorf("unset of a per-host key: %v", err)
	}
	if v, err := kvm1.List(ctx); err != nil || v.Generation != 0 {
		t.Fatalf("after refusals the record is at generation %d, %v", v.Generation, err)
	}
}

// failingRecords is a settings record that cannot be read.
type failingRecords struct{ Records }

func (failingRecords) Settings(context.Context) (storage.ClusterSettings, error) {
	return storage.ClusterSettings{}, storage.ErrTooSmall
}

// A read that fails keeps the last values: at the start, the file's.
func TestRefreshFailureKeepsTheLastValues(t *testing.T) {
	_, kvm2, _ := hostsOn(t)
	s := NewService(kvm2.cfg, failingRecords{kvm2.rec}, kvm2.rep)
	for range 2 {
		if _, err := s.Refresh(context.Background()); !errors.Is(err, storage.ErrTooSmall) {
			t.Fatalf("got %v", err)
		}
		if s.GuestAgentWait() != time.Minute || s.Maintenance().ParallelMigrations != 2 {
			t.Fatalf("after a failed read: %+v", s.Values())
		}
	}
}

package apiview

import (
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// A power loss as the LUN's rings tell it: kvm3 declared dead by its
// heartbeat, its two VMs planned and started on the survivors; a VM of an
// earlier failover is not mixed in.
func TestIncidentsDrawEachFailover(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	web, db := storage.UUID{1}, storage.UUID{2}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	evs := []storage.Event{
		{Host: 1, Seq: 1, Time: at(-time.Hour), Kind: "planned", VM: web, Message: "an older failover"},
		{Host: 1, Seq: 2, Time: at(0), Kind: "declared-dead", Subject: 3, Severity: storage.SevError, Message: "heartbeat unchanged for 7.5s"},
		{Host: 1, Seq: 3, Time: at(300 * time.Millisecond), Kind: "planned", VM: web},
		{Host: 2, Seq: 1, Time: at(400 * time.Millisecond), Kind: "planned", VM: db},
		{Host: 1, Seq: 4, Time: at(500 * time.Millisecond), Kind: "lease-acquired", VM: web},
		{Host: 1, Seq: 5, Time: at(900 * time.Millisecond), Kind: "started", VM: web},
		{Host: 2, Seq: 2, Time: at(1200 * time.Millisecond), Kind: "started", VM: db},
	}
	recs := []storage.VMRecord{{Config: &storage.VMConfig{UUID: web, Name: "web"}}, {Config: &storage.VMConfig{UUID: db, Name: "db"}}}
	names := map[int]string{1: "kvm1", 2: "kvm2", 3: "kvm3"}
	incs := Incidents(evs, names, recs, 7500*time.Millisecond, at(time.Minute))
	if len(incs) != 1 {
		t.Fatalf("%d incidents, want 1: %+v", len(incs), incs)
	}
	inc := incs[0]
	if inc.Host != "kvm3" || inc.HostID != 3 || inc.How != "heartbeat" || !inc.Declared.Equal(t0) || !inc.Settled || inc.Severity != "warning" || inc.ID == "" {
		t.Errorf("incident %+v", inc)
	}
	if want := at(-7500 * time.Millisecond); !inc.LastHeartbeat.Equal(want) {
		t.Errorf("last heartbeat %v, want D before the declaration, %v", inc.LastHeartbeat, want)
	}
	want := map[string]struct {
		host             string
		planned, started time.Duration
	}{"web": {"kvm1", 300 * time.Millisecond, 900 * time.Millisecond}, "db": {"kvm2", 400 * time.Millisecond, 1200 * time.Millisecond}}
	if len(inc.VMs) != len(want) {
		t.Fatalf("VMs %+v, want web and db", inc.VMs)
	}
	for _, v := range inc.VMs {
		w := want[v.Name]
		if v.State != "started" || v.Host != w.host || !v.Planned.Equal(at(w.planned)) || !v.At.Equal(at(w.started)) || v.Took != w.started || v.UUID == "" {
			t.Errorf("VM %+v, want started on %s, planned at +%v, started at +%v", v, w.host, w.planned, w.started)
		}
	}
}

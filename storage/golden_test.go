package storage_test

import (
	"bytes"
	"compress/gzip"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// The golden LUN is a small image written by the format-v1 code of the
// release before format upgrades were tested (commit c3681a6): slots,
// mailboxes, VM records with leases, events, the cluster settings and the
// incident ledger. Every later build must read it back with every record
// intact (DESIGN.md, "Format upgrades": a daemon reads its own format and
// the previous one). Regenerate it only when the previous release's format
// changes, never to make a newer build pass:
//
//	go test ./storage -run TestGoldenLUN -update-golden-lun
var updateGoldenLUN = flag.Bool("update-golden-lun", false, "rewrite storage/testdata/lun-v1.img.gz with this build (only for a new released format)")

const goldenLUN = "testdata/lun-v1.img.gz"

// goldenGeometry keeps the image small: 320 blocks with the cluster-records area.
func goldenGeometry() storage.Geometry {
	return storage.Geometry{MaxHosts: 4, MaxVMs: 4, EventBlocks: 2, ConfigBlks: 2}
}

// The content of the golden LUN. Hosts 1 and 2 are alive, host 3 left;
// host 1 carries every slot field.
var (
	goldenWall    = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	goldenHosts   = map[int]string{1: "kvm1", 2: "kvm2", 3: "kvm3"}
	goldenGranted = []int{2, 3}
	goldenVerdict = storage.Verdict{HostID: 4, Gen: 7}
	goldenVMs     = []storage.VMConfig{
		{UUID: storage.UUID{1, 2, 3}, Name: "web1", Policy: []byte{1, 2, 3, 4}, XML: []byte("<domain type='kvm'><name>web1</name></domain>")},
		{UUID: storage.UUID{4, 5, 6}, Name: "db1", Policy: []byte{9}, XML: []byte("<domain type='kvm'><name>db1</name></domain>")},
	}
	goldenMigration = storage.Migration{Phase: storage.MigrationStarted, Target: 2, TargetGen: 1}
	goldenEvents    = []storage.Event{
		{Time: goldenWall, Severity: storage.SevInfo, Kind: "joined", Message: "kvm1 joined"},
		{Time: goldenWall.Add(time.Second), Severity: storage.SevWarning, Kind: "declared-dead", Subject: 4, VM: storage.UUID{1, 2, 3}, Message: "host 4 stalled for D"},
	}
	goldenMessage = storage.Message{Type: storage.MsgTest, From: 1, FromGen: 1, To: 2, ToGen: 1, Nonce: 77, Reason: "path test"}
	goldenTarget  = storage.NotifyTarget{Name: "ops", Kind: "mail", Address: "smtp.example.com:587", From: "wingman@example.com",
		To: []string{"ops@example.com"}, SecretFile: "/etc/wingman/smtp.pass", MinSeverity: storage.SevWarning, Timeout: 10 * time.Second}
	goldenIncident = storage.IncidentEntry{ID: "kvm4-dead-1", Stage: storage.IncidentOpened, By: 1, Recorded: goldenWall}
)

// TestGoldenLUN reads the golden image of the previous release with this
// build and checks every record.
func TestGoldenLUN(t *testing.T) {
	if *updateGoldenLUN {
		writeGoldenLUN(t)
	}
	l := openLUN(t, unpackGoldenLUN(t))
	ctx := testCtx(t)
	// The golden release wrote no lease ceiling: it reads as the default.
	oldDefaults := storage.DefaultTimings()
	oldDefaults.LeaseCeiling = 0
	if h := l.Header(); h.ClusterName != "golden" || h.Geometry != goldenGeometry() || h.Timings != oldDefaults || h.Version != 1 ||
		h.Timings.Ceiling() != storage.DefaultLeaseCeiling {
		t.Errorf("header: %+v", h)
	}
	views, err := l.ReadSlots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		name, used := goldenHosts[v.HostID]
		if v.Err != nil || v.Used() != used || v.Record.HostName != name {
			t.Errorf("slot %d: %+v, want host %q", v.HostID, v, name)
		}
	}
	h1, h2, h3 := views[0].Record, views[1].Record, views[2].Record
	if h1.State != storage.SlotAlive || h2.State != storage.SlotAlive || h3.State != storage.SlotLeft {
		t.Errorf("slot states %v %v %v, want alive alive left", h1.State, h2.State, h3.State)
	}
	if !reflect.DeepEqual(h1.SerfView.IDs(), []int{1, 2}) || !reflect.DeepEqual(h1.Granted.IDs(), goldenGranted) ||
		!reflect.DeepEqual(h1.Verdicts, []storage.Verdict{goldenVerdict}) || h1.Generation != 1 || h1.Sequence < 2 ||
		h1.Ack != (storage.MailboxAck{Nonce: 5, Type: storage.MsgTest, Result: storage.AckDone}) {
		t.Errorf("slot 1: %+v", h1)
	}
	msg, err := l.ReadMailbox(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	msg.Wall = time.Time{}
	if msg != goldenMessage {
		t.Errorf("mailbox of host 2: %+v, want %+v", msg, goldenMessage)
	}
	recs, errs := l.ReadVMs(ctx)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for i, want := range goldenVMs {
		r := recs[i]
		if r.Config == nil || r.Config.UUID != want.UUID || r.Config.Name != want.Name || !bytes.Equal(r.Config.Policy, want.Policy) ||
			!bytes.Equal(r.Config.XML, want.XML) || r.Config.Writer != 1 || r.Warning != nil {
			t.Errorf("VM record %d: %+v, want %+v", i, r.Config, want)
		}
		if !r.Lease.Held() || r.Lease.Owner.Host != 1 || r.Lease.Epoch != 1 {
			t.Errorf("VM record %d lease: %+v, want held by host 1 at epoch 1", i, r.Lease)
		}
	}
	if m := recs[0].Lease.Migration; m != goldenMigration || !recs[1].Lease.GuestUp {
		t.Errorf("lease marks: migration %+v (want %+v), guest up %v", m, goldenMigration, recs[1].Lease.GuestUp)
	}
	evs, err := l.ReadEvents(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(goldenEvents) {
		t.Fatalf("events: %+v, want %d", evs, len(goldenEvents))
	}
	for i, want := range goldenEvents {
		want.Host, want.Seq = 1, uint64(i+1)
		if got := evs[i]; !got.Time.Equal(want.Time) || got.Host != want.Host || got.Seq != want.Seq || got.Kind != want.Kind ||
			got.Message != want.Message || got.Subject != want.Subject || got.VM != want.VM || got.Severity != want.Severity {
			t.Errorf("event %d: %+v, want %+v", i, got, want)
		}
	}
	cr := storage.NewClusterRecords(l)
	s, err := cr.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Generation != 1 || s.Writer != 1 || !reflect.DeepEqual(s.Targets, []storage.NotifyTarget{goldenTarget}) {
		t.Errorf("settings: %+v", s)
	}
	led, err := cr.Incidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if led.Generation != 1 || len(led.Entries) != 1 || led.Entries[0].ID != goldenIncident.ID || !led.Entries[0].Recorded.Equal(goldenWall) {
		t.Errorf("incident ledger: %+v", led)
	}
}

// unpackGoldenLUN writes the golden image to a file that supports O_DIRECT.
func unpackGoldenLUN(t *testing.T) string {
	t.Helper()
	b := storage.GoldenImage(t)
	dir := t.TempDir()
	requireDirectIO(t, dir)
	p := filepath.Join(dir, "lun.img")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeGoldenLUN formats a LUN, fills it through the public API as a
// cluster would, and stores it gzipped.
func writeGoldenLUN(t *testing.T) {
	path := lunFile(t, storage.FormatOptions{ClusterName: "golden", Geometry: goldenGeometry(), Timings: storage.DefaultTimings()})
	l := openLUN(t, path)
	ctx := testCtx(t)
	hbs := map[int]*storage.Heartbeat{}
	for id := 1; id <= 3; id++ {
		hb, err := l.AcquireSlot(ctx, storage.AcquireOptions{HostName: goldenHosts[id], HostID: id})
		if err != nil {
			t.Fatal(err)
		}
		hbs[id] = hb
	}
	var view, granted storage.HostSet
	view.Add(1)
	view.Add(2)
	for _, id := range goldenGranted {
		granted.Add(id)
	}
	hb := hbs[1]
	hb.SetState(storage.SlotAlive)
	hb.SetSerfView(view)
	hb.SetGranted(granted)
	hb.SetVerdicts([]storage.Verdict{goldenVerdict})
	hb.Ack(storage.Message{Type: storage.MsgTest, Nonce: 5}, storage.AckDone)
	hbs[2].SetState(storage.SlotAlive)
	for _, id := range []int{1, 2} {
		if _, err := hbs[id].Renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := hbs[3].Release(ctx, storage.SlotLeft); err != nil {
		t.Fatal(err)
	}
	if _, err := l.SendMessage(ctx, goldenMessage); err != nil {
		t.Fatal(err)
	}
	me := storage.Owner{Host: 1, Gen: hb.Generation(), Nonce: 1}
	var leases []storage.LeaseState
	var idxs []int
	for _, cfg := range goldenVMs {
		idx, lease, err := l.ProtectVM(ctx, me, cfg)
		if err != nil {
			t.Fatal(err)
		}
		idxs, leases = append(idxs, idx), append(leases, lease)
	}
	if _, err := l.SetMigration(ctx, idxs[0], leases[0], goldenMigration); err != nil {
		t.Fatal(err)
	}
	if _, err := l.SetGuestUp(ctx, idxs[1], leases[1]); err != nil {
		t.Fatal(err)
	}
	el, err := l.EventLog(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range goldenEvents {
		if _, err := el.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	cr := storage.NewClusterRecords(l)
	if _, err := cr.WriteSettings(ctx, 1, storage.ClusterSettings{Targets: []storage.NotifyTarget{goldenTarget}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cr.WriteIncidents(ctx, 1, storage.IncidentLedger{Entries: []storage.IncidentEntry{goldenIncident}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(goldenLUN), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenLUN, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d bytes, %d compressed", goldenLUN, len(b), z.Len())
}

package journallog

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/wingmanha/wingman/storage"
)

type entry struct {
	msg    string
	pri    journal.Priority
	fields map[string]string
}

// recorder is a Sender that keeps what it was sent.
type recorder struct{ got []entry }

func (r *recorder) send(msg string, pri journal.Priority, fields map[string]string) error {
	r.got = append(r.got, entry{msg, pri, fields})
	return nil
}

func TestHandlerFields(t *testing.T) {
	var r recorder
	log := slog.New(New("wingmand", slog.LevelInfo, r.send)).With("host", "kvm1", "id", 1)
	log.Debug("not sent")
	log.WithGroup("lun").Warn("slow write", "took", "1.5s", "path", "/dev/mapper/wingman lun")
	log.Error("failover of web-1", slog.Group("vm", "name", "web-1"), "err", errors.New("no host has room"))

	want := []entry{
		{`slow write host=kvm1 id=1 lun.took=1.5s lun.path="/dev/mapper/wingman lun"`, journal.PriWarning, map[string]string{
			"SYSLOG_IDENTIFIER": "wingmand", "WINGMAN_HOST": "kvm1", "WINGMAN_ID": "1",
			"WINGMAN_LUN_TOOK": "1.5s", "WINGMAN_LUN_PATH": "/dev/mapper/wingman lun"}},
		{`failover of web-1 host=kvm1 id=1 vm.name=web-1 err="no host has room"`, journal.PriErr, map[string]string{
			"SYSLOG_IDENTIFIER": "wingmand", "WINGMAN_HOST": "kvm1", "WINGMAN_ID": "1",
			"WINGMAN_VM_NAME": "web-1", "WINGMAN_ERR": "no host has room"}},
	}
	if len(r.got) != len(want) {
		t.Fatalf("sent %d entries, want %d: %+v", len(r.got), len(want), r.got)
	}
	for i, w := range want {
		g := r.got[i]
		if g.msg != w.msg || g.pri != w.pri || !maps.Equal(g.fields, w.fields) {
			t.Errorf("entry %d:\n got %q %v %v\nwant %q %v %v", i, g.msg, g.pri, g.fields, w.msg, w.pri, w.fields)
		}
	}
}

func TestFieldName(t *testing.T) {
	for key, want := range map[string]string{
		"vm":            "WINGMAN_VM",
		"stalled_loops": "WINGMAN_STALLED_LOOPS",
		"lun.took":      "WINGMAN_LUN_TOOK",
		"héte-1":        "WINGMAN_H_TE_1",
	} {
		if got := FieldName(key); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", key, got, want)
		}
	}
	if got := FieldName(string(make([]byte, 100))); len(got) != 64 {
		t.Errorf("a 100-byte key makes a %d-character field name, want at most 64", len(got))
	}
}

// ring is an Appender that keeps the events.
type ring struct{ got []storage.Event }

func (r *ring) Append(_ context.Context, e storage.Event) (storage.Event, error) {
	r.got = append(r.got, e)
	return e, nil
}

func TestEventsLogAndAppend(t *testing.T) {
	var rec recorder
	var lun ring
	ev := Events{Ring: &lun, Log: slog.New(New("", slog.LevelInfo, rec.send)).With("host", "kvm1")}
	vm := storage.UUID{1}
	e := storage.Event{Severity: storage.SevWarning, Kind: "failover-started", VM: vm, Subject: 2, Message: "web-1 from kvm2"}
	if _, err := ev.Append(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if len(lun.got) != 1 || lun.got[0] != e {
		t.Errorf("the LUN got %+v, want the event", lun.got)
	}
	want := map[string]string{"WINGMAN_HOST": "kvm1", "WINGMAN_KIND": "failover-started", "WINGMAN_VM": vm.String(), "WINGMAN_SUBJECT": "2"}
	if len(rec.got) != 1 || rec.got[0].pri != journal.PriWarning || !maps.Equal(rec.got[0].fields, want) {
		t.Errorf("the journal got %+v, want a warning with %v", rec.got, want)
	}
}

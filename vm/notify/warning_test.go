package notify

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

func TestDueWarnings(t *testing.T) {
	const repeat, hold = 24 * time.Hour, time.Minute
	now := base.Add(48 * time.Hour)
	wd := func(active bool, since time.Duration) Check {
		return Check{Key: WarnWatchdog, Host: "kvm1", Title: "no hardware watchdog", Active: active, Since: now.Add(-since)}
	}
	id := warningID("kvm1", WarnWatchdog)
	entry := func(stage storage.IncidentStage, ago time.Duration) storage.IncidentLedger {
		return storage.IncidentLedger{Entries: []storage.IncidentEntry{{ID: "inc-other", Stage: storage.IncidentOpened},
			{ID: id, Stage: stage, By: 1, Recorded: now.Add(-ago)}}}
	}
	none := storage.IncidentLedger{Entries: []storage.IncidentEntry{{ID: "inc-other", Stage: storage.IncidentOpened}}}
	cases := []struct {
		name   string
		check  Check
		led    storage.IncidentLedger
		kind   string // "": nothing due
		repeat bool
	}{
		{"appears: sent once it held", wd(true, 2*time.Minute), none, KindWarning, false},
		{"appears: not before it held", wd(true, 10*time.Second), none, "", false},
		{"sent an hour ago: nothing (a restart changes nothing)", wd(true, 0), entry(storage.IncidentOpened, time.Hour), "", false},
		{"sent a day ago: repeated", wd(true, 0), entry(storage.IncidentOpened, 25*time.Hour), KindWarning, true},
		{"gone for long enough: cleared", wd(false, 5*time.Minute), entry(storage.IncidentOpened, time.Hour), KindCleared, false},
		{"gone only just: not yet cleared", wd(false, 5*time.Second), entry(storage.IncidentOpened, time.Hour), "", false},
		{"gone and cleared already: nothing", wd(false, 5*time.Minute), entry(storage.IncidentResolved, time.Hour), "", false},
		{"never sent and not there: nothing", wd(false, 5*time.Minute), none, "", false},
		{"back after it cleared: sent again", wd(true, 2*time.Minute), entry(storage.IncidentResolved, time.Hour), KindWarning, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			steps := DueWarnings([]Check{c.check}, c.led, 2, now, repeat, hold)
			if c.kind == "" {
				if len(steps) != 0 {
					t.Fatalf("due %+v, want nothing", steps)
				}
				return
			}
			if len(steps) != 1 || steps[0].Kind != c.kind || steps[0].Repeat != c.repeat {
				t.Fatalf("due %+v, want one %s (repeat %v)", steps, c.kind, c.repeat)
			}
			led := RecordWarnings(c.led, steps)
			if again := DueWarnings([]Check{c.check}, led, 3, now, repeat, hold); len(again) != 0 {
				t.Fatalf("due again after it was recorded: %+v", again)
			}
			n := 0
			for _, e := range led.Entries {
				if e.ID == id {
					n++
				}
			}
			if n != 1 || led.Entries[0].ID != "inc-other" {
				t.Fatalf("ledger %+v: want one entry for the warning, the incident kept", led.Entries)
			}
		})
	}
}

func TestWarningIDsAreStableAndDistinct(t *testing.T) {
	a, b, c := warningID("kvm1", WarnLatency), warningID("kvm2", WarnLatency), warningID("", WarnCapacity)
	if a != warningID("kvm1", WarnLatency) || a == b || b == c || len(a) > 47 {
		t.Fatalf("ids %q %q %q", a, b, c)
	}
}

func TestWarningNotification(t *testing.T) {
	now := base.Add(time.Hour)
	c := Check{Key: WarnCapacity, Title: "N+1 capacity lost", Active: true, Text: "if kvm2 fails, db stay down", Since: base}
	steps := DueWarnings([]Check{c}, storage.IncidentLedger{}, 2, now, 0, time.Minute)
	n := ForWarning(steps[0], "lab", "kvm2")
	if n.Kind != KindWarning || n.Severity != "warning" || n.Warning == nil || !strings.Contains(n.Text, "if kvm2 fails") ||
		!strings.Contains(n.Summary, "cluster lab") {
		t.Fatalf("notification %+v", n)
	}
	// A cluster-wide warning reaches a target that names hosts; a target
	// that wants only errors hears neither the warning nor its end.
	if !Wants(storage.NotifyTarget{Hosts: []string{"kvm1"}}, n) {
		t.Fatal("a cluster-wide warning is filtered by the hosts rule")
	}
	c.Active, c.Since = false, now
	cleared := ForWarning(DueWarnings([]Check{c}, RecordWarnings(storage.IncidentLedger{}, steps), 2, now.Add(time.Hour), 0, 0)[0], "lab", "kvm2")
	if cleared.Kind != KindCleared || cleared.Severity != "info" {
		t.Fatalf("cleared %+v", cleared)
	}
	for _, m := range []Notification{n, cleared} {
		if Wants(storage.NotifyTarget{MinSeverity: storage.SevError}, m) {
			t.Fatalf("an error-only target wants %s", m.Kind)
		}
		if !Wants(storage.NotifyTarget{MinSeverity: storage.SevWarning}, m) {
			t.Fatalf("a warning target does not want %s", m.Kind)
		}
	}
}

func TestDisarmCheckSaysWhoAndHowLong(t *testing.T) {
	st := quorum.DisarmStatus{Disarmed: true, Request: quorum.Disarm{Gen: 2, By: 3, For: time.Hour, Reason: "SAN firmware"}}
	c := DisarmCheck(st, 40*time.Minute)
	if !c.Active || c.Host != "" || !strings.Contains(c.Text, "Host 3 disarmed HA for 1h0m0s (40m0s left): SAN firmware") {
		t.Errorf("disarmed: %+v", c)
	}
	if c := DisarmCheck(quorum.DisarmStatus{}, 0); c.Active || c.Key != WarnDisarmed {
		t.Errorf("armed: %+v", c)
	}
}

// TestLUNCheck: a changed LUN header, or a damaged record, is a host
// warning that reaches the targets like the others; a sound LUN is none.
func TestLUNCheck(t *testing.T) {
	if c := LUNCheck("kvm1", nil, nil); c.Active {
		t.Fatalf("a sound LUN warns: %+v", c)
	}
	c := LUNCheck("kvm1", errors.New("LUN header changed: block 0 now holds zeros; run `wingman lun restore-header`"), []string{"lease of VM record 3: zeroed"})
	c.Since = base
	steps := DueWarnings([]Check{c}, storage.IncidentLedger{}, 1, base.Add(2*time.Minute), 0, time.Minute)
	if len(steps) != 1 {
		t.Fatalf("steps %+v", steps)
	}
	n := ForWarning(steps[0], "lab", "kvm1")
	if n.Kind != KindWarning || !strings.Contains(n.Text, "restore-header") || !strings.Contains(n.Text, "record 3") {
		t.Fatalf("notification %+v", n)
	}
}

// TestLUNMemberCheck: one failing LUN of three is a host warning of its
// own, which names the member; three working members are none.
func TestLUNMemberCheck(t *testing.T) {
	if c := LUNMemberCheck("kvm1", nil); c.Active {
		t.Fatalf("a working set warns: %+v", c)
	}
	c := LUNMemberCheck("kvm1", []string{"heartbeat LUN 2 of 3 (/dev/b) failing since 2026-12-05 12:00:00: I/O timed out"})
	c.Since = base
	steps := DueWarnings([]Check{c}, storage.IncidentLedger{}, 1, base.Add(2*time.Minute), 0, time.Minute)
	if len(steps) != 1 {
		t.Fatalf("steps %+v", steps)
	}
	n := ForWarning(steps[0], "lab", "kvm1")
	if n.Kind != KindWarning || !strings.Contains(n.Text, "LUN 2 of 3 (/dev/b)") || !strings.Contains(n.Text, "Nothing moves") {
		t.Fatalf("notification %+v", n)
	}
}

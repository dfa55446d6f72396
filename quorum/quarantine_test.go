package quorum

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parseQuarantineOpt reads a scenario's quarantine=THRESHOLD/WINDOW/DURATION.
func parseQuarantineOpt(v string) (QuarantineConfig, error) {
	parts := strings.Split(v, "/")
	if len(parts) != 3 {
		return QuarantineConfig{}, fmt.Errorf("quarantine=%q: want THRESHOLD/WINDOW/DURATION, like 3/1h/2h", v)
	}
	n, err := strconv.Atoi(parts[0])
	w, werr := time.ParseDuration(parts[1])
	d, derr := time.ParseDuration(parts[2])
	if err != nil || werr != nil || derr != nil {
		return QuarantineConfig{}, fmt.Errorf("quarantine=%q: want a number and two durations, like 3/1h/2h", v)
	}
	return QuarantineConfig{Threshold: n, Window: w, Duration: d}, nil
}

// formatQuarantine renders the record with times as offsets from epoch.
func formatQuarantine(r QuarantineRecord, epoch time.Time) string {
	var b strings.Builder
	at := func(t time.Time) string { return t.Sub(epoch).String() }
	for _, f := range r.Flaps {
		var ts []string
		for _, t := range f.At {
			ts = append(ts, at(t))
		}
		fmt.Fprintf(&b, "flaps host %d: dead-gen=%d pill=%v at [%s]\n", f.Host, f.DeadGen, len(f.PillNonces) > 0, strings.Join(ts, " "))
	}
	for _, q := range r.Hosts {
		fmt.Fprintf(&b, "quarantined host %d: since %s until %s by %s: %s\n", q.Host, at(q.Since), at(q.Until), q.By, q.Why)
	}
	if b.Len() == 0 {
		return "no flaps, nobody quarantined\n"
	}
	return b.String()
}

// decision is a quorate decision of coordinator 1 with hosts 1..n alive.
func decision(n int, verdicts []Verdict, isolated map[int]uint64) Decision {
	d := Decision{Quorate: true, Coordinator: 1, Verdicts: verdicts}
	for id := 1; id <= n; id++ {
		d.Hosts = append(d.Hosts, Host{ID: id, State: StateAlive, Isolated: isolated[id]})
	}
	for _, v := range verdicts {
		d.Hosts[v.ID-1].State, d.Hosts[v.ID-1].Gen = StateDead, v.Gen
	}
	return d
}

func TestQuarantineStep(t *testing.T) {
	t0 := wallEpoch
	cfg := DefaultQuarantineConfig()
	flapsAt := func(host int, ts ...time.Duration) QuarantineRecord {
		f := HostFlaps{Host: host, DeadGen: 1, PillNonces: []uint64{7}}
		for _, d := range ts {
			f.At = append(f.At, t0.Add(d))
		}
		return QuarantineRecord{Flaps: []HostFlaps{f}}
	}
	cases := []struct {
		name      string
		self      int
		rec       QuarantineRecord
		d         Decision
		now       time.Duration
		wantKinds string
		wantQ     []int
		changed   bool
	}{
		{name: "first verdict counts once", self: 1, d: decision(3, []Verdict{{3, 1}}, nil),
			wantKinds: "host-flapped", changed: true},
		{name: "a verdict already counted is not counted again", self: 1, rec: flapsAt(3, 0), d: decision(3, []Verdict{{3, 1}}, nil), now: time.Minute},
		{name: "the third flap within the window quarantines", self: 1, rec: flapsAt(3, 0, 10*time.Minute),
			d: decision(3, []Verdict{{3, 2}}, nil), now: 20 * time.Minute, wantKinds: "host-quarantined", wantQ: []int{3}, changed: true},
		{name: "an applied pill counts, once per nonce", self: 1, rec: flapsAt(3, 0, 10*time.Minute),
			d: decision(3, nil, map[int]uint64{3: 8}), now: 20 * time.Minute, wantKinds: "host-quarantined", wantQ: []int{3}, changed: true},
		{name: "the same pill again is no flap", self: 1, rec: flapsAt(3, 0, 10*time.Minute),
			d: decision(3, nil, map[int]uint64{3: 7}), now: 20 * time.Minute},
		{name: "flaps older than the window drop out", self: 1, rec: flapsAt(3, 0, 10*time.Minute),
			d: decision(3, []Verdict{{3, 2}}, nil), now: 65 * time.Minute, wantKinds: "host-flapped", changed: true},
		{name: "only the coordinator records", self: 2, d: decision(3, []Verdict{{3, 1}}, nil)},
		{name: "a minority records nothing", self: 1, d: func() Decision { d := decision(3, []Verdict{{3, 1}}, nil); d.Quorate = false; return d }()},
		{name: "a quarantine ends when its time runs out", self: 1,
			rec: QuarantineRecord{Hosts: []Quarantined{{Host: 2, Since: t0, Until: t0.Add(2 * time.Hour), By: "wingman"}}},
			d:   decision(3, nil, nil), now: 2 * time.Hour, wantKinds: "host-unquarantined", changed: true},
		{name: "and not before", self: 1,
			rec: QuarantineRecord{Hosts: []Quarantined{{Host: 2, Since: t0, Until: t0.Add(2 * time.Hour), By: "wingman"}}},
			d:   decision(3, nil, nil), now: 2*time.Hour - time.Second, wantQ: []int{2}},
		{name: "threshold 0: counted, never quarantined", self: 1, rec: flapsAt(3, 0, time.Minute, 2*time.Minute),
			d: decision(3, []Verdict{{3, 2}}, nil), now: 3 * time.Minute, wantKinds: "host-flapped", changed: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cf := cfg
			if strings.HasPrefix(c.name, "threshold 0") {
				cf.Threshold = 0
			}
			rec, events, changed := QuarantineStep(QuarantineInput{Self: c.self, Now: t0.Add(c.now), Config: cf, Record: c.rec, Decision: c.d})
			var kinds []string
			for _, e := range events {
				kinds = append(kinds, e.Kind)
			}
			if got := strings.Join(kinds, ","); got != c.wantKinds || changed != c.changed {
				t.Errorf("events %q changed %v, want %q %v", got, changed, c.wantKinds, c.changed)
			}
			if got := rec.Set().IDs(); fmt.Sprint(got) != fmt.Sprint(c.wantQ) {
				t.Errorf("quarantined %v, want %v", got, c.wantQ)
			}
		})
	}
}

// Two pills applied between two steps, seen by the observer in between,
// both count; a pill already counted, seen again, does not.
func TestQuarantineStepCountsWhatWasSeen(t *testing.T) {
	t0 := wallEpoch
	seen := []Flap{{Host: 3, PillNonce: 5, At: t0}, {Host: 3, PillNonce: 6, At: t0.Add(5 * time.Second)}, {Host: 3, PillNonce: 5, At: t0.Add(6 * time.Second)}}
	rec, events, changed := QuarantineStep(QuarantineInput{Self: 1, Now: t0.Add(10 * time.Second), Config: DefaultQuarantineConfig(),
		Decision: decision(3, nil, map[int]uint64{3: 7}), Seen: seen})
	if !changed || len(events) != 1 || events[0].Kind != "host-quarantined" {
		t.Fatalf("changed %v, events %+v: want the three pills to quarantine", changed, events)
	}
	if f := rec.Flaps[0]; fmt.Sprint(f.PillNonces) != "[5 6 7]" || f.At != nil {
		t.Errorf("flaps %+v: want pills 5 6 7 counted, times forgotten at the quarantine", f)
	}
	if len(FlapsIn(decision(3, []Verdict{{2, 4}}, map[int]uint64{3: 7}), t0)) != 2 {
		t.Error("FlapsIn: want the verdict and the pill")
	}
}

func TestQuarantineCommands(t *testing.T) {
	now := wallEpoch
	rec, e, err := QuarantineHost(QuarantineRecord{}, 2, "root@kvm1", now, time.Hour)
	if err != nil || e.Kind != "host-quarantined" || !rec.Set().Has(2) {
		t.Fatalf("quarantine: %v %v %v", rec, e, err)
	}
	if q, _ := rec.Quarantined(2); q.By != "root@kvm1" || !q.Until.Equal(now.Add(time.Hour)) {
		t.Errorf("quarantine recorded %+v", q)
	}
	if _, _, err := QuarantineHost(rec, 2, "root", now, time.Hour); !errors.Is(err, ErrAlreadyQuarantined) {
		t.Errorf("second quarantine: %v, want ErrAlreadyQuarantined", err)
	}
	if _, _, err := QuarantineHost(QuarantineRecord{}, 2, "root", now, 0); err == nil {
		t.Error("quarantine for 0: no error")
	}
	rec.Flaps = []HostFlaps{{Host: 2, DeadGen: 4, At: []time.Time{now}}}
	out, e, err := Unquarantine(rec, 2, "root@kvm3", now.Add(time.Minute))
	if err != nil || e.Kind != "host-unquarantined" || out.Set().Has(2) || len(out.Flaps[0].At) != 0 || out.Flaps[0].DeadGen != 4 {
		t.Fatalf("unquarantine: %+v %v %v", out, e, err)
	}
	if !strings.Contains(e.Message, "cleared by root@kvm3 (set by root@kvm1") {
		t.Errorf("unquarantine event %q: want who cleared it and who set it", e.Message)
	}
	if !rec.Set().Has(2) {
		t.Error("Unquarantine changed its input")
	}
	if _, _, err := Unquarantine(out, 2, "root", now); !errors.Is(err, ErrNotQuarantined) {
		t.Errorf("unquarantine again: %v, want ErrNotQuarantined", err)
	}
}

func TestQuarantinePlaceable(t *testing.T) {
	d := decision(4, []Verdict{{4, 1}}, nil)
	rec := QuarantineRecord{Hosts: []Quarantined{{Host: 1}}}
	if got := rec.Placeable(d); got != SetOf(2, 3) {
		t.Errorf("placeable %v, want [2 3]: alive and not quarantined", got)
	}
}

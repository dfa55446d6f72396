package quorum

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Quarantine of a flapping host, as Windows failover clustering's node
// quarantine: a host the cluster declared dead, or isolated with a poison
// pill, Threshold times within Window takes no new VM for Duration (or
// until an operator clears it). It keeps its own guests.
//
// Only the cluster's verdicts count, never a slot re-acquisition: a
// restart or crash of wingmand that the cluster did not declare dead is no
// flap (DESIGN.md promise 6). A verdict is a (host, generation) published
// in the slots, counted once per generation; an isolation is the nonce of
// a poison pill the host acknowledged having applied, counted once per
// nonce. The record lives on the LUN (the cluster settings register) and
// only the coordinator of a quorate partition changes it, so every host
// reads the same quarantined set. Its times are the recording
// coordinator's wall clock: a window of an hour does not mind the seconds
// between two hosts' clocks, and no liveness rule reads them.

// QuarantineConfig is the cluster-wide quarantine policy (`wingman config`).
type QuarantineConfig struct {
	// Threshold is how many flaps within Window quarantine a host; 0 turns
	// the automatic quarantine off (the command still works).
	Threshold int
	Window    time.Duration
	// Duration is how long a quarantine lasts unless cleared by command.
	Duration time.Duration
}

// DefaultQuarantineConfig is Windows failover clustering's default: 3
// flaps within an hour quarantine a host for 2 hours.
func DefaultQuarantineConfig() QuarantineConfig {
	return QuarantineConfig{Threshold: 3, Window: time.Hour, Duration: 2 * time.Hour}
}

// MaxFlapTimes is how many flap times the record keeps per host (the
// LUN's storage.MaxFlapTimes): the newest; a threshold is at most this.
const MaxFlapTimes = 16

// HostFlaps is what the record remembers of one host's flaps.
type HostFlaps struct {
	Host int
	// DeadGen is the newest generation whose verdict was counted, and
	// PillNonces the newest applied pills counted (at most MaxFlapTimes):
	// each is counted once.
	DeadGen    uint64
	PillNonces []uint64
	// At are the times of the flaps counted within the window, oldest first.
	At []time.Time
}

// Flap is one sign of a flap as a host observed it: a verdict on Host at
// generation DeadGen, or a poison pill it applied (PillNonce), first seen
// at At.
type Flap struct {
	Host      int
	DeadGen   uint64
	PillNonce uint64
	At        time.Time
}

// FlapsIn returns the signs of flaps that decision d shows at at: its
// verdicts, and the last pill each host applied. A pill is applied and
// replaced by the next no sooner than serf's detection and the pill's
// grace apart, so a caller that observes every decision, or every
// second, sees each; QuarantineStep counts each once.
func FlapsIn(d Decision, at time.Time) []Flap {
	var out []Flap
	for _, v := range d.Verdicts {
		out = append(out, Flap{Host: v.ID, DeadGen: v.Gen, At: at})
	}
	for _, h := range d.Hosts {
		if h.Isolated != 0 {
			out = append(out, Flap{Host: h.ID, PillNonce: h.Isolated, At: at})
		}
	}
	return out
}

// Quarantined is one host in quarantine.
type Quarantined struct {
	Host         int
	Since, Until time.Time
	By           string // "wingman" for the automatic quarantine, else the operator
	Why          string
}

// QuarantineRecord is the cluster's quarantine record, as stored on the LUN.
type QuarantineRecord struct {
	Flaps []HostFlaps   // by host id
	Hosts []Quarantined // by host id
}

// Quarantined returns host's quarantine, if it is in one.
func (r QuarantineRecord) Quarantined(host int) (Quarantined, bool) {
	i := slices.IndexFunc(r.Hosts, func(q Quarantined) bool { return q.Host == host })
	if i < 0 {
		return Quarantined{}, false
	}
	return r.Hosts[i], true
}

// Set is the set of quarantined hosts.
func (r QuarantineRecord) Set() Set {
	var s Set
	for _, q := range r.Hosts {
		s.Add(q.Host)
	}
	return s
}

// Placeable is the set of hosts that may take new VMs in d: alive, not
// quarantined.
func (r QuarantineRecord) Placeable(d Decision) Set {
	var s Set
	q := r.Set()
	for _, h := range d.Hosts {
		if h.State == StateAlive && !q.Has(h.ID) {
			s.Add(h.ID)
		}
	}
	return s
}

// Clone returns a deep copy of r.
func (r QuarantineRecord) Clone() QuarantineRecord {
	out := QuarantineRecord{Flaps: slices.Clone(r.Flaps), Hosts: slices.Clone(r.Hosts)}
	for i := range out.Flaps {
		out.Flaps[i].At = slices.Clone(out.Flaps[i].At)
		out.Flaps[i].PillNonces = slices.Clone(out.Flaps[i].PillNonces)
	}
	return out
}

// QuarantineInput is what QuarantineStep reads.
type QuarantineInput struct {
	Self     int
	Now      time.Time // the wall clock of this host, recorded in what it writes
	Config   QuarantineConfig
	Record   QuarantineRecord
	Decision Decision // this host's latest decision
	// Seen are the signs of flaps observed since the last step
	// (FlapsIn of the decisions in between), oldest first; those of
	// Decision count too, at Now.
	Seen []Flap
}

// QuarantineStep returns the record as the coordinator must write it, and
// the events of its changes (none, and changed false, when nothing is to
// write). Only the coordinator of a quorate partition records: on any
// other host it returns the record unchanged. It counts each new verdict
// and each newly applied pill (Seen, then FlapsIn(Decision)) when first seen,
// forgets flaps older than Window, quarantines a host with Threshold flaps
// in the window (and forgets them: the next quarantine needs as many new
// ones), and ends every quarantine whose Until has passed.
func QuarantineStep(in QuarantineInput) (QuarantineRecord, []Event, bool) {
	d := in.Decision
	if !d.Quorate || d.Coordinator != in.Self || in.Self == 0 {
		return in.Record, nil, false
	}
	rec, changed := in.Record.Clone(), false
	var events []Event
	flaps := func(host int) *HostFlaps {
		i := slices.IndexFunc(rec.Flaps, func(f HostFlaps) bool { return f.Host == host })
		if i < 0 {
			rec.Flaps = append(rec.Flaps, HostFlaps{Host: host})
			slices.SortFunc(rec.Flaps, func(a, b HostFlaps) int { return a.Host - b.Host })
			i = slices.IndexFunc(rec.Flaps, func(f HostFlaps) bool { return f.Host == host })
		}
		return &rec.Flaps[i]
	}
	why := map[int][]string{}
	for _, s := range append(slices.Clone(in.Seen), FlapsIn(d, in.Now)...) {
		switch f := flaps(s.Host); {
		case s.DeadGen > f.DeadGen:
			f.DeadGen, f.At, changed = s.DeadGen, append(f.At, s.At), true
			why[s.Host] = append(why[s.Host], fmt.Sprintf("declared dead at generation %d", s.DeadGen))
		case s.PillNonce != 0 && !slices.Contains(f.PillNonces, s.PillNonce):
			f.PillNonces, f.At, changed = append(f.PillNonces, s.PillNonce), append(f.At, s.At), true
			f.PillNonces = f.PillNonces[max(len(f.PillNonces)-MaxFlapTimes, 0):]
			why[s.Host] = append(why[s.Host], "isolated by a poison pill")
		}
	}
	cfg := in.Config
	for i := range rec.Flaps {
		f := &rec.Flaps[i]
		slices.SortFunc(f.At, time.Time.Compare)
		kept := slices.DeleteFunc(f.At, func(t time.Time) bool { return in.Now.Sub(t) >= cfg.Window })
		if len(kept) != len(f.At) {
			changed = true
		}
		f.At = kept[max(len(kept)-MaxFlapTimes, 0):]
		if cfg.Threshold <= 0 || len(f.At) < cfg.Threshold {
			if len(why[f.Host]) > 0 {
				events = append(events, Event{Kind: "host-flapped", Subject: f.Host,
					Message: fmt.Sprintf("%s: %d of %d flaps within %s toward quarantine", strings.Join(why[f.Host], ", "), len(f.At), cfg.Threshold, ShortDuration(cfg.Window))})
			}
			continue
		}
		if _, ok := rec.Quarantined(f.Host); ok {
			continue
		}
		q := Quarantined{Host: f.Host, Since: in.Now, Until: in.Now.Add(cfg.Duration), By: "wingman",
			Why: fmt.Sprintf("%d flaps within %s (last: %s)", len(f.At), ShortDuration(cfg.Window), strings.Join(why[f.Host], ", "))}
		f.At = nil
		rec.Hosts = insertQuarantine(rec.Hosts, q)
		events = append(events, quarantinedEvent(q))
	}
	rec.Hosts = slices.DeleteFunc(rec.Hosts, func(q Quarantined) bool {
		if in.Now.Before(q.Until) {
			return false
		}
		changed = true
		events = append(events, Event{Kind: "host-unquarantined", Subject: q.Host,
			Message: fmt.Sprintf("quarantine ended: its time ran out (set by %s at %s)", q.By, q.Since.UTC().Format(time.RFC3339))})
		return true
	})
	if len(events) > 0 {
		changed = true
	}
	return rec, events, changed
}

// Errors of the quarantine commands, for errors.Is.
var (
	ErrNotQuarantined     = errors.New("host is not quarantined")
	ErrAlreadyQuarantined = errors.New("host is already quarantined")
)

// QuarantineHost puts host in quarantine by an operator's command (by:
// who) from now for d, and returns the record to write and its event.
func QuarantineHost(rec QuarantineRecord, host int, by string, now time.Time, d time.Duration) (QuarantineRecord, Event, error) {
	if q, ok := rec.Quarantined(host); ok {
		return rec, Event{}, fmt.Errorf("%w: host %d since %s by %s, until %s", ErrAlreadyQuarantined, host,
			q.Since.UTC().Format(time.RFC3339), q.By, q.Until.UTC().Format(time.RFC3339))
	}
	if d <= 0 {
		return rec, Event{}, fmt.Errorf("quarantine of host %d for %v: the duration must be positive", host, d)
	}
	q := Quarantined{Host: host, Since: now, Until: now.Add(d), By: by, Why: "put in quarantine by command"}
	out := rec.Clone()
	out.Hosts = insertQuarantine(out.Hosts, q)
	return out, quarantinedEvent(q), nil
}

// Unquarantine ends host's quarantine by an operator's command (by: who)
// at now, forgets its flaps, and returns the record to write and its event.
func Unquarantine(rec QuarantineRecord, host int, by string, now time.Time) (QuarantineRecord, Event, error) {
	q, ok := rec.Quarantined(host)
	if !ok {
		return rec, Event{}, fmt.Errorf("%w: host %d", ErrNotQuarantined, host)
	}
	out := rec.Clone()
	out.Hosts = slices.DeleteFunc(out.Hosts, func(o Quarantined) bool { return o.Host == host })
	for i := range out.Flaps {
		if out.Flaps[i].Host == host {
			out.Flaps[i].At = nil
		}
	}
	return out, Event{Kind: "host-unquarantined", Subject: host,
		Message: fmt.Sprintf("quarantine cleared by %s (set by %s at %s)", by, q.By, q.Since.UTC().Format(time.RFC3339))}, nil
}

func insertQuarantine(qs []Quarantined, q Quarantined) []Quarantined {
	qs = append(slices.Clone(qs), q)
	slices.SortFunc(qs, func(a, b Quarantined) int { return a.Host - b.Host })
	return qs
}

func quarantinedEvent(q Quarantined) Event {
	return Event{Kind: "host-quarantined", Subject: q.Host, Error: true,
		Message: fmt.Sprintf("quarantined by %s until %s: %s; keeps its VMs, takes no new one", q.By, q.Until.UTC().Format(time.RFC3339), q.Why)}
}

// ShortDuration writes d as people do: 1h, not 1h0m0s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

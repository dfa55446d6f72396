package notify

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

// Kinds of the notifications of a proactive warning.
const (
	KindWarning = "warning" // a warning appeared, or is still there after the repeat interval
	KindCleared = "cleared" // a warning that was sent is gone
)

// Warning keys: one per condition, stable across releases (the ledger
// holds their hashes).
const (
	WarnCapacity = "capacity" // cluster-wide: the protected VMs no longer survive the loss of any one host
	WarnLatency  = "latency"  // host-local: heartbeat LUN latency near the self-fence limit
	WarnWatchdog = "watchdog" // host-local: no hardware watchdog
	WarnDisarmed = "disarmed" // cluster-wide: HA disarmed (`wingman ha disarm`)
	WarnLUN      = "lun"      // host-local: the LUN's header changed under it, or records it reads are damaged
	WarnLUNSet   = "lun-set"  // host-local: one of its three heartbeat LUNs fails (the other two carry the heartbeats)
)

// Defaults of the warnings.
const (
	DefaultWarningRepeat = 24 * time.Hour // a warning still there is sent again this often
	DefaultWarningHold   = time.Minute    // a warning (or its end) must hold this long to be sent
)

// Check is one warning condition as a host sees it now.
type Check struct {
	Key    string    // WarnCapacity, WarnLatency, WarnWatchdog
	Host   string    // the host it is about; "" for the cluster
	Title  string    // one line, the same whether it holds or not
	Active bool      // the warning holds now
	Text   string    // what is wrong and what to do, when Active
	Since  time.Time // since when Active has had its current value
}

// warningID is the ledger id of a warning condition: the same on every
// host and across restarts.
func warningID(host, key string) string {
	h := sha256.Sum256([]byte("wingman-warning/1 host=" + host + " key=" + key))
	return "wrn-" + hex.EncodeToString(h[:12])
}

// WarningStep is one warning notification that is due, and the ledger
// entry that records it.
type WarningStep struct {
	Check  Check
	Kind   string // KindWarning or KindCleared
	Repeat bool   // a warning sent before, still there after the repeat interval
	Entry  storage.IncidentEntry
}

// DueWarnings decides which warning notifications are due, from the checks
// a host owns and the ledger: a warning that appeared (held for hold), one
// still there repeat after it was last sent, and one that was sent and has
// cleared (for hold). The ledger keeps one entry per condition (its stage
// says whether the last message said "warning" or "cleared", its time
// when), so neither a restart nor a new coordinator sends it again. It is
// pure.
func DueWarnings(checks []Check, led storage.IncidentLedger, by int, now time.Time, repeat, hold time.Duration) []WarningStep {
	if repeat <= 0 {
		repeat = DefaultWarningRepeat
	}
	if hold < 0 {
		hold = 0
	}
	last := map[string]storage.IncidentEntry{}
	for _, e := range led.Entries {
		last[e.ID] = e // the newest entry of an id wins
	}
	var out []WarningStep
	for _, c := range checks {
		id := warningID(c.Host, c.Key)
		e, sent := last[id]
		open := sent && e.Stage == storage.IncidentOpened
		held := now.Sub(c.Since) >= hold
		step := WarningStep{Check: c, Entry: storage.IncidentEntry{ID: id, By: by, Recorded: now}}
		switch {
		case c.Active && !open && held:
			step.Kind, step.Entry.Stage = KindWarning, storage.IncidentOpened
		case c.Active && open && now.Sub(e.Recorded) >= repeat:
			step.Kind, step.Entry.Stage, step.Repeat = KindWarning, storage.IncidentOpened, true
		case !c.Active && open && held:
			step.Kind, step.Entry.Stage = KindCleared, storage.IncidentResolved
		default:
			continue
		}
		out = append(out, step)
	}
	return out
}

// RecordWarnings returns led with the entries of steps, each replacing the
// previous entry of its condition (one entry per condition, so warnings
// never crowd the incidents out of the ledger).
func RecordWarnings(led storage.IncidentLedger, steps []WarningStep) storage.IncidentLedger {
	out := led
	out.Entries = nil
	replaced := map[string]bool{}
	for _, s := range steps {
		replaced[s.Entry.ID] = true
	}
	for _, e := range led.Entries {
		if !replaced[e.ID] {
			out.Entries = append(out.Entries, e)
		}
	}
	for _, s := range steps {
		out.Entries = append(out.Entries, s.Entry)
	}
	if n := len(out.Entries); n > storage.MaxIncidents {
		out.Entries = out.Entries[n-storage.MaxIncidents:]
	}
	return out
}

// ForWarning returns the notification of a warning step, sent by sender in
// cluster.
func ForWarning(s WarningStep, cluster, sender string) Notification {
	c := s.Check
	where := "cluster " + cluster
	if c.Host != "" {
		where = "host " + c.Host
	}
	n := Notification{Schema: Schema, ID: fmt.Sprintf("%s-%d", s.Entry.ID, s.Entry.Recorded.Unix()), Kind: s.Kind, Cluster: cluster,
		Sender: sender, Time: s.Entry.Recorded.UTC(), sev: storage.SevWarning, hostName: c.Host,
		Warning: &WarningPayload{Key: c.Key, Host: c.Host, Title: c.Title, Since: c.Since.UTC(), Repeat: s.Repeat}}
	var b strings.Builder
	if s.Kind == KindCleared {
		n.sev = storage.SevInfo
		n.Summary = fmt.Sprintf("[%s] cleared on %s: %s", cluster, where, c.Title)
		fmt.Fprintf(&b, "The warning on %s is gone since %s:\n\n  %s\n", where, stamp(c.Since), c.Title)
	} else {
		n.Summary = fmt.Sprintf("[%s] warning on %s: %s", cluster, where, c.Title)
		if s.Repeat {
			n.Summary += " (still)"
		}
		fmt.Fprintf(&b, "Warning on %s, since %s:\n\n  %s\n\n%s\n", where, stamp(c.Since), c.Title, c.Text)
		b.WriteString("\nNothing has failed yet, but a failover may not work as it should. `wingman status` shows every warning.\n")
	}
	n.Severity, n.Text, n.Warning.Text = n.sev.String(), b.String(), c.Text
	return n
}

// HostChecks are the warning conditions a host owns: its heartbeat LUN
// latency (latency: heartbeat.LatencyWarning's text, "" when fine) and
// whether it runs without a hardware watchdog.
func HostChecks(host, latency string, softwareWatchdog bool) []Check {
	return []Check{
		{Key: WarnLatency, Host: host, Title: "heartbeat LUN latency near the self-fence limit", Active: latency != "", Text: latency},
		{Key: WarnWatchdog, Host: host, Title: "no hardware watchdog", Active: softwareWatchdog,
			Text: "A frozen host cannot be reset by the software watchdog alone. Load a watchdog driver (e.g. iTCO_wdt or ipmi_watchdog) and set watchdog.mode in wingman.toml."},
	}
}

// DisarmCheck is the cluster-wide condition "HA is disarmed" (st, with
// left to run on this host's clock): sent when it appears, and "cleared"
// when the cluster re-arms.
func DisarmCheck(st quorum.DisarmStatus, left time.Duration) Check {
	c := Check{Key: WarnDisarmed, Title: "HA disarmed: no failover and no fencing", Active: st.Disarmed}
	if st.Disarmed {
		r := st.Request
		c.Text = fmt.Sprintf("Host %d disarmed HA for %v (%v left): %s\nNo host is failed over or fenced until every host re-arms by itself, or `wingman ha arm`.",
			r.By, r.For, left.Round(time.Second), cmp.Or(r.Reason, "no reason given"))
	}
	return c
}

// LUNCheck is the warning condition of a host's heartbeat LUN: its header
// no longer the one read at start (header, nil when it is), or records
// that read damaged (storage.LUN.Damaged).
func LUNCheck(host string, header error, damaged []string) Check {
	var text []string
	if header != nil {
		text = append(text, header.Error())
	}
	text = append(text, damaged...)
	return Check{Key: WarnLUN, Host: host, Title: "heartbeat LUN header changed or records damaged", Active: len(text) > 0,
		Text: strings.Join(text, "\n") + "\nUntil it is repaired this host declares nobody dead and starts nothing that depends on it; `wingman lun verify` lists the damage."}
}

// LUNMemberCheck is the warning condition of a host's set of three
// heartbeat LUNs: failing, one text each (none: every member works).
func LUNMemberCheck(host string, failing []string) Check {
	return Check{Key: WarnLUNSet, Host: host, Title: "a heartbeat LUN of three fails", Active: len(failing) > 0,
		Text: strings.Join(failing, "\n") + "\nNothing moves while two of three work; repair or replace the failing LUN before a second one fails."}
}

// CapacityCheck is the cluster-wide warning condition: the protected VMs
// would not all restart after the loss of any one host (problems say
// which would stay down).
func CapacityCheck(survivable bool, problems []string) Check {
	return Check{Key: WarnCapacity, Title: "N+1 capacity lost: not every protected VM restarts if a host fails", Active: !survivable,
		Text: strings.Join(problems, "\n") + "\nAdd memory or a host, or lower the priority of some VMs (`wingman status` shows the verdict)."}
}

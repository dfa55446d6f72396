package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// DefaultHorizon is how old a settled incident may be and still be sent:
// a cluster that ran without notifications (or whose ledger forgot an
// incident) does not mail its whole event ring when they are switched on.
const DefaultHorizon = time.Hour

// DueNotification is one notification the ledger has not seen yet.
type DueNotification struct {
	Incident Incident
	Kind     string // KindIncident or KindResolved
	Stage    storage.IncidentStage
}

// Claimed reports whether led already holds (id, stage).
func Claimed(led storage.IncidentLedger, id string, stage storage.IncidentStage) bool {
	for _, e := range led.Entries {
		if e.ID == id && e.Stage == stage {
			return true
		}
	}
	return false
}

// Due returns, oldest first, the notifications of incs that the ledger has
// not claimed: a settled incident, then its "resolved" message once its
// incident was claimed (never a "resolved" alone). Incidents that settled
// (or resolved) more than horizon before now are left out.
func Due(incs []Incident, led storage.IncidentLedger, now time.Time, horizon time.Duration) []DueNotification {
	if horizon <= 0 {
		horizon = DefaultHorizon
	}
	var out []DueNotification
	for _, inc := range incs {
		if !inc.Settled {
			continue
		}
		opened := Claimed(led, inc.ID, storage.IncidentOpened)
		if !opened && now.Sub(inc.SettledAt) <= horizon {
			out = append(out, DueNotification{Incident: inc, Kind: KindIncident, Stage: storage.IncidentOpened})
			opened = true
		}
		if opened && inc.Resolved && !Claimed(led, inc.ID, storage.IncidentResolved) && now.Sub(inc.ResolvedAt) <= horizon {
			out = append(out, DueNotification{Incident: inc, Kind: KindResolved, Stage: storage.IncidentResolved})
		}
	}
	return out
}

// Claim returns led with (id, stage) recorded as claimed by host at now,
// and false if it was claimed already (then led is returned unchanged).
func Claim(led storage.IncidentLedger, id string, stage storage.IncidentStage, by int, now time.Time) (storage.IncidentLedger, bool) {
	if Claimed(led, id, stage) {
		return led, false
	}
	out := led
	out.Entries = append(append([]storage.IncidentEntry(nil), led.Entries...),
		storage.IncidentEntry{ID: id, Stage: stage, By: by, Recorded: now})
	if n := len(out.Entries); n > storage.MaxIncidents {
		out.Entries = out.Entries[n-storage.MaxIncidents:]
	}
	return out, true
}

// Ledger is the incident ledger on the LUN (*storage.ClusterRecords).
type Ledger interface {
	Incidents(ctx context.Context) (storage.IncidentLedger, error)
	WriteIncidents(ctx context.Context, me int, led storage.IncidentLedger) (storage.IncidentLedger, error)
}

// Round is one pass of the coordinator's notifications: it claims every
// due notification in the ledger first (one compare-and-swap for all of
// them) and only then queues them on the sender. A daemon restart or a
// new coordinator reads the claims and sends nothing twice; a claim whose
// sending was cut short by a crash is lost rather than repeated, and the
// claim in the ledger says so. Only the coordinator may call it.
//
// It returns the notifications queued. On a conflict (another host
// claimed meanwhile, say an old coordinator finishing its round) it
// re-reads and claims what is still due.
func Round(ctx context.Context, led Ledger, me int, facts Facts, horizon time.Duration, cluster, sender string,
	targets []storage.NotifyTarget, s *Sender) ([]Notification, error) {
	incs := Summarize(facts)
	return claimThenSend(ctx, led, me, "notifications", targets, s, func(cur storage.IncidentLedger) (storage.IncidentLedger, []Notification) {
		next, ns := cur, []Notification(nil)
		for _, d := range Due(incs, cur, facts.Now, horizon) {
			next, _ = Claim(next, d.Incident.ID, d.Stage, me, facts.Now)
			ns = append(ns, ForIncident(d.Incident, d.Kind, cluster, sender))
		}
		return next, ns
	})
}

// claimThenSend reads the ledger, asks due what is due and the ledger that
// records its claims, writes that ledger by compare-and-swap (from a fresh
// read again after a conflict) and only then queues the notifications.
func claimThenSend(ctx context.Context, led Ledger, me int, what string, targets []storage.NotifyTarget, s *Sender,
	due func(storage.IncidentLedger) (storage.IncidentLedger, []Notification)) ([]Notification, error) {
	for {
		cur, err := led.Incidents(ctx)
		if err != nil {
			return nil, fmt.Errorf("notify: read incident ledger: %w", err)
		}
		next, ns := due(cur)
		if len(ns) == 0 {
			return nil, nil
		}
		if _, err := led.WriteIncidents(ctx, me, next); err != nil {
			if errors.Is(err, storage.ErrConflict) && ctx.Err() == nil {
				continue
			}
			return nil, fmt.Errorf("notify: claim %d %s in the incident ledger (nothing sent): %w", len(ns), what, err)
		}
		var errs []error
		for _, n := range ns {
			if err := s.Send(targets, n); err != nil {
				errs = append(errs, err)
			}
		}
		return ns, errors.Join(errs...)
	}
}

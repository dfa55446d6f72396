package apiview

import (
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/notify"
)

// Incidents are the failovers that evs (every host's ring) tell, as
// notify.Summarize finds them at now, with host names, VM names (from the
// VM records), when each VM was planned, and, for a host declared dead by
// its heartbeat, when that heartbeat last changed (dead, D, before the
// declaration).
func Incidents(evs []storage.Event, names map[int]string, recs []storage.VMRecord, dead time.Duration, now time.Time) []api.Incident {
	vmNames := map[storage.UUID]string{}
	for _, rec := range recs {
		if rec.Config != nil {
			vmNames[rec.Config.UUID] = rec.Config.Name
		}
	}
	// No LostVMs: a lost host's VMs are those planned after its
	// declaration, which every host reads alike from the events.
	incs := notify.Summarize(notify.Facts{Events: evs, HostNames: names, VMNames: vmNames, Now: now})
	out := make([]api.Incident, 0, len(incs))
	for _, inc := range incs {
		ai := api.Incident{ID: inc.ID, Host: inc.Host, HostID: inc.HostID, Lost: inc.Lost, Declared: inc.Declared, How: inc.How,
			Reason: inc.Reason, VMs: make([]api.IncidentVM, 0, len(inc.VMs)), Settled: inc.Settled, SettledAt: inc.SettledAt,
			Resolved: inc.Resolved, ResolvedAt: inc.ResolvedAt, Severity: inc.Severity.String()}
		if inc.How == notify.DeclaredHeartbeat {
			ai.LastHeartbeat = inc.Declared.Add(-dead)
		}
		for _, v := range inc.VMs {
			ai.VMs = append(ai.VMs, api.IncidentVM{Name: v.Name, UUID: v.UUID.String(), State: v.State, Host: v.Host,
				Planned: planned(evs, v.UUID, inc.Declared.Add(-dead), v.At), At: v.At, Took: v.Took, Message: v.Message})
		}
		out = append(out, ai)
	}
	return out
}

// planned is when the VM id was first planned for a restart between from
// and its start at (zero: no bound), or zero if it was not. Every host
// judges a lost host itself: the host that restarts a VM may plan it just
// before the coordinator writes its declaration, so from is D before it.
func planned(evs []storage.Event, id storage.UUID, from, at time.Time) time.Time {
	var first time.Time
	for _, e := range evs {
		in := !e.Time.Before(from) && (at.IsZero() || !e.Time.After(at))
		if e.Kind == "planned" && e.VM == id && in && (first.IsZero() || e.Time.Before(first)) {
			first = e.Time
		}
	}
	return first
}

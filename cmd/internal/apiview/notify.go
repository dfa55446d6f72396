package apiview

import (
	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/notify"
)

var severities = map[string]storage.Severity{"": storage.SevInfo, "info": storage.SevInfo, "warning": storage.SevWarning, "error": storage.SevError}

// NotifyTargets are the stored targets with this host's delivery counts
// (and err, as it is).
func NotifyTargets(ts []notify.TargetStatus, err error) ([]api.NotifyTarget, error) {
	out := make([]api.NotifyTarget, 0, len(ts))
	for _, t := range ts {
		a := api.NotifyTarget{Name: t.Name, Kind: t.Kind, Address: t.Address, From: t.From, To: t.To, User: t.User,
			SecretFile: t.SecretFile, MinSeverity: t.MinSeverity.String(), Kinds: t.Kinds, Hosts: t.Hosts, Timeout: t.Timeout}
		if c := t.Count; t.Tried {
			a.Counts = &api.NotifyCounts{Sent: c.Sent, Failed: c.Failed, GaveUp: c.GaveUp, Retried: c.Retries}
		}
		out = append(out, a)
	}
	return out, err
}

// StorageTarget is the target to store for a (notify.AddTarget validates
// the rest).
func StorageTarget(a api.NotifyTarget) (storage.NotifyTarget, error) {
	sev, ok := severities[a.MinSeverity]
	if !ok {
		return storage.NotifyTarget{}, api.Fail(api.ErrInvalid, "use info, warning or error", "target %q: minimum severity %q", a.Name, a.MinSeverity)
	}
	return storage.NotifyTarget{Name: a.Name, Kind: a.Kind, Address: a.Address, From: a.From, To: a.To, User: a.User,
		SecretFile: a.SecretFile, MinSeverity: sev, Kinds: a.Kinds, Hosts: a.Hosts, Timeout: a.Timeout}, nil
}

// NotifyTests are the results of a test notification.
func NotifyTests(rs []notify.TestResult) []api.NotifyTestResult {
	out := make([]api.NotifyTestResult, 0, len(rs))
	for _, r := range rs {
		x := api.NotifyTestResult{Target: r.Target, Kind: r.Kind, OK: r.Err == nil, Took: r.Took}
		if r.Err != nil {
			x.Error = r.Err.Error()
		}
		out = append(out, x)
	}
	return out
}

package apiview

import (
	"context"
	"fmt"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum"
)

// Quarantiner is vm/quarantine's Service as the API uses it.
type Quarantiner interface {
	Record() quorum.QuarantineRecord
	Quarantine(ctx context.Context, host, by string) (quorum.Quarantined, error)
	Unquarantine(ctx context.Context, host, by string) (quorum.Quarantined, error)
}

// MarkQuarantined sets the quarantine of each quarantined host of hosts.
func MarkQuarantined(hosts []api.Host, rec quorum.QuarantineRecord) {
	for i := range hosts {
		if q, ok := rec.Quarantined(hosts[i].ID); ok {
			hosts[i].Quarantine = hostQuarantine(q)
		}
	}
}

func hostQuarantine(q quorum.Quarantined) *api.HostQuarantine {
	return &api.HostQuarantine{Since: q.Since.UTC(), Until: q.Until.UTC(), By: q.By, Why: q.Why}
}

// Quarantine is POST /v1/hosts/{host}/quarantine: it changes the record on
// the LUN from this host (a compare-and-swap: any host may), recording who
// (the caller, on this host).
func Quarantine(ctx context.Context, q Quarantiner, host string, req api.QuarantineRequest, caller, self string) (api.QuarantineResult, error) {
	by := fmt.Sprintf("%s on %s", caller, self)
	if caller == "" {
		by = "an operator on " + self
	}
	change := q.Unquarantine
	if req.Quarantine {
		change = q.Quarantine
	}
	got, err := change(ctx, host, by)
	res := api.QuarantineResult{Host: host}
	if err == nil && got.Host != 0 {
		res.Quarantine = hostQuarantine(got)
	}
	return res, err
}

package main

// The API of vm/maintenance: maintenance mode, evacuation, and the rolling
// update's steps on a host, forwarded to that host.

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/forward"
	"github.com/wingmanha/wingman/vm/maintenance"
)

// evacuationAnswerLimit keeps an evacuation's progress within one
// forwarded answer, with room for the envelope.
const evacuationAnswerLimit = forward.AnswerBudget - 240

// apiExec is POST /v1/hosts/{host}/exec: it runs on that host, forwarded
// over serf, and waits for the command to end (the caller going away does
// not kill it: a half-applied patch is worse than a finished one).
func (d apiServer) apiExec(ctx context.Context, r *http.Request, req api.ExecRequest) (any, error) {
	if strings.TrimSpace(req.Command) == "" {
		return nil, api.Fail(api.ErrInvalid, `send {"command": "..."}`, "no command to run")
	}
	if b, _ := json.Marshal(req.Command); len(b) > maintenance.ExecCommandMax {
		return nil, api.Fail(api.ErrInvalid, "put a longer script in a file on the hosts and run that",
			"the command is %d bytes as JSON; at most %d travel to another host in one serf query", len(b), maintenance.ExecCommandMax)
	}
	if req.Timeout < 0 {
		return nil, api.Fail(api.ErrInvalid, "give a positive timeout, or none for the host's maintenance.exec_timeout", "timeout %v is negative", req.Timeout)
	}
	if req.Timeout == 0 {
		req.Timeout = d.config.Values().ExecTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, execTimeout(req))
	defer cancel()
	return onHost(ctx, d, d.ops.exec, r.PathValue("host"), req)
}

// apiReboot is POST /v1/hosts/{host}/reboot.
func (d apiServer) apiReboot(ctx context.Context, r *http.Request, req api.RebootRequest) (any, error) {
	if req.Failback && !req.ExitMaintenance {
		return nil, api.Fail(api.ErrInvalid, "add exit_maintenance, or leave failback out", "failback needs exit_maintenance: VMs move back only when the host leaves maintenance")
	}
	return onHost(ctx, d, d.ops.reboot, r.PathValue("host"), req)
}

// apiEvacuationPlan is GET /v1/hosts/{host}/evacuation-plan: what entering
// maintenance on the host would move where, computed here from the LUN and
// the cluster view every host shares.
func (d apiServer) apiEvacuationPlan(ctx context.Context, host string) (api.EvacuationPlan, error) {
	h, err := d.resolveHost(host)
	if err != nil {
		return api.EvacuationPlan{}, err
	}
	if h.State.Gone() {
		return api.EvacuationPlan{}, api.Fail(api.ErrConflict, "its VMs are restarted by failover, not migrated", "%s is %s", h.Name, h.State)
	}
	moves, unplaced, err := d.vms.EvacuationPlanOf(ctx, d.decision(), h.ID)
	if err != nil {
		return api.EvacuationPlan{}, err
	}
	names := d.slotNames()
	p := api.EvacuationPlan{Host: h.Name, Moves: []api.EvacuationMove{}, Unplaced: unplaced}
	for _, m := range moves {
		to := m.ToName
		if to == "" {
			to = names[m.To]
		}
		p.Moves = append(p.Moves, api.EvacuationMove{VM: m.Name, To: to})
	}
	return p, nil
}

package main

// The API of vm/maintenance: maintenance mode, evacuation, and the rolling
// update's steps on a host, forwarded to that host.

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/maintenance"
)

// evacuationAnswerLimit keeps an evacuation's progress within one serf
// query response (about 1,000 bytes with the forwarding envelope).
const evacuationAnswerLimit = 640

// apiEvacuation is e as the API shows it.
func apiEvacuation(e maintenance.Evacuation) api.Evacuation {
	out := api.Evacuation{Host: e.Host, Running: e.Running, Started: e.Started, Ended: e.Ended, Planned: e.Planned,
		Done: e.Done, Failed: e.Failed, Hidden: e.Hidden, Parallel: e.Parallel, Errors: e.Errors, Error: e.Error}
	for _, p := range e.Active {
		out.Active = append(out.Active, api.MigrationProgress(p))
	}
	return out
}

// decodeHostRequest reads the JSON body of a host command (an empty body
// is the zero request).
func decodeHostRequest(r *http.Request, into any, example string) (json.RawMessage, error) {
	var body json.RawMessage
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(&body); err != nil {
			return nil, badRequest("send "+example, "decode request: %v", err)
		}
		if err := json.Unmarshal(body, into); err != nil {
			return nil, badRequest("send "+example, "decode request: %v", err)
		}
	}
	return body, nil
}

// apiExec is POST /v1/hosts/{host}/exec: it runs on that host, forwarded
// over serf, and waits for the command to end (the caller going away does
// not kill it: a half-applied patch is worse than a finished one).
func (d apiServer) apiExec(r *http.Request) (any, error) {
	var req api.ExecRequest
	if _, err := decodeHostRequest(r, &req, `{"command": "apt-get -y upgrade", "timeout_ns": 1800000000000}`); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Command) == "" {
		return nil, badRequest(`send {"command": "..."}`, "no command to run")
	}
	if b, _ := json.Marshal(req.Command); len(b) > maintenance.ExecCommandMax {
		return nil, badRequest("put a longer script in a file on the hosts and run that",
			"the command is %d bytes as JSON; at most %d travel to another host in one serf query", len(b), maintenance.ExecCommandMax)
	}
	if req.Timeout < 0 {
		return nil, badRequest("give a positive timeout, or none for the host's maintenance.exec_timeout", "timeout %v is negative", req.Timeout)
	}
	if req.Timeout == 0 {
		req.Timeout = d.cfg.Maintenance.ExecTimeout.Duration
	}
	b, _ := json.Marshal(req)
	c := command{Op: "exec", Host: r.PathValue("host"), Body: b}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), commandTimeout(c))
	defer cancel()
	return d.hostCommand(ctx, c)
}

// apiReboot is POST /v1/hosts/{host}/reboot.
func (d apiServer) apiReboot(r *http.Request) (any, error) {
	var req api.RebootRequest
	body, err := decodeHostRequest(r, &req, `{"exit_maintenance": true, "failback": true}`)
	if err != nil {
		return nil, err
	}
	if req.Failback && !req.ExitMaintenance {
		return nil, badRequest("add exit_maintenance, or leave failback out", "failback needs exit_maintenance: VMs move back only when the host leaves maintenance")
	}
	return d.hostCommand(context.WithoutCancel(r.Context()), command{Op: "reboot", Host: r.PathValue("host"), Body: body})
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
		return api.EvacuationPlan{}, vm.Refuse(vm.ErrConflict, "its VMs are restarted by failover, not migrated", "%s is %s", h.Name, h.State)
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

// commandTimeout bounds a command's run on its host: an exec may take its
// own timeout, plus a minute to report.
func commandTimeout(c command) time.Duration {
	t := 10 * time.Minute
	if c.Op == "exec" {
		var req api.ExecRequest
		if json.Unmarshal(c.Body, &req) == nil && req.Timeout+time.Minute > t {
			t = req.Timeout + time.Minute
		}
	}
	return t
}

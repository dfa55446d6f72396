package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/drill"
	"github.com/wingmanha/wingman/vm/maintenance"
	"github.com/wingmanha/wingman/vm/plan"
)

// command is an API request that one particular host must carry out: the
// owner of a VM, the host entering maintenance. It travels over serf when
// that host is not this one.
type command struct {
	Op   string          `json:"op"`
	VM   string          `json:"vm,omitempty"`
	Host string          `json:"host,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
	// To is the host id that must run it (set when forwarding).
	To int `json:"to,omitempty"`
}

// commandResult is the answer to a forwarded command.
type commandResult struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Status int             `json:"status,omitempty"`
	Hint   string          `json:"hint,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// CommandQuery is the serf query name that carries forwarded commands.
const CommandQuery = "wingman-cmd"

// vmCommand runs a VM command here if this host must, else forwards it to
// the VM's owner.
func (d apiServer) vmCommand(ctx context.Context, c command) (any, error) {
	self := d.slot.HostID()
	owner, err := d.ownerOf(ctx, c.VM)
	switch {
	case errors.Is(err, vm.ErrNotFound) && c.Op == "protect":
		owner = self // an unprotected local domain
	case err != nil:
		return nil, err
	}
	if owner != 0 && owner != self {
		c.To = owner
		return d.forward(ctx, c)
	}
	return d.runCommand(ctx, c)
}

// ownerOf is the host that holds the VM's lease (0: nobody), as the VM
// manager finds it.
func (d apiServer) ownerOf(ctx context.Context, nameOrUUID string) (int, error) {
	r, _, err := d.vms.Find(ctx, nameOrUUID)
	if err != nil || !r.Lease.Held() {
		return 0, err
	}
	return r.Lease.Owner.Host, nil
}

// decodeBody decodes a command's JSON body into into (an empty body
// leaves it zero).
func decodeBody(c command, what string, into any) error {
	if len(c.Body) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.Body, into); err != nil {
		return badRequest("", "decode %s: %v", what, err)
	}
	return nil
}

// runCommand carries out a command on this host.
func (d apiServer) runCommand(ctx context.Context, c command) (any, error) {
	switch c.Op {
	case "protect", "policy":
		var req api.ProtectRequest
		if err := decodeBody(c, "policy", &req); err != nil {
			return nil, err
		}
		if c.Op == "protect" {
			p, err := applyAPIPolicy(plan.DefaultPolicy(), req.Policy)
			if err != nil {
				return nil, err
			}
			return d.protect(ctx, c.VM, vm.RecordPolicy{Policy: p}, vm.ProtectOptions{Force: req.Force})
		}
		_, rp, err := d.vms.Find(ctx, c.VM)
		if err != nil {
			return nil, err
		}
		if rp.Policy, err = applyAPIPolicy(rp.Policy, req.Policy); err != nil {
			return nil, err
		}
		if err := d.vms.SetPolicy(ctx, c.VM, rp); err != nil {
			return nil, err
		}
		return d.apiVM(ctx, c.VM)
	case "unprotect":
		return nil, d.vms.Unprotect(ctx, c.VM)
	case "start":
		return nil, d.vms.Start(ctx, c.VM)
	case "stop":
		return nil, d.vms.Stop(ctx, c.VM)
	case "migrate":
		var req api.MigrateRequest
		if err := decodeBody(c, "request", &req); err != nil {
			return nil, err
		}
		return d.migrate(ctx, c.VM, req.Target)
	case "maintenance":
		var req api.MaintenanceRequest
		if err := json.Unmarshal(c.Body, &req); err != nil {
			return nil, badRequest("", "decode request: %v", err)
		}
		if err := d.maint.Set(ctx, maintenance.Request(req)); err != nil {
			return nil, err
		}
		return d.apiHost(ctx, d.cfg.HostName)
	case "evacuation":
		return apiEvacuation(d.maint.Evacuation(evacuationAnswerLimit)), nil
	case "exec":
		var req api.ExecRequest
		if err := json.Unmarshal(c.Body, &req); err != nil {
			return nil, badRequest("", "decode request: %v", err)
		}
		res, err := d.maint.Exec(ctx, maintenance.ExecRequest(req))
		return api.ExecResult(res), err
	case "reboot":
		var req api.RebootRequest
		if err := decodeBody(c, "request", &req); err != nil {
			return nil, err
		}
		res, err := d.maint.Reboot(ctx, maintenance.RebootRequest(req))
		return api.RebootResult(res), err
	case "qmp":
		return d.qmpDiagnostics(ctx, c.VM), nil
	case "drill-check":
		var req drill.CheckRequest
		if err := decodeBody(c, "drill-check", &req); err != nil {
			return nil, err
		}
		return d.drills.AnswerCheck(ctx, req)
	case "drill-live":
		var req drill.LiveRequest
		if err := decodeBody(c, "drill-live", &req); err != nil {
			return nil, err
		}
		hop, err := d.drills.LiveHop(ctx, req)
		return api.DrillHop(hop), err
	case "drill-cleanup":
		return nil, d.drills.Cleanup(ctx)
	case "disk-check":
		var req drill.DiskCheckRequest
		if err := decodeBody(c, "disk-check", &req); err != nil {
			return nil, err
		}
		return d.drills.AnswerDiskCheck(ctx, req)
	}
	return nil, badRequest("", "unknown command %q", c.Op)
}

func (d apiServer) migrate(ctx context.Context, name, target string) (api.MigrateResult, error) {
	var to quorum.Host
	if target == "" {
		moves, _, err := d.vms.EvacuationPlan(ctx, d.decision())
		if err != nil {
			return api.MigrateResult{}, err
		}
		for _, m := range moves {
			if m.Name == name || strings.EqualFold(m.UUID, name) {
				to, _ = d.resolveHost(strconv.Itoa(m.To))
			}
		}
		if to.ID == 0 {
			return api.MigrateResult{}, badRequest("name a target host", "no host has room for %q", name)
		}
	} else {
		h, err := d.resolveHost(target)
		if err != nil {
			return api.MigrateResult{}, err
		}
		to = h
	}
	if to.ID == d.slot.HostID() {
		return api.MigrateResult{}, badRequest("name another host", "%q already runs on %s", name, to.Name)
	}
	res, err := d.vms.Migrate(ctx, name, to.ID)
	if err != nil {
		return api.MigrateResult{}, err
	}
	// Return once the target holds the lease (its next step claims it), so
	// that the next command about this VM goes to its new owner.
	t := d.hdr.Timings
	deadline := time.Now().Add(4*t.Renew + 2*t.IOTimeout)
	for time.Now().Before(deadline) {
		if owner, err := d.ownerOf(ctx, name); err == nil && owner == to.ID {
			break
		}
		time.Sleep(t.Renew / 5)
	}
	return api.MigrateResult{VM: name, From: d.cfg.HostName, To: to.Name, Duration: res.Wall, Downtime: res.Downtime, Bytes: res.DataTransferred}, nil
}

// hostCommand runs a host command on that host.
func (d apiServer) hostCommand(ctx context.Context, c command) (any, error) {
	h, err := d.resolveHost(c.Host)
	if err != nil {
		return nil, err
	}
	if h.ID != d.slot.HostID() {
		c.To = h.ID
		return d.forward(ctx, c)
	}
	return d.runCommand(ctx, c)
}

// call runs op with body on host and decodes its answer into out.
func (d apiServer) call(ctx context.Context, host int, op string, body, out any) error {
	c := command{Op: op, Host: strconv.Itoa(host)}
	if body != nil {
		c.Body, _ = json.Marshal(body)
	}
	res, err := d.hostCommand(ctx, c)
	if err != nil || out == nil {
		return err
	}
	if err := remarshal(res, out); err != nil {
		return fmt.Errorf("unreadable answer to %s: %v", op, err)
	}
	return nil
}

// remarshal decodes a command's result, which is a Go value when the
// command ran here and raw JSON when it was forwarded.
func remarshal(out any, into any) error {
	b, ok := out.(json.RawMessage)
	if !ok {
		var err error
		if b, err = json.Marshal(out); err != nil {
			return err
		}
	}
	return json.Unmarshal(b, into)
}

// serveForwarding answers commands forwarded by other hosts over serf.
func (d apiServer) serveForwarding() error {
	return d.serf.HandleQuery(CommandQuery, func(_ string, payload []byte) ([]byte, error) {
		var c command
		if err := json.Unmarshal(payload, &c); err != nil {
			return nil, err
		}
		if c.To != d.slot.HostID() {
			return json.Marshal(commandResult{}) // not for us
		}
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout(c))
		defer cancel()
		out, err := d.runCommand(ctx, c)
		if err != nil {
			status, hint, ok := refusal(err)
			if !ok {
				status = http.StatusInternalServerError
			}
			return json.Marshal(commandResult{Error: err.Error(), Status: status, Hint: hint})
		}
		b, _ := json.Marshal(out)
		return json.Marshal(commandResult{OK: true, Result: b})
	})
}

// forward sends c to host c.To over serf and waits for its answer.
func (d apiServer) forward(ctx context.Context, c command) (any, error) {
	payload, _ := json.Marshal(c)
	timeout := 10 * time.Minute
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	resps, err := d.serf.Query(ctx, CommandQuery, payload, timeout)
	if err != nil {
		return nil, fmt.Errorf("forward %s to host %d: %w", c.Op, c.To, err)
	}
	for _, r := range resps {
		if r.Err != nil {
			continue
		}
		var cr commandResult
		if json.Unmarshal(r.Payload, &cr) != nil || (!cr.OK && cr.Error == "") {
			continue // another host's "not for us"
		}
		if !cr.OK {
			return nil, &httpError{status: cr.Status, err: fmt.Errorf("on host %d: %s", c.To, cr.Error), hint: cr.Hint}
		}
		return json.RawMessage(cr.Result), nil
	}
	return nil, &httpError{status: 502, err: fmt.Errorf("host %d did not answer the forwarded %s", c.To, c.Op),
		hint: "check that it is alive ('wingman host-list') and try again"}
}

// protect is the "protect" command: protect the local domain, checking its
// disks, and say what the other hosts answered.
func (d apiServer) protect(ctx context.Context, name string, rp vm.RecordPolicy, opts vm.ProtectOptions) (api.ProtectResult, error) {
	rep, err := d.vms.Protect(ctx, d.decision(), name, rp, opts)
	switch {
	case errors.Is(err, vm.ErrUnsafeDisk):
		return api.ProtectResult{}, &httpError{status: http.StatusBadRequest, err: err}
	case errors.Is(err, vm.ErrDiskUnreachable):
		return api.ProtectResult{}, &httpError{status: http.StatusConflict, err: err,
			hint: "or protect it anyway with --force: those hosts then cannot start it after a failure, and 'wingman drill' reports it until they can"}
	case err != nil:
		return api.ProtectResult{}, err
	}
	v, err := d.apiVM(ctx, name)
	if err != nil {
		return api.ProtectResult{}, err
	}
	res := api.ProtectResult{VM: v, DisksReached: rep.Reached, DisksUnreachable: rep.Unreachable}
	for _, u := range rep.Unchecked {
		res.DisksUnchecked = append(res.DisksUnchecked, api.HostNote{Host: u.Host, Reason: u.Reason})
	}
	return res, nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
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

// vmCommand runs a VM command here if this host must, else forwards it.
func (d *Daemon) vmCommand(ctx context.Context, c command) (any, error) {
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

// ownerOf is the host that holds the VM's lease (0: nobody).
func (d *Daemon) ownerOf(ctx context.Context, nameOrUUID string) (int, error) {
	recs, errs := d.lun.ReadVMs(ctx)
	for _, r := range recs {
		if r.Protected() && (r.Config.Name == nameOrUUID || strings.EqualFold(r.Config.UUID.String(), nameOrUUID)) {
			if r.Lease.Held() {
				return r.Lease.Owner.Host, nil
			}
			return 0, nil
		}
	}
	if len(errs) > 0 {
		return 0, fmt.Errorf("VM %q: %d VM records unreadable: %w", nameOrUUID, len(errs), errs[0])
	}
	return 0, fmt.Errorf("VM %q: %w: it is not protected", nameOrUUID, vm.ErrNotFound)
}

// runCommand carries out a command on this host.
func (d *Daemon) runCommand(ctx context.Context, c command) (any, error) {
	switch c.Op {
	case "protect", "policy":
		var req api.ProtectRequest
		if len(c.Body) > 0 {
			if err := json.Unmarshal(c.Body, &req); err != nil {
				return nil, badRequest("", "decode policy: %v", err)
			}
		}
		if c.Op == "protect" {
			p, err := applyAPIPolicy(plan.DefaultPolicy(), req.Policy)
			if err != nil {
				return nil, err
			}
			return d.protect(ctx, c.VM, vm.RecordPolicy{Policy: p}, vm.ProtectOptions{Force: req.Force})
		}
		rp, err := d.currentPolicy(ctx, c.VM)
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
		if len(c.Body) > 0 {
			if err := json.Unmarshal(c.Body, &req); err != nil {
				return nil, badRequest("", "decode request: %v", err)
			}
		}
		return d.migrate(ctx, c.VM, req.Target)
	case "maintenance":
		var req api.MaintenanceRequest
		if err := json.Unmarshal(c.Body, &req); err != nil {
			return nil, badRequest("", "decode request: %v", err)
		}
		return d.setMaintenance(ctx, req)
	case "evacuation":
		return d.evacuation(), nil
	case "exec":
		var req api.ExecRequest
		if err := json.Unmarshal(c.Body, &req); err != nil {
			return nil, badRequest("", "decode request: %v", err)
		}
		return d.execCommand(ctx, req)
	case "reboot":
		var req api.RebootRequest
		if len(c.Body) > 0 {
			if err := json.Unmarshal(c.Body, &req); err != nil {
				return nil, badRequest("", "decode request: %v", err)
			}
		}
		return d.reboot(ctx, req)
	case "qmp":
		return d.qmpDiagnostics(ctx, c.VM), nil
	case "drill-check":
		return d.drillCheck(ctx, c.Body)
	case "drill-live":
		return d.drillLiveHop(ctx, c.Body)
	case "drill-cleanup":
		return nil, d.drillCleanup(ctx)
	case "disk-check":
		return d.answerDiskCheck(ctx, c.Body)
	}
	return nil, badRequest("", "unknown command %q", c.Op)
}

func (d *Daemon) currentPolicy(ctx context.Context, nameOrUUID string) (vm.RecordPolicy, error) {
	recs, _ := d.lun.ReadVMs(ctx)
	for _, r := range recs {
		if r.Protected() && (r.Config.Name == nameOrUUID || strings.EqualFold(r.Config.UUID.String(), nameOrUUID)) {
			return vm.UnmarshalRecordPolicy(r.Config.Policy)
		}
	}
	return vm.RecordPolicy{}, fmt.Errorf("VM %q: %w: it is not protected", nameOrUUID, vm.ErrNotFound)
}

func (d *Daemon) migrate(ctx context.Context, name, target string) (api.MigrateResult, error) {
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
	deadline := time.Now().Add(4*d.hdr.Timings.Renew + 2*d.hdr.Timings.IOTimeout)
	for time.Now().Before(deadline) {
		if owner, err := d.ownerOf(ctx, name); err == nil && owner == to.ID {
			break
		}
		time.Sleep(d.hdr.Timings.Renew / 5)
	}
	return api.MigrateResult{VM: name, From: d.cfg.HostName, To: to.Name, Duration: res.Wall, Downtime: res.Downtime, Bytes: res.DataTransferred}, nil
}

// hostCommand runs a host command on that host.
func (d *Daemon) hostCommand(ctx context.Context, c command) (any, error) {
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

// setMaintenance enters or leaves maintenance mode on this host, or
// aborts the evacuation in progress.
func (d *Daemon) setMaintenance(ctx context.Context, req api.MaintenanceRequest) (api.Host, error) {
	self := d.slot.HostID()
	if req.Abort {
		d.mu.Lock()
		cancel := d.evacCancel
		d.mu.Unlock()
		if cancel == nil {
			return api.Host{}, badRequest("", "%s has no evacuation in progress", d.cfg.HostName)
		}
		cancel()
		d.event(storage.SevWarning, "maintenance-aborted", self, "evacuation of %s aborted by the operator; it stays in maintenance", d.cfg.HostName)
		return d.apiHost(ctx, d.cfg.HostName)
	}
	d.mu.Lock()
	d.maintenance = req.Enter
	d.mu.Unlock()
	if req.Enter {
		d.slot.SetState(storage.SlotMaintenance)
		// Kept across a restart or a reboot of this host (see Start).
		if _, err := os.Stat(d.maintenanceFile()); err != nil {
			if err := os.WriteFile(d.maintenanceFile(), nil, 0o600); err != nil {
				d.log.Warn("maintenance state not saved", "err", err)
			}
		}
	} else {
		d.slot.SetState(storage.SlotAlive)
	}
	if err := d.serf.SetTags(d.tags(ctx, self)); err != nil {
		return api.Host{}, err
	}
	if !req.Enter {
		moved := d.movedAway()
		os.Remove(d.maintenanceFile())
		d.event(storage.SevInfo, "maintenance-exit", self, "%s takes VMs again", d.cfg.HostName)
		if req.Failback && len(moved) > 0 {
			if err := d.failback(ctx, moved); err != nil {
				return api.Host{}, err
			}
		}
		return d.apiHost(ctx, d.cfg.HostName)
	}
	d.event(storage.SevInfo, "maintenance-enter", self, "%s enters maintenance: evacuating its VMs", d.cfg.HostName)
	// The evacuation outlives the request when the caller does not wait.
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.mu.Lock()
	if d.evacCancel != nil {
		d.evacCancel()
	}
	d.evacCancel = cancel
	d.mu.Unlock()
	// The evacuation shows as running from now on, through the wait, also
	// to a caller that does not wait.
	d.evac.start(d.cfg.HostName, d.cfg.Maintenance.ParallelMigrations, time.Now())
	run := func() (err error) {
		defer func() {
			d.evac.end(err, time.Now())
			cancel()
			d.mu.Lock()
			d.evacCancel = nil
			d.mu.Unlock()
		}()
		// The other hosts must see the maintenance state before the planner
		// runs, and this host's decision must show it: wait two cycles.
		select {
		case <-ectx.Done():
			return ectx.Err()
		case <-time.After(2*d.hdr.Timings.Renew + d.hdr.Timings.IOTimeout):
		}
		if err := d.evacuate(ectx, req.All); err != nil {
			d.event(storage.SevError, "maintenance-incomplete", self, "evacuation incomplete: %v", err)
			return err
		}
		d.event(storage.SevInfo, "maintenance-empty", self, "%s is empty: ready for maintenance", d.cfg.HostName)
		return nil
	}
	if req.NoWait {
		go run()
	} else if err := run(); err != nil {
		return api.Host{}, err
	}
	return d.apiHost(ctx, d.cfg.HostName)
}

// movedAway lists the VMs the current maintenance moved off this host.
func (d *Daemon) movedAway() []string {
	b, _ := os.ReadFile(d.maintenanceFile())
	var ids []string
	for _, f := range strings.Fields(string(b)) {
		if !strings.HasPrefix(f, rebootMarker) {
			ids = append(ids, f)
		}
	}
	return ids
}

// noteMoved records a VM that an evacuation moved away, for a failback.
func (d *Daemon) noteMoved(id string) {
	f, err := os.OpenFile(d.maintenanceFile(), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	fmt.Fprintln(f, id)
	f.Close()
}

// failback migrates back, one at a time, the VMs that left this host.
func (d *Daemon) failback(ctx context.Context, moved []string) error {
	// The others must see this host alive again before they migrate to it.
	time.Sleep(2*d.hdr.Timings.Renew + d.hdr.Timings.IOTimeout)
	body, _ := json.Marshal(api.MigrateRequest{Target: d.cfg.HostName})
	var failed []error
	for _, id := range moved {
		owner, err := d.ownerOf(ctx, id)
		if err != nil || owner == d.slot.HostID() {
			continue // unprotected since, or already back
		}
		if _, err := d.vmCommand(ctx, command{Op: "migrate", VM: id, Body: body}); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", id, err))
			continue
		}
		d.event(storage.SevInfo, "failback", d.slot.HostID(), "%s migrated back to %s", id, d.cfg.HostName)
	}
	if len(failed) > 0 {
		return fmt.Errorf("failback: %w", errors.Join(failed...))
	}
	return nil
}

func (d *Daemon) maintenanceFile() string { return filepath.Join(d.cfg.StateDir, "maintenance") }

// fence fences a host or tests the path: a test message through the
// host's LUN mailbox, acknowledged in its slot, and its fence agent's status.
func (d *Daemon) fence(ctx context.Context, hostName string, req api.FenceRequest) (api.FenceResult, error) {
	h, err := d.resolveHost(hostName)
	if err != nil {
		return api.FenceResult{}, err
	}
	start := time.Now()
	res := api.FenceResult{Host: h.Name, Test: req.Test}
	if !req.Test {
		if d.fencer == nil {
			return res, badRequest("configure [fence."+h.Name+"] in wingman.toml", "no fence agent is configured for %s", h.Name)
		}
		confirmed, err := d.fencer.PowerOff(ctx, h.ID)
		d.event(storage.SevWarning, "manual-fence", h.ID, "operator power-fenced %s: confirmed=%v", h.Name, confirmed)
		res.Agent, res.Duration = fmt.Sprintf("off confirmed=%v", confirmed), time.Since(start)
		return res, err
	}
	m, err := d.lun.SendMessage(ctx, storage.Message{Type: storage.MsgTest, From: d.slot.HostID(), FromGen: d.slot.Generation(),
		To: h.ID, ToGen: h.Gen, Reason: "wingman fence --test"})
	if err != nil {
		return res, err
	}
	res.Mailbox = "not acknowledged"
	deadline := time.Now().Add(3*d.hdr.Timings.Renew + 2*d.hdr.Timings.IOTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		v, err := d.lun.ReadSlot(ctx, h.ID)
		if err == nil && v.Record.Ack.Nonce == m.Nonce && v.Record.Ack.Result == storage.AckDone {
			res.Mailbox = "acknowledged"
			break
		}
		time.Sleep(d.hdr.Timings.Renew / 4)
	}
	if d.fencer != nil {
		if a, ok := d.fencer.Agent(h.ID); ok {
			st, err := a.Status(ctx)
			res.Agent = "status " + st.String()
			if err != nil {
				res.Agent = "status failed: " + err.Error()
			}
		}
	}
	res.Duration = time.Since(start)
	d.event(storage.SevInfo, "fence-test", h.ID, "fence test of %s: mailbox %s %s", h.Name, res.Mailbox, res.Agent)
	return res, nil
}

// serveForwarding answers commands forwarded by other hosts over serf.
func (d *Daemon) serveForwarding() error {
	return d.serf.HandleQuery(CommandQuery, func(_ string, payload []byte) ([]byte, error) {
		var c command
		if err := json.Unmarshal(payload, &c); err != nil {
			return nil, err
		}
		if c.To != d.slot.HostID() {
			return json.Marshal(commandResult{}) // not for us
		}
		ctx, cancel := context.WithTimeout(context.Background(), d.commandTimeout(c))
		defer cancel()
		out, err := d.runCommand(ctx, c)
		if err != nil {
			status, hint := 500, ""
			var he *httpError
			if errors.As(err, &he) {
				status, hint = he.status, he.hint
			}
			return json.Marshal(commandResult{Error: err.Error(), Status: status, Hint: hint})
		}
		b, _ := json.Marshal(out)
		return json.Marshal(commandResult{OK: true, Result: b})
	})
}

// forward sends c to host c.To over serf and waits for its answer.
func (d *Daemon) forward(ctx context.Context, c command) (any, error) {
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

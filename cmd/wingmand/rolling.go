package main

// The daemon's part of a rolling update (wingman rolling-update): run a
// patch command on a host that is in maintenance and empty, reboot it, and
// let it leave maintenance by itself once it is back. The CLI drives the
// steps; each one is refused unless the host holds no protected VM, so a
// patch or a reboot can never stop a guest.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
)

const (
	// execResultMax bounds an exec result as JSON: a forwarded answer and
	// its envelope must fit one serf query response (~1000 bytes).
	execResultMax = 700
	// execCommandMax bounds a command as JSON: a forwarded request and its
	// envelope must fit one serf query (~1000 bytes).
	execCommandMax = 600
	// execLogMax is how much of a command's output goes to the log.
	execLogMax = 64 << 10
	// rebootMarker, in the maintenance state file, asks the next wingmand
	// of this host to leave maintenance once back ("+failback": and to
	// migrate back the VMs that left).
	rebootMarker = "exit-after-reboot"
	// rebootDelay lets the answer to a reboot request reach the caller
	// before the reboot command runs.
	rebootDelay = time.Second
)

func conflict(hint, format string, a ...any) error {
	return &httpError{status: http.StatusConflict, err: fmt.Errorf(format, a...), hint: hint}
}

func forbidden(hint, format string, a ...any) error {
	return &httpError{status: http.StatusForbidden, err: fmt.Errorf(format, a...), hint: hint}
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
func (d *Daemon) apiExec(r *http.Request) (any, error) {
	var req api.ExecRequest
	if _, err := decodeHostRequest(r, &req, `{"command": "apt-get -y upgrade", "timeout_ns": 1800000000000}`); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Command) == "" {
		return nil, badRequest(`send {"command": "..."}`, "no command to run")
	}
	if b, _ := json.Marshal(req.Command); len(b) > execCommandMax {
		return nil, badRequest("put a longer script in a file on the hosts and run that",
			"the command is %d bytes as JSON; at most %d travel to another host in one serf query", len(b), execCommandMax)
	}
	if req.Timeout < 0 {
		return nil, badRequest("give a positive timeout, or none for the host's maintenance.exec_timeout", "timeout %v is negative", req.Timeout)
	}
	if req.Timeout == 0 {
		req.Timeout = d.cfg.Maintenance.ExecTimeout.Duration
	}
	b, _ := json.Marshal(req)
	c := command{Op: "exec", Host: r.PathValue("host"), Body: b}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), d.commandTimeout(c))
	defer cancel()
	return d.hostCommand(ctx, c)
}

// apiReboot is POST /v1/hosts/{host}/reboot.
func (d *Daemon) apiReboot(r *http.Request) (any, error) {
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
func (d *Daemon) apiEvacuationPlan(ctx context.Context, host string) (api.EvacuationPlan, error) {
	h, err := d.resolveHost(host)
	if err != nil {
		return api.EvacuationPlan{}, err
	}
	if h.State.Gone() {
		return api.EvacuationPlan{}, conflict("its VMs are restarted by failover, not migrated", "%s is %s", h.Name, h.State)
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
func (d *Daemon) commandTimeout(c command) time.Duration {
	t := 10 * time.Minute
	if c.Op == "exec" {
		var req api.ExecRequest
		if json.Unmarshal(c.Body, &req) == nil && req.Timeout+time.Minute > t {
			t = req.Timeout + time.Minute
		}
	}
	return t
}

// readyForPatching refuses what must not run on a host that may still hold
// a guest: it must be in maintenance with its evacuation done.
func (d *Daemon) readyForPatching(ctx context.Context, what string) error {
	host := d.cfg.HostName
	if !d.inMaintenance() {
		return conflict(fmt.Sprintf("put it in maintenance first ('wingman maintenance enter %s'), or use 'wingman rolling-update'", host),
			"%s is not in maintenance: %s runs only on a host in maintenance that holds no protected VM (it is a patching tool)", host, what)
	}
	d.mu.Lock()
	evacuating := d.evacCancel != nil
	d.mu.Unlock()
	if evacuating {
		return conflict(fmt.Sprintf("wait until 'wingman maintenance status %s' shows it empty", host),
			"%s is still evacuating: %s waits until it holds no protected VM", host, what)
	}
	recs, errs := d.lun.ReadVMs(ctx)
	if len(errs) > 0 {
		return fmt.Errorf("%s on %s: %d VM records unreadable, cannot prove the host is empty: %w", what, host, len(errs), errs[0])
	}
	doms, err := d.hv.ListDomains(ctx)
	if err != nil {
		return fmt.Errorf("%s on %s: list its guests: %w", what, host, err)
	}
	active := map[string]bool{}
	for _, dm := range doms {
		active[strings.ToLower(dm.UUID)] = dm.Active()
	}
	// A VM stopped through Wingman may keep its lease here: nothing of it runs.
	var held []string
	self := d.slot.HostID()
	for _, r := range recs {
		if r.Protected() && r.Lease.Held() && r.Lease.Owner.Host == self {
			rp, _ := vm.UnmarshalRecordPolicy(r.Config.Policy)
			if !rp.Stopped || active[strings.ToLower(r.Config.UUID.String())] {
				held = append(held, r.Config.Name)
			}
		}
	}
	if len(held) > 0 {
		return conflict(fmt.Sprintf("migrate them away ('wingman maintenance enter %s' again retries the evacuation)", host),
			"%s still holds protected VMs %s: %s runs only on an empty host", host, strings.Join(held, ", "), what)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu      sync.Mutex
	buf     []byte
	max     int
	dropped bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.dropped = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// execCommand runs req.Command on this host.
func (d *Daemon) execCommand(ctx context.Context, req api.ExecRequest) (api.ExecResult, error) {
	host, self := d.cfg.HostName, d.slot.HostID()
	if !d.cfg.Maintenance.AllowExec {
		return api.ExecResult{}, forbidden("run the command on the host yourself, or set maintenance.allow_exec = true in "+d.cfg.path,
			"remote execution is disabled on %s (maintenance.allow_exec = false)", host)
	}
	if err := d.readyForPatching(ctx, "exec"); err != nil {
		return api.ExecResult{}, err
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = d.cfg.Maintenance.ExecTimeout.Duration
	}
	d.event(storage.SevInfo, "exec-start", self, "%s runs %q (time limit %v)", host, req.Command, timeout)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &tailBuffer{max: execLogMax}
	cmd := exec.CommandContext(cctx, "/bin/sh", "-c", req.Command)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = out, out
	// The command's children die with it at the time limit.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res := api.ExecResult{Host: host, Duration: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case cctx.Err() != nil:
		res.ExitCode = -1
	default:
		d.event(storage.SevError, "exec-failed", self, "%q did not start on %s: %v", req.Command, host, err)
		return api.ExecResult{}, fmt.Errorf("run %q on %s: %w", req.Command, host, err)
	}
	if cctx.Err() == context.DeadlineExceeded {
		res.ExitCode, res.TimedOut = -1, true
	}
	full := out.String()
	d.log.Info("exec finished", "command", req.Command, "exit", res.ExitCode, "timed_out", res.TimedOut,
		"duration", res.Duration, "output", full)
	res.Output, res.Truncated = fitOutput(res, full, out.dropped)
	sev, verdict := storage.SevInfo, fmt.Sprintf("exited %d", res.ExitCode)
	if res.TimedOut {
		sev, verdict = storage.SevError, fmt.Sprintf("killed at its time limit %v", timeout)
	} else if res.ExitCode != 0 {
		sev = storage.SevError
	}
	d.event(sev, "exec-done", self, "%q on %s %s after %v (output in wingmand's log)", req.Command, host, verdict, res.Duration.Round(time.Millisecond))
	return res, nil
}

// fitOutput is the longest tail of output whose result, as JSON, fits
// execResultMax: JSON escapes can make a byte take six.
func fitOutput(res api.ExecResult, output string, dropped bool) (string, bool) {
	if len(output) > execResultMax {
		output, dropped = output[len(output)-execResultMax:], true
	}
	for {
		res.Output, res.Truncated = strings.ToValidUTF8(output, "?"), dropped
		b, _ := json.Marshal(res)
		over := len(b) - execResultMax
		if over <= 0 || output == "" {
			return res.Output, dropped
		}
		cut := min(len(output), (over+5)/6)
		output, dropped = output[cut:], true
	}
}

// reboot records, if asked, that the next wingmand of this host leaves
// maintenance by itself, answers, and then runs the reboot command.
func (d *Daemon) reboot(ctx context.Context, req api.RebootRequest) (api.RebootResult, error) {
	host, self := d.cfg.HostName, d.slot.HostID()
	command := d.cfg.Maintenance.RebootCommand
	if strings.TrimSpace(command) == "" {
		return api.RebootResult{}, forbidden("reboot it yourself, or set maintenance.reboot_command in "+d.cfg.path,
			"reboots through wingman are disabled on %s (maintenance.reboot_command is empty)", host)
	}
	if err := d.readyForPatching(ctx, "reboot"); err != nil {
		return api.RebootResult{}, err
	}
	// Unprotected guests are not evacuated unless asked; a reboot would stop them.
	doms, err := d.hv.ListDomains(ctx)
	if err != nil {
		return api.RebootResult{}, fmt.Errorf("reboot %s: list its guests: %w", host, err)
	}
	var running []string
	for _, dm := range doms {
		if dm.Active() && dm.State != hypervisor.StateCrashed { // a crashed guest has nothing to lose
			running = append(running, dm.Name)
		}
	}
	if len(running) > 0 {
		return api.RebootResult{}, conflict(fmt.Sprintf("migrate them away ('wingman maintenance enter --all %s', or rolling-update --all) or shut them down", host),
			"%s still runs guests %s: a reboot would stop them", host, strings.Join(running, ", "))
	}
	d.clearRebootMarker()
	if req.ExitMaintenance {
		marker := rebootMarker
		if req.Failback {
			marker += "+failback"
		}
		if err := appendLine(d.maintenanceFile(), marker); err != nil {
			return api.RebootResult{}, fmt.Errorf("reboot %s: save the exit-after-reboot request: %w", host, err)
		}
	}
	after := "stays in maintenance"
	if req.ExitMaintenance {
		after = "leaves maintenance by itself once back and healthy"
	}
	d.event(storage.SevWarning, "reboot", self, "%s reboots for maintenance (%s); it %s", host, command, after)
	res := api.RebootResult{Host: host, Generation: d.slot.Generation(), At: time.Now(), Command: command}
	go func() {
		time.Sleep(rebootDelay)
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(cctx, "/bin/sh", "-c", command).CombinedOutput()
		if err != nil {
			d.clearRebootMarker()
			msg := strings.TrimSpace(string(out))
			if len(msg) > 80 {
				msg = "..." + msg[len(msg)-77:]
			}
			d.log.Error("reboot command failed", "command", command, "err", err, "output", string(out))
			d.event(storage.SevError, "reboot-failed", self, "%q failed on %s: %v %s; it stays in maintenance", command, host, err, msg)
		}
	}()
	return res, nil
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// rebootRequested reports whether the maintenance state file asks this
// wingmand to leave maintenance now that the host is back.
func (d *Daemon) rebootRequested() (exit, failback bool) {
	b, _ := os.ReadFile(d.maintenanceFile())
	for _, f := range strings.Fields(string(b)) {
		if strings.HasPrefix(f, rebootMarker) {
			exit, failback = true, strings.HasSuffix(f, "+failback")
		}
	}
	return exit, failback
}

// clearRebootMarker keeps the maintenance state file's moved-VM lines only.
func (d *Daemon) clearRebootMarker() {
	b, err := os.ReadFile(d.maintenanceFile())
	if err != nil || !bytes.Contains(b, []byte(rebootMarker)) {
		return
	}
	var keep []string
	for _, f := range strings.Fields(string(b)) {
		if !strings.HasPrefix(f, rebootMarker) {
			keep = append(keep, f+"\n")
		}
	}
	if err := os.WriteFile(d.maintenanceFile(), []byte(strings.Join(keep, "")), 0o600); err != nil {
		d.log.Warn("maintenance state not saved", "err", err)
	}
}

// readyToRejoin: this host is joined, quorate, may run VMs, sees its own
// slot in maintenance and libvirt is connected.
func (d *Daemon) readyToRejoin() (bool, string) {
	dec := d.decision()
	self, ok := dec.Host(d.slot.HostID())
	switch {
	case !ok:
		return false, "not in the cluster view yet"
	case !dec.Quorate:
		return false, "not quorate"
	case !dec.MayRunVMs:
		return false, "may not run VMs"
	case self.State != quorum.StateMaintenance:
		return false, "state " + self.State.String()
	case !d.hv.Connected():
		return false, "libvirt unreachable"
	}
	return true, ""
}

// exitAfterReboot leaves maintenance once the host has been ready for three
// cycles in a row, as the rolling update asked before the reboot.
func (d *Daemon) exitAfterReboot(ctx context.Context, failback bool) {
	self, host := d.slot.HostID(), d.cfg.HostName
	d.event(storage.SevInfo, "reboot-back", self, "%s is back after its reboot (generation %d): it leaves maintenance once quorate and healthy",
		host, d.slot.Generation())
	tick := time.NewTicker(d.hdr.Timings.Renew)
	defer tick.Stop()
	for ready := 0; ready < 3; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if ok, why := d.readyToRejoin(); ok {
			ready++
		} else {
			ready = 0
			d.log.Debug("waiting to leave maintenance after the reboot", "why", why)
		}
	}
	if _, err := d.setMaintenance(ctx, api.MaintenanceRequest{Enter: false, Failback: failback}); err != nil {
		d.event(storage.SevError, "reboot-exit-failed", self, "%s could not leave maintenance after its reboot: %v", host, err)
		return
	}
	d.event(storage.SevInfo, "reboot-done", self, "%s left maintenance after its reboot (failback %v)", host, failback)
}

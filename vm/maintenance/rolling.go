package maintenance

// The host's part of a rolling update (wingman rolling-update): run a
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
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm"
)

const (
	// ExecResultMax bounds an exec result as JSON: a forwarded answer and
	// its envelope must fit one serf query response (~1000 bytes).
	ExecResultMax = 700
	// ExecCommandMax bounds a command as JSON: a forwarded request and its
	// envelope must fit one serf query (~1000 bytes).
	ExecCommandMax = 600
	// execLogMax is how much of a command's output goes to the log.
	execLogMax = 64 << 10
	// rebootMarker, in the maintenance state file, asks the next daemon of
	// this host to leave maintenance once back ("+failback": and to migrate
	// back the VMs that left).
	rebootMarker = "exit-after-reboot"
	// rebootDelay lets the answer to a reboot request reach the caller
	// before the reboot command runs.
	rebootDelay = time.Second
)

// ExecRequest is a command to run on a host in maintenance (api.ExecRequest).
type ExecRequest struct {
	Command string        `json:"command"`
	Timeout time.Duration `json:"timeout_ns,omitempty"` // 0: Config.ExecTimeout
}

// ExecResult is how a command ended (api.ExecResult).
type ExecResult struct {
	Host     string        `json:"host"`
	ExitCode int           `json:"exit_code"` // -1: killed (timeout) or ended by a signal
	TimedOut bool          `json:"timed_out,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	// Output is the end of the command's stdout and stderr, at most
	// ExecResultMax bytes of JSON with the rest of the result.
	Output    string `json:"output"`
	Truncated bool   `json:"truncated,omitempty"`
}

// RebootRequest reboots a host in maintenance (api.RebootRequest).
type RebootRequest struct {
	ExitMaintenance bool `json:"exit_maintenance,omitempty"`
	Failback        bool `json:"failback,omitempty"`
}

// RebootResult answers a reboot request before the reboot starts
// (api.RebootResult).
type RebootResult struct {
	Host       string    `json:"host"`
	Generation uint64    `json:"generation"`
	At         time.Time `json:"at"`
	Command    string    `json:"command"`
}

// readyForPatching refuses what must not run on a host that may still hold
// a guest: it must be in maintenance with its evacuation done.
func (h *Host) readyForPatching(ctx context.Context, what string) error {
	host := h.cfg.HostName
	if !h.Active() {
		return vm.Refuse(vm.ErrConflict, fmt.Sprintf("put it in maintenance first ('wingman maintenance enter %s'), or use 'wingman rolling-update'", host),
			"%s is not in maintenance: %s runs only on a host in maintenance that holds no protected VM (it is a patching tool)", host, what)
	}
	h.mu.Lock()
	evacuating := h.evacCancel != nil
	h.mu.Unlock()
	if evacuating {
		return vm.Refuse(vm.ErrConflict, fmt.Sprintf("wait until 'wingman maintenance status %s' shows it empty", host),
			"%s is still evacuating: %s waits until it holds no protected VM", host, what)
	}
	recs, errs := h.records.ReadVMs(ctx)
	if len(errs) > 0 {
		return fmt.Errorf("%s on %s: %d VM records unreadable, cannot prove the host is empty: %w", what, host, len(errs), errs[0])
	}
	doms, err := h.doms.ListDomains(ctx)
	if err != nil {
		return fmt.Errorf("%s on %s: list its guests: %w", what, host, err)
	}
	active := map[string]bool{}
	for _, dm := range doms {
		active[strings.ToLower(dm.UUID)] = dm.Active()
	}
	// A VM stopped through Wingman may keep its lease here: nothing of it runs.
	var held []string
	for _, r := range recs {
		if r.Protected() && r.Lease.Held() && r.Lease.Owner.Host == h.cfg.HostID {
			rp, _ := vm.UnmarshalRecordPolicy(r.Config.Policy)
			if !rp.Stopped || active[strings.ToLower(r.Config.UUID.String())] {
				held = append(held, r.Config.Name)
			}
		}
	}
	if len(held) > 0 {
		return vm.Refuse(vm.ErrConflict, fmt.Sprintf("migrate them away ('wingman maintenance enter %s' again retries the evacuation)", host),
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

// Exec runs req.Command on this host, once it is in maintenance and empty.
func (h *Host) Exec(ctx context.Context, req ExecRequest) (ExecResult, error) {
	host := h.cfg.HostName
	if !h.cfg.AllowExec {
		return ExecResult{}, vm.Refuse(vm.ErrForbidden, "run the command on the host yourself, or set maintenance.allow_exec = true in "+h.cfg.ConfigPath,
			"remote execution is disabled on %s (maintenance.allow_exec = false)", host)
	}
	if err := h.readyForPatching(ctx, "exec"); err != nil {
		return ExecResult{}, err
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = h.cfg.defaults().ExecTimeout
	}
	h.event(storage.SevInfo, "exec-start", "%s runs %q (time limit %v)", host, req.Command, timeout)
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
	res := ExecResult{Host: host, Duration: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case cctx.Err() != nil:
		res.ExitCode = -1
	default:
		h.event(storage.SevError, "exec-failed", "%q did not start on %s: %v", req.Command, host, err)
		return ExecResult{}, fmt.Errorf("run %q on %s: %w", req.Command, host, err)
	}
	if cctx.Err() == context.DeadlineExceeded {
		res.ExitCode, res.TimedOut = -1, true
	}
	full := out.String()
	h.cfg.Log.Info("exec finished", "command", req.Command, "exit", res.ExitCode, "timed_out", res.TimedOut,
		"duration", res.Duration, "output", full)
	res.Output, res.Truncated = fitOutput(res, full, out.dropped)
	sev, verdict := storage.SevInfo, fmt.Sprintf("exited %d", res.ExitCode)
	if res.TimedOut {
		sev, verdict = storage.SevError, fmt.Sprintf("killed at its time limit %v", timeout)
	} else if res.ExitCode != 0 {
		sev = storage.SevError
	}
	h.event(sev, "exec-done", "%q on %s %s after %v (output in wingmand's log)", req.Command, host, verdict, res.Duration.Round(time.Millisecond))
	return res, nil
}

// fitOutput is the longest tail of output whose result, as JSON, fits
// ExecResultMax: JSON escapes can make a byte take six.
func fitOutput(res ExecResult, output string, dropped bool) (string, bool) {
	if len(output) > ExecResultMax {
		output, dropped = output[len(output)-ExecResultMax:], true
	}
	for {
		res.Output, res.Truncated = strings.ToValidUTF8(output, "?"), dropped
		b, _ := json.Marshal(res)
		over := len(b) - ExecResultMax
		if over <= 0 || output == "" {
			return res.Output, dropped
		}
		cut := min(len(output), (over+5)/6)
		output, dropped = output[cut:], true
	}
}

// Reboot records, if asked, that the next daemon of this host leaves
// maintenance by itself, answers, and then runs the reboot command.
func (h *Host) Reboot(ctx context.Context, req RebootRequest) (RebootResult, error) {
	host := h.cfg.HostName
	command := h.cfg.RebootCommand
	if strings.TrimSpace(command) == "" {
		return RebootResult{}, vm.Refuse(vm.ErrForbidden, "reboot it yourself, or set maintenance.reboot_command in "+h.cfg.ConfigPath,
			"reboots through wingman are disabled on %s (maintenance.reboot_command is empty)", host)
	}
	if err := h.readyForPatching(ctx, "reboot"); err != nil {
		return RebootResult{}, err
	}
	// Unprotected guests are not evacuated unless asked; a reboot would stop them.
	doms, err := h.doms.ListDomains(ctx)
	if err != nil {
		return RebootResult{}, fmt.Errorf("reboot %s: list its guests: %w", host, err)
	}
	var running []string
	for _, dm := range doms {
		if dm.Active() && dm.State != hypervisor.StateCrashed { // a crashed guest has nothing to lose
			running = append(running, dm.Name)
		}
	}
	if len(running) > 0 {
		return RebootResult{}, vm.Refuse(vm.ErrConflict, fmt.Sprintf("migrate them away ('wingman maintenance enter --all %s', or rolling-update --all) or shut them down", host),
			"%s still runs guests %s: a reboot would stop them", host, strings.Join(running, ", "))
	}
	h.clearRebootMarker()
	if req.ExitMaintenance {
		marker := rebootMarker
		if req.Failback {
			marker += "+failback"
		}
		if err := appendLine(h.stateFile(), marker); err != nil {
			return RebootResult{}, fmt.Errorf("reboot %s: save the exit-after-reboot request: %w", host, err)
		}
	}
	after := "stays in maintenance"
	if req.ExitMaintenance {
		after = "leaves maintenance by itself once back and healthy"
	}
	h.event(storage.SevWarning, "reboot", "%s reboots for maintenance (%s); it %s", host, command, after)
	res := RebootResult{Host: host, Generation: h.cfg.Generation, At: time.Now(), Command: command}
	go func() {
		time.Sleep(rebootDelay)
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(cctx, "/bin/sh", "-c", command).CombinedOutput()
		if err != nil {
			h.clearRebootMarker()
			msg := strings.TrimSpace(string(out))
			if len(msg) > 80 {
				msg = "..." + msg[len(msg)-77:]
			}
			h.cfg.Log.Error("reboot command failed", "command", command, "err", err, "output", string(out))
			h.event(storage.SevError, "reboot-failed", "%q failed on %s: %v %s; it stays in maintenance", command, host, err, msg)
		}
	}()
	return res, nil
}

// RebootRequested reports whether the maintenance state file asks this
// daemon to leave maintenance now that the host is back.
func (h *Host) RebootRequested() (exit, failback bool) {
	b, _ := os.ReadFile(h.stateFile())
	for _, f := range strings.Fields(string(b)) {
		if strings.HasPrefix(f, rebootMarker) {
			exit, failback = true, strings.HasSuffix(f, "+failback")
		}
	}
	return exit, failback
}

// clearRebootMarker keeps the maintenance state file's moved-VM lines only.
func (h *Host) clearRebootMarker() {
	b, err := os.ReadFile(h.stateFile())
	if err != nil || !bytes.Contains(b, []byte(rebootMarker)) {
		return
	}
	var keep []string
	for _, f := range strings.Fields(string(b)) {
		if !strings.HasPrefix(f, rebootMarker) {
			keep = append(keep, f+"\n")
		}
	}
	if err := os.WriteFile(h.stateFile(), []byte(strings.Join(keep, "")), 0o600); err != nil {
		h.cfg.Log.Warn("maintenance state not saved", "err", err)
	}
}

// readyToRejoin: this host is joined, quorate, may run VMs, sees its own
// slot in maintenance and libvirt is connected.
func (h *Host) readyToRejoin() (bool, string) {
	dec := h.cluster.Decision()
	self, ok := dec.Host(h.cfg.HostID)
	switch {
	case !ok:
		return false, "not in the cluster view yet"
	case !dec.Quorate:
		return false, "not quorate"
	case !dec.MayRunVMs:
		return false, "may not run VMs"
	case self.State != quorum.StateMaintenance:
		return false, "state " + self.State.String()
	case !h.doms.Connected():
		return false, "libvirt unreachable"
	}
	return true, ""
}

// RejoinAfterReboot leaves maintenance once the host has been ready for
// three cycles in a row, if a rolling update asked for it before the
// reboot (RebootRequested); else it returns at once. It ends with ctx.
func (h *Host) RejoinAfterReboot(ctx context.Context) {
	exit, failback := h.RebootRequested()
	if !exit || !h.Active() {
		return
	}
	host := h.cfg.HostName
	h.event(storage.SevInfo, "reboot-back", "%s is back after its reboot (generation %d): it leaves maintenance once quorate and healthy",
		host, h.cfg.Generation)
	tick := time.NewTicker(h.cfg.Renew)
	defer tick.Stop()
	for ready := 0; ready < 3; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if ok, why := h.readyToRejoin(); ok {
			ready++
		} else {
			ready = 0
			h.cfg.Log.Debug("waiting to leave maintenance after the reboot", "why", why)
		}
	}
	if err := h.Set(ctx, Request{Enter: false, Failback: failback}); err != nil {
		h.event(storage.SevError, "reboot-exit-failed", "%s could not leave maintenance after its reboot: %v", host, err)
		return
	}
	h.event(storage.SevInfo, "reboot-done", "%s left maintenance after its reboot (failback %v)", host, failback)
}

package hypervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"libvirt.org/go/libvirt"
)

// Health reports a guest's health: libvirt's state and reason and, for an
// active domain, QEMU's own run state from QMP query-status, which still
// tells the truth when a libvirt event was lost. The QMP call is bounded by
// Config.QMPTimeout: a QEMU stuck in I/O may never answer, and Health must
// still return; Health.QMPError then says why QMPStatus is empty.
func (c *Conn) Health(ctx context.Context, name string) (Health, error) {
	op := fmt.Sprintf("check health of domain %q on %s", name, c.host)
	var h Health
	err := c.withDomain(ctx, op, name, func(d *libvirt.Domain) error {
		state, reason, err := d.GetState()
		if err != nil {
			return err
		}
		h = Health{Domain: name, State: State(state), Reason: ReasonName(State(state), reason), ReasonCode: reason}
		if h.State.Active() {
			h.QMPStatus, h.QMPError = c.queryStatus(ctx, d)
		}
		return nil
	})
	if err != nil {
		return Health{}, err
	}
	h.Condition = condition(h.State, h.ReasonCode, h.QMPStatus)
	return h, nil
}

// queryStatus runs QMP query-status on its own goroutine, which keeps its
// own reference to the domain, so that a hung monitor costs that goroutine
// and not the caller.
func (c *Conn) queryStatus(ctx context.Context, d *libvirt.Domain) (string, error) {
	if err := d.Ref(); err != nil {
		return "", err
	}
	type answer struct {
		out string
		err error
	}
	done := make(chan answer, 1)
	go func() {
		defer d.Free()
		out, err := d.QemuMonitorCommand(`{"execute":"query-status"}`, libvirt.DOMAIN_QEMU_MONITOR_COMMAND_DEFAULT)
		done <- answer{out, err}
	}()
	t := time.NewTimer(c.cfg.QMPTimeout)
	defer t.Stop()
	var a answer
	select {
	case a = <-done:
	case <-t.C:
		return "", fmt.Errorf("qmp query-status: %w: no answer within %v", ErrTimeout, c.cfg.QMPTimeout)
	case <-ctx.Done():
		return "", fmt.Errorf("qmp query-status: %w", ctx.Err())
	}
	if a.err != nil {
		if class := classify(a.err); class != nil {
			return "", fmt.Errorf("qmp query-status: %w: %w", class, a.err)
		}
		return "", fmt.Errorf("qmp query-status: %w", a.err)
	}
	return parseQueryStatus(a.out)
}

// parseQueryStatus reads QEMU's run state from a query-status reply.
func parseQueryStatus(reply string) (string, error) {
	var r struct {
		Return *struct {
			Status string `json:"status"`
		} `json:"return"`
		Error *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(reply), &r); err != nil {
		return "", fmt.Errorf("qmp query-status: bad reply %q: %w", reply, err)
	}
	switch {
	case r.Error != nil:
		return "", fmt.Errorf("qmp query-status: %s: %s", r.Error.Class, r.Error.Desc)
	case r.Return == nil || r.Return.Status == "":
		return "", fmt.Errorf("qmp query-status: reply %q has no status", reply)
	}
	return r.Return.Status, nil
}

// qmpConditions maps QEMU's run states (QAPI RunState) to a verdict; states
// not listed (migration phases, prelaunch, ...) add nothing to libvirt's.
var qmpConditions = map[string]Condition{
	"running":        ConditionRunning,
	"paused":         ConditionPaused,
	"suspended":      ConditionPaused,
	"shutdown":       ConditionStopped,
	"io-error":       ConditionIOError,
	"watchdog":       ConditionPaused,
	"guest-panicked": ConditionPanicked,
	"internal-error": ConditionCrashed,
}

// condition combines libvirt's state and reason with QEMU's run state
// (empty when unknown) into one verdict: the worse of the two, so that a
// guest libvirt still calls running but QEMU reports in io-error is treated
// as paused on an I/O error.
func condition(s State, reason int, qmpStatus string) Condition {
	var lv Condition
	switch s {
	case StateRunning, StateBlocked, StateShuttingOff:
		lv = ConditionRunning
	case StatePaused:
		switch reason {
		case int(libvirt.DOMAIN_PAUSED_IOERROR):
			lv = ConditionIOError
		case int(libvirt.DOMAIN_PAUSED_CRASHED):
			lv = ConditionPanicked // on_crash=preserve with a pvpanic device
		default:
			lv = ConditionPaused
		}
	case StatePMSuspended:
		lv = ConditionPaused
	case StateCrashed:
		if reason == int(libvirt.DOMAIN_CRASHED_PANICKED) {
			lv = ConditionPanicked
		} else {
			lv = ConditionCrashed
		}
	case StateShutoff:
		switch reason {
		case int(libvirt.DOMAIN_SHUTOFF_CRASHED), int(libvirt.DOMAIN_SHUTOFF_FAILED):
			lv = ConditionCrashed
		default:
			lv = ConditionStopped
		}
	}
	return max(lv, qmpConditions[qmpStatus])
}

// PingAgent sends guest-ping to the domain's QEMU guest agent and waits for
// the answer at most Config.AgentTimeout, or until ctx's deadline if that
// is earlier. An agent that is not configured, not connected or not
// answering gives ErrAgentUnavailable (ErrTimeout when libvirt gave up
// waiting); a domain that is not running gives ErrNotRunning.
func (c *Conn) PingAgent(ctx context.Context, name string) error {
	op := fmt.Sprintf("ping guest agent of domain %q on %s", name, c.host)
	timeout := c.cfg.AgentTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	// libvirt counts whole seconds; round up so a short deadline still
	// gives the agent a chance rather than meaning "do not wait".
	secs := int((timeout + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return c.withDomain(ctx, op, name, func(d *libvirt.Domain) error {
		_, err := d.QemuAgentCommand(`{"execute":"guest-ping"}`, libvirt.DomainQemuAgentCommandTimeout(secs), 0)
		if err == nil {
			return nil
		}
		if libvirtCode(err) == libvirt.ERR_ARGUMENT_UNSUPPORTED {
			// QEMU: "QEMU guest agent is not configured".
			return &opError{op: op, class: ErrAgentUnavailable, cause: err}
		}
		return notRunning(op, d, err)
	})
}

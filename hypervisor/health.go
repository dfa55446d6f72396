package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"libvirt.org/go/libvirt"
)

// Which of these calls talk to the guest, and which mark the domain tainted
// in libvirt (its qemu log then says "Domain id=N is tainted: ..."):
//
//   - Health reads libvirt's state and reason (virDomainGetState): no QEMU,
//     no agent, no taint.
//   - PingAgent asks the guest agent for the time (virDomainGetTime, which
//     the QEMU driver runs as the agent's guest-get-time) and bounds it with
//     virDomainAgentSetResponseTimeout: libvirt's own agent calls, no taint.
//     Only the raw passthrough virDomainQemuAgentCommand taints
//     (custom-ga-command); nothing here uses it.
//   - QMPDiagnostics (qmp.go) is the one exception: it sends QMP through
//     virDomainQemuMonitorCommand, which taints custom-monitor. It runs only
//     when an operator asks for it.

// Health reports a guest's health as libvirt sees it: its state and reason,
// which libvirt keeps up to date from QEMU's own events (an I/O-error pause,
// a guest panic, QEMU dying). It does not talk to QEMU or to the guest
// agent, so it returns at once even when QEMU is stuck in I/O, and it leaves
// the domain untainted. QEMU's own view (run state, each disk's I/O status)
// is QMPDiagnostics, an explicit diagnostic that taints the domain.
func (c *Conn) Health(ctx context.Context, name string) (Health, error) {
	op := fmt.Sprintf("check health of domain %q on %s", name, c.host)
	var h Health
	err := c.withDomain(ctx, op, name, func(d *libvirt.Domain) error {
		state, reason, err := d.GetState()
		if err != nil {
			return err
		}
		h = Health{Domain: name, State: State(state), Reason: ReasonName(State(state), reason), ReasonCode: reason}
		return nil
	})
	if err != nil {
		return Health{}, err
	}
	h.Condition = condition(h.State, h.ReasonCode, "")
	return h, nil
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

// agentSyncWait is how long libvirt waits for the guest-sync exchange that
// precedes every agent command (QEMU_AGENT_WAIT_TIME in libvirt's
// qemu_agent.c), or the domain's agent response timeout when that is lower.
const agentSyncWait = 5 * time.Second

// PingAgent checks that the domain's QEMU guest agent answers, waiting at
// most Config.AgentTimeout, or until ctx's deadline if that is earlier. An
// agent that is not configured, not connected or not answering (also while
// the guest is paused) gives ErrAgentUnavailable (ErrTimeout when libvirt or
// PingAgent gave up waiting); a domain that is not running gives
// ErrNotRunning.
//
// It asks the agent for the guest's time through libvirt's own API
// (virDomainGetTime; the QEMU driver sends guest-get-time after its
// guest-sync) rather than a raw guest-ping through
// virDomainQemuAgentCommand, which would mark the domain tainted
// (custom-ga-command). An agent that answers with an error (the command
// blocked in the guest's qemu-ga configuration) still answered: that counts.
//
// libvirt waits for agent replies forever unless the domain has an agent
// response timeout, and there is no call to read the current one. So
// PingAgent sets it (virDomainAgentSetResponseTimeout) to its own bound in
// whole seconds for the duration of the call and then back to libvirt's
// default, blocking. Side effects, for the administrator: while a ping runs,
// any other agent command on that domain through libvirt (virsh domfsfreeze,
// domtime, guestinfo; backup tools freezing file systems) also gives up after
// that bound; a timeout set with 'virsh guest-agent-timeout' on a VM
// protected with --wait-agent is replaced by libvirt's default after each
// ping; libvirt saves the setting in the domain's live status (not in its
// definition). The libvirt call runs on its own goroutine, with its own
// reference to the domain, so that a libvirt that does not return costs that
// goroutine and not the caller.
func (c *Conn) PingAgent(ctx context.Context, name string) error {
	op := fmt.Sprintf("ping guest agent of domain %q on %s", name, c.host)
	timeout := c.cfg.AgentTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	// libvirt counts whole seconds; round up so a short deadline still
	// gives the agent a chance rather than meaning "do not wait".
	secs := max(int((timeout+time.Second-1)/time.Second), 1)
	return c.withDomain(ctx, op, name, func(d *libvirt.Domain) error {
		// libvirt's worst case: the sync, then the command, each bounded.
		limit := agentSyncWait + time.Duration(secs)*time.Second
		err := detached(ctx, d, limit, "guest-get-time", func(d *libvirt.Domain) error {
			return getTimeWithin(d, secs)
		})
		if err == nil || agentAnswered(err) {
			return nil
		}
		var g *gaveUp
		switch code := libvirtCode(err); {
		case errors.As(err, &g):
			return &opError{op: op, class: g.class(), cause: err}
		case code == libvirt.ERR_ARGUMENT_UNSUPPORTED:
			// QEMU: "QEMU guest agent is not configured".
			return &opError{op: op, class: ErrAgentUnavailable, cause: err}
		case code == libvirt.ERR_OPERATION_INVALID:
			// "domain is not running": off, or on but paused, when its
			// agent cannot answer.
			if active, aerr := d.IsActive(); aerr == nil && active {
				return &opError{op: op, class: ErrAgentUnavailable, cause: err}
			}
			return &opError{op: op, class: ErrNotRunning, cause: err}
		}
		return err // classified by withDomain: not found, agent unresponsive, ...
	})
}

// getTimeWithin asks the guest agent for the time, with the domain's agent
// response timeout set to secs for the call (see PingAgent for why and what
// that changes).
func getTimeWithin(d *libvirt.Domain, secs int) error {
	err := d.AgentSetResponseTimeout(secs, 0)
	switch {
	case err == nil:
		defer d.AgentSetResponseTimeout(int(libvirt.DOMAIN_AGENT_RESPONSE_TIMEOUT_BLOCK), 0)
	case libvirtCode(err) == libvirt.ERR_NO_SUPPORT:
		// A driver without the setting (test:///) has no agent to wait for.
	default:
		// Never ask without a bound: that call could wait forever.
		return err
	}
	_, _, err = d.GetTime(0)
	return err
}

// agentAnswered reports whether err is the guest agent's own error reply:
// the agent is up, it only refused or failed the command. Newer libvirt
// says so with its own code; older libvirt (9.0 in Debian 12) reports an
// internal error with this message (qemuAgentCheckError).
func agentAnswered(err error) bool {
	var lv libvirt.Error
	if !errors.As(err, &lv) {
		return false
	}
	return lv.Code == libvirt.ERR_AGENT_COMMAND_FAILED ||
		lv.Code == libvirt.ERR_INTERNAL_ERROR && strings.Contains(lv.Message, "unable to execute QEMU agent command")
}

// gaveUp is detached's error when it stopped waiting for the call.
type gaveUp struct {
	what   string
	after  time.Duration // the bound that passed, or 0 when ctx ended
	ctxErr error
}

func (g *gaveUp) Error() string {
	if g.ctxErr != nil {
		return fmt.Sprintf("%s: gave up waiting: %v", g.what, g.ctxErr)
	}
	return fmt.Sprintf("%s: no answer within %v", g.what, g.after)
}

func (g *gaveUp) Unwrap() error { return g.ctxErr }

// class is ErrTimeout unless the caller cancelled.
func (g *gaveUp) class() error {
	if errors.Is(g.ctxErr, context.Canceled) {
		return nil
	}
	return ErrTimeout
}

// detached runs fn on its own goroutine, with its own reference to d, and
// waits for it at most limit or until ctx ends (a *gaveUp error). Calls that
// talk to QEMU or to the guest agent can take far longer than the caller may
// wait (a QEMU stuck in I/O never answers its monitor); then they cost that
// goroutine and the domain reference, not the caller. fn's error is returned
// as it is.
func detached(ctx context.Context, d *libvirt.Domain, limit time.Duration, what string, fn func(d *libvirt.Domain) error) error {
	if err := d.Ref(); err != nil {
		return err
	}
	return waitDetached(ctx, limit, what, func() error {
		defer d.Free()
		return fn(d)
	})
}

// waitDetached is detached without the domain reference.
func waitDetached(ctx context.Context, limit time.Duration, what string, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return &gaveUp{what: what, after: limit}
	case <-ctx.Done():
		return &gaveUp{what: what, ctxErr: ctx.Err()}
	}
}

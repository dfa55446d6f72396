package maintenance

import (
	"context"
	"fmt"
	"os"
	"time"
)

// What a stopping wingmand does with this host's guests (DESIGN.md,
// "Running Wingman moves nothing"): when only the service stops (a
// restart, an upgrade, `systemctl stop`), the guests stay, running and
// protected, and the next wingmand takes them back; shutdown.policy
// applies only when the host itself goes down. PlanStop decides from
// values; StopCause finds out which kind of stop it is; Host.ApplyStop
// carries out the plan's guest action.

// ShutdownPolicy is what wingmand does with this host's protected VMs when
// the host itself shuts down or reboots (shutdown.policy).
type ShutdownPolicy string

// The shutdown policies.
const (
	// PolicyMigrate live-migrates the VMs away, then leaves (the default).
	PolicyMigrate ShutdownPolicy = "migrate"
	// PolicyFailover shuts the VMs down and releases them for the other
	// hosts to start, then leaves.
	PolicyFailover ShutdownPolicy = "failover"
	// PolicyFreeze shuts the VMs down and keeps them stopped everywhere
	// until this host's wingmand is back (Freeze, Thaw), then leaves.
	PolicyFreeze ShutdownPolicy = "freeze"
	// PolicyKeep leaves the VMs alone: they stop with the host, and the
	// others restart them once it is declared dead. It needs a hardware
	// watchdog (left armed); without one it acts as PolicyFailover.
	PolicyKeep ShutdownPolicy = "keep"
)

// ParseShutdownPolicy checks a shutdown.policy value.
func ParseShutdownPolicy(s string) (ShutdownPolicy, error) {
	switch p := ShutdownPolicy(s); p {
	case PolicyMigrate, PolicyFailover, PolicyFreeze, PolicyKeep:
		return p, nil
	}
	return "", fmt.Errorf("%q: use migrate, failover, freeze or keep", s)
}

// GuestAction is what a stopping wingmand does with the protected VMs it
// runs.
type GuestAction string

// The guest actions of a StopPlan.
const (
	// KeepGuests leaves them running, owned by this host, for the next
	// wingmand (or the watchdog) to deal with.
	KeepGuests GuestAction = "keep"
	// MigrateGuests live-migrates them away (Evacuate).
	MigrateGuests GuestAction = "migrate"
	// ReleaseGuests shuts them down and releases their leases, so that
	// other hosts start them.
	ReleaseGuests GuestAction = "release"
	// FreezeGuests shuts them down and keeps them stopped (Freeze).
	FreezeGuests GuestAction = "freeze"
)

// StopInput is what PlanStop decides from.
type StopInput struct {
	// Policy is shutdown.policy; an unknown one acts as PolicyMigrate,
	// the default (ParseShutdownPolicy rejects it at configuration time).
	Policy ShutdownPolicy
	// HostDown: the host itself is shutting down, rebooting, halting or
	// kexec-ing (StopCause). False: only wingmand stops.
	HostDown bool
	// HardwareWatchdog: a hardware watchdog is armed. Left armed, it
	// resets the host if wingmand is not back in time; the software one
	// dies with the daemon.
	HardwareWatchdog bool
	// Host is this host's name, for the notice.
	Host string
	// Resume is how long after its last heartbeat write a restarted
	// wingmand still resumes its slot and keeps the guests
	// (heartbeat.ResumeWindow, F - R); Watchdog and Dead are the cluster's
	// W and D.
	Resume, Watchdog, Dead time.Duration
}

// StopPlan is what a stopping wingmand does.
type StopPlan struct {
	Guests GuestAction
	// Leave: once the guests are handled, mark the heartbeat slot left
	// and leave serf. Never while guests stay owned by this host.
	Leave bool
	// KeepWatchdogArmed: exit without disarming the hardware watchdog,
	// which then resets the host W after the last pet unless wingmand is
	// back by then.
	KeepWatchdogArmed bool
	// Reason says what is done and why, for the log and the events.
	Reason string
	// Window, when the guests stay, is how long after its last heartbeat
	// wingmand may be away and still keep them: Resume, or W if a hardware
	// watchdog left armed fires sooner.
	Window time.Duration
	// Notice, when guests stay, bounds the restart: the Window, after which
	// the host is declared dead and its guests restarted elsewhere, and,
	// without a hardware watchdog, the risk past D.
	Notice string
	// Warn: Notice describes a risk the operator must know about.
	Warn bool
}

// PlanStop decides what a stopping wingmand does with its guests. A stop of
// the service alone (restart, upgrade) never moves a guest, whatever the
// policy; the policy applies when the host goes down.
func PlanStop(in StopInput) StopPlan {
	if !in.HostDown {
		p := StopPlan{Guests: KeepGuests, KeepWatchdogArmed: in.HardwareWatchdog,
			Reason: "only wingmand stops (restart, upgrade): guests stay; shutdown.policy applies when the host goes down"}
		p.Window = in.Resume
		if in.HardwareWatchdog && in.Watchdog < p.Window {
			p.Window = in.Watchdog
		}
		p.Notice, p.Warn = restartNotice(in, p.Window)
		return p
	}
	down := "host going down, shutdown policy " + string(in.Policy)
	switch in.Policy {
	case PolicyFailover:
		return StopPlan{Guests: ReleaseGuests, Leave: true, Reason: down + ": protected VMs shut down for other hosts to start"}
	case PolicyFreeze:
		return StopPlan{Guests: FreezeGuests, Leave: true, Reason: down + ": protected VMs stopped until this host is back"}
	case PolicyKeep:
		if !in.HardwareWatchdog {
			// Nothing would stop these VMs if the host hangs on its way
			// down past D while the others restart them: hand them over.
			return StopPlan{Guests: ReleaseGuests, Leave: true, Reason: down + " needs a hardware watchdog: protected VMs released instead"}
		}
		return StopPlan{Guests: KeepGuests, KeepWatchdogArmed: true,
			Reason: fmt.Sprintf("%s: protected VMs stop with the host and are restarted elsewhere once it is declared dead (D = %v)", down, in.Dead)}
	}
	return StopPlan{Guests: MigrateGuests, Leave: true, Reason: "host going down, shutdown policy migrate: protected VMs live-migrated away"}
}

// restartNotice is the notice of a stop that leaves the guests here.
func restartNotice(in StopInput, window time.Duration) (string, bool) {
	msg := fmt.Sprintf("wingmand stopping, guests stay; restart within %v or host %s is declared dead and its guests restarted elsewhere", window, in.Host)
	if in.HardwareWatchdog {
		return msg + fmt.Sprintf(" (the hardware watchdog, left armed, resets it %v after its last pet)", in.Watchdog), false
	}
	return msg + fmt.Sprintf("; no hardware watchdog: nothing here stops them meanwhile, so past D (%v) they also run elsewhere until wingmand is back and destroys its copies"+
		" (a stopped wingmand cannot be told from a frozen host); before a longer stop run `wingman maintenance enter %s`", in.Dead, in.Host), true
}

// HostShutdownFile is the file, in wingmand's runtime directory (that of
// its API socket, /run/wingman), whose presence at a stop says that the
// host itself is going down: a host without systemd touches it in its
// shutdown scripts before stopping wingmand. StopCause removes it.
const HostShutdownFile = "host-shutdown"

// ServiceManager is the host's init system (systemd, cmd/internal/systemd).
type ServiceManager interface {
	// HostGoingDown reports whether the host itself is shutting down,
	// rebooting, halting or kexec-ing, and the evidence. It returns within
	// a few seconds.
	HostGoingDown(ctx context.Context) (down bool, why string, err error)
}

// StopCause tells a stop of wingmand alone from the host going down: the
// host-shutdown file (removed once read), else the service manager. When
// the manager cannot be asked (no D-Bus, no systemd), only the service
// stops: a restart must never move guests.
func StopCause(ctx context.Context, shutdownFile string, sm ServiceManager) (hostDown bool, why string) {
	if _, err := os.Stat(shutdownFile); err == nil {
		os.Remove(shutdownFile)
		return true, shutdownFile + " says the host is going down"
	}
	down, why, err := sm.HostGoingDown(ctx)
	if err != nil {
		return false, fmt.Sprintf("taken as a stop of wingmand alone: the service manager cannot tell (%v)", err)
	}
	return down, why
}

// ApplyStop carries out plan's guest action. An evacuation that could not
// move every VM is an error: the VMs left here fail over once this host is
// declared dead.
func (h *Host) ApplyStop(ctx context.Context, plan StopPlan) error {
	switch plan.Guests {
	case MigrateGuests:
		if err := h.Evacuate(ctx, false); err != nil {
			return fmt.Errorf("evacuation incomplete; VMs left here fail over once this host is declared dead: %w", err)
		}
	case ReleaseGuests:
		return h.vms.ReleaseAll(ctx, plan.Reason)
	case FreezeGuests:
		return h.Freeze(ctx)
	}
	return nil
}

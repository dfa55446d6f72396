package reconcile

import (
	"fmt"
	"strings"
	"time"
)

// Kind says what an Action asks the adapter to do.
type Kind string

const (
	// DestroyStale: destroy the local copy of a VM this host does not own
	// (another host owns it, or this host at a generation declared dead).
	DestroyStale Kind = "destroy-stale"
	// Adopt: take the lease from this host's own older generation (the
	// daemon restarted). Nothing is started or stopped.
	Adopt Kind = "adopt"
	// TakeAndStart: failover. Take the lease (AcquireLease(Index, Expect)),
	// define the XML from the record and start the VM.
	TakeAndStart Kind = "take-and-start"
	// ClaimMigrated: take the lease of a VM that migrated here (or whose
	// owner died while migrating it here); start it if Start is set (it is
	// not running here).
	ClaimMigrated Kind = "claim-migrated"
	// CompleteMigration: the owner's guest left this host during a
	// migration whose call is gone: mark it Completed so the target claims.
	CompleteMigration Kind = "complete-migration"
	// ClearMigration: the migration target is gone; keep the lease, clear
	// the migration state, and start the VM here if Start is set.
	ClearMigration Kind = "clear-migration"
	// Start: this host owns the VM, it should run and is not defined or
	// running here: define the XML and start it (no restart counted).
	Start Kind = "start"
	// RestartInPlace: the owned VM crashed, panicked or stopped and its
	// policy restarts it: destroy it if still active, then start it.
	RestartInPlace Kind = "restart"
	// Release: give the lease up so another host runs the VM (restart limit
	// reached, starts keep failing, or I/O error response restart); destroy
	// the local copy first if Destroy is set.
	Release Kind = "release"
	// Resume: continue a VM paused on an I/O error (policy resume).
	Resume Kind = "resume"
	// Stop: the operator stopped the VM: shut the local copy down.
	Stop Kind = "stop"
	// Notice: nothing to do, but worth an event (unplaced, waiting).
	Notice Kind = "notice"
	// Wait: this host would start the VM of a failover now, but its start
	// order holds it back: the guest agents of an earlier tier have not
	// answered yet, or its own start delay runs (from Since; the caller
	// keeps Since in the VM's History so the delay is counted once).
	Wait Kind = "wait"
)

// order ranks kinds for execution: destroys first, then lease bookkeeping
// that frees or hands over, then starts.
func (k Kind) order() int {
	switch k {
	case DestroyStale:
		return 0
	case Stop, Release:
		return 1
	case Adopt, CompleteMigration, ClearMigration, ClaimMigrated, Resume:
		return 2
	case RestartInPlace, Start:
		return 3
	case TakeAndStart:
		return 4
	}
	return 5
}

// Action is one thing for the adapter to do.
type Action struct {
	Kind  Kind
	VM    string // UUID
	Name  string
	Index int // VM record index
	// Expect is the lease epoch the action starts from: AcquireLease(Index,
	// Expect) for the kinds that take a lease, the epoch held otherwise.
	Expect uint64
	// Start: after taking the lease (ClaimMigrated) or clearing the
	// migration (ClearMigration), start the VM here.
	Start bool
	// Destroy: destroy the local copy before releasing (Release).
	Destroy bool
	// DiskLost (Release): the disk-loss response. Make sure the destroyed
	// copy is gone, then mark on the record the hosts that cannot reach
	// the VM's disks (this one, and those whose disk check fails) before
	// releasing, so that no plan puts it back on them (Avoided).
	DiskLost bool
	// Event (Notice) is the kind of the event to write; "": "notice".
	Event string
	// Counts: the start is an automatic restart that counts toward the
	// restart limit.
	Counts bool
	// Wave (TakeAndStart) is the plan wave this start belongs to.
	Wave int
	// Since (Wait on a start delay) is when the delay began.
	Since  time.Time
	Reason string
}

func (a Action) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", a.Kind, a.Name)
	if a.Kind != Notice && a.Kind != DestroyStale && a.Kind != Stop && a.Kind != Wait {
		fmt.Fprintf(&b, " epoch=%d", a.Expect)
	}
	if a.Start {
		b.WriteString(" start")
	}
	if a.Destroy {
		b.WriteString(" destroy")
	}
	if a.DiskLost {
		b.WriteString(" disk-lost")
	}
	if a.Counts {
		b.WriteString(" counted")
	}
	if a.Wave > 0 {
		fmt.Fprintf(&b, " wave=%d", a.Wave)
	}
	if a.Reason != "" {
		b.WriteString(": " + a.Reason)
	}
	return b.String()
}

// takesLease reports whether the action acquires the lease at Expect+1.
func (a Action) takesLease() bool {
	return a.Kind == Adopt || a.Kind == TakeAndStart || a.Kind == ClaimMigrated
}

// starts reports whether the action starts the VM on this host.
func (a Action) starts() bool {
	switch a.Kind {
	case TakeAndStart, Start, RestartInPlace:
		return true
	case ClaimMigrated, ClearMigration:
		return a.Start
	}
	return false
}

// TakesLease reports whether the action acquires the lease at Expect+1.
func (a Action) TakesLease() bool { return a.takesLease() }

// Starts reports whether the action starts the VM on this host.
func (a Action) Starts() bool { return a.starts() }

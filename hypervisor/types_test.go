package hypervisor

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"libvirt.org/go/libvirt"
)

func TestStateNamesAndActive(t *testing.T) {
	for _, tc := range []struct {
		s      State
		name   string
		active bool
	}{
		{StateNoState, "nostate", false},
		{StateRunning, "running", true},
		{StateBlocked, "blocked", true},
		{StatePaused, "paused", true},
		{StateShuttingOff, "shutting-down", true},
		{StateShutoff, "shutoff", false},
		{StateCrashed, "crashed", true},
		{StatePMSuspended, "pmsuspended", true},
		{State(99), "state(99)", false},
	} {
		if got := tc.s.String(); got != tc.name {
			t.Errorf("State(%d).String() = %q, want %q", int(tc.s), got, tc.name)
		}
		if got := tc.s.Active(); got != tc.active {
			t.Errorf("%v.Active() = %v, want %v", tc.s, got, tc.active)
		}
	}
}

func TestReasonName(t *testing.T) {
	for _, tc := range []struct {
		s      State
		reason int
		want   string
	}{
		{StateRunning, int(libvirt.DOMAIN_RUNNING_BOOTED), "booted"},
		{StateRunning, int(libvirt.DOMAIN_RUNNING_MIGRATED), "migrated"},
		{StatePaused, int(libvirt.DOMAIN_PAUSED_IOERROR), "ioerror"},
		{StatePaused, int(libvirt.DOMAIN_PAUSED_USER), "user"},
		{StateShutoff, int(libvirt.DOMAIN_SHUTOFF_CRASHED), "crashed"},
		{StateShutoff, int(libvirt.DOMAIN_SHUTOFF_DESTROYED), "destroyed"},
		{StateShutoff, int(libvirt.DOMAIN_SHUTOFF_MIGRATED), "migrated"},
		{StateCrashed, int(libvirt.DOMAIN_CRASHED_PANICKED), "panicked"},
		{StatePaused, 999, "reason(999)"},
		{State(42), 0, "reason(0)"},
	} {
		if got := ReasonName(tc.s, tc.reason); got != tc.want {
			t.Errorf("ReasonName(%v, %d) = %q, want %q", tc.s, tc.reason, got, tc.want)
		}
	}
}

func TestPausedOnIOError(t *testing.T) {
	for _, tc := range []struct {
		d    Domain
		want bool
	}{
		{Domain{State: StatePaused, ReasonCode: int(libvirt.DOMAIN_PAUSED_IOERROR)}, true},
		{Domain{State: StatePaused, ReasonCode: int(libvirt.DOMAIN_PAUSED_USER)}, false},
		// The same number means something else in another state.
		{Domain{State: StateRunning, ReasonCode: int(libvirt.DOMAIN_PAUSED_IOERROR)}, false},
	} {
		if got := tc.d.PausedOnIOError(); got != tc.want {
			t.Errorf("%+v.PausedOnIOError() = %v, want %v", tc.d, got, tc.want)
		}
	}
}

func TestLifecycleKind(t *testing.T) {
	for _, tc := range []struct {
		t          libvirt.DomainEventType
		detail     int
		kind       EventKind
		detailName string
	}{
		{libvirt.DOMAIN_EVENT_DEFINED, int(libvirt.DOMAIN_EVENT_DEFINED_ADDED), EventDefined, "added"},
		{libvirt.DOMAIN_EVENT_UNDEFINED, int(libvirt.DOMAIN_EVENT_UNDEFINED_REMOVED), EventUndefined, "removed"},
		{libvirt.DOMAIN_EVENT_STARTED, int(libvirt.DOMAIN_EVENT_STARTED_MIGRATED), EventStarted, "migrated"},
		{libvirt.DOMAIN_EVENT_SUSPENDED, int(libvirt.DOMAIN_EVENT_SUSPENDED_IOERROR), EventPaused, "ioerror"},
		{libvirt.DOMAIN_EVENT_RESUMED, int(libvirt.DOMAIN_EVENT_RESUMED_UNPAUSED), EventResumed, "unpaused"},
		{libvirt.DOMAIN_EVENT_STOPPED, int(libvirt.DOMAIN_EVENT_STOPPED_SHUTDOWN), EventStopped, "shutdown"},
		{libvirt.DOMAIN_EVENT_STOPPED, int(libvirt.DOMAIN_EVENT_STOPPED_MIGRATED), EventStopped, "migrated"},
		// A QEMU that died under its guest is a crash, not an orderly stop.
		{libvirt.DOMAIN_EVENT_STOPPED, int(libvirt.DOMAIN_EVENT_STOPPED_FAILED), EventCrashed, "failed"},
		{libvirt.DOMAIN_EVENT_STOPPED, int(libvirt.DOMAIN_EVENT_STOPPED_CRASHED), EventCrashed, "crashed"},
		{libvirt.DOMAIN_EVENT_SHUTDOWN, int(libvirt.DOMAIN_EVENT_SHUTDOWN_GUEST), EventShutdown, "guest"},
		{libvirt.DOMAIN_EVENT_PMSUSPENDED, int(libvirt.DOMAIN_EVENT_PMSUSPENDED_MEMORY), EventPMSuspended, "memory"},
		{libvirt.DOMAIN_EVENT_CRASHED, int(libvirt.DOMAIN_EVENT_CRASHED_PANICKED), EventCrashed, "panicked"},
		{libvirt.DOMAIN_EVENT_STARTED, 77, EventStarted, "detail(77)"},
		// An event type this code does not know makes the consumer re-list.
		{libvirt.DomainEventType(99), 0, EventResync, "unknown libvirt event type 99"},
	} {
		kind, detail := lifecycleKind(tc.t, tc.detail)
		if kind != tc.kind || detail != tc.detailName {
			t.Errorf("lifecycleKind(%d, %d) = %v %q, want %v %q", tc.t, tc.detail, kind, detail, tc.kind, tc.detailName)
		}
	}
}

func TestNames(t *testing.T) {
	for kind := EventResync; kind <= EventIOError; kind++ {
		if strings.HasPrefix(kind.String(), "event(") {
			t.Errorf("EventKind %d has no name", int(kind))
		}
	}
	if got := EventKind(0).String(); got != "event(0)" {
		t.Errorf("EventKind(0) = %q", got)
	}
	for c := ConditionUnknown; c <= ConditionCrashed; c++ {
		if strings.HasPrefix(c.String(), "condition(") {
			t.Errorf("Condition %d has no name", int(c))
		}
	}
	if got := (Event{Kind: EventStarted, Domain: "web1", Detail: "booted"}).String(); got != `started "web1" (booted)` {
		t.Errorf("Event.String() = %q", got)
	}
	if got := (Event{Kind: EventResync, Detail: "overflow"}).String(); got != "resync (overflow)" {
		t.Errorf("Event.String() = %q", got)
	}
}

// Guard: the package keeps a doc comment saying what it owns and must not do.
func TestPackageDoc(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	doc := f.Doc.Text()
	if !strings.HasPrefix(doc, "Package hypervisor ") {
		t.Fatalf("doc.go has no package doc comment starting %q", "Package hypervisor ")
	}
	for _, must := range []string{"never", "caller's duties"} {
		if !strings.Contains(doc, must) {
			t.Errorf("package doc does not mention %q", must)
		}
	}
}

package notify

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// DefaultSettleBound is how long after a host was declared dead its
// incident is sent even if some VMs are neither started nor given up.
const DefaultSettleBound = 5 * time.Minute

// PlanSkew is how long before a declaration another host may already have
// planned a VM of the lost host: every host judges the heartbeats itself
// and acts on its own verdict, and the coordinator's "declared-dead"
// event may be written after a faster host's "planned". Without an
// inventory of the lost host, such a VM belongs to the incident.
const PlanSkew = 5 * time.Second

// SettleQuiet is how long an incident whose VMs all started or failed
// waits for more VM events before it settles: a slower host may not have
// written the "planned" event of a VM it takes over yet.
const SettleQuiet = 3 * time.Second

// Facts is everything the summarizer reads: the same on every host that
// reads the same LUN, so every host computes the same incidents and ids.
type Facts struct {
	Events    []storage.Event         // every host's ring (storage.LUN.ReadEvents), any order
	HostNames map[int]string          // host id -> name; a missing name reads "host N"
	VMNames   map[storage.UUID]string // VM -> name; a missing name reads its UUID
	// LostVMs are the VMs each host owned when it was lost (the leases it
	// held). When a host is missing, its VMs are those planned for
	// failover after its declaration.
	LostVMs map[int][]storage.UUID
	// Rejoined are hosts the caller sees alive again on the LUN (a new slot
	// generation after their declaration), with when it first saw them:
	// the host is back even if it has written no event yet.
	Rejoined map[int]time.Time
	Now      time.Time     // the caller's clock, for the settle bound
	Bound    time.Duration // settle bound; zero: DefaultSettleBound
}

// How a host was declared dead.
const (
	DeclaredHeartbeat = "heartbeat" // its disk heartbeat stayed unchanged for D
	DeclaredFenced    = "fenced"    // a fence agent confirmed it powered off
	DeclaredIsolated  = "isolated"  // it acknowledged a poison pill: it destroyed its VMs
	DeclaredLeft      = "left"      // it left cleanly
	DeclaredConfirmed = "confirmed" // an operator confirmed it powered off (wingman host confirm-off)
	// DeclaredDiskLoss: not a lost host but lost disk paths: the host's
	// guests stayed paused on I/O errors past failover.disk_loss_grace, and
	// it destroyed them for other hosts to restart ("disk-loss-grace-expired").
	DeclaredDiskLoss = "disk-loss"
)

// DiskLossGroup is how close the disk-loss responses of one host's VMs
// must follow the first to be one incident: its guests pause together
// when it loses its paths, and expire within about a step of each other.
const DiskLossGroup = 30 * time.Second

// VM outcomes in an incident.
const (
	VMPending = "pending" // neither started nor given up yet
	VMStarted = "started"
	VMFailed  = "failed" // given up: the failover of this VM failed
)

// VMOutcome is what became of one VM of the lost host.
type VMOutcome struct {
	UUID    storage.UUID
	Name    string
	State   string        // VMPending, VMStarted, VMFailed
	Host    string        // where it runs now (or was tried)
	At      time.Time     // when it started (or failed)
	Took    time.Duration // from the declaration to At
	Message string        // the failure's reason, if it failed
}

// Incident is one lost host and what became of its VMs.
type Incident struct {
	ID         string // stable: derived from the first declaration's event
	HostID     int
	Host       string
	Lost       time.Time // first sign: suspicion, pill or fence, else the declaration
	Declared   time.Time
	How        string // DeclaredHeartbeat, DeclaredFenced, DeclaredIsolated, DeclaredLeft
	Reason     string // the declaration's own message
	VMs        []VMOutcome
	Settled    bool      // every VM started or given up, or the bound passed
	SettledAt  time.Time // when it settled (the last VM, or the bound)
	Resolved   bool      // the host came back
	ResolvedAt time.Time
	Severity   storage.Severity // warning when every VM came back, else error
}

// Kinds of the notifications of an incident.
const (
	KindIncident = "incident" // a failover settled
	KindResolved = "resolved" // the lost host came back
	KindTest     = "test"     // `wingman notify test`
)

// incidentID derives the id from the first declaration's event, which
// every host reads identically from the LUN.
func incidentID(subject int, decl storage.Event) string {
	h := sha256.Sum256(fmt.Appendf(nil, "wingman-incident/1 host=%d writer=%d seq=%d time=%d", subject, decl.Host, decl.Seq, decl.Time.UnixNano()))
	return "inc-" + hex.EncodeToString(h[:12])
}

// firstSigns are events, about a host (Subject), that come before its
// declaration: the earliest is when it was lost.
var firstSigns = map[string]bool{"suspected": true, "isolated": true, "pill-sent": true, "pill-acknowledged": true,
	"power-fence": true, "power-fence-confirmed": true, "confirmed-off": true}

// backKinds are events, about a host (Subject), that say it is back.
var backKinds = map[string]bool{"rejoined": true, "host-back": true, "joined": true, "host-joined": true}

// Summarize builds the incidents of facts, oldest first. It is pure: the
// same facts give the same incidents on every host.
func Summarize(f Facts) []Incident {
	bound := f.Bound
	if bound <= 0 {
		bound = DefaultSettleBound
	}
	evs := slices.Clone(f.Events)
	for h, at := range f.Rejoined {
		evs = append(evs, storage.Event{Kind: "rejoined", Subject: h, Time: at})
	}
	slices.SortStableFunc(evs, func(a, b storage.Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Host, b.Host), cmp.Compare(a.Seq, b.Seq))
	})
	var out []*Incident
	open := map[int]*Incident{} // by lost host, until it is back
	type hint struct {
		first time.Time
		how   string
	}
	hints := map[int]*hint{}  // how each loss began, before its declaration
	var early []storage.Event // "planned" events no open incident took, for a declaration just after
	// A host's disk-loss incidents are open under negative keys: the host
	// is not lost, so neither its own events nor a "back" event end them,
	// and a later declaration of that host opens an incident of its own.
	lastLoss := map[int]int{} // host -> key of its latest disk-loss incident
	for _, e := range evs {
		if e.Kind == "disk-loss-grace-expired" && e.VM != (storage.UUID{}) && e.Host > 0 {
			inc := open[lastLoss[e.Host]]
			if inc == nil || e.Time.Sub(inc.Declared) > DiskLossGroup {
				inc = &Incident{ID: incidentID(e.Host, e), HostID: e.Host, Host: hostName(f.HostNames, e.Host),
					Lost: e.Time, Declared: e.Time, How: DeclaredDiskLoss, Reason: e.Message}
				lastLoss[e.Host] = -len(out) - 1
				open[lastLoss[e.Host]] = inc
				out = append(out, inc)
			}
			if !slices.ContainsFunc(inc.VMs, func(v VMOutcome) bool { return v.UUID == e.VM }) {
				inc.VMs = append(inc.VMs, VMOutcome{UUID: e.VM, Name: vmName(f.VMNames, e.VM), State: VMPending})
			}
			continue
		}
		if inc := openFor(open, e); inc != nil {
			// The lost host writes again, or another host says it is back.
			inc.Resolved, inc.ResolvedAt = true, e.Time
			delete(open, inc.HostID)
			continue
		}
		switch {
		case firstSigns[e.Kind] && e.Subject > 0:
			if open[e.Subject] != nil {
				continue
			}
			h := hints[e.Subject]
			if h == nil {
				h = &hint{first: e.Time}
				hints[e.Subject] = h
			}
			if k := howOf(e.Kind); k != "" {
				h.how = k
			}
		case e.Kind == "declared-dead" && e.Subject > 0:
			if open[e.Subject] != nil {
				continue // a second coordinator's verdict on the same loss
			}
			inc := &Incident{ID: incidentID(e.Subject, e), HostID: e.Subject, Host: hostName(f.HostNames, e.Subject),
				Lost: e.Time, Declared: e.Time, How: DeclaredHeartbeat, Reason: e.Message}
			if strings.Contains(strings.ToLower(e.Message), "left") {
				inc.How = DeclaredLeft
			}
			if h := hints[e.Subject]; h != nil {
				if h.first.Before(inc.Lost) {
					inc.Lost = h.first
				}
				if h.how != "" {
					inc.How = h.how
				}
				delete(hints, e.Subject)
			}
			for _, id := range f.LostVMs[e.Subject] {
				inc.VMs = append(inc.VMs, VMOutcome{UUID: id, Name: vmName(f.VMNames, id), State: VMPending})
			}
			open[e.Subject] = inc
			out = append(out, inc)
			if _, known := f.LostVMs[e.Subject]; !known {
				adoptEarly(f, inc, early)
			}
			early = nil
		case e.VM != (storage.UUID{}):
			if !applyVM(f, open, e) && e.Kind == "planned" {
				early = append(early, e)
			}
		}
	}
	for _, inc := range out {
		settle(inc, f.Now, bound)
	}
	res := make([]Incident, len(out))
	for i, inc := range out {
		res[i] = *inc
	}
	return res
}

// openFor returns the open incident that e shows to be over: an event the
// lost host wrote itself after its declaration, or a "back" event about it.
func openFor(open map[int]*Incident, e storage.Event) *Incident {
	if e.Kind == "self-fence" || e.Kind == "self-fence-failed" {
		return nil // a frozen host that wakes up fences itself: not back yet
	}
	if inc := open[e.Host]; inc != nil && e.Time.After(inc.Declared) {
		return inc
	}
	if backKinds[e.Kind] {
		return open[e.Subject]
	}
	return nil
}

func howOf(kind string) string {
	switch kind {
	case "pill-acknowledged", "isolated":
		return DeclaredIsolated
	case "power-fence-confirmed":
		return DeclaredFenced
	case "confirmed-off":
		return DeclaredConfirmed
	}
	return ""
}

// adoptEarly gives inc (a new incident without inventory) the VMs planned
// within PlanSkew before its declaration.
func adoptEarly(f Facts, inc *Incident, early []storage.Event) {
	for _, e := range early {
		if inc.Declared.Sub(e.Time) > PlanSkew {
			continue // too old for any later declaration
		}
		if slices.ContainsFunc(inc.VMs, func(v VMOutcome) bool { return v.UUID == e.VM }) {
			continue
		}
		inc.VMs = append(inc.VMs, VMOutcome{UUID: e.VM, Name: vmName(f.VMNames, e.VM), State: VMPending, Host: hostName(f.HostNames, e.Host)})
	}
}

// applyVM records a VM event in the open incident the VM belongs to, and
// reports whether one took it.
func applyVM(f Facts, open map[int]*Incident, e storage.Event) bool {
	var inc *Incident
	var vm *VMOutcome
	for _, o := range open {
		for i := range o.VMs {
			if o.VMs[i].UUID == e.VM {
				inc, vm = o, &o.VMs[i]
			}
		}
	}
	if inc == nil && e.Kind == "planned" {
		// No inventory for the lost host: a VM planned after a declaration
		// belongs to the newest open incident without an inventory.
		for _, o := range open {
			if _, known := f.LostVMs[o.HostID]; !known && o.How != DeclaredDiskLoss && !e.Time.Before(o.Declared) && (inc == nil || o.Declared.After(inc.Declared)) {
				inc = o
			}
		}
		if inc != nil {
			inc.VMs = append(inc.VMs, VMOutcome{UUID: e.VM, Name: vmName(f.VMNames, e.VM), State: VMPending})
			vm = &inc.VMs[len(inc.VMs)-1]
		}
	}
	if vm == nil || e.Time.Before(inc.Declared) || vm.State == VMStarted {
		return vm != nil
	}
	switch e.Kind {
	case "lease-acquired", "planned":
		if vm.State == VMPending {
			vm.Host = hostName(f.HostNames, e.Host)
		}
	case "started", "restarted", "guest-up":
		vm.State, vm.Host, vm.At, vm.Took, vm.Message = VMStarted, hostName(f.HostNames, e.Host), e.Time, e.Time.Sub(inc.Declared), ""
	case "failed", "given-up", "start-failed":
		vm.State, vm.Host, vm.At, vm.Took, vm.Message = VMFailed, hostName(f.HostNames, e.Host), e.Time, e.Time.Sub(inc.Declared), e.Message
	}
	return true
}

// settle decides whether inc is complete enough to be sent.
func settle(inc *Incident, now time.Time, bound time.Duration) {
	last := inc.Declared
	done := true
	for _, vm := range inc.VMs {
		if vm.State == VMPending {
			done = false
		} else if vm.At.After(last) {
			last = vm.At
		}
	}
	switch {
	case done && (!now.Before(last.Add(SettleQuiet)) || inc.Resolved):
		inc.Settled, inc.SettledAt = true, last
	case !now.Before(inc.Declared.Add(bound)) || inc.Resolved:
		inc.Settled, inc.SettledAt = true, inc.Declared.Add(bound)
		if inc.Resolved && inc.ResolvedAt.Before(inc.SettledAt) {
			inc.SettledAt = inc.ResolvedAt
		}
	}
	inc.Severity = storage.SevWarning
	for _, vm := range inc.VMs {
		if vm.State != VMStarted {
			inc.Severity = storage.SevError
		}
	}
}

func hostName(names map[int]string, id int) string {
	if n := names[id]; n != "" {
		return n
	}
	return fmt.Sprintf("host %d", id)
}

func vmName(names map[storage.UUID]string, id storage.UUID) string {
	if n := names[id]; n != "" {
		return n
	}
	return id.String()
}

package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode"
)

// ErrInvalidPolicy is wrapped by every policy validation and decoding error.
var ErrInvalidPolicy = errors.New("invalid policy")

// PolicyVersion is the encoding version Marshal writes. Unmarshal reads
// versions 1..PolicyVersion and rejects newer ones.
const PolicyVersion = 1

// MaxEncodedPolicy is the largest encoded policy; it matches the room the
// LUN's VM record keeps for it (storage.MaxPolicy), which this pure package
// may not import.
const MaxEncodedPolicy = 4096

// Priority orders VMs for capacity: a higher value is placed first and is
// the last to be left without a host. The named levels are what people use;
// any value in 0..1000 is allowed for finer ordering.
type Priority int

// The named priority levels.
const (
	PriorityLow    Priority = 100
	PriorityMedium Priority = 500
	PriorityHigh   Priority = 900
	// MaxPriority is the largest allowed priority.
	MaxPriority Priority = 1000
)

// String returns "high", "medium" or "low" for the named levels, the number
// otherwise.
func (p Priority) String() string {
	switch p {
	case PriorityHigh:
		return "high"
	case PriorityMedium:
		return "medium"
	case PriorityLow:
		return "low"
	}
	return strconv.Itoa(int(p))
}

// ParsePriority accepts "high", "medium", "low" or an integer 0..1000.
func ParsePriority(s string) (Priority, error) {
	switch s {
	case "high":
		return PriorityHigh, nil
	case "medium":
		return PriorityMedium, nil
	case "low":
		return PriorityLow, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > int(MaxPriority) {
		return 0, fmt.Errorf("%w: priority %q: use high, medium, low or an integer 0..%d", ErrInvalidPolicy, s, MaxPriority)
	}
	return Priority(n), nil
}

// RestartPolicy says whether a VM is restarted on another host when its host
// is lost.
type RestartPolicy string

const (
	// RestartAlways restarts the VM whether or not it was running when its
	// host was lost: the VM is meant to be up.
	RestartAlways RestartPolicy = "always"
	// RestartOnFailure restarts the VM only if it was running when its host
	// was lost; a VM shut down on purpose stays down.
	RestartOnFailure RestartPolicy = "on-failure"
	// RestartNever leaves the VM down; it is still protected against
	// running twice, and still evacuated by live migration.
	RestartNever RestartPolicy = "never"
)

// IsolationResponse is what a host that is sent a poison pill because it is
// isolated (alive and writing the LUN, but cut off from the quorate
// partition's network) does with this VM.
type IsolationResponse string

const (
	// IsolationStop destroys the VM so another host may restart it.
	IsolationStop IsolationResponse = "stop"
	// IsolationLeaveRunning keeps the VM running; it is not restarted
	// elsewhere while the isolated host holds its lease.
	IsolationLeaveRunning IsolationResponse = "leave-running"
)

// IOErrorResponse is what is done with a VM that QEMU paused on an I/O error
// for longer than the policy's threshold.
type IOErrorResponse string

const (
	// IOErrorWait leaves the VM paused and reports it.
	IOErrorWait IOErrorResponse = "wait"
	// IOErrorResume asks QEMU to continue the VM (storage came back).
	IOErrorResume IOErrorResponse = "resume"
	// IOErrorRestart destroys the VM and restarts it, possibly on another
	// host whose storage path works.
	IOErrorRestart IOErrorResponse = "restart"
)

// RestartLimit caps automatic restarts so a VM that crashes every host it
// lands on does not take the cluster down with it.
type RestartLimit struct {
	// Max restarts within Window; 0 means no limit.
	Max int
	// Window over which restarts are counted (ignored when Max is 0).
	Window time.Duration
}

// IOErrorPolicy is the response to a VM paused on an I/O error.
type IOErrorPolicy struct {
	// After is how long the VM may stay paused before Response applies.
	After time.Duration
	// Response to apply once the VM was paused for After.
	Response IOErrorResponse
}

// Policy is the failover policy of one protected VM.
type Policy struct {
	// Priority orders VMs for capacity (highest first).
	Priority Priority
	// Restart says whether the VM is restarted when its host is lost.
	Restart RestartPolicy
	// RestartLimit caps automatic restarts per window.
	RestartLimit RestartLimit
	// AntiAffinity names a group: no two VMs of one group run on one host.
	// Empty means no group.
	AntiAffinity string
	// PreferredHosts lists host names or decimal host ids tried first, in no
	// particular order among themselves (the one with the most room wins).
	PreferredHosts []string
	// StartOrder is the tier: every VM of a lower tier is started before any
	// VM of a higher tier. 0..MaxStartOrder.
	StartOrder int
	// StartDelay is waited after the VM's start wave begins, before starting
	// it.
	StartDelay time.Duration
	// WaitGuestAgent makes later tiers wait until this VM's guest agent
	// answers.
	WaitGuestAgent bool
	// Isolation is what an isolated host does with this VM.
	Isolation IsolationResponse
	// IOError is the response to the VM pausing on an I/O error.
	IOError IOErrorPolicy
}

// Limits checked by Validate.
const (
	MaxStartOrder     = 100
	MaxStartDelay     = time.Hour
	MaxPreferredHosts = 64
	MaxNameLen        = 64 // anti-affinity group and preferred host entries
	MaxRestarts       = 1000
	MinRestartWindow  = time.Minute
	MaxRestartWindow  = 7 * 24 * time.Hour
	MinIOErrorAfter   = time.Second
	MaxIOErrorAfter   = 24 * time.Hour
)

// DefaultPolicy is the policy of a VM protected without options: medium
// priority, always restarted, at most 3 restarts per hour, tier 0, left
// running by a host that is isolated from the management network but still
// writes the LUN (DESIGN.md promise 3: such a partition restarts nothing; an
// isolated host is not a dead one), a VM paused on I/O error for a minute is
// reported and left paused.
func DefaultPolicy() Policy {
	return Policy{
		Priority:     PriorityMedium,
		Restart:      RestartAlways,
		RestartLimit: RestartLimit{Max: 3, Window: time.Hour},
		Isolation:    IsolationLeaveRunning,
		IOError:      IOErrorPolicy{After: time.Minute, Response: IOErrorWait},
	}
}

func policyErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidPolicy}, args...)...)
}

// Validate reports every field that is out of range, each error naming the
// field and what to use instead.
func (p Policy) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, policyErr(format, args...)) }
	if p.Priority < 0 || p.Priority > MaxPriority {
		add("priority %d: use high, medium, low or an integer 0..%d", int(p.Priority), MaxPriority)
	}
	switch p.Restart {
	case RestartAlways, RestartOnFailure, RestartNever:
	default:
		add("restart %q: use always, on-failure or never", string(p.Restart))
	}
	if p.RestartLimit.Max < 0 || p.RestartLimit.Max > MaxRestarts {
		add("restart limit max %d: use 0 (no limit) to %d", p.RestartLimit.Max, MaxRestarts)
	}
	if p.RestartLimit.Max > 0 && (p.RestartLimit.Window < MinRestartWindow || p.RestartLimit.Window > MaxRestartWindow) {
		add("restart limit window %v: use %v to %v", p.RestartLimit.Window, MinRestartWindow, MaxRestartWindow)
	}
	if err := checkName(p.AntiAffinity); err != nil {
		add("anti-affinity group %q: %v", p.AntiAffinity, err)
	}
	if len(p.PreferredHosts) > MaxPreferredHosts {
		add("preferred hosts: %d entries, at most %d", len(p.PreferredHosts), MaxPreferredHosts)
	}
	for i, h := range p.PreferredHosts {
		if h == "" {
			add("preferred hosts entry %d is empty: give a host name or id", i)
			continue
		}
		if err := checkName(h); err != nil {
			add("preferred host %q: %v", h, err)
		}
		for _, prev := range p.PreferredHosts[:i] {
			if prev == h {
				add("preferred host %q is listed twice: remove one", h)
				break
			}
		}
	}
	if p.StartOrder < 0 || p.StartOrder > MaxStartOrder {
		add("start order %d: use a tier 0..%d", p.StartOrder, MaxStartOrder)
	}
	if p.StartDelay < 0 || p.StartDelay > MaxStartDelay {
		add("start delay %v: use 0 to %v", p.StartDelay, MaxStartDelay)
	}
	switch p.Isolation {
	case IsolationStop, IsolationLeaveRunning:
	default:
		add("isolation response %q: use stop or leave-running", string(p.Isolation))
	}
	switch p.IOError.Response {
	case IOErrorWait, IOErrorResume, IOErrorRestart:
	default:
		add("i/o error response %q: use wait, resume or restart", string(p.IOError.Response))
	}
	if p.IOError.After < MinIOErrorAfter || p.IOError.After > MaxIOErrorAfter {
		add("i/o error threshold %v: use %v to %v", p.IOError.After, MinIOErrorAfter, MaxIOErrorAfter)
	}
	return errors.Join(errs...)
}

// checkName accepts printable names without spaces, up to MaxNameLen bytes.
func checkName(s string) error {
	if len(s) > MaxNameLen {
		return fmt.Errorf("%d bytes, at most %d", len(s), MaxNameLen)
	}
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return errors.New("use printable characters without spaces")
		}
	}
	return nil
}

// wirePolicy is the JSON encoding. Keys are short because the record's
// policy room is shared with nothing else but is small; absent keys take
// the version-1 defaults, so Marshal omits fields equal to DefaultPolicy.
type wirePolicy struct {
	V         int             `json:"v"`
	Prio      json.RawMessage `json:"prio,omitempty"` // "high"|"medium"|"low" or 0..1000
	Restart   *string         `json:"restart,omitempty"`
	Limit     *wireLimit      `json:"limit,omitempty"`
	Group     *string         `json:"group,omitempty"`
	Prefer    []string        `json:"prefer,omitempty"`
	Tier      *int            `json:"tier,omitempty"`
	Delay     *string         `json:"delay,omitempty"`
	Agent     *bool           `json:"agent,omitempty"`
	Isolation *string         `json:"isolation,omitempty"`
	IOErr     *wireIOErr      `json:"ioerr,omitempty"`
}

type wireLimit struct {
	Max    int    `json:"max"`
	Window string `json:"window,omitempty"`
}

type wireIOErr struct {
	After string `json:"after"`
	Do    string `json:"do"`
}

// Marshal validates p and encodes it as compact, versioned JSON, e.g.
// {"v":1,"prio":"high","group":"db"}. Fields equal to DefaultPolicy are left
// out.
func (p Policy) Marshal() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	d := DefaultPolicy()
	w := wirePolicy{V: PolicyVersion}
	if p.Priority != d.Priority {
		s := p.Priority.String()
		if _, err := strconv.Atoi(s); err != nil {
			s = strconv.Quote(s)
		}
		w.Prio = json.RawMessage(s)
	}
	if p.Restart != d.Restart {
		s := string(p.Restart)
		w.Restart = &s
	}
	if p.RestartLimit != d.RestartLimit && !(p.RestartLimit.Max == 0 && d.RestartLimit.Max == 0) {
		w.Limit = &wireLimit{Max: p.RestartLimit.Max}
		if p.RestartLimit.Max > 0 {
			w.Limit.Window = p.RestartLimit.Window.String()
		}
	}
	if p.AntiAffinity != "" {
		w.Group = &p.AntiAffinity
	}
	w.Prefer = p.PreferredHosts
	if p.StartOrder != 0 {
		w.Tier = &p.StartOrder
	}
	if p.StartDelay != 0 {
		s := p.StartDelay.String()
		w.Delay = &s
	}
	if p.WaitGuestAgent {
		w.Agent = &p.WaitGuestAgent
	}
	if p.Isolation != d.Isolation {
		s := string(p.Isolation)
		w.Isolation = &s
	}
	if p.IOError != d.IOError {
		w.IOErr = &wireIOErr{After: p.IOError.After.String(), Do: string(p.IOError.Response)}
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	if len(b) > MaxEncodedPolicy {
		return nil, policyErr("encoded policy is %d bytes, at most %d: shorten the preferred hosts list", len(b), MaxEncodedPolicy)
	}
	return b, nil
}

// UnmarshalPolicy decodes and validates a policy written by Marshal (of this
// or an older version). Absent fields take the version-1 defaults; unknown
// fields, a newer version or trailing data are errors.
func UnmarshalPolicy(b []byte) (Policy, error) {
	if len(b) > MaxEncodedPolicy {
		return Policy{}, policyErr("encoded policy is %d bytes, at most %d", len(b), MaxEncodedPolicy)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wirePolicy
	if err := dec.Decode(&w); err != nil {
		return Policy{}, policyErr("decode: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Policy{}, policyErr("trailing data after the policy object")
	}
	switch {
	case w.V < 1:
		return Policy{}, policyErr("version %d: missing or invalid \"v\"; re-save the policy", w.V)
	case w.V > PolicyVersion:
		return Policy{}, policyErr("version %d is newer than this wingman understands (%d): upgrade wingman on this host", w.V, PolicyVersion)
	}
	p := DefaultPolicy()
	var errs []error
	dur := func(field, s string) time.Duration {
		d, err := time.ParseDuration(s)
		if err != nil {
			errs = append(errs, policyErr("%s %q: use a duration such as 30s or 1h", field, s))
		}
		return d
	}
	if len(w.Prio) > 0 {
		var s string
		if err := json.Unmarshal(w.Prio, &s); err != nil {
			var n int
			if err := json.Unmarshal(w.Prio, &n); err != nil {
				s = string(w.Prio)
			} else {
				s = strconv.Itoa(n)
			}
		}
		pr, err := ParsePriority(s)
		if err != nil {
			errs = append(errs, err)
		}
		p.Priority = pr
	}
	if w.Restart != nil {
		p.Restart = RestartPolicy(*w.Restart)
	}
	if w.Limit != nil {
		p.RestartLimit = RestartLimit{Max: w.Limit.Max}
		if w.Limit.Window != "" {
			p.RestartLimit.Window = dur("restart limit window", w.Limit.Window)
		}
		if p.RestartLimit.Max == 0 {
			p.RestartLimit.Window = 0 // no limit: the window means nothing
		}
	}
	if w.Group != nil {
		p.AntiAffinity = *w.Group
	}
	if len(w.Prefer) > 0 {
		p.PreferredHosts = w.Prefer
	}
	if w.Tier != nil {
		p.StartOrder = *w.Tier
	}
	if w.Delay != nil {
		p.StartDelay = dur("start delay", *w.Delay)
	}
	if w.Agent != nil {
		p.WaitGuestAgent = *w.Agent
	}
	if w.Isolation != nil {
		p.Isolation = IsolationResponse(*w.Isolation)
	}
	if w.IOErr != nil {
		p.IOError = IOErrorPolicy{After: dur("i/o error threshold", w.IOErr.After), Response: IOErrorResponse(w.IOErr.Do)}
	}
	if err := errors.Join(errs...); err != nil {
		return Policy{}, err
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

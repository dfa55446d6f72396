package fence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"
)

// Topology is one host's fencing levels, tried in order, as Pacemaker's
// fencing topology: level 1 first (the management controller, say), the
// next one only when a level did not confirm the host off (a switched PDU).
// A level is the devices that must all confirm it: both outlets of a host
// with two power supplies. Each device is the Config of its own agent, with
// its own parameters and timeout; Config.Device names it in results.
type Topology [][]Config

// Outcome is how one device's power-off ended.
type Outcome int

const (
	// Confirmed: a status run reported the host off.
	Confirmed Outcome = iota
	// Failed: the agent reported failure (exit 1), or could not be run.
	Failed
	// TimedOut: the agent was still running at its timeout and was killed.
	TimedOut
	// StillOn: the off ran, but status kept reporting the host on.
	StillOn
	// Unconfirmed: the off ran, but no status said off before the timeout.
	Unconfirmed
	// Canceled: the caller gave up (the daemon is stopping); no further
	// level is tried.
	Canceled
)

var outcomeNames = [...]string{"confirmed off", "failed", "timed out", "reported still on", "not confirmed", "canceled"}

func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return fmt.Sprintf("outcome(%d)", int(o))
	}
	return outcomeNames[o]
}

// OutcomeOf classifies the Result of one Agent.PowerOff.
func OutcomeOf(r Result) Outcome {
	switch {
	case r.Confirmed && r.Err == nil:
		return Confirmed
	case errors.Is(r.Err, context.Canceled):
		return Canceled
	case errors.Is(r.Err, ErrTimeout):
		return TimedOut
	case errors.Is(r.Err, ErrNotConfirmed) && r.Last == PowerOn:
		return StillOn
	case errors.Is(r.Err, ErrNotConfirmed):
		return Unconfirmed
	}
	return Failed
}

// Plan walks one fence through a topology's levels. It decides only the
// order and the fallback, from the outcomes it is told, so it does no I/O
// and reads no clock: the devices of a level run in turn while each
// confirms; the first that does not ends its level, and the next level
// starts; a level whose every device confirmed ends the fence, confirmed;
// after the last level, or a cancel, the fence ends unconfirmed and the
// caller falls back to the disk rule D.
type Plan struct {
	sizes     []int // devices per level
	level     int   // 0-based level of the next run
	device    int   // 0-based device of the next run within level
	done      bool
	confirmed int // 1-based level that confirmed; 0: none
}

// NewPlan starts a plan over levels of sizes[i] devices each.
func NewPlan(sizes []int) *Plan {
	p := &Plan{sizes: sizes}
	p.skipEmpty()
	return p
}

// Next is the next device to run (level and device, both 1-based), or
// false when the fence is over.
func (p *Plan) Next() (level, device int, ok bool) {
	if p.done {
		return 0, 0, false
	}
	return p.level + 1, p.device + 1, true
}

// Record takes the outcome of the run Next named.
func (p *Plan) Record(o Outcome) {
	if p.done {
		return
	}
	switch {
	case o == Canceled:
		p.done = true
	case o == Confirmed && p.device+1 < p.sizes[p.level]:
		p.device++
	case o == Confirmed:
		p.done, p.confirmed = true, p.level+1
	default:
		p.level, p.device = p.level+1, 0
		p.skipEmpty()
	}
}

// skipEmpty passes levels without devices and ends the plan after the last.
func (p *Plan) skipEmpty() {
	for p.level < len(p.sizes) && p.sizes[p.level] == 0 {
		p.level++
	}
	if p.level >= len(p.sizes) {
		p.done = true
	}
}

// Confirmed is the 1-based level that confirmed the host off, 0 if none
// (yet).
func (p *Plan) Confirmed() int { return p.confirmed }

// Attempt is one device's run within a fence: what each event and log line
// of a fence says.
type Attempt struct {
	Host     string
	Level    int // 1-based
	Levels   int // how many the host has
	Device   string
	Agent    string // the agent's file name
	Outcome  Outcome
	Duration time.Duration
	Err      error // nil when Confirmed; redacted
	// Final is set on the fence's last attempt: ConfirmedBy is then the
	// level that confirmed it, 0 if none did.
	Final       bool
	ConfirmedBy int
}

// String is the attempt in one line, secrets already hidden, with the
// agent's error last (an event may cut it).
func (a Attempt) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: level %d/%d", a.Host, a.Level, a.Levels)
	if a.Device != "" {
		fmt.Fprintf(&b, " device %s", a.Device)
	}
	fmt.Fprintf(&b, " (%s) %s after %v", a.Agent, a.Outcome, a.Duration.Round(time.Millisecond))
	switch {
	case a.Final && a.ConfirmedBy > 0:
		fmt.Fprintf(&b, "; fence confirmed by level %d", a.ConfirmedBy)
	case a.Final:
		b.WriteString("; no level confirmed the power-off: falling back to the disk timeout D")
	case a.Outcome == Confirmed:
		b.WriteString("; next device of this level")
	default:
		fmt.Fprintf(&b, "; trying level %d", a.Level+1)
	}
	if a.Err != nil {
		fmt.Fprintf(&b, ": %v", a.Err)
	}
	return b.String()
}

// Levels runs one host's fencing levels. It is safe for concurrent use;
// each device's runs are serialised by its Agent.
type Levels struct {
	host   string
	levels [][]*Agent
}

// NewLevels validates every device's Config of t and returns the Levels
// that fence host through them.
func NewLevels(host string, t Topology) (*Levels, error) {
	if len(t) == 0 {
		return nil, invalid("no fencing level for %s: configure an agent, or levels of devices", host)
	}
	l := &Levels{host: host}
	for i, level := range t {
		if len(level) == 0 {
			return nil, invalid("level %d of %s has no device: name at least one", i+1, host)
		}
		var agents []*Agent
		for _, cfg := range level {
			cfg.Host = host
			a, err := New(cfg)
			if err != nil {
				return nil, fmt.Errorf("level %d of %s%s: %w", i+1, host, deviceSuffix(cfg.Device), err)
			}
			agents = append(agents, a)
		}
		l.levels = append(l.levels, agents)
	}
	return l, nil
}

func deviceSuffix(device string) string {
	if device == "" {
		return ""
	}
	return ", device " + device
}

// LevelsResult is the outcome of a fence through every level it needed.
type LevelsResult struct {
	Host      string
	Confirmed bool
	Level     int // the level that confirmed it; 0: none
	Attempts  []Attempt
	Duration  time.Duration
	Err       error // nil when Confirmed; names every level's failure
}

// PowerOff fences the host level by level (see Plan), each device by
// Agent.PowerOff within its own timeout, and calls report (if not nil)
// after each device's run, the last one marked Final.
func (l *Levels) PowerOff(ctx context.Context, report func(Attempt)) LevelsResult {
	start := time.Now()
	res := LevelsResult{Host: l.host}
	sizes := make([]int, len(l.levels))
	for i, lv := range l.levels {
		sizes[i] = len(lv)
	}
	plan := NewPlan(sizes)
	var errs []error
	for {
		level, device, ok := plan.Next()
		if !ok {
			break
		}
		ag := l.levels[level-1][device-1]
		r := ag.PowerOff(ctx)
		out := OutcomeOf(r)
		plan.Record(out)
		a := Attempt{Host: l.host, Level: level, Levels: len(l.levels), Device: ag.cfg.Device, Agent: filepath.Base(ag.path),
			Outcome: out, Duration: r.Duration, Err: r.Err}
		if _, _, more := plan.Next(); !more {
			a.Final, a.ConfirmedBy = true, plan.Confirmed()
		}
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("level %d%s: %w", level, deviceSuffix(a.Device), r.Err))
		}
		lvl := slog.LevelWarn
		if out == Confirmed {
			lvl = slog.LevelInfo
		}
		ag.log.Log(ctx, lvl, "fence level attempt", "host", l.host, "level", level, "device", a.Device, "agent", ag.path,
			"result", out.String(), "duration", r.Duration.Round(time.Millisecond), "final", a.Final, "err", r.Err)
		res.Attempts = append(res.Attempts, a)
		if report != nil {
			report(a)
		}
	}
	res.Duration = time.Since(start)
	res.Level = plan.Confirmed()
	res.Confirmed = res.Level > 0
	if !res.Confirmed {
		res.Err = levelsError{host: l.host, errs: errs}
	}
	return res
}

// levelsError says why no level confirmed a fence; errors.Is finds each
// level's class (ErrTimeout, ErrAgentFailed, ErrNotConfirmed).
type levelsError struct {
	host string
	errs []error
}

func (e levelsError) Error() string {
	msgs := make([]string, len(e.errs))
	for i, err := range e.errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("no fencing level confirmed %s off: %s", e.host, strings.Join(msgs, "; "))
}

func (e levelsError) Unwrap() []error { return e.errs }

// Status runs action=status on every device, for `wingman fence --test`:
// "status on" for a single device, else each level's and device's answer.
func (l *Levels) Status(ctx context.Context) string {
	var parts []string
	for i, level := range l.levels {
		for _, a := range level {
			st, err := a.Status(ctx)
			s := "status " + st.String()
			if err != nil {
				s = "status failed: " + err.Error()
			}
			if len(l.levels) > 1 || len(level) > 1 {
				s = fmt.Sprintf("level %d%s: %s", i+1, deviceSuffix(a.cfg.Device), s)
			}
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

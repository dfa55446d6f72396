package fence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPlan: the order of the runs and the fallback, as a function of the
// outcomes alone.
func TestPlan(t *testing.T) {
	tests := []struct {
		name     string
		sizes    []int
		outcomes []Outcome
		runs     string // level.device of each run, in order
		level    int    // the level that confirmed; 0: none (disk rule D)
	}{
		{"one level confirms", []int{1}, []Outcome{Confirmed}, "1.1", 1},
		{"one level fails", []int{1}, []Outcome{Failed}, "1.1", 0},
		{"first times out, second confirms", []int{1, 1}, []Outcome{TimedOut, Confirmed}, "1.1 2.1", 2},
		{"first says still on, second confirms", []int{1, 1}, []Outcome{StillOn, Confirmed}, "1.1 2.1", 2},
		{"first unconfirmed, second fails", []int{1, 1}, []Outcome{Unconfirmed, Failed}, "1.1 2.1", 0},
		{"first confirms: second never runs", []int{1, 1}, []Outcome{Confirmed}, "1.1", 1},
		{"every device of a level runs", []int{1, 2}, []Outcome{Failed, Confirmed, Confirmed}, "1.1 2.1 2.2", 2},
		{"one device of a level fails the level", []int{2, 1}, []Outcome{Confirmed, TimedOut, Confirmed}, "1.1 1.2 2.1", 2},
		{"first device failing skips the rest of its level", []int{3, 1}, []Outcome{Failed, Confirmed}, "1.1 2.1", 2},
		{"three levels, the last confirms", []int{1, 1, 1}, []Outcome{Failed, TimedOut, Confirmed}, "1.1 2.1 3.1", 3},
		{"cancel tries no further level", []int{1, 1}, []Outcome{Canceled}, "1.1", 0},
		{"cancel within a level", []int{2, 1}, []Outcome{Confirmed, Canceled}, "1.1 1.2", 0},
		{"an empty level is passed", []int{1, 0, 1}, []Outcome{Failed, Confirmed}, "1.1 3.1", 3},
		{"no level", nil, nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPlan(tt.sizes)
			var runs []string
			for i := 0; ; i++ {
				level, device, ok := p.Next()
				if !ok {
					break
				}
				if i >= len(tt.outcomes) {
					t.Fatalf("run %d (%d.%d) asked for after the outcomes %v", i+1, level, device, tt.outcomes)
				}
				runs = append(runs, fmt.Sprintf("%d.%d", level, device))
				p.Record(tt.outcomes[i])
			}
			if got := strings.Join(runs, " "); got != tt.runs {
				t.Errorf("runs %q, want %q", got, tt.runs)
			}
			if p.Confirmed() != tt.level {
				t.Errorf("confirmed by level %d, want %d", p.Confirmed(), tt.level)
			}
			p.Record(Confirmed) // after the end: ignored
			if _, _, ok := p.Next(); ok || p.Confirmed() != tt.level {
				t.Errorf("a record after the end changed the plan")
			}
		})
	}
}

func TestOutcomeOf(t *testing.T) {
	tests := []struct {
		r    Result
		want Outcome
	}{
		{Result{Confirmed: true, Last: PowerOff}, Confirmed},
		{Result{Err: fmt.Errorf("x: %w", ErrTimeout)}, TimedOut},
		{Result{Err: fmt.Errorf("x: %w", ErrAgentFailed)}, Failed},
		{Result{Err: fmt.Errorf("x: %w", ErrNotConfirmed), Last: PowerOn}, StillOn},
		{Result{Err: fmt.Errorf("x: %w", ErrNotConfirmed), Last: PowerUnknown}, Unconfirmed},
		{Result{Err: fmt.Errorf("x: %w", context.Canceled)}, Canceled},
		{Result{Err: errors.New("cannot run")}, Failed},
		{Result{Confirmed: true, Err: errors.New("odd")}, Failed},
	}
	for _, tt := range tests {
		if got := OutcomeOf(tt.r); got != tt.want {
			t.Errorf("OutcomeOf(%+v) = %v, want %v", tt.r, got, tt.want)
		}
	}
}

// level is a device of the test agent with extra parameters, its state in
// state (shared by the devices of one host, as a BMC and a PDU switch the
// same machine).
func level(t *testing.T, device, state string, timeout time.Duration, params map[string]string) Config {
	cfg, _ := testConfig(t, params)
	cfg.Params["state_file"] = state
	cfg.Device, cfg.Timeout = device, timeout
	return cfg
}

// TestLevelsFallBack runs the real agent: the first level hangs past its
// timeout, or fails, or keeps reporting the host on; the second confirms.
func TestLevelsFallBack(t *testing.T) {
	for _, first := range []struct {
		name    string
		params  map[string]string
		outcome Outcome
		class   error
	}{
		{"hangs", map[string]string{"delay": "1h"}, TimedOut, ErrTimeout},
		{"fails", map[string]string{"fail": "1"}, Failed, ErrAgentFailed},
		// A device wired to another machine: its off works, the host stays on.
		{"still on", map[string]string{"confirm": "never"}, StillOn, ErrNotConfirmed},
	} {
		t.Run(first.name, func(t *testing.T) {
			_, state := testConfig(t, nil)
			l1 := level(t, "kvm2-ipmi", state, 500*time.Millisecond, first.params)
			if first.outcome == StillOn {
				l1.Params["state_file"] = t.TempDir() + "/other"
			}
			l2 := level(t, "kvm2-pdu", state, 5*time.Second, nil)
			l, err := NewLevels("kvm2", Topology{{l1}, {l2}})
			if err != nil {
				t.Fatal(err)
			}
			var seen []Attempt
			res := l.PowerOff(t.Context(), func(a Attempt) { seen = append(seen, a) })
			if !res.Confirmed || res.Level != 2 || res.Err != nil {
				t.Fatalf("PowerOff = %+v, want confirmed by level 2", res)
			}
			if readPower(t, state) != "OFF" {
				t.Errorf("the host's power is not off")
			}
			if len(seen) != 2 || seen[0].Outcome != first.outcome || !errors.Is(seen[0].Err, first.class) || seen[0].Final ||
				seen[1].Outcome != Confirmed || !seen[1].Final || seen[1].ConfirmedBy != 2 {
				t.Fatalf("attempts %+v, want level 1 %v then level 2 confirming, final", seen, first.outcome)
			}
			for _, a := range seen {
				t.Log(a)
			}
			if s := seen[0].String(); !strings.Contains(s, "level 1/2 device kvm2-ipmi (fence_test) "+first.outcome.String()) || !strings.Contains(s, "trying level 2") {
				t.Errorf("attempt 1 reads %q", s)
			}
			if s := seen[1].String(); !strings.Contains(s, "fence confirmed by level 2") {
				t.Errorf("attempt 2 reads %q", s)
			}
			if first.outcome == TimedOut && (seen[0].Duration < 500*time.Millisecond || seen[0].Duration > 5*time.Second) {
				t.Errorf("the hanging level took %v with a 500ms timeout", seen[0].Duration)
			}
		})
	}
}

func TestLevelsAllFail(t *testing.T) {
	_, state := testConfig(t, nil)
	l, err := NewLevels("kvm2", Topology{
		{level(t, "ipmi", state, 300*time.Millisecond, map[string]string{"delay": "1h"})},
		{level(t, "pdu-a", state, time.Second, nil), level(t, "pdu-b", state, time.Second, map[string]string{"fail": "1", "password": "s3cr3t-pw"})},
	})
	if err != nil {
		t.Fatal(err)
	}
	var seen []Attempt
	res := l.PowerOff(t.Context(), func(a Attempt) { seen = append(seen, a) })
	if res.Confirmed || res.Level != 0 {
		t.Fatalf("PowerOff = %+v, want unconfirmed", res)
	}
	if !errors.Is(res.Err, ErrTimeout) || !errors.Is(res.Err, ErrAgentFailed) {
		t.Errorf("err %v does not carry both levels' classes", res.Err)
	}
	msg := res.Err.Error()
	t.Log(msg)
	for _, want := range []string{"no fencing level confirmed kvm2 off", "level 1, device ipmi", "level 2, device pdu-b"} {
		if !strings.Contains(msg, want) {
			t.Errorf("err %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cr3t-pw") || strings.Contains(seen[len(seen)-1].String(), "s3cr3t-pw") {
		t.Errorf("the password shows: %s", msg)
	}
	if len(seen) != 3 || !seen[2].Final || seen[2].ConfirmedBy != 0 || !strings.Contains(seen[2].String(), "falling back to the disk timeout D") {
		t.Errorf("attempts %v, want 3, the last final and unconfirmed", seen)
	}
}

func TestNewLevelsRefuses(t *testing.T) {
	_, state := testConfig(t, nil)
	ok := level(t, "ipmi", state, time.Second, nil)
	bad := level(t, "pdu", state, time.Second, nil)
	bad.Agent = ""
	for _, tc := range []struct {
		topo Topology
		want string
	}{
		{nil, "no fencing level"},
		{Topology{{ok}, {}}, "level 2 of kvm2 has no device"},
		{Topology{{ok}, {bad}}, "level 2 of kvm2, device pdu: no agent set"},
	} {
		if _, err := NewLevels("kvm2", tc.topo); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewLevels(%v) = %v, want %q", tc.topo, err, tc.want)
		}
	}
}

func TestByNameReportsAttempts(t *testing.T) {
	_, state := testConfig(t, nil)
	topo := Topology{{level(t, "ipmi", state, 300*time.Millisecond, map[string]string{"fail": "1"})}, {level(t, "pdu", state, 5*time.Second, nil)}}
	type rep struct {
		host int
		a    Attempt
	}
	var got []rep
	f, err := NewByName(map[string]Topology{"kvm2": topo}, func() map[int]string { return map[int]string{2: "kvm2"} },
		func(host int, a Attempt) { got = append(got, rep{host, a}) })
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := f.PowerOff(t.Context(), 2); !ok || err != nil {
		t.Fatalf("PowerOff(2) = %v, %v", ok, err)
	}
	if len(got) != 2 || got[0].host != 2 || got[1].a.ConfirmedBy != 2 {
		t.Errorf("reported %+v", got)
	}
	if l, _ := f.Levels(2); !strings.Contains(l.Status(t.Context()), "level 2, device pdu: status off") {
		t.Errorf("status of the levels: %q", l.Status(t.Context()))
	}
	if _, err := f.PowerOff(t.Context(), 3); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("PowerOff(3) err = %v, want ErrUnknownHost", err)
	}
}

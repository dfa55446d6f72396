package reconcile

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAgentLiveness runs scripts of pings against the default config (lost
// after 30 s and 3 unanswered pings, 5 min before the first answer). A line
// is "<time since the check began> <answered|silent|paused>", then the
// change it must report, if any.
func TestAgentLiveness(t *testing.T) {
	for _, tc := range []struct{ name, script string }{
		{"lost after the grace, once; back once", `
			0s answered
			10s silent
			20s silent
			30s silent    lost after 30s, 3 pings
			40s silent
			5m  silent
			5m5s answered back after 5m5s
			5m15s answered
			5m25s silent`},
		{"the grace needs the time too", `
			0s answered
			1s silent
			2s silent
			3s silent
			29s silent
			30s silent    lost after 30s, 5 pings`},
		{"the grace needs the pings too", `
			0s answered
			5s silent
			31s silent
			32s silent    lost after 32s, 3 pings`},
		{"an answer starts the count again", `
			0s answered
			10s silent
			20s silent
			30s answered
			40s silent
			50s silent
			60s silent    lost after 30s, 3 pings`},
		{"no report while paused; the silence counts from the resume", `
			0s answered
			10s silent
			20s silent
			30s paused
			1m paused
			5m paused
			5m10s silent
			5m20s silent
			5m30s silent  lost after 30s, 3 pings`},
		{"paused while lost: nothing; its answer after the resume: back", `
			0s answered
			10s silent
			20s silent
			30s silent    lost after 30s, 3 pings
			40s paused
			2m paused
			2m10s silent
			3m silent
			3m10s answered back after 3m10s`},
		{"before its first answer the agent has 5 min", `
			10s silent
			20s silent
			30s silent
			1m paused
			4m59s silent
			5m59s silent
			6m silent     lost after 5m0s, 3 pings
			6m10s answered back after 6m10s`},
		{"once it answered, 30 s", `
			4m answered
			4m10s silent
			4m20s silent
			4m30s silent  lost after 30s, 3 pings`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			a := NewAgentLiveness(DefaultAgentCheckConfig(), t0)
			for _, line := range strings.Split(strings.TrimSpace(tc.script), "\n") {
				f := strings.Fields(line)
				at, err := time.ParseDuration(f[0])
				if err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				ping := map[string]AgentPing{"answered": AgentAnswered, "silent": AgentSilent, "paused": AgentPaused}[f[1]]
				got := describeChange(a.Observe(t0.Add(at), ping))
				if want := strings.Join(f[2:], " "); got != want {
					t.Errorf("%s %s: %q, want %q", f[0], f[1], got, want)
				}
				if lost := strings.HasPrefix(got, "lost"); lost && !a.Lost() || strings.HasPrefix(got, "back") && a.Lost() {
					t.Errorf("%s: Lost() = %v after reporting %q", f[0], a.Lost(), got)
				}
			}
		})
	}
}

func describeChange(c AgentChange) string {
	switch c.Kind {
	case AgentLost:
		return fmt.Sprintf("lost after %v, %d pings", c.Silent, c.Pings)
	case AgentBack:
		return fmt.Sprintf("back after %v", c.Silent)
	}
	return ""
}

func TestAgentCheckConfigValidate(t *testing.T) {
	if err := DefaultAgentCheckConfig().Validate(); err != nil {
		t.Errorf("default: %v", err)
	}
	for _, c := range []AgentCheckConfig{
		{Interval: 0, LostAfter: 30 * time.Second, LostPings: 3, FirstAnswerWithin: 5 * time.Minute},
		{Interval: 10 * time.Second, LostAfter: 5 * time.Second, LostPings: 3, FirstAnswerWithin: 5 * time.Minute},
		{Interval: 10 * time.Second, LostAfter: 30 * time.Second, LostPings: 1, FirstAnswerWithin: 5 * time.Minute},
		{Interval: 10 * time.Second, LostAfter: 30 * time.Second, LostPings: 3, FirstAnswerWithin: 20 * time.Second},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
}

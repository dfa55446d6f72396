package forward

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum/gossip"
)

// The budgets fit serf's real limits with the longest host names (63
// bytes): a request and an answer of exactly the budget travel between two
// serf agents on loopback.
func TestTheBudgetsFitSerf(t *testing.T) {
	agents := make([]*gossip.Agent, 2)
	for i := range agents {
		cfg := gossip.TestConfig(strings.Repeat(strconv.Itoa(i+1), 63), i+1, "")
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if i > 0 {
			cfg.Join = []string{agents[0].Addr().String()}
		}
		a, err := gossip.Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Shutdown() })
		agents[i] = a
	}
	var echo, grow [2]*Op[string, string]
	for i, a := range agents {
		tb := New(i+1, a, classify)
		echo[i] = Register(tb, "echo", func(_ context.Context, _ string, s string) (string, error) { return s, nil })
		grow[i] = Register(tb, "grow", func(_ context.Context, _ string, n string) (string, error) {
			k, _ := strconv.Atoi(n)
			return strings.Repeat("x", k), nil
		})
		if err := tb.Serve(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(agents[0].AliveSet()) < 2 || len(agents[1].AliveSet()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the two agents did not see each other alive")
		}
		time.Sleep(20 * time.Millisecond) // real serf: no fake clock for its sockets
	}
	ctx := context.Background()
	// The longest request: its envelope is RequestBudget bytes.
	s := ""
	for {
		b, _ := json.Marshal(envelope{Op: "echo", Host: "2", Body: mustJSON(s + "x"), To: 2})
		if len(b) > RequestBudget {
			break
		}
		s += "x"
	}
	if got, err := echo[0].Call(ctx, 2, "", s); err != nil || got != s {
		t.Errorf("a request of the budget: %d bytes back, %v", len(got), err)
	}
	// The longest answer: {"ok":true,"result":"x..."} of AnswerBudget bytes.
	n := AnswerBudget - len(`{"ok":true,"result":""}`)
	if got, err := grow[0].Call(ctx, 2, "", strconv.Itoa(n)); err != nil || len(got) != n {
		t.Errorf("an answer of the budget: %d bytes, %v", len(got), err)
	}
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

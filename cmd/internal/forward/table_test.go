package forward

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum/gossip"
)

// fakeNet connects the tables of a test in memory, as serf's node filter
// does: a query reaches the one host it names.
type fakeNet struct {
	mu       sync.Mutex
	handlers map[int]gossip.QueryHandler
	ran      map[int]int // queries handled, by host
}

type fakeEnd struct {
	net  *fakeNet
	self int
}

func (e fakeEnd) HandleQuery(name string, fn gossip.QueryHandler) error {
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	e.net.handlers[e.self] = fn
	return nil
}

func (e fakeEnd) Ask(ctx context.Context, host int, name string, payload []byte, timeout time.Duration) ([]byte, error) {
	e.net.mu.Lock()
	h := e.net.handlers[host]
	e.net.ran[host]++
	e.net.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("ask host %d: %w", host, gossip.ErrNotMember)
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() { b, err := h(fmt.Sprint("host", e.self), payload); done <- result{b, err} }()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(timeout):
		return nil, fmt.Errorf("ask host %d %q: no answer within %v", host, name, timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// errGone stands for a library's sentinel (vm.ErrNotFound); classify gives
// it its api class and a hint, as the daemon does.
var errGone = errors.New("VM not found")

func classify(err error) error {
	if errors.Is(err, errGone) && api.ClassName(err) == "" {
		return &api.Failure{Class: api.ErrNotFound, Err: err, Hint: "see 'wingman list --all'"}
	}
	return err
}

type report struct {
	Name  string        `json:"name"`
	Hosts []string      `json:"hosts"`
	Took  time.Duration `json:"took_ns"`
	When  time.Time     `json:"when"`
	Extra *report       `json:"extra,omitempty"`
}

// ops is the operations every host of a test registers.
type ops struct {
	describe *Op[string, report]
	echo     *Op[string, string]
	grow     *Op[int, string]
	wait     *Op[struct{}, struct{}]
}

// cluster starts n hosts' tables on one fake network.
func cluster(t *testing.T, n int) (*fakeNet, map[int]ops) {
	t.Helper()
	net := &fakeNet{handlers: map[int]gossip.QueryHandler{}, ran: map[int]int{}}
	out := map[int]ops{}
	for id := 1; id <= n; id++ {
		tb := New(id, fakeEnd{net, id}, classify)
		o := ops{
			describe: Register(tb, "describe", func(_ context.Context, vm string, who string) (report, error) {
				if vm == "gone" {
					return report{}, fmt.Errorf("describe %q: %w", vm, errGone)
				}
				return report{Name: vm, Hosts: []string{who, fmt.Sprint("host", id)}, Took: 1500 * time.Millisecond,
					When: time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC), Extra: &report{Name: "inner"}}, nil
			}),
			echo: Register(tb, "echo", func(_ context.Context, _ string, s string) (string, error) { return s, nil }),
			grow: Register(tb, "grow", func(_ context.Context, _ string, n int) (string, error) { return strings.Repeat("x", n), nil }),
			wait: Register(tb, "wait", func(ctx context.Context, _ string, _ struct{}) (struct{}, error) {
				<-ctx.Done()
				return struct{}{}, ctx.Err()
			}).Timeout(func(struct{}) time.Duration { return time.Minute }),
		}
		if err := tb.Serve(); err != nil {
			t.Fatal(err)
		}
		out[id] = o
	}
	return net, out
}

// A forwarded answer is the very value the operation returns here.
func TestForwardedAnswerEqualsTheLocalOne(t *testing.T) {
	_, hosts := cluster(t, 2)
	ctx := context.Background()
	// Host 2 runs it itself, and host 1 asks host 2 for it.
	local, err := hosts[2].describe.Call(ctx, 2, "web1", "kvm1")
	if err != nil {
		t.Fatal(err)
	}
	remote, err := hosts[1].describe.Call(ctx, 2, "web1", "kvm1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(local, remote) || remote.Hosts[1] != "host2" {
		t.Errorf("forwarded answer %+v, want the local one %+v", remote, local)
	}
}

// An error keeps its class and hint through a forward and the HTTP API:
// errors.Is holds on the asking host and on the client.
func TestErrorClassSurvivesAForward(t *testing.T) {
	_, hosts := cluster(t, 2)
	ctx := context.Background()
	_, err := hosts[1].describe.Call(ctx, 2, "gone", "kvm1")
	if !errors.Is(err, api.ErrNotFound) || errors.Is(err, api.ErrConflict) {
		t.Fatalf("forwarded not-found = %v, want api.ErrNotFound", err)
	}
	if want := `on host 2: describe "gone": VM not found`; err.Error() != want || api.HintOf(err) != "see 'wingman list --all'" {
		t.Errorf("forwarded error %q hint %q, want %q with the hint", err, api.HintOf(err), want)
	}
	// Host 1 serves the forwarded error to a client over HTTP.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := hosts[1].describe.Call(r.Context(), 2, "gone", "kvm1")
		status, body := api.ErrorBody(err)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error": %q, "hint": %q, "class": %q}`, body.Error, body.Hint, body.Class)
	}))
	defer srv.Close()
	_, err = api.NewHTTPClient(srv.URL, nil).VM(ctx, "gone")
	var re *api.RemoteError
	if !errors.Is(err, api.ErrNotFound) || !errors.As(err, &re) || re.Status != http.StatusNotFound || !strings.Contains(err.Error(), "wingman list --all") {
		t.Errorf("client error = %v, want api.ErrNotFound, a 404 and the hint", err)
	}
	// An older daemon names no class: its status says it.
	if err := (&api.RemoteError{Status: http.StatusConflict}); !errors.Is(err, api.ErrConflict) {
		t.Errorf("a 409 without a class is not a conflict")
	}
}

// The budget is enforced in the table: a request too large is refused
// before it is sent, an answer too large by the host that would send it,
// each with an error that says so; an answer within the budget passes.
func TestOversizeIsRefusedWithAClearError(t *testing.T) {
	net, hosts := cluster(t, 2)
	ctx := context.Background()
	_, err := hosts[1].echo.Call(ctx, 2, "", strings.Repeat("x", RequestBudget))
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "bytes, more than the 700 bytes one serf query carries to host 2") {
		t.Errorf("oversize request = %v", err)
	}
	if net.ran[2] != 0 {
		t.Errorf("an oversize request was sent")
	}
	// The request fits; the answer, in its envelope, does not.
	_, err = hosts[1].grow.Call(ctx, 2, "", AnswerBudget)
	if !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "on host 2: the answer of host 2 to grow is") ||
		!strings.Contains(err.Error(), "more than the 880 bytes one serf response carries") || !strings.Contains(api.HintOf(err), "host 2's own API") {
		t.Errorf("oversize answer = %v (hint %q)", err, api.HintOf(err))
	}
	if got, err := hosts[1].grow.Call(ctx, 2, "", AnswerBudget-40); err != nil || len(got) != AnswerBudget-40 {
		t.Errorf("an answer within the budget = %d bytes, %v", len(got), err)
	}
	// Here, no serf message: no budget.
	if got, err := hosts[2].grow.Call(ctx, 2, "", 4096); err != nil || len(got) != 4096 {
		t.Errorf("local answer = %d bytes, %v", len(got), err)
	}
	// A long error message is shortened to fit, class and hint kept.
	tb := New(3, fakeEnd{net, 3}, classify)
	b := tb.encode("x", nil, api.Fail(api.ErrConflict, "do this", "%s", strings.Repeat("é<", 600)))
	if len(b) > AnswerBudget || !strings.Contains(string(b), `"class":"conflict"`) || !strings.Contains(string(b), `...","status":409,"hint":"do this"`) {
		t.Errorf("long error answer (%d bytes): %s", len(b), b)
	}
}

// A call goes to the one host named, and only there; a call about this
// host does not travel at all.
func TestAnOperationGoesToOneHostOnly(t *testing.T) {
	net, hosts := cluster(t, 3)
	ctx := context.Background()
	if _, err := hosts[1].echo.Call(ctx, 3, "", "hi"); err != nil {
		t.Fatal(err)
	}
	if _, err := hosts[1].echo.Call(ctx, 1, "", "hi"); err != nil {
		t.Fatal(err)
	}
	if want := map[int]int{3: 1}; !reflect.DeepEqual(net.ran, want) {
		t.Errorf("hosts asked %v, want %v", net.ran, want)
	}
}

// A host that does not answer in time is unavailable; the wait is the
// caller's deadline, in synctest's time.
func TestAHostThatDoesNotAnswerIsUnavailable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, hosts := cluster(t, 2)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		_, err := hosts[1].wait.Call(ctx, 2, "", struct{}{})
		if !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "host 2 did not answer the forwarded wait") {
			t.Errorf("no answer = %v", err)
		}
		if took := time.Since(start); took != 30*time.Second {
			t.Errorf("gave up after %v, want the caller's 30s", took)
		}
		time.Sleep(time.Minute) // host 2 gives up at its own timeout
		synctest.Wait()
	})
}

package gossip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/serf/serf"
)

// QueryHandler answers a query named when registered: from is the asking
// member's name, payload its request. The answer, or the error's text,
// goes back to the asker; it must be short (serf limits a response to about
// 1 KiB) and come before the query's deadline. A handler runs on its own
// goroutine; at most maxQueryHandlers run at once and queries beyond them go
// unanswered, so a handler must not block for long.
type QueryHandler func(from string, payload []byte) ([]byte, error)

// Response is one member's answer to a query.
type Response struct {
	// From is the answering member's name (the asker answers too).
	From string
	// Payload is the handler's answer when Err is nil.
	Payload []byte
	// Err is the member's handler error (a *RemoteError), or ErrBadResponse.
	Err error
}

// RemoteError is a query handler's error as reported by the member that ran it.
type RemoteError struct {
	Node    string
	Message string
	// NoHandler is set when the member has no handler for the query.
	NoHandler bool
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("member %s: %s", e.Node, e.Message)
}

// Is makes errors.Is(err, ErrNoHandler) true for a member without a handler.
func (e *RemoteError) Is(target error) bool { return target == ErrNoHandler && e.NoHandler }

var (
	// ErrNoHandler matches responses from members without a handler for the query.
	ErrNoHandler = errors.New("no handler for query")
	// ErrBadResponse marks a response this version cannot decode.
	ErrBadResponse = errors.New("malformed query response")
)

// Response framing: one status byte, then the payload or the error text.
const (
	respOK        byte = 0
	respError     byte = 1
	respNoHandler byte = 2
)

func checkQueryName(name string) error {
	if name == "" {
		return errors.New("query name is empty")
	}
	if strings.HasPrefix(name, "_") {
		return fmt.Errorf("query name %q: names starting with '_' are serf's own", name)
	}
	return nil
}

// HandleQuery registers fn to answer queries named name, replacing any
// previous handler; a nil fn removes it. Members without a handler answer
// with an error matching ErrNoHandler.
func (a *Agent) HandleQuery(name string, fn QueryHandler) error {
	if err := checkQueryName(name); err != nil {
		return fmt.Errorf("handle query: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if fn == nil {
		delete(a.handlers, name)
	} else {
		a.handlers[name] = fn
	}
	return nil
}

// dispatchQuery hands q to its handler on a goroutine of its own, or drops
// it when too many handlers are running: the drain must never wait.
func (a *Agent) dispatchQuery(q *serf.Query) {
	a.mu.Lock()
	fn := a.handlers[q.Name]
	a.mu.Unlock()
	select {
	case a.querySlots <- struct{}{}:
	default:
		a.queriesDropped.Add(1)
		a.log.Warn("query dropped: too many handlers running", "query", q.Name, "from", q.SourceNode())
		return
	}
	a.queriesHandled.Add(1)
	go func() {
		defer func() { <-a.querySlots }()
		resp := a.runHandler(fn, q)
		if err := q.Respond(resp); err != nil {
			a.log.Warn("query response not sent", "query", q.Name, "from", q.SourceNode(), "err", err)
		}
	}()
}

// runHandler runs fn and frames its answer; a panicking handler answers an
// error instead of taking the daemon down.
func (a *Agent) runHandler(fn QueryHandler, q *serf.Query) (resp []byte) {
	if fn == nil {
		return append([]byte{respNoHandler}, q.Name...)
	}
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("query handler panicked", "query", q.Name, "from", q.SourceNode(), "panic", r)
			resp = append([]byte{respError}, fmt.Sprintf("handler for %q panicked", q.Name)...)
		}
	}()
	out, err := fn(q.SourceNode(), q.Payload)
	if err != nil {
		return append([]byte{respError}, err.Error()...)
	}
	return append([]byte{respOK}, out...)
}

func decodeResponse(from string, raw []byte) Response {
	r := Response{From: from}
	if len(raw) == 0 {
		r.Err = fmt.Errorf("member %s: empty: %w", from, ErrBadResponse)
		return r
	}
	switch raw[0] {
	case respOK:
		r.Payload = raw[1:]
	case respError:
		r.Err = &RemoteError{Node: from, Message: string(raw[1:])}
	case respNoHandler:
		r.Err = &RemoteError{Node: from, Message: fmt.Sprintf("no handler for query %q", raw[1:]), NoHandler: true}
	default:
		r.Err = fmt.Errorf("member %s: status byte %d: %w", from, raw[0], ErrBadResponse)
	}
	return r
}

// Query sends a query named name to every member, this one included, and
// collects the responses until timeout (0: serf's default, which grows with
// the cluster's size), until every member alive when it was sent answered,
// or until ctx ends. It returns the responses gathered so far in every case;
// the error is set when the query could not be sent or ctx ended.
func (a *Agent) Query(ctx context.Context, name string, payload []byte, timeout time.Duration) ([]Response, error) {
	if err := checkQueryName(name); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	expected := 0
	for _, m := range a.serf.Members() {
		if m.Status == serf.StatusAlive {
			expected++
		}
	}
	params := a.serf.DefaultQueryParams()
	if timeout > 0 {
		params.Timeout = timeout
	}
	qr, err := a.sendQuery(name, payload, params)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", name, err)
	}
	defer qr.Close()
	var out []Response
	for {
		select {
		case nr, ok := <-qr.ResponseCh():
			if !ok {
				return out, nil
			}
			out = append(out, decodeResponse(nr.From, nr.Payload))
			if len(out) >= expected {
				return out, nil
			}
		case <-ctx.Done():
			return out, fmt.Errorf("query %q: %w", name, ctx.Err())
		case <-a.stop:
			return out, fmt.Errorf("query %q: %w", name, ErrShutdown)
		}
	}
}

// ErrNotMember matches an Ask of a host that is not an alive member.
var ErrNotMember = errors.New("not an alive serf member")

// Ask sends a query named name to the one member whose host id is host and
// returns its answer. Serf's node filter keeps every other member from
// running a handler for it; the asker does not wait for anyone else. A
// member's handler error comes back as a *RemoteError; no answer before
// timeout (0: serf's default) or before ctx ends is an error too.
func (a *Agent) Ask(ctx context.Context, host int, name string, payload []byte, timeout time.Duration) ([]byte, error) {
	if err := checkQueryName(name); err != nil {
		return nil, fmt.Errorf("ask: %w", err)
	}
	node := ""
	for _, m := range a.Members() {
		if m.HostID == host && m.TagsErr == nil && m.Status == StatusAlive {
			node = m.Name
		}
	}
	if node == "" {
		return nil, fmt.Errorf("ask host %d: %w", host, ErrNotMember)
	}
	params := a.serf.DefaultQueryParams()
	params.FilterNodes = []string{node}
	if timeout > 0 {
		params.Timeout = timeout
	}
	qr, err := a.sendQuery(name, payload, params)
	if err != nil {
		return nil, fmt.Errorf("ask %s (host %d) %q: %w", node, host, name, err)
	}
	defer qr.Close()
	for {
		select {
		case nr, ok := <-qr.ResponseCh():
			if !ok {
				return nil, fmt.Errorf("ask %s (host %d) %q: no answer within %v", node, host, name, params.Timeout)
			}
			if nr.From != node {
				continue
			}
			r := decodeResponse(nr.From, nr.Payload)
			return r.Payload, r.Err
		case <-ctx.Done():
			return nil, fmt.Errorf("ask %s (host %d) %q: %w", node, host, name, ctx.Err())
		case <-a.stop:
			return nil, fmt.Errorf("ask %s (host %d) %q: %w", node, host, name, ErrShutdown)
		}
	}
}

// sendQuery sends a serf query, one at a time (see Agent.queryMu).
func (a *Agent) sendQuery(name string, payload []byte, params *serf.QueryParam) (*serf.QueryResponse, error) {
	a.queryMu.Lock()
	defer a.queryMu.Unlock()
	return a.serf.Query(name, payload, params)
}

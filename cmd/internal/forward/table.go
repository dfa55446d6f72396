package forward

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum/gossip"
)

// Query is the serf query that carries operations to other hosts.
const Query = "wingman-cmd"

// Serf limits a query and a response to 1,024 bytes each, its own framing
// included: the names of both hosts (up to 63 bytes each), the node filter,
// the query's name and its numbers. What remains for the envelope is:
const (
	// RequestBudget bounds a forwarded request's envelope (JSON).
	RequestBudget = 700
	// AnswerBudget bounds an answer's envelope (JSON).
	AnswerBudget = 880
)

// DefaultTimeout bounds an operation's run on its host unless the
// operation sets its own (Op.Timeout).
const DefaultTimeout = 10 * time.Minute

// Transport sends a query to one host and serves the queries sent to
// this one: *gossip.Agent.
type Transport interface {
	Ask(ctx context.Context, host int, name string, payload []byte, timeout time.Duration) ([]byte, error)
	HandleQuery(name string, fn gossip.QueryHandler) error
}

// envelope is a request on the wire. Host is the target as the asker
// named it and To its host id: a host answers only requests for itself.
type envelope struct {
	Op   string          `json:"op"`
	VM   string          `json:"vm,omitempty"`
	Host string          `json:"host,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
	To   int             `json:"to,omitempty"`
}

// answer is an answer on the wire. An empty answer (neither OK nor Error)
// is "not for us": an older host asks every host.
type answer struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Status int             `json:"status,omitempty"`
	Hint   string          `json:"hint,omitempty"`
	Class  string          `json:"class,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Table is the operations this host carries out for the others.
type Table struct {
	self     int
	tr       Transport
	classify func(error) error
	ops      map[string]func(ctx context.Context, vm string, body json.RawMessage) ([]byte, error)
	timeouts map[string]func(body json.RawMessage) time.Duration
}

// New returns the table of host self. classify gives a library error its
// api class and hint (it returns err unchanged when it has none); every
// error an operation returns goes through it, here and on the wire.
func New(self int, tr Transport, classify func(error) error) *Table {
	return &Table{self: self, tr: tr, classify: classify,
		ops:      map[string]func(context.Context, string, json.RawMessage) ([]byte, error){},
		timeouts: map[string]func(json.RawMessage) time.Duration{}}
}

// Serve answers the operations other hosts send here. Register every
// operation before.
func (t *Table) Serve() error { return t.tr.HandleQuery(Query, t.answer) }

// Op is an operation of the table: Req in, Resp out.
type Op[Req, Resp any] struct {
	t       *Table
	name    string
	run     func(ctx context.Context, vm string, req Req) (Resp, error)
	timeout func(Req) time.Duration
}

// Register adds the operation name to t: run carries it out on this host,
// about the VM vm when it is about one. A name registered twice is a bug
// of the wiring: Register panics, as http.ServeMux does.
func Register[Req, Resp any](t *Table, name string, run func(ctx context.Context, vm string, req Req) (Resp, error)) *Op[Req, Resp] {
	if _, dup := t.ops[name]; dup {
		panic("forward: operation " + name + " registered twice")
	}
	o := &Op[Req, Resp]{t: t, name: name, run: run}
	t.ops[name] = func(ctx context.Context, vm string, body json.RawMessage) ([]byte, error) {
		req, err := decode[Req](name, body)
		if err != nil {
			return nil, err
		}
		resp, err := run(ctx, vm, req)
		if err != nil {
			return nil, err
		}
		return json.Marshal(resp)
	}
	t.timeouts[name] = func(body json.RawMessage) time.Duration {
		req, _ := decode[Req](name, body)
		return o.timeoutOf(req)
	}
	return o
}

// Timeout sets how long the operation may run when forwarded, from its
// request (DefaultTimeout without it): the answering host runs it under
// that bound and the asker waits no longer. A call here runs under the
// caller's context alone.
func (o *Op[Req, Resp]) Timeout(f func(Req) time.Duration) *Op[Req, Resp] {
	o.timeout = f
	return o
}

// Name is the operation's name on the wire.
func (o *Op[Req, Resp]) Name() string { return o.name }

func (o *Op[Req, Resp]) timeoutOf(req Req) time.Duration {
	if o.timeout == nil {
		return DefaultTimeout
	}
	return o.timeout(req)
}

func decode[Req any](op string, body json.RawMessage) (Req, error) {
	var req Req
	if len(body) == 0 {
		return req, nil
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, api.Fail(api.ErrInvalid, "", "decode the %s request: %v", op, err)
	}
	return req, nil
}

// Call carries out the operation on host (0 or this host: here) about vm
// ("" when it is about none) and returns its answer. Its error carries an
// api class whether it ran here or on host.
func (o *Op[Req, Resp]) Call(ctx context.Context, host int, vm string, req Req) (Resp, error) {
	if host == 0 || host == o.t.self {
		resp, err := o.run(ctx, vm, req)
		if err != nil {
			return resp, o.t.classify(err)
		}
		return resp, nil
	}
	var resp Resp
	payload, err := o.payload(host, vm, req)
	if err != nil {
		return resp, err
	}
	timeout := o.timeoutOf(req)
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	raw, err := o.t.tr.Ask(ctx, host, Query, payload, timeout)
	if err != nil {
		return resp, api.Fail(api.ErrUnavailable, "check that it is alive ('wingman host-list') and try again",
			"host %d did not answer the forwarded %s: %v", host, o.name, err)
	}
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return resp, api.Fail(api.ErrUnavailable, "check that every host runs the same wingmand version",
			"host %d answered the forwarded %s unreadably: %v", host, o.name, err)
	}
	switch {
	case !a.OK && a.Error == "":
		return resp, api.Fail(api.ErrUnavailable, "check 'wingman host-list': its host id may have changed",
			"host %d answered that the forwarded %s is not for it", host, o.name)
	case !a.OK:
		return resp, api.Remote(fmt.Sprintf("on host %d: %s", host, a.Error), a.Class, a.Status, a.Hint)
	}
	if len(a.Result) > 0 {
		if err := json.Unmarshal(a.Result, &resp); err != nil {
			return resp, api.Fail(api.ErrUnavailable, "check that every host runs the same wingmand version",
				"host %d's answer to %s does not decode: %v", host, o.name, err)
		}
	}
	return resp, nil
}

// Fits says whether the request travels to host in one serf query: nil,
// or the error Call returns without sending it.
func (o *Op[Req, Resp]) Fits(host int, vm string, req Req) error {
	_, err := o.payload(host, vm, req)
	return err
}

// payload is the request on the wire, within RequestBudget.
func (o *Op[Req, Resp]) payload(host int, vm string, req Req) ([]byte, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode the %s request: %w", o.name, err)
	}
	payload, _ := json.Marshal(envelope{Op: o.name, VM: vm, Host: strconv.Itoa(host), Body: body, To: host})
	if len(payload) > RequestBudget {
		return nil, api.Fail(api.ErrInvalid, fmt.Sprintf("make it smaller, or send it to host %d's own API", host),
			"the %s request is %d bytes, more than the %d bytes one serf query carries to host %d", o.name, len(payload), RequestBudget, host)
	}
	return payload, nil
}

// answer serves a request of another host: it runs the operation here and
// encodes its answer within AnswerBudget.
func (t *Table) answer(_ string, payload []byte) ([]byte, error) {
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return nil, fmt.Errorf("forwarded request does not decode: %v", err)
	}
	if env.To != t.self {
		return json.Marshal(answer{}) // an older host asks every host
	}
	run, ok := t.ops[env.Op]
	if !ok {
		return t.encode(env.Op, nil, api.Fail(api.ErrInvalid, "update wingmand on every host to one version",
			"host %d does not know the operation %q", t.self, env.Op)), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.timeouts[env.Op](env.Body))
	defer cancel()
	out, err := run(ctx, env.VM, env.Body)
	return t.encode(env.Op, out, err), nil
}

// encode is the answer to op on the wire: its result, or its error with
// class and hint. The budget is enforced here, for every operation: a
// result too large is refused, an error message too long is shortened.
func (t *Table) encode(op string, result []byte, err error) []byte {
	if err == nil {
		b, _ := json.Marshal(answer{OK: true, Result: result})
		if len(b) <= AnswerBudget {
			return b
		}
		err = api.Fail(api.ErrUnavailable, fmt.Sprintf("ask host %d's own API for it", t.self),
			"the answer of host %d to %s is %d bytes, more than the %d bytes one serf response carries", t.self, op, len(b), AnswerBudget)
	}
	err = t.classify(err)
	a := answer{Error: err.Error(), Status: api.StatusOf(err), Hint: api.HintOf(err), Class: api.ClassName(err)}
	b, _ := json.Marshal(a)
	for over := len(b) - AnswerBudget; over > 0; over = len(b) - AnswerBudget {
		// Escaped characters count more than once: cut at most half at a time.
		switch {
		case len(a.Hint) > 200:
			a.Hint = shorten(a.Hint, max(len(a.Hint)-over, len(a.Hint)/2, 200))
		case a.Error != "":
			a.Error = shorten(a.Error, max(len(a.Error)-over, len(a.Error)/2))
		case a.Hint != "":
			a.Hint = shorten(a.Hint, max(len(a.Hint)-over, len(a.Hint)/2))
		default:
			return b // cannot happen: class and status alone are small
		}
		b, _ = json.Marshal(a)
	}
	return b
}

// shorten cuts s to less than n bytes, the last three "...", at a rune
// start; to "" when n leaves no room.
func shorten(s string, n int) string {
	if n <= 3 {
		return ""
	}
	n -= 4
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}

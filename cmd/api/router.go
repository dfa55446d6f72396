package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxBody is the largest request body the daemon reads.
const MaxBody = 1 << 20

// DefaultBodyTimeout bounds how long the daemon waits for a request's
// body once its headers arrived: a body that never comes must not hold a
// connection forever.
const DefaultBodyTimeout = 30 * time.Second

// Route is one route of a Router: its method, its path as the mux
// pattern writes it ("/v1/vms/{vm}"), and the query parameters it takes.
type Route struct {
	Method, Path string
	Query        []string
}

// Router serves the daemon's routes. Every answer is JSON; every error,
// an unknown path and a wrong method included, has the one shape of
// Error, with the status of its class. Bodies and query parameters are
// strict: an unknown field or parameter, or anything after the JSON
// value, is refused with what to send.
type Router struct {
	// BodyTimeout bounds the reading of a request's body (0: DefaultBodyTimeout).
	BodyTimeout time.Duration

	mux      *http.ServeMux
	paths    *http.ServeMux // each path without its method: to tell 405 from 404
	methods  map[string][]string
	routes   []Route
	classify func(error) error
}

// NewRouter returns an empty router; classify gives an error its class
// before it is answered (nil: errors are answered as they are).
func NewRouter(classify func(error) error) *Router {
	if classify == nil {
		classify = func(err error) error { return err }
	}
	return &Router{mux: http.NewServeMux(), paths: http.NewServeMux(), methods: map[string][]string{}, classify: classify}
}

// Routes lists the routes in the order they were added.
func (rt *Router) Routes() []Route { return slices.Clone(rt.routes) }

// Handle serves pattern ("GET /v1/status") with fn: its answer as JSON,
// or its error. query names the parameters the route takes; any other is
// refused. The routes of one path spell its wildcards alike.
func (rt *Router) Handle(pattern string, fn func(r *http.Request) (any, error), query ...string) {
	rt.Mount(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		out, err := checkQuery(r, query)
		if err == nil {
			out, err = fn(r)
		}
		if err != nil {
			rt.fail(w, 0, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	}), query...)
}

// Mount serves pattern ("GET /ui/") with h as it is: a route that does not
// answer JSON (a page). It is listed in Routes like the others, with the
// query parameters h takes (h checks them itself).
func (rt *Router) Mount(pattern string, h http.Handler, query ...string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		panic("api: route pattern without a method: " + pattern)
	}
	rt.routes = append(rt.routes, Route{Method: method, Path: path, Query: query})
	if rt.methods[path] == nil {
		rt.paths.HandleFunc(path, func(http.ResponseWriter, *http.Request) {})
	}
	rt.methods[path] = append(rt.methods[path], method)
	rt.mux.Handle(pattern, h)
}

// Post serves a POST with a JSON body Req (none: the zero Req, unless
// required; hint says what to send). The request runs to its end even if
// the client goes away: an interrupted CLI must not abort a migration half
// way.
func Post[Req any](rt *Router, pattern, hint string, required bool, fn func(context.Context, *http.Request, Req) (any, error)) {
	rt.Handle(pattern, func(r *http.Request) (any, error) {
		var req Req
		if r.ContentLength != 0 || required {
			if err := rt.readBody(r, &req, hint); err != nil {
				return nil, err
			}
		}
		return fn(context.WithoutCancel(r.Context()), r, req)
	})
}

// readBody decodes r's body into v within BodyTimeout.
func (rt *Router) readBody(r *http.Request, v any, hint string) error {
	rc := http.NewResponseController(responseOf(r))
	timeout := rt.BodyTimeout
	if timeout <= 0 {
		timeout = DefaultBodyTimeout
	}
	_ = rc.SetReadDeadline(time.Now().Add(timeout)) // a listener without deadlines: the server's own bound
	err := Decode(r.Body, v)
	if err == nil {
		// A long operation follows: the connection must not expire under it.
		_ = rc.SetReadDeadline(time.Time{})
		return nil
	}
	// On an error the deadline stays: the rest of a body that never came
	// is not waited for, and the connection closes after the answer.
	var tooLarge *http.MaxBytesError
	var ne interface{ Timeout() bool }
	switch {
	case errors.As(err, &tooLarge):
		return Fail(ErrInvalid, hint, "request body larger than %d bytes", MaxBody)
	case errors.As(err, &ne) && ne.Timeout():
		return Fail(ErrInvalid, "send the whole body at once", "request body not received within %v", timeout)
	}
	return Fail(ErrInvalid, hint, "decode request: %v", err)
}

// Decode reads exactly one JSON value from r into v: a field v does not
// have, or anything but white space after the value, is an error.
func Decode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err == nil {
			return errors.New("more than one JSON value: send one object")
		}
		return fmt.Errorf("after the JSON value: %w", err)
	}
	return nil
}

type responseKey struct{}

// responseOf is the ResponseWriter ServeHTTP stored in r's context.
func responseOf(r *http.Request) http.ResponseWriter {
	w, _ := r.Context().Value(responseKey{}).(http.ResponseWriter)
	return w
}

// ServeHTTP serves r with its route; an unknown path answers 404 and a
// path served for other methods 405 with Allow, both in the one shape.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := rt.mux.Handler(r); pattern != "" {
		rt.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), responseKey{}, w)))
		return
	}
	if _, path := rt.paths.Handler(r); path != "" {
		allowed := strings.Join(rt.methods[path], ", ")
		w.Header().Set("Allow", allowed)
		rt.fail(w, http.StatusMethodNotAllowed, Fail(ErrInvalid, "use "+allowed, "%s %s: method not allowed", r.Method, r.URL.Path))
		return
	}
	rt.fail(w, 0, Fail(ErrNotFound, "see docs/openapi.json for the API's routes", "no route %s %s", r.Method, r.URL.Path))
}

// fail answers err in the one error shape, with status or its class's.
func (rt *Router) fail(w http.ResponseWriter, status int, err error) {
	code, body := ErrorBody(rt.classify(err))
	if status != 0 {
		code = status
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}

// checkQuery refuses a query parameter that is not in allowed, or given twice.
func checkQuery(r *http.Request, allowed []string) (any, error) {
	for name, vals := range r.URL.Query() {
		if !slices.Contains(allowed, name) {
			hint := "this route takes no query parameters"
			if len(allowed) > 0 {
				hint = "use " + strings.Join(allowed, ", ")
			}
			return nil, Fail(ErrInvalid, hint, "unknown query parameter %q", name)
		}
		if len(vals) > 1 {
			return nil, Fail(ErrInvalid, "give it once", "query parameter %q given %d times", name, len(vals))
		}
	}
	return nil, nil
}

// QueryBool reads r's optional boolean query parameter name ("1",
// "true", ...); an ErrInvalid that says what to send when it is not one.
func QueryBool(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, Fail(ErrInvalid, fmt.Sprintf("use ?%s=1", name), "query parameter %s=%q: not a boolean", name, s)
	}
	return b, nil
}

// QueryLimit reads r's optional query parameter name, a positive integer
// (0 when absent).
func QueryLimit(r *http.Request, name string) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, Fail(ErrInvalid, fmt.Sprintf("use ?%s=N with N a positive integer, or leave it out for all", name),
			"query parameter %s=%q: not a positive integer", name, s)
	}
	return n, nil
}

// QueryTime reads r's optional RFC 3339 time parameter name (zero when absent).
func QueryTime(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, Fail(ErrInvalid, "use RFC 3339, e.g. 2026-01-02T15:04:05Z", "query parameter %s=%q: not a time", name, s)
	}
	return t, nil
}

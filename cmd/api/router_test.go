package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testRouter serves a policy route that records what it was sent and a
// GET route with a limit, as the daemon's routes do.
func testRouter(t *testing.T, got *ProtectRequest) *httptest.Server {
	rt := NewRouter(nil)
	rt.BodyTimeout = 200 * time.Millisecond
	Post(rt, "POST /v1/vms/{vm}/policy", `send {"policy": {...}}`, false, func(_ context.Context, _ *http.Request, req ProtectRequest) (any, error) {
		*got = req
		return VM{Name: "web1"}, nil
	})
	rt.Handle("GET /v1/events", func(r *http.Request) (any, error) {
		n, err := QueryLimit(r, "limit")
		return []int{n}, err
	}, "limit")
	rt.Handle("GET /v1/vms/{vm}", func(r *http.Request) (any, error) { return VM{Name: r.PathValue("vm")}, nil })
	rt.Mount("GET /ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>") }))
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return srv
}

// answer sends a request and returns the status, the Allow header and the
// error body.
func answer(t *testing.T, method, url, body string) (int, string, Error) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e Error
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q, want application/json", method, url, ct)
		}
		if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
			t.Errorf("%s %s: answer %q is not the one error shape: %v", method, url, b, err)
		}
	}
	return resp.StatusCode, resp.Header.Get("Allow"), e
}

func TestRouterRefusesWhatItDoesNotUnderstand(t *testing.T) {
	var got ProtectRequest
	srv := testRouter(t, &got)
	policy := srv.URL + "/v1/vms/web1/policy"
	for _, tc := range []struct {
		name, method, url, body string
		status                  int
		class, msg, hint        string
	}{
		{"a misspelt field", "POST", policy, `{"policy": {"priorty": "low"}}`, 400, "invalid", `decode request: json: unknown field "priorty"`, `send {"policy": {...}}`},
		{"a misspelt top-level field", "POST", policy, `{"polcy": {}}`, 400, "invalid", `unknown field "polcy"`, ""},
		{"garbage after the JSON", "POST", policy, `{"policy": {}} x`, 400, "invalid", "after the JSON value", ""},
		{"two JSON values", "POST", policy, `{} {}`, 400, "invalid", "more than one JSON value", ""},
		{"a body too large", "POST", policy, `{"policy": {"anti_affinity": "` + strings.Repeat("a", MaxBody) + `"}}`, 400, "invalid", "larger than", ""},
		{"an unknown path", "GET", srv.URL + "/v1/nothing", "", 404, "not-found", "no route GET /v1/nothing", "docs/openapi.json"},
		{"an unknown version", "GET", srv.URL + "/v2/events", "", 404, "not-found", "no route", ""},
		{"a wrong method", "DELETE", policy, "", 405, "invalid", "DELETE /v1/vms/web1/policy: method not allowed", "use POST"},
		{"a wrong method on a page", "POST", srv.URL + "/ui/hosts", "", 405, "invalid", "method not allowed", "use GET"},
		{"a limit that is no number", "GET", srv.URL + "/v1/events?limit=ten", "", 400, "invalid", `limit="ten": not a positive integer`, "positive integer"},
		{"a limit of 0", "GET", srv.URL + "/v1/events?limit=0", "", 400, "invalid", "not a positive integer", ""},
		{"a negative limit", "GET", srv.URL + "/v1/events?limit=-3", "", 400, "invalid", "not a positive integer", ""},
		{"an unknown parameter", "GET", srv.URL + "/v1/events?limt=3", "", 400, "invalid", `unknown query parameter "limt"`, "use limit"},
		{"a parameter given twice", "GET", srv.URL + "/v1/events?limit=3&limit=4", "", 400, "invalid", "given 2 times", ""},
		{"a parameter where none is taken", "GET", srv.URL + "/v1/vms/web1?x=1", "", 400, "invalid", `unknown query parameter "x"`, "takes no query parameters"},
	} {
		status, _, e := answer(t, tc.method, tc.url, tc.body)
		if status != tc.status || e.Class != tc.class || !strings.Contains(e.Error, tc.msg) || !strings.Contains(e.Hint, tc.hint) {
			t.Errorf("%s: %d %+v, want %d class %s with %q, hint %q", tc.name, status, e, tc.status, tc.class, tc.msg, tc.hint)
		}
	}
	if got.Policy.Priority != "" || got.Policy.AntiAffinity != "" {
		t.Errorf("a refused request reached the handler: %+v", got)
	}
	if _, allow, _ := answer(t, "GET", policy, ""); allow != "POST" {
		t.Errorf("405 without Allow: POST: %q", allow)
	}
	if status, _, e := answer(t, "POST", policy, `{"policy": {"priority": "low"}}`+"\n"); status != 200 || got.Policy.Priority != "low" {
		t.Errorf("a good body: %d %+v, handler got %+v", status, e, got)
	}
	if status, _, e := answer(t, "POST", policy, ""); status != 200 {
		t.Errorf("no body: %d %+v", status, e)
	}
	if status, _, _ := answer(t, "GET", srv.URL+"/ui/hosts", ""); status != 200 {
		t.Errorf("a mounted page: %d", status)
	}
	if status, _, e := answer(t, "GET", srv.URL+"/v1/events?limit=5", ""); status != 200 {
		t.Errorf("limit=5: %d %+v", status, e)
	}
}

// A body announced but never sent is answered within BodyTimeout, and the
// connection does not stay held by it.
func TestRouterBoundsTheWaitForABody(t *testing.T) {
	var got ProtectRequest
	srv := testRouter(t, &got)
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second)) // the test's own bound, far above the router's
	if _, err := io.WriteString(c, "POST /v1/vms/web1/policy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"pol"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a body that never came: %v", err)
	}
	var e Error
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 400 || e.Class != "invalid" || !strings.Contains(e.Error, "request body not received within 200ms") {
		t.Errorf("a body that never came: %d %+v", resp.StatusCode, e)
	}
}

// The client's errors keep the class of the one shape: a 405 is invalid.
func TestClientSeesTheClassOfRouterErrors(t *testing.T) {
	var got ProtectRequest
	srv := testRouter(t, &got)
	c := NewHTTPClient(srv.URL, nil)
	err := c.do(context.Background(), http.MethodPut, "/v1/vms/web1/policy", nil, nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "use POST") {
		t.Errorf("PUT policy: %v", err)
	}
	if _, err := c.Host(context.Background(), "kvm1"); !IsNotFound(err) {
		t.Errorf("unknown route: %v, want not found", err)
	}
}

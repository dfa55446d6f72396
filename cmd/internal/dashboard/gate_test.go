package dashboard

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/wingmanha/wingman/cmd/api"
)

// daemon is a stand-in for wingmand on a real unix socket that records
// what reaches it.
type daemon struct {
	socket string
	mu     sync.Mutex
	got    []*http.Request
}

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	d := &daemon{socket: filepath.Join(t.TempDir(), "wingman.sock")}
	l, err := net.Listen("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.got = append(d.got, r)
		d.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"host":"kvm1"}`)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return d
}

// take returns and forgets the requests that reached the daemon.
func (d *daemon) take() []*http.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	got := d.got
	d.got = nil
	return got
}

// startGate serves a gate in front of a daemon on loopback, as `wingman ui` does.
func startGate(t *testing.T) (*Gate, *httptest.Server, *daemon) {
	t.Helper()
	d := startDaemon(t)
	g := NewGate(Proxy(d.socket))
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv, d
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(`{"enter":true}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn opens the gate's link in c and returns the session's CSRF value.
func signIn(t *testing.T, g *Gate, srv *httptest.Server, c *http.Client) string {
	t.Helper()
	resp, _ := do(t, c, "GET", g.URL(srv.Listener.Addr().String()), nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != Prefix {
		t.Fatalf("token exchange: %s, Location %q; want 303 to %s", resp.Status, resp.Header.Get("Location"), Prefix)
	}
	resp, body := do(t, c, "GET", srv.URL+sessionPath, nil)
	var s struct{ CSRF string }
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &s) != nil || s.CSRF == "" {
		t.Fatalf("session after sign-in: %s %s", resp.Status, body)
	}
	return s.CSRF
}

func TestGateRefusesEverythingWithoutTheSession(t *testing.T) {
	_, srv, d := startGate(t)
	c := browser(t)
	for _, p := range []string{"/", Prefix, Prefix + "app.js", sessionPath, "/v1/status", "/v1/hosts"} {
		resp, body := do(t, c, "GET", srv.URL+p, nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "wingman ui") {
			t.Errorf("GET %s without a session: %s %q; want 403 saying to run 'wingman ui'", p, resp.Status, body)
		}
	}
	resp, body := do(t, c, "GET", srv.URL+"/v1/status", nil)
	var e api.Error
	if json.Unmarshal([]byte(body), &e) != nil || e.Class != "forbidden" || e.Hint == "" {
		t.Errorf("API refusal is not the API's error shape: %s %q", resp.Status, body)
	}
	if got := d.take(); len(got) != 0 {
		t.Errorf("%d requests reached the daemon without a session", len(got))
	}
}

func TestGateExchangesTheTokenOnceForAStrictHttpOnlyCookie(t *testing.T) {
	g, srv, d := startGate(t)
	c := browser(t)
	resp, _ := do(t, c, "GET", g.URL(srv.Listener.Addr().String()), nil)
	if resp.StatusCode != http.StatusSeeOther || strings.Contains(resp.Header.Get("Location"), "token") {
		t.Fatalf("exchange: %s to %q; want 303 to the dashboard without the token", resp.Status, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("exchange set %d cookies, want 1", len(cookies))
	}
	ck := cookies[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || len(ck.Value) < 20 {
		t.Errorf("cookie %v: want HttpOnly, SameSite=Strict, Path=/ and a long random value", ck)
	}
	// The same link again: from another browser refused, from this one a
	// plain redirect.
	resp, body := do(t, browser(t), "GET", g.URL(srv.Listener.Addr().String()), nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "run 'wingman ui' again") {
		t.Errorf("second use of the token: %s %q; want 403", resp.Status, body)
	}
	if resp, _ := do(t, c, "GET", g.URL(srv.Listener.Addr().String()), nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the signed-in browser opening the link again: %s, want 303", resp.Status)
	}
	resp, body = do(t, browser(t), "GET", srv.URL+Prefix+"?token=not-the-token", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a wrong token: %s %q", resp.Status, body)
	}
	// Signed in: the page and the API.
	resp, body = do(t, c, "GET", srv.URL+Prefix, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `src="app.js"`) {
		t.Fatalf("dashboard page: %s %q", resp.Status, body)
	}
	resp, body = do(t, c, "GET", srv.URL+"/v1/status", nil)
	if resp.StatusCode != 200 || body != `{"host":"kvm1"}` || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET /v1/status: %s %q, Cache-Control %q", resp.Status, body, resp.Header.Get("Cache-Control"))
	}
	got := d.take()
	if len(got) != 1 || got[0].Header.Get("Cookie") != "" {
		t.Errorf("the daemon got %d requests, cookie %q: want one, without the browser's cookie", len(got), got[0].Header.Get("Cookie"))
	}
}

func TestGateTokenExchangeNeedsGET(t *testing.T) {
	g, srv, _ := startGate(t)
	resp, _ := do(t, browser(t), "POST", g.URL(srv.Listener.Addr().String()), nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST with the token: %s, want 403", resp.Status)
	}
	// A refused attempt does not use the token up.
	signIn(t, g, srv, browser(t))
}

func TestGateRefusesCrossSiteAndHeaderlessActions(t *testing.T) {
	g, srv, d := startGate(t)
	c := browser(t)
	csrf := signIn(t, g, srv, c)
	self := "http://" + srv.Listener.Addr().String()
	action := srv.URL + "/v1/hosts/kvm1/maintenance"
	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"no CSRF header", map[string]string{"Origin": self}},
		{"wrong CSRF header", map[string]string{"Origin": self, csrfHeader: csrf + "x"}},
		{"another site's Origin", map[string]string{"Origin": "http://evil.example", csrfHeader: csrf}},
		{"Sec-Fetch-Site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site", csrfHeader: csrf}},
	} {
		resp, body := do(t, c, "POST", action, tc.header)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s %q, want 403", tc.name, resp.Status, body)
		}
	}
	// A page whose name resolves to 127.0.0.1 (DNS rebinding) reads nothing.
	// (The page would have no cookie there; even one that had is refused.)
	u, _ := url.Parse(srv.URL)
	rebound := map[string]string{"Host": "evil.example:" + u.Port(), "Cookie": c.Jar.Cookies(u)[0].String()}
	if resp, body := do(t, &http.Client{}, "GET", srv.URL+"/v1/status", rebound); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET with Host evil.example: %s %q, want 403", resp.Status, body)
	}
	if got := d.take(); len(got) != 0 {
		t.Fatalf("%d refused requests reached the daemon", len(got))
	}
	resp, body := do(t, c, "POST", action, map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin", csrfHeader: csrf})
	if resp.StatusCode != 200 {
		t.Fatalf("the page's own action: %s %q", resp.Status, body)
	}
	got := d.take()
	if len(got) != 1 || got[0].Method != "POST" || got[0].URL.Path != "/v1/hosts/kvm1/maintenance" {
		t.Fatalf("daemon got %v, want the POST", got)
	}
	for _, h := range []string{"Cookie", "Origin", csrfHeader, "Sec-Fetch-Site"} {
		if v := got[0].Header.Get(h); v != "" {
			t.Errorf("the daemon got the browser's %s: %q", h, v)
		}
	}
}

func TestEveryAnswerForbidsFramingAndInlineScript(t *testing.T) {
	g, srv, _ := startGate(t)
	c := browser(t)
	signIn(t, g, srv, c)
	for _, p := range []string{"/nope", Prefix, Prefix + "app.js", "/v1/status"} {
		resp, _ := do(t, c, "GET", srv.URL+p, nil)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %s, CSP %q, X-Frame-Options %q", p, resp.Status, csp, resp.Header.Get("X-Frame-Options"))
		}
	}
	// The policy holds only if the page needs no inline script or style.
	page, err := embedded.ReadFile("ui/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`<script(?:[^>]*)>[^<]|<script(?:\s[^>]*)?>\s*</script>|\sstyle=|\son[a-z]+=`).FindAll(page, -1); len(m) != 1 || !strings.Contains(string(m[0]), `src="app.js"`) {
		t.Errorf("index.html has inline script, style or handlers (or not app.js alone): %q", m)
	}
}

func TestProxySaysWhenTheDaemonIsGone(t *testing.T) {
	g := NewGate(Proxy(filepath.Join(t.TempDir(), "missing.sock")))
	srv := httptest.NewServer(g)
	defer srv.Close()
	c := browser(t)
	signIn := func() {
		resp, _ := do(t, c, "GET", g.URL(srv.Listener.Addr().String()), nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign in: %s", resp.Status)
		}
	}
	signIn()
	resp, body := do(t, c, "GET", srv.URL+"/v1/status", nil)
	var e api.Error
	if resp.StatusCode != http.StatusBadGateway || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, "missing.sock") || e.Hint == "" {
		t.Errorf("daemon gone: %s %q; want 502 naming the socket, with a hint", resp.Status, body)
	}
}

func TestForTLSRefusesCrossOriginBrowsersOnly(t *testing.T) {
	var reached []string
	srv := httptest.NewServer(ForTLS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = append(reached, r.Method+" "+r.URL.Path)
	})))
	defer srv.Close()
	c := browser(t)
	resp, body := do(t, c, "GET", srv.URL+Prefix, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `src="app.js"`) || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("GET %s: %s", Prefix, resp.Status)
	}
	if resp, _ := do(t, c, "POST", srv.URL+"/v1/hosts/kvm1/maintenance", map[string]string{"Origin": "http://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST: %s, want 403", resp.Status)
	}
	if resp, _ := do(t, c, "POST", srv.URL+"/v1/hosts/kvm1/maintenance", map[string]string{"Sec-Fetch-Site": "same-site"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("same-site (not same-origin) POST: %s, want 403", resp.Status)
	}
	// The CLI sends neither header; the page sends its own origin.
	do(t, c, "POST", srv.URL+"/v1/hosts/kvm1/maintenance", nil)
	do(t, c, "POST", srv.URL+"/v1/hosts/kvm2/maintenance", map[string]string{"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"})
	resp, _ = do(t, c, "GET", srv.URL+"/v1/status", nil)
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("API answer Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
	}
	if want := []string{"POST /v1/hosts/kvm1/maintenance", "POST /v1/hosts/kvm2/maintenance", "GET /v1/status"}; strings.Join(reached, ",") != strings.Join(want, ",") {
		t.Errorf("reached the API: %v, want %v", reached, want)
	}
}

package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/wingmanha/wingman/cmd/api"
)

// csrfHeader carries the session's CSRF value on every state-changing
// request: a page of another site can neither read the value nor set the
// header on a request it makes the browser send.
const csrfHeader = "X-Wingman-CSRF"

// sessionPath answers the page's session: {"csrf": "..."}.
const sessionPath = Prefix + "session"

// Gate is the front door of `wingman ui`. Whoever ran `wingman ui` could
// reach the daemon's socket; the URL it printed carries a one-time token
// that the first request exchanges for a session cookie (HttpOnly,
// SameSite=Strict), so that only the browser the link was opened in, and
// no other local user or program, gets in. Every other request without
// the cookie is refused, files included. State-changing requests also
// need the session's CSRF header and must not come from another site.
type Gate struct {
	api    http.Handler // the daemon's API (Proxy)
	ui     http.Handler
	cookie string // the session cookie's name: unique, so that two gates on one host do not log each other out

	mu      sync.Mutex
	token   string // the one-time token
	used    bool   // the token was exchanged
	session string // the cookie's value, once exchanged
	csrf    string
}

// NewGate returns a gate in front of apiHandler with a new one-time token.
func NewGate(apiHandler http.Handler) *Gate {
	return &Gate{api: apiHandler, ui: files(), cookie: "wingman_ui_" + rand.Text()[:8], token: rand.Text()}
}

// URL is the link to open once: the dashboard at hostport with the token.
func (g *Gate) URL(hostport string) string {
	return "http://" + hostport + Prefix + "?token=" + g.token
}

// ServeHTTP serves the dashboard and the API to the session alone.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	secure(w, r)
	if !loopbackName(r.Host) {
		// A page of another site whose name resolves to 127.0.0.1 (DNS
		// rebinding) never gets the cookie; refuse it before anything.
		fail(w, r, api.Fail(api.ErrForbidden, "open the link that 'wingman ui' printed (127.0.0.1 or localhost; from another machine through an SSH port forward)",
			"refused host name %q: the dashboard answers on loopback names only", r.Host))
		return
	}
	if tok := r.URL.Query().Get("token"); tok != "" {
		g.exchange(w, r, tok)
		return
	}
	csrf, ok := g.sessionOf(r)
	if !ok {
		fail(w, r, api.Fail(api.ErrForbidden, "run 'wingman ui' again and open the link it prints (each link works once)",
			"no dashboard session: this browser did not open the link that 'wingman ui' printed"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := crossOrigin.Check(r); err != nil {
			fail(w, r, api.Fail(api.ErrForbidden, "use the dashboard's own page", "refused a cross-origin request: %v", err))
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(csrfHeader)), []byte(csrf)) != 1 {
			fail(w, r, api.Fail(api.ErrForbidden, "use the dashboard's own page: it sends the session's header",
				"refused %s %s: missing or wrong %s header", r.Method, r.URL.Path, csrfHeader))
			return
		}
	}
	switch p := r.URL.Path; {
	case p == "/" || p == "/ui":
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
	case p == sessionPath:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"csrf": csrf})
	case strings.HasPrefix(p, Prefix):
		g.ui.ServeHTTP(w, r)
	case strings.HasPrefix(p, "/v1/"):
		g.api.ServeHTTP(w, r)
	default:
		fail(w, r, api.Fail(api.ErrNotFound, "the dashboard is at "+Prefix, "no page %s", p))
	}
}

// exchange trades the one-time token for the session cookie, and sends the
// browser on to the dashboard without the token in its address.
func (g *Gate) exchange(w http.ResponseWriter, r *http.Request, tok string) {
	if _, ok := g.sessionOf(r); ok {
		http.Redirect(w, r, Prefix, http.StatusSeeOther) // the same browser again
		return
	}
	g.mu.Lock()
	good := r.Method == http.MethodGet && !g.used && subtle.ConstantTimeCompare([]byte(tok), []byte(g.token)) == 1
	if good {
		g.used, g.session, g.csrf = true, rand.Text(), rand.Text()
	}
	session := g.session
	g.mu.Unlock()
	if !good {
		fail(w, r, api.Fail(api.ErrForbidden, "run 'wingman ui' again for a new link",
			"this link is not valid: each link of 'wingman ui' opens one browser session, once"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: g.cookie, Value: session, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// sessionOf is the CSRF value of r's session, if r carries the cookie.
func (g *Gate) sessionOf(r *http.Request) (string, bool) {
	c, err := r.Cookie(g.cookie)
	if err != nil {
		return "", false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.session == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(g.session)) != 1 {
		return "", false
	}
	return g.csrf, true
}

// loopbackName reports whether host (a Host header) names this machine's
// loopback interface.
func loopbackName(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

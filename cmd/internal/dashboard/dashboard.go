package dashboard

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/wingmanha/wingman/cmd/api"
)

//go:embed ui
var embedded embed.FS

// Prefix is where the dashboard is served.
const Prefix = "/ui/"

// contentSecurityPolicy allows the dashboard's own files and API only: no
// inline script or style element, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// files serves the embedded files under Prefix.
func files() http.Handler {
	sub, err := fs.Sub(embedded, "ui")
	if err != nil {
		panic(err) // the embedded tree always has ui/
	}
	fileServer := http.StripPrefix(Prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "the dashboard's files are read with GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache") // a new wingman's files show at once
		fileServer.ServeHTTP(w, r)
	})
}

// secure sets the headers every answer carries; API answers are never
// stored.
func secure(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, Prefix) || r.URL.Path == sessionPath {
		h.Set("Cache-Control", "no-store")
	}
}

// fail answers err: in the API's JSON shape on the API's paths, as plain
// text on a page a person opened.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body := api.ErrorBody(err)
	if !strings.HasPrefix(r.URL.Path, "/v1/") && r.URL.Path != sessionPath {
		msg := body.Error
		if body.Hint != "" {
			msg += "\n" + body.Hint
		}
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// crossOrigin refuses state-changing requests that a browser sends from
// another site (Sec-Fetch-Site, or Origin against Host); GET and HEAD
// pass, and so do clients that are not browsers (the CLI).
var crossOrigin = http.NewCrossOriginProtection()

// ForTLS serves the dashboard under Prefix and apiHandler for everything
// else, for the daemon's mutual-TLS listener: the TLS layer has checked the
// client certificate before any request reaches it.
func ForTLS(apiHandler http.Handler) http.Handler {
	ui := files()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w, r)
		if err := crossOrigin.Check(r); err != nil {
			fail(w, r, api.Fail(api.ErrForbidden, "use the dashboard's own page, or a client that is not a browser", "refused a cross-origin request: %v", err))
			return
		}
		switch {
		case r.URL.Path == "/" || r.URL.Path == "/ui":
			http.Redirect(w, r, Prefix, http.StatusSeeOther)
		case strings.HasPrefix(r.URL.Path, Prefix):
			ui.ServeHTTP(w, r)
		default:
			apiHandler.ServeHTTP(w, r)
		}
	})
}

// Proxy forwards requests to the daemon's API on its unix socket, without
// the browser's cookies and headers: the Gate has checked them.
func Proxy(socket string) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: "wingmand"})
			for _, h := range []string{"Cookie", "Origin", "Referer", csrfHeader, "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User"} {
				pr.Out.Header.Del(h)
			}
		},
		Transport: api.UnixTransport(socket),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			fail(w, r, api.Fail(api.ErrUnavailable, "is wingmand running (systemctl status wingmand)? are you root or in group wingman?",
				"wingmand is not reachable at %s: %v", socket, err))
		},
	}
}

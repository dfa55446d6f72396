// Package dashboard is Wingman's web dashboard: static files (HTML, CSS,
// JavaScript, embedded in the binary) that read the daemon's JSON API
// (/v1) and call its POST routes for the safe actions, and the two ways
// of serving them with the same authority as the CLI:
//
//   - ForTLS, beside the API on wingmand's mutual-TLS listener, where the
//     client certificate is the authority;
//   - Gate, the front door of `wingman ui` on 127.0.0.1: a one-time token
//     in the URL is exchanged for an HttpOnly, SameSite=Strict session
//     cookie, every request without it is refused, and /v1 is forwarded to
//     the daemon's unix socket (Proxy).
//
// Both refuse state-changing requests from other sites (the Gate also
// wants its per-session X-Wingman-CSRF header), send a Content-Security-
// Policy without inline script, forbid framing, and mark API answers
// no-store. GET never changes anything.
//
// What it must never do: serve anything, files included, to a request
// without the authority, or decide anything: the daemon does.
package dashboard

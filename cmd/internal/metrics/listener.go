package metrics

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/wingmanha/wingman/cmd/api"
)

// ListenerConfig is the [metrics] section of wingman.toml: where the
// Prometheus endpoint listens, and optionally its TLS and basic auth.
type ListenerConfig struct {
	// Listen is host:port for GET /metrics; empty: no listener. Without
	// TLS and basic auth, bind it to the management network only.
	Listen string `toml:"listen"`
	// TLSCert and TLSKey (PEM files) serve it over TLS; with TLSClientCA,
	// scrapers must present a certificate that CA signed.
	TLSCert     string `toml:"tls_cert"`
	TLSKey      string `toml:"tls_key"`
	TLSClientCA string `toml:"tls_client_ca"`
	// BasicAuthUser and the file that holds the password (its first line)
	// require HTTP basic auth; the password itself is never in the toml.
	BasicAuthUser         string `toml:"basic_auth_user"`
	BasicAuthPasswordFile string `toml:"basic_auth_password_file"`
}

// Problem is what is wrong with one key of a ListenerConfig.
type Problem struct {
	Key, Msg string // Key is the toml key within [metrics]
}

// Problems are what is wrong with c, each with what to change.
func (c ListenerConfig) Problems() []Problem {
	var out []Problem
	bad := func(key, format string, a ...any) { out = append(out, Problem{key, fmt.Sprintf(format, a...)}) }
	if c.Listen == "" {
		if c.TLSCert != "" || c.BasicAuthUser != "" {
			bad("listen", "is empty, so tls_cert and basic_auth_user do nothing: set listen, like \"10.0.0.5:9477\"")
		}
		return out
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%v: use host:port, like \"10.0.0.5:9477\"", err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert", "tls_cert and tls_key go together: set both, or neither")
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		bad("tls_client_ca", "needs tls_cert and tls_key: client certificates are checked over TLS only")
	}
	for key, path := range map[string]string{"tls_cert": c.TLSCert, "tls_key": c.TLSKey, "tls_client_ca": c.TLSClientCA} {
		if _, err := os.Stat(path); path != "" && err != nil {
			bad(key, "%v", err)
		}
	}
	if (c.BasicAuthUser == "") != (c.BasicAuthPasswordFile == "") {
		bad("basic_auth_user", "basic_auth_user and basic_auth_password_file go together: set both, or neither")
	}
	if c.BasicAuthPasswordFile != "" {
		if _, err := readPassword(c.BasicAuthPasswordFile); err != nil {
			bad("basic_auth_password_file", "%v", err)
		}
	}
	return out
}

// readPassword is the first line of path, which must not be empty.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	if pw = strings.TrimRight(pw, "\r"); pw == "" {
		return "", fmt.Errorf("%s: the first line is empty: write the password there (chmod 600)", path)
	}
	return pw, nil
}

// Serve serves GET /metrics as c configures until ctx ends, and returns
// the address it listens on.
func (m *Metrics) Serve(ctx context.Context, c ListenerConfig) (net.Addr, error) {
	h := http.Handler(m.Handler())
	if c.BasicAuthUser != "" {
		pw, err := readPassword(c.BasicAuthPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("metrics.basic_auth_password_file: %w", err)
		}
		h = basicAuth(c.BasicAuthUser, pw, h)
	}
	l, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", c.Listen, err)
	}
	if c.TLSCert != "" {
		cfg, err := serverTLS(c)
		if err != nil {
			l.Close()
			return nil, err
		}
		l = tls.NewListener(l, cfg)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	go api.Serve(ctx, l, mux)
	return l.Addr(), nil
}

func serverTLS(c ListenerConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("metrics.tls_cert %s and tls_key %s: %w", c.TLSCert, c.TLSKey, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.TLSClientCA != "" {
		pool, err := api.CAPool(c.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("metrics.tls_client_ca: %w", err)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// basicAuth lets through requests with user and password, compared in
// constant time.
func basicAuth(user, password string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(user + "\x00" + password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		got := sha256.Sum256([]byte(u + "\x00" + p))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="wingmand metrics", charset="UTF-8"`)
			http.Error(w, "unauthorized: scrape with the user and password of metrics.basic_auth_user", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

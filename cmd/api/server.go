package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"
)

// ListenSocket opens the API's unix socket at path, mode 0660, replacing a
// stale one. When group exists, the socket and its directory (mode 0750)
// belong to it: only root and that group reach the daemon.
func ListenSocket(path, group string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	if g, err := user.LookupGroup(group); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil {
			_ = os.Chown(path, 0, gid)
			_ = os.Chown(filepath.Dir(path), 0, gid)
			_ = os.Chmod(filepath.Dir(path), 0o750)
		}
	}
	return l, nil
}

// ListenTLS opens a mutual-TLS listener at addr (host:port) with the
// server's files (see ServerTLS).
func ListenTLS(addr string, files TLSFiles) (net.Listener, error) {
	cfg, err := ServerTLS(files)
	if err != nil {
		return nil, err
	}
	return tls.Listen("tcp", addr, cfg)
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

// EventsQuery reads GET /v1/events's optional parameters: since (RFC 3339)
// and limit (the newest N; 0: all).
func EventsQuery(r *http.Request) (since time.Time, limit int, err error) {
	if s := r.URL.Query().Get("since"); s != "" {
		if since, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return since, 0, Fail(ErrInvalid, "use RFC 3339, e.g. 2026-01-02T15:04:05Z", "since %q: %v", s, err)
		}
	}
	limit, _ = strconv.Atoi(r.URL.Query().Get("limit"))
	return since, max(limit, 0), nil
}

// Serve serves h on l until ctx ends, then shuts down, giving requests in
// flight 5 s.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

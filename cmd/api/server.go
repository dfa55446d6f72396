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
	"syscall"
	"time"
)

// maxSocketPath is the longest path a unix socket can have on Linux
// (sun_path less its NUL).
const maxSocketPath = 107

// CheckSocketPath checks that path can be the API's socket: absolute, short
// enough for a unix socket, and in a directory of the daemon's own. The
// daemon sets the mode and group of a directory it creates for the socket,
// so it refuses a shared one it would lock others out of, or whose other
// users could replace the socket: world-writable or sticky (like /tmp), or
// owned by another user.
func CheckSocketPath(path string) error {
	switch {
	case path == "":
		return errors.New("is required: the API's unix socket, like " + DefaultSocket)
	case !filepath.IsAbs(path):
		return fmt.Errorf("%q is relative: give an absolute path, like %s", path, DefaultSocket)
	case len(path) > maxSocketPath:
		return fmt.Errorf("%s is %d bytes, over the %d of a unix socket path: use a shorter one, like %s", path, len(path), maxSocketPath, DefaultSocket)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // the daemon creates it, for itself
	}
	if err != nil {
		return fmt.Errorf("directory of %s: %w", path, err)
	}
	uid := -1
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		uid = int(sys.Uid)
	}
	switch {
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory: put the socket in a directory of its own, like %s", dir, filepath.Dir(DefaultSocket))
	case st.Mode()&(os.ModeSticky|0o002) != 0:
		return fmt.Errorf("directory %s is shared (world-writable or sticky): the socket needs a directory of its own; use one like %s, which wingmand creates", dir, DefaultSocket)
	case uid != 0 && uid != os.Geteuid():
		return fmt.Errorf("directory %s belongs to user %d, who could replace the socket: use a directory of root's, like %s", dir, uid, filepath.Dir(DefaultSocket))
	}
	return nil
}

// ListenSocket opens the API's unix socket at path (see CheckSocketPath),
// mode 0660, replacing a stale one. The socket belongs to group when it
// exists: only root and that group reach the daemon. A directory that
// ListenSocket creates for it gets mode 0750 and that group too; one that
// exists keeps its mode and group (systemd's RuntimeDirectory sets them).
func ListenSocket(path, group string) (net.Listener, error) {
	if err := CheckSocketPath(path); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	_, err := os.Stat(dir)
	created := errors.Is(err, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o750); err != nil {
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
	gid := -1
	if g, err := user.LookupGroup(group); err == nil {
		if n, err := strconv.Atoi(g.Gid); err == nil {
			gid = n
		}
	}
	if gid >= 0 {
		_ = os.Chown(path, 0, gid)
	}
	if created {
		if gid >= 0 {
			_ = os.Chown(dir, 0, gid)
		}
		_ = os.Chmod(dir, 0o750) // whatever the umask
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

// Serve serves h on l until ctx ends, then shuts down, giving requests in
// flight 5 s.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	// Headers within 10 s; a body within the Router's BodyTimeout; an idle
	// keep-alive connection is closed after 2 minutes.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ConnContext: noteCaller}
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

package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/wingmanha/wingman/cmd/api"
)

// socketEnv names the environment variable that overrides api.DefaultSocket.
const socketEnv = "WINGMAN_SOCKET"

// daemonFunc is the body of a command that talks to wingmand.
type daemonFunc func(ctx context.Context, s stdio, c *api.Client, args []string) error

// withDaemon registers -c/--connect on fs and returns an exec function that
// builds the client and turns transport failures into a message that says
// what to do. Every daemon command is built with it.
func withDaemon(fs *pflag.FlagSet, body daemonFunc) func(context.Context, stdio, []string) error {
	connect := connectFlag(fs)
	return func(ctx context.Context, s stdio, args []string) error {
		path := connect()
		var c *api.Client
		if addr, ok := strings.CutPrefix(path, "https://"); ok {
			// A remote daemon: mutual TLS with this user's certificate.
			cfg, err := api.ClientTLS(api.TLSFiles{Cert: os.Getenv("WINGMAN_TLS_CERT"), Key: os.Getenv("WINGMAN_TLS_KEY"), CA: os.Getenv("WINGMAN_TLS_CA")})
			if err != nil {
				return fmt.Errorf("%w; set WINGMAN_TLS_CERT, WINGMAN_TLS_KEY and WINGMAN_TLS_CA to your client certificate, its key and the cluster's CA", err)
			}
			c = api.NewTLSClient(strings.TrimSuffix(addr, "/"), cfg)
		} else {
			c = api.NewClient(path)
		}
		err := body(ctx, s, c, args)
		if _, remote := strings.CutPrefix(path, "https://"); remote {
			return err
		}
		if errors.Is(err, api.ErrUnreachable) && ctx.Err() == nil {
			_, dialErr := dialCheck(path)
			return explainUnreachable(path, dialErr, err)
		}
		return err
	}
}

// connectFlag registers -c/--connect on fs; the function it returns is
// the daemon's address: the flag's, else $WINGMAN_SOCKET's, else the
// default socket.
func connectFlag(fs *pflag.FlagSet) func() string {
	socket := fs.StringP("connect", "c", api.DefaultSocket, "wingmand's unix `SOCKET`, or https://HOST:PORT of its mutual-TLS listener (or set "+socketEnv+")")
	return func() string {
		if env := os.Getenv(socketEnv); env != "" && !fs.Changed("connect") {
			return env
		}
		return *socket
	}
}

// dialCheck dials the socket once more to learn why the client failed: the
// client only reports a formatted message, not the underlying errno.
func dialCheck(path string) (bool, error) {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false, err
	}
	c.Close()
	return true, nil
}

// explainUnreachable says whether the socket is missing, not accessible or
// dead, and what to do about it.
func explainUnreachable(path string, dialErr, orig error) error {
	switch {
	case errors.Is(dialErr, fs.ErrNotExist):
		return fmt.Errorf("wingmand is not reachable: no socket at %s; start the daemon (systemctl start wingmand) or name its socket with -c/--connect or %s", path, socketEnv)
	case errors.Is(dialErr, fs.ErrPermission):
		return fmt.Errorf("wingmand is not reachable: permission denied on %s; run as root or as a member of group wingman (usermod -aG wingman $USER, then log in again)", path)
	case errors.Is(dialErr, syscall.ECONNREFUSED):
		return fmt.Errorf("wingmand is not reachable: nothing listens on %s (a stale socket); start the daemon (systemctl start wingmand)", path)
	case errors.Is(dialErr, syscall.ENOTSOCK):
		return fmt.Errorf("wingmand is not reachable: %s is not a socket; name wingmand's socket with -c/--connect or %s", path, socketEnv)
	}
	return orig
}

// remoteError renders an error from the daemon as "error" plus a "hint:"
// line, so the hint stands out.
type remoteError struct{ re *api.RemoteError }

func (e remoteError) Error() string {
	msg := e.re.Err.Error
	if e.re.Err.Hint != "" {
		msg += "\nhint: " + e.re.Err.Hint
	}
	return msg
}
func (e remoteError) Unwrap() error { return e.re }

// daemonErr explains a failed request about the object named name of kind
// "VM" or "host": a 404 becomes "no VM named X" with where to look; other
// errors from the daemon keep its message and hint.
func daemonErr(err error, kind, name string) error {
	if err == nil {
		return nil
	}
	if api.IsNotFound(err) && kind != "" {
		return notFoundErr(kind, name)
	}
	var re *api.RemoteError
	if errors.As(err, &re) {
		return remoteError{re}
	}
	return err
}

func notFoundErr(kind, name string) error {
	if kind == "host" {
		return fmt.Errorf("no host named %s; see 'wingman host-list'", name)
	}
	return fmt.Errorf("no %s named %s; see 'wingman list --all'", kind, name)
}

// progress tells the user that a blocking request is under way: a spinner
// with the elapsed time on a terminal, one line otherwise. stop ends it.
func progress(s stdio, msg string) (stop func()) {
	if !s.errTerminal {
		fmt.Fprintf(s.errOut, "%s ...\n", msg)
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		frames := `|/-\`
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(s.errOut, "\r%c %s (%s)", frames[i%len(frames)], msg, humanDuration(time.Since(start).Truncate(time.Second)))
			select {
			case <-done:
				fmt.Fprint(s.errOut, "\r\033[K")
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

package api

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCallerIsThePeerOfTheSocket: on the unix socket, Caller names the
// user the kernel reports for the connection, not anything the client says.
func TestCallerIsThePeerOfTheSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, Caller(r)) }))
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	req, _ := http.NewRequest(http.MethodGet, "http://wingman/", nil)
	req.Header.Set("X-Remote-User", "mallory")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := "(uid " + strconv.Itoa(os.Getuid()) + ")"; !strings.HasPrefix(string(b), "user ") || !strings.Contains(string(b), want) {
		t.Errorf("Caller = %q, want user ... %s", b, want)
	}
}

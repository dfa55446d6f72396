// Package notifytest runs real receivers of notifications for tests: a
// mail server (go-smtp, plain SMTP without authentication) and a webhook
// receiver (net/http), each on a listener the test gives, so a test can
// put them where its hosts reach them (loopback, or the test cluster's
// network). They keep what they receive.
//
// It is for tests only: production code must never import it.
package notifytest

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// box keeps what a receiver got, in order.
type box struct {
	mu  sync.Mutex
	got []string
}

func (b *box) add(s string) {
	b.mu.Lock()
	b.got = append(b.got, s)
	b.mu.Unlock()
}

// Received returns what was received so far, oldest first.
func (b *box) Received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

// Inbox is a mail server; Received returns each message's header and body.
type Inbox struct {
	box
	Addr string // host:port
}

type session struct{ in *Inbox }

func (s session) Mail(string, *smtp.MailOptions) error { return nil }
func (s session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s session) Reset()                               {}
func (s session) Logout() error                        { return nil }
func (s session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.in.add(string(b))
	return err
}

// ServeMail serves SMTP on l until the test ends.
func ServeMail(t testing.TB, l net.Listener) *Inbox {
	in := &Inbox{Addr: l.Addr().String()}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return session{in}, nil }))
	srv.Domain, srv.ReadTimeout, srv.WriteTimeout = "mx.test", 10*time.Second, 10*time.Second
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return in
}

// Hooks is a webhook receiver; Received returns each request's body.
type Hooks struct {
	box
	URL string
}

// ServeHooks answers every POST on l with status until the test ends.
func ServeHooks(t testing.TB, l net.Listener, status int) *Hooks {
	h := &Hooks{URL: "http://" + l.Addr().String() + "/wingman"}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.add(string(b))
		w.WriteHeader(status)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return h
}

// Loopback listens on a free port of 127.0.0.1.
func Loopback(t testing.TB) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

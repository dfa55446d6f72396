package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/wingmanha/wingman/storage"
)

// selfSigned makes a certificate for 127.0.0.1 and a client config that
// trusts only it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wingman test smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

// mailbox is a real SMTP server (go-smtp) on loopback that offers
// STARTTLS and AUTH PLAIN and keeps what it receives.
type mailbox struct {
	mu    sync.Mutex
	mails []receivedMail
	addr  string
}

type receivedMail struct {
	From   string
	To     []string
	Data   string
	TLS    bool
	AuthAs string
}

type smtpSession struct {
	mb   *mailbox
	conn *smtp.Conn
	cur  receivedMail
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != "wingman" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		s.cur.AuthAs = user
		return nil
	}), nil
}
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error { s.cur.From = from; return nil }
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.cur.TLS = s.conn.TLSConnectionState()
	s.cur.Data = string(b)
	s.mb.mu.Lock()
	s.mb.mails = append(s.mb.mails, s.cur)
	s.mb.mu.Unlock()
	return nil
}
func (s *smtpSession) Reset()        { s.cur = receivedMail{AuthAs: s.cur.AuthAs} }
func (s *smtpSession) Logout() error { return nil }

func startSMTP(t *testing.T, tlsConf *tls.Config) *mailbox {
	t.Helper()
	mb := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{mb: mb, conn: c}, nil
	}))
	srv.Domain, srv.TLSConfig = "mx.test", tlsConf
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return mb
}

func (mb *mailbox) received() []receivedMail {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]receivedMail(nil), mb.mails...)
}

func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sampleNotification() Notification {
	inc := Incident{ID: "inc-0123456789abcdef01234567", HostID: 1, Host: "kvm1", Lost: base, Declared: base.Add(12 * time.Second),
		How: DeclaredHeartbeat, Reason: "heartbeat unchanged for 12s", Settled: true, SettledAt: base.Add(14 * time.Second),
		Severity: storage.SevWarning, VMs: []VMOutcome{{UUID: vmID("web"), Name: "web", State: VMStarted, Host: "kvm2",
			At: base.Add(14 * time.Second), Took: 2 * time.Second}}}
	return ForIncident(inc, KindIncident, "lab", "kvm2")
}

// results collects what a Sender reports, and signals each final one.
type results struct {
	mu    sync.Mutex
	all   []Result
	final chan Result
}

func newResults() *results { return &results{final: make(chan Result, 100)} }

func (r *results) on(res Result) {
	r.mu.Lock()
	r.all = append(r.all, res)
	r.mu.Unlock()
	if res.Final {
		r.final <- res
	}
}

func (r *results) wait(t *testing.T) Result {
	t.Helper()
	select {
	case res := <-r.final:
		return res
	case <-time.After(30 * time.Second):
		t.Fatal("no final delivery result within 30s")
	}
	return Result{}
}

func (r *results) attempts(target string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, res := range r.all {
		if res.Target == target && res.Attempt > 0 {
			n++
		}
	}
	return n
}

func testSender(t *testing.T, r *results, tlsConf *tls.Config) *Sender {
	t.Helper()
	s, err := NewSender(Config{Attempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, TLS: tlsConf, OnResult: r.on})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestMailOverSTARTTLSWithAuth(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	mb := startSMTP(t, serverTLS)
	r := newResults()
	s := testSender(t, r, clientTLS)
	target := storage.NotifyTarget{Name: "ops", Kind: TargetMail, Address: mb.addr, From: "Wingman <wingman@lab.test>",
		To: []string{"ops@lab.test", "oncall@lab.test"}, User: "wingman", SecretFile: secretFile(t, "s3cret")}
	if err := Validate(target); err != nil {
		t.Fatal(err)
	}
	n := sampleNotification()
	if err := s.Send([]storage.NotifyTarget{target}, n); err != nil {
		t.Fatal(err)
	}
	if res := r.wait(t); res.Err != nil {
		t.Fatalf("mail: %v", res.Err)
	}
	mails := mb.received()
	if len(mails) != 1 {
		t.Fatalf("%d mails received, want 1", len(mails))
	}
	m := mails[0]
	if !m.TLS || m.AuthAs != "wingman" || m.From != "wingman@lab.test" || strings.Join(m.To, ",") != "ops@lab.test,oncall@lab.test" {
		t.Fatalf("mail envelope %+v: want TLS, authenticated, from wingman@lab.test to both", m)
	}
	for _, want := range []string{"Message-ID: <" + n.ID + "@lab.wingman>", "Subject: [lab] host kvm1 lost: 1 of 1 VMs restarted",
		"web                  started on kvm2", "X-Wingman-Kind: incident"} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("mail lacks %q:\n%s", want, m.Data)
		}
	}
}

func TestMailRefusesPasswordInClear(t *testing.T) {
	mb := startSMTP(t, nil) // no STARTTLS offered
	r := newResults()
	s := testSender(t, r, nil)
	target := storage.NotifyTarget{Name: "ops", Kind: TargetMail, Address: mb.addr, From: "wingman@lab.test",
		To: []string{"ops@lab.test"}, User: "wingman", SecretFile: secretFile(t, "s3cret")}
	s.Send([]storage.NotifyTarget{target}, sampleNotification())
	res := r.wait(t)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "clear text") || res.Attempt != 3 {
		t.Fatalf("got %+v, want a refusal to send the password in clear text after 3 attempts", res)
	}
	if len(mb.received()) != 0 {
		t.Fatal("a mail went out without TLS")
	}
}

func TestMailUnreachableServerIsRetriedAndReported(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r := newResults()
	s := testSender(t, r, nil)
	s.Send([]storage.NotifyTarget{{Name: "ops", Kind: TargetMail, Address: addr, From: "w@lab.test", To: []string{"o@lab.test"}}}, sampleNotification())
	res := r.wait(t)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "gave up after 3 attempts") || r.attempts("ops") != 3 {
		t.Fatalf("got %+v after %d attempts, want 3 failed attempts", res, r.attempts("ops"))
	}
}

func TestWebhookSignedJSON(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		got.Store([]string{req.Header.Get(SignatureHeader), req.Header.Get("Content-Type"), req.Header.Get("X-Wingman-Id"), string(body)})
	}))
	defer srv.Close()
	r := newResults()
	s := testSender(t, r, nil)
	target := storage.NotifyTarget{Name: "hook", Kind: TargetWebhook, Address: srv.URL + "/wingman", SecretFile: secretFile(t, "k3y")}
	if err := Validate(target); err != nil {
		t.Fatal(err)
	}
	n := sampleNotification()
	s.Send([]storage.NotifyTarget{target}, n)
	if res := r.wait(t); res.Err != nil {
		t.Fatal(res.Err)
	}
	h := got.Load().([]string)
	if h[0] != Sign([]byte("k3y"), []byte(h[3])) || !strings.HasPrefix(h[0], "sha256=") || h[1] != "application/json" || h[2] != n.ID {
		t.Fatalf("headers %q", h[:3])
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(h[3]), &body); err != nil {
		t.Fatal(err)
	}
	inc := body["incident"].(map[string]any)
	vms := inc["vms"].([]any)
	if body["schema"] != Schema || body["id"] != n.ID || body["kind"] != "incident" || inc["host"] != "kvm1" ||
		len(vms) != 1 || vms[0].(map[string]any)["host"] != "kvm2" {
		t.Fatalf("body %s", h[3])
	}
}

// A webhook that answers 500 is retried with backoff and reported; one
// that hangs is cut at its timeout; neither delays another target.
func TestWebhookFailuresDelayNothingElse(t *testing.T) {
	var fails atomic.Int32
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fails.Add(1)
		http.Error(w, "database down", http.StatusInternalServerError)
	}))
	defer failing.Close()
	hanging := hangingServer(t)
	var okAt atomic.Int64
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { okAt.Store(time.Now().UnixNano()) }))
	defer ok.Close()

	r := newResults()
	s := testSender(t, r, nil)
	start := time.Now()
	targets := []storage.NotifyTarget{
		{Name: "hanging", Kind: TargetWebhook, Address: hanging.URL, Timeout: 2 * time.Second},
		{Name: "failing", Kind: TargetWebhook, Address: failing.URL},
		{Name: "ok", Kind: TargetWebhook, Address: ok.URL},
	}
	if err := s.Send(targets, sampleNotification()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("Send took %v: it must not wait for any target", took)
	}
	byTarget := map[string]Result{}
	for range 3 {
		res := r.wait(t)
		byTarget[res.Target] = res
	}
	if res := byTarget["ok"]; res.Err != nil || okAt.Load() == 0 || time.Unix(0, okAt.Load()).Sub(start) > time.Second {
		t.Fatalf("the good webhook: %+v, delivered %v after Send", res, time.Unix(0, okAt.Load()).Sub(start))
	}
	if res := byTarget["failing"]; res.Err == nil || !strings.Contains(res.Err.Error(), "500") || fails.Load() != 3 {
		t.Fatalf("the failing webhook: %+v after %d requests, want 3 attempts ending in its 500", res, fails.Load())
	}
	if res := byTarget["hanging"]; res.Err == nil || !errors.Is(res.Err, context.DeadlineExceeded) || res.Attempt != 3 {
		t.Fatalf("the hanging webhook: %+v, want 3 attempts cut at their timeout", res)
	}
}

// hangingServer is a webhook receiver that never answers until the
// request is cancelled or the test ends.
func hangingServer(t *testing.T) *httptest.Server {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv
}

func writeHook(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecHook(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	hook := writeHook(t, `cat > "`+out+`.json"; env | grep '^WINGMAN_' | sort > "`+out+`.env"`)
	target := storage.NotifyTarget{Name: "page", Kind: TargetExec, Address: hook}
	if err := Validate(target); err != nil {
		t.Fatal(err)
	}
	r := newResults()
	s := testSender(t, r, nil)
	n := sampleNotification()
	s.Send([]storage.NotifyTarget{target}, n)
	if res := r.wait(t); res.Err != nil {
		t.Fatal(res.Err)
	}
	body, _ := os.ReadFile(out + ".json")
	var got Notification
	if err := json.Unmarshal(body, &got); err != nil || got.ID != n.ID || got.Incident.Host != "kvm1" {
		t.Fatalf("stdin %s: %v", body, err)
	}
	env, _ := os.ReadFile(out + ".env")
	for _, want := range []string{"WINGMAN_ID=" + n.ID, "WINGMAN_KIND=incident", "WINGMAN_HOST=kvm1", "WINGMAN_SEVERITY=warning", "WINGMAN_CLUSTER=lab"} {
		if !strings.Contains(string(env), want+"\n") {
			t.Errorf("environment lacks %s:\n%s", want, env)
		}
	}
}

func TestExecHookFailures(t *testing.T) {
	failing := writeHook(t, "echo 'pager API down' >&2; exit 1\n")
	pidFile := filepath.Join(t.TempDir(), "pid")
	stuck := writeHook(t, "echo $$ > "+pidFile+"; sleep 600 & wait\n")
	r := newResults()
	s := testSender(t, r, nil)
	start := time.Now()
	s.Send([]storage.NotifyTarget{{Name: "failing", Kind: TargetExec, Address: failing},
		{Name: "stuck", Kind: TargetExec, Address: stuck, Timeout: 300 * time.Millisecond}}, sampleNotification())
	byTarget := map[string]Result{}
	for range 2 {
		res := r.wait(t)
		byTarget[res.Target] = res
	}
	if res := byTarget["failing"]; res.Err == nil || !strings.Contains(res.Err.Error(), "exited with 1") ||
		!strings.Contains(res.Err.Error(), "pager API down") || res.Attempt != 3 {
		t.Fatalf("failing hook: %+v", res)
	}
	if res := byTarget["stuck"]; res.Err == nil || !strings.Contains(res.Err.Error(), "killed after") || res.Attempt != 3 {
		t.Fatalf("stuck hook: %+v", res)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("three 300ms attempts took %v", took)
	}
	// The hook's whole process group is gone, the sleep it started too
	// (what is left may be a zombie until init reaps it: not counted).
	b, _ := os.ReadFile(pidFile)
	pgid := strings.TrimSpace(string(b))
	if out, _ := osexec.Command("pgrep", "-g", pgid, "-r", "R,S,D,T").Output(); strings.TrimSpace(string(out)) != "" {
		t.Fatalf("processes of the killed hook's group %s remain: %s", pgid, out)
	}
}

func TestQueueBoundedAndClosed(t *testing.T) {
	hanging := hangingServer(t)
	r := newResults()
	s, err := NewSender(Config{QueueSize: 2, Attempts: 1, Backoff: time.Millisecond, OnResult: r.on})
	if err != nil {
		t.Fatal(err)
	}
	target := []storage.NotifyTarget{{Name: "hanging", Kind: TargetWebhook, Address: hanging.URL, Timeout: time.Minute}}
	var errs int
	for range 10 {
		if err := s.Send(target, sampleNotification()); errors.Is(err, ErrQueueFull) {
			errs++
		}
	}
	// One in flight, two queued: the other seven were refused at once.
	if errs < 6 {
		t.Fatalf("%d of 10 sends refused with a queue of 2, want at least 6", errs)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not cancel the hanging delivery")
	}
	if err := s.Send(target, sampleNotification()); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestValidate(t *testing.T) {
	secret := secretFile(t, "x")
	hook := writeHook(t, "exit 0\n")
	notExec := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(notExec, []byte("x"), 0o644)
	mail := storage.NotifyTarget{Name: "ops", Kind: TargetMail, Address: "smtp.lab.test:587", From: "w@lab.test", To: []string{"o@lab.test"}}
	with := func(f func(*storage.NotifyTarget)) storage.NotifyTarget { t := mail; f(&t); return t }
	for _, c := range []struct {
		t    storage.NotifyTarget
		want string
	}{
		{mail, ""},
		{with(func(t *storage.NotifyTarget) { t.Kind = "pager" }), `unknown kind "pager"`},
		{with(func(t *storage.NotifyTarget) { t.Address = "smtp.lab.test" }), "give host:port"},
		{with(func(t *storage.NotifyTarget) { t.To = []string{"not an address"} }), "is not a mail address"},
		{with(func(t *storage.NotifyTarget) { t.To = nil }), "no recipient"},
		{with(func(t *storage.NotifyTarget) { t.User = "w" }), "needs a password file"},
		{with(func(t *storage.NotifyTarget) { t.User, t.SecretFile = "w", "/nonexistent/pass" }), "create it on every host"},
		{with(func(t *storage.NotifyTarget) { t.User, t.SecretFile = "w", secret }), ""},
		{with(func(t *storage.NotifyTarget) { t.Kinds = []string{"reboot"} }), `event kind "reboot"`},
		{with(func(t *storage.NotifyTarget) { t.Name = "a b" }), "name must be"},
		{storage.NotifyTarget{Name: "w", Kind: TargetWebhook, Address: "ftp://x"}, "absolute http:// or https:// URL"},
		{storage.NotifyTarget{Name: "w", Kind: TargetWebhook, Address: "https://u:p@chat.lab.test/hook"}, "carries credentials"},
		{storage.NotifyTarget{Name: "w", Kind: TargetWebhook, Address: "https://chat.lab.test/hook", SecretFile: secret}, ""},
		{storage.NotifyTarget{Name: "x", Kind: TargetExec, Address: "page.sh"}, "absolute path"},
		{storage.NotifyTarget{Name: "x", Kind: TargetExec, Address: "/nonexistent/page"}, "install it on every host"},
		{storage.NotifyTarget{Name: "x", Kind: TargetExec, Address: notExec}, "chmod +x"},
		{storage.NotifyTarget{Name: "x", Kind: TargetExec, Address: hook}, ""},
	} {
		err := Validate(c.t)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.t, err)
		case c.want != "" && (err == nil || !errors.Is(err, ErrInvalidTarget) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: got %v, want an ErrInvalidTarget saying %q", c.t, err, c.want)
		}
	}
}

func TestRules(t *testing.T) {
	n := sampleNotification() // warning, about kvm1
	res := ForIncident(Incident{ID: "inc-1", Host: "kvm1", Resolved: true, Severity: storage.SevWarning}, KindResolved, "lab", "kvm2")
	for _, c := range []struct {
		t    storage.NotifyTarget
		n    Notification
		want bool
	}{
		{storage.NotifyTarget{}, n, true},
		{storage.NotifyTarget{MinSeverity: storage.SevError}, n, false},
		{storage.NotifyTarget{MinSeverity: storage.SevError}, res, true},
		{storage.NotifyTarget{Kinds: []string{KindResolved}}, n, false},
		{storage.NotifyTarget{Hosts: []string{"kvm2"}}, n, false},
		{storage.NotifyTarget{Hosts: []string{"kvm2", "kvm1"}}, n, true},
		{storage.NotifyTarget{Hosts: []string{"kvm2"}, MinSeverity: storage.SevError}, TestNotification("lab", "kvm2", "t-1", base), true},
	} {
		if got := Wants(c.t, c.n); got != c.want {
			t.Errorf("target %+v, %s about %s (%v): got %v", c.t, c.n.Kind, c.n.HostName(), c.n.SeverityLevel(), got)
		}
	}
}

func TestAddRemoveTargetAndTestMessage(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("X-Wingman-Kind") == KindTest {
			got.Add(1)
		}
	}))
	defer srv.Close()
	var s storage.ClusterSettings
	hook := storage.NotifyTarget{Name: "chat", Kind: TargetWebhook, Address: srv.URL}
	if err := AddTarget(&s, hook); err != nil {
		t.Fatal(err)
	}
	if err := AddTarget(&s, hook); !errors.Is(err, ErrInvalidTarget) || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("second target of the same name: %v", err)
	}
	if err := AddTarget(&s, storage.NotifyTarget{Name: "bad", Kind: "pager"}); !errors.Is(err, ErrInvalidTarget) || len(s.Targets) != 1 {
		t.Fatalf("invalid target: %v, targets %d", err, len(s.Targets))
	}
	if err := DeliverNow(context.Background(), s.Targets[0], TestNotification("lab", "kvm1", "test-1", time.Now()), nil); err != nil || got.Load() != 1 {
		t.Fatalf("test message: %v, received %d", err, got.Load())
	}
	if err := RemoveTarget(&s, "nope"); !errors.Is(err, ErrNoTarget) || !strings.Contains(err.Error(), "chat") {
		t.Fatalf("removing an unknown target: %v", err)
	}
	if err := RemoveTarget(&s, "chat"); err != nil || len(s.Targets) != 0 {
		t.Fatalf("remove: %v, left %d", err, len(s.Targets))
	}
}

// At most RateBurst sends per target per RateWindow: the next one waits
// until the oldest leaves the window (fake time: testing/synctest).
func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := NewSender(Config{RateBurst: 2, RateWindow: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		w := &worker{}
		start := time.Now()
		s.waitRate(w)
		time.Sleep(10 * time.Second)
		s.waitRate(w)
		if d := time.Since(start); d != 10*time.Second {
			t.Fatalf("two sends within the burst waited until %v", d)
		}
		s.waitRate(w) // the third waits for the first to leave the window
		if d := time.Since(start); d != time.Minute {
			t.Fatalf("the third send went at %v, want 1m", d)
		}
		s.waitRate(w) // the fourth waits for the second
		if d := time.Since(start); d != time.Minute+10*time.Second {
			t.Fatalf("the fourth send went at %v, want 1m10s", d)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{
		{QueueSize: 0, Attempts: 1, Backoff: 1, MaxBackoff: 1, RateBurst: 1, RateWindow: 1},
		{QueueSize: 1, Attempts: 0, Backoff: 1, MaxBackoff: 1, RateBurst: 1, RateWindow: 1},
		{QueueSize: 1, Attempts: 1, Backoff: 2, MaxBackoff: 1, RateBurst: 1, RateWindow: 1},
		{QueueSize: 1, Attempts: 1, Backoff: 1, MaxBackoff: 1, RateBurst: 0, RateWindow: 1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := NewSender(Config{Attempts: -1}); err == nil {
		t.Error("NewSender accepted -1 attempts")
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// received keeps what the harness's mail server and webhook receiver got.
type received struct {
	mu    sync.Mutex
	mails []string
	hooks []string
}

func (r *received) add(list *[]string, s string) {
	r.mu.Lock()
	*list = append(*list, s)
	r.mu.Unlock()
}

func (r *received) get() (mails, hooks []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.mails...), append([]string(nil), r.hooks...)
}

type mailSession struct{ r *received }

func (s mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s mailSession) Reset()                               {}
func (s mailSession) Logout() error                        { return nil }
func (s mailSession) Data(in io.Reader) error {
	b, err := io.ReadAll(in)
	s.r.add(&s.r.mails, string(b))
	return err
}

// notifyReceivers starts a go-smtp server and a webhook receiver in this process, listening in
// the test network's switch, where every host reaches them, and returns their addresses.
func notifyReceivers(t *testing.T, e *Env, r *received) (smtpAddr, hookURL string) {
	t.Helper()
	ml, err := e.C.ListenSwitch(0)
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return mailSession{r}, nil }))
	srv.Domain, srv.ReadTimeout, srv.WriteTimeout = "mx.test", 10*time.Second, 10*time.Second
	go srv.Serve(ml)
	t.Cleanup(func() { srv.Close() })
	hl, err := e.C.ListenSwitch(0)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.add(&r.hooks, string(b))
	}))
	hs.Listener.Close()
	hs.Listener = hl
	hs.Start()
	t.Cleanup(hs.Close)
	return ml.Addr().String(), "http://" + hl.Addr().String() + "/wingman"
}

// TestNotifyFailover: a host loses power; the coordinator sends one mail and one webhook naming
// every VM of the lost host and where it runs now. A wingmand restart on the coordinator sends
// nothing again; when the lost host returns it becomes the coordinator and one "resolved" goes
// out, the incident not again.
func TestNotifyFailover(t *testing.T) {
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 2, Policy{Priority: "high"}, "nf")
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	var r received
	smtpAddr, hookURL := notifyReceivers(t, e, &r)
	for _, tg := range []NotifyTarget{
		{Name: "ops", Kind: "mail", Address: smtpAddr, From: "wingman@lab.example", To: []string{"ops@lab.example"}, Kinds: []string{"incident", "resolved"}},
		{Name: "chat", Kind: "webhook", Address: hookURL, Kinds: []string{"incident", "resolved"}},
	} {
		if _, err := e.Client(h3).AddNotifyTarget(ctx, tg); err != nil {
			t.Fatal(err)
		}
	}
	// The path works from the host that will coordinate.
	if res, err := e.Client(h2).NotifyTest(ctx, ""); err != nil || len(res) != 2 || !res[0].OK || !res[1].OK {
		t.Fatalf("test notification from %s: %+v, %v", h2.Name(), res, err)
	}
	r.mu.Lock()
	r.mails, r.hooks = nil, nil
	r.mu.Unlock()

	if err := e.PowerOff(h1); err != nil {
		t.Fatal(err)
	}
	placement, err := e.WaitRunningOnce(ctx, 90*time.Second, guests, h1)
	if err != nil {
		t.Fatal(err)
	}
	want := func(n int) func() (bool, error) {
		return func() (bool, error) { m, h := r.get(); return len(m) >= n && len(h) >= n, nil }
	}
	if err := Poll(ctx, 60*time.Second, 200*time.Millisecond, want(1)); err != nil {
		t.Fatalf("no mail and webhook after the failover: %v", err)
	}
	mails, hooks := r.get()
	t.Logf("mail:\n%s", mails[0])
	var body struct {
		Kind, Sender string
		Incident     struct {
			Host string
			VMs  []struct{ Name, State, Host string }
		}
	}
	if err := json.Unmarshal([]byte(hooks[0]), &body); err != nil {
		t.Fatalf("webhook %s: %v", hooks[0], err)
	}
	if body.Kind != "incident" || body.Incident.Host != h1.Name() || len(body.Incident.VMs) != len(guests) {
		t.Errorf("webhook: %s", hooks[0])
	}
	for _, g := range guests {
		on := placement[g.UUID][0]
		if !regexp.MustCompile(regexp.QuoteMeta(g.Name) + `\s+started on ` + on + ` `).MatchString(mails[0]) {
			t.Errorf("the mail does not say %s started on %s", g.Name, on)
		}
		found := false
		for _, v := range body.Incident.VMs {
			found = found || v.Name == g.Name && v.State == "started" && v.Host == on
		}
		if !found {
			t.Errorf("the webhook does not say %s started on %s: %+v", g.Name, on, body.Incident.VMs)
		}
	}

	// The coordinator's wingmand restarts: it finds its claim in the ledger.
	st, err := e.Client(h3).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	coord := e.Host(hostName(st, st.Coordinator))
	if err := e.C.KillWingmand(coord); err != nil {
		t.Fatal(err)
	}
	if err := e.C.StartWingmand(ctx, coord, e.WingmandOptions()); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitHealthy(ctx, h2, h3); err != nil {
		t.Fatal(err)
	}
	observe(12 * time.Second) // two rounds of the notifications (every 5 s)
	if m, h := r.get(); len(m) != 1 || len(h) != 1 {
		t.Fatalf("after a restart of %s's wingmand: %d mails and %d webhooks, want 1 each", coord.Name(), len(m), len(h))
	}

	// The lost host returns: it coordinates again (the lowest id), and one "resolved" goes out.
	if err := e.PowerOnAndRejoin(ctx, h1); err != nil {
		t.Fatal(err)
	}
	if err := Poll(ctx, 60*time.Second, 200*time.Millisecond, want(2)); err != nil {
		t.Fatalf("no resolved message: %v", err)
	}
	observe(12 * time.Second)
	mails, hooks = r.get()
	if len(mails) != 2 || len(hooks) != 2 || !strings.Contains(mails[1], "X-Wingman-Kind: resolved") || !strings.Contains(hooks[1], `"kind":"resolved"`) {
		t.Fatalf("after %s returned: %d mails, %d webhooks, want the incident and one resolved each:\n%s", h1.Name(), len(mails), len(hooks),
			strings.Join(append(mails, hooks...), "\n----\n"))
	}
	if st, err := e.Client(h1).Status(ctx); err != nil || st.Coordinator != st.HostID {
		t.Logf("coordinator after the return: %d (host %d), %v", st.Coordinator, st.HostID, err)
	}
	evs, err := e.Client(h1).Events(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var sent []string
	for _, ev := range evs {
		if strings.HasPrefix(ev.Kind, "notify-") {
			sent = append(sent, fmt.Sprintf("%s %s: %s", ev.HostName, ev.Kind, ev.Message))
		}
	}
	t.Logf("notification events:\n%s", strings.Join(sent, "\n"))
}

// hostName is the name of host id in st.
func hostName(st Status, id int) string {
	for _, h := range st.Hosts {
		if h.ID == id {
			return h.Name
		}
	}
	return ""
}

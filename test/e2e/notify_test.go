package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/vm/notify/notifytest"
)

// notifyReceivers starts a mail server and a webhook receiver in this process, listening in the
// test network's switch, where every host reaches them.
func notifyReceivers(t *testing.T, e *Env) (*notifytest.Inbox, *notifytest.Hooks) {
	t.Helper()
	var ls [2]net.Listener
	for i := range ls {
		l, err := e.C.ListenSwitch(0)
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
	}
	return notifytest.ServeMail(t, ls[0]), notifytest.ServeHooks(t, ls[1], http.StatusOK)
}

// TestNotifyFailover: a host loses power; the coordinator sends one mail and one webhook naming
// every VM of the lost host and where it runs now. A wingmand restart on the coordinator sends
// nothing again; when the lost host returns it becomes the coordinator and one "resolved" goes
// out, the incident not again.
func TestNotifyFailover(t *testing.T) {
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 2, Policy{Priority: "high"}, "nf")
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	inbox, hook := notifyReceivers(t, e)
	for _, tg := range []NotifyTarget{
		{Name: "ops", Kind: "mail", Address: inbox.Addr, From: "wingman@lab.example", To: []string{"ops@lab.example"}, Kinds: []string{"incident", "resolved"}},
		{Name: "chat", Kind: "webhook", Address: hook.URL, Kinds: []string{"incident", "resolved"}},
	} {
		if _, err := e.Client(h3).AddNotifyTarget(ctx, tg); err != nil {
			t.Fatal(err)
		}
	}
	// The path works from the host that will coordinate.
	if res, err := e.Client(h2).NotifyTest(ctx, ""); err != nil || len(res) != 2 || !res[0].OK || !res[1].OK {
		t.Fatalf("test notification from %s: %+v, %v", h2.Name(), res, err)
	}
	tm, th := len(inbox.Received()), len(hook.Received()) // the test messages
	get := func() ([]string, []string) { return inbox.Received()[tm:], hook.Received()[th:] }

	if err := e.PowerOff(h1); err != nil {
		t.Fatal(err)
	}
	placement, err := e.WaitRunningOnce(ctx, 90*time.Second, guests, h1)
	if err != nil {
		t.Fatal(err)
	}
	want := func(n int) func() (bool, error) {
		return func() (bool, error) { m, h := get(); return len(m) >= n && len(h) >= n, nil }
	}
	if err := Poll(ctx, 60*time.Second, 200*time.Millisecond, want(1)); err != nil {
		t.Fatalf("no mail and webhook after the failover: %v", err)
	}
	mails, hooks := get()
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
	if m, h := get(); len(m) != 1 || len(h) != 1 {
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
	mails, hooks = get()
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

package notify

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

// cluster is a fixed decision: host 2 of kvm1..kvm3, coordinator as given.
type cluster struct{ coordinator int }

func (c cluster) Decision() quorum.Decision {
	return quorum.Decision{Quorate: true, Coordinator: c.coordinator,
		Hosts: []quorum.Host{{ID: 1, Name: "kvm1"}, {ID: 2, Name: "kvm2"}, {ID: 3, Name: "kvm3"}}}
}

// ring writes the service's events to host 2's real ring on the LUN, as
// wingmand does, and passes each on.
type ring struct {
	log *storage.EventLog
	evs chan storage.Event
}

func (r ring) Event(sev storage.Severity, kind string, vm storage.UUID, subject int, format string, a ...any) {
	e, err := r.log.Append(context.Background(), storage.Event{Severity: sev, Kind: kind, VM: vm, Subject: subject, Message: trim(format, a...)})
	if err == nil {
		r.evs <- e
	}
}

func trim(format string, a ...any) string {
	msg := strings.TrimSpace(strings.ReplaceAll(fmt.Sprintf(format, a...), "\n", " "))
	if len(msg) > 175 {
		msg = msg[:172] + "..."
	}
	return msg
}

// serviceOn starts a Service of host 2 on a fresh LUN whose rings hold a
// settled failover of kvm1 (its VM web started on kvm2).
func serviceOn(t *testing.T, coordinator int) (*Service, *storage.LUN, ring) {
	t.Helper()
	ctx := context.Background()
	lun, err := storage.OpenPath(ctx, testLUN(t), storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lun.Close() })
	log2, err := lun.EventLog(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []storage.Event{{Kind: "suspected", Subject: 1}, {Kind: "declared-dead", Subject: 1, Message: "heartbeat unchanged for 12s"},
		{Kind: "planned", VM: vmID("web")}, {Kind: "lease-acquired", VM: vmID("web")}, {Kind: "started", VM: vmID("web")}} {
		if _, err := log2.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	rep := ring{log: log2, evs: make(chan storage.Event, 100)}
	s, err := NewService(ServiceConfig{Cluster: "lab", HostName: "kvm2", HostID: 2, TestTimeout: time.Second,
		Sender: Config{Attempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}},
		storage.NewClusterRecords(lun), lun, cluster{coordinator}, rep, func(context.Context, bool) []Check { return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.sender.Close)
	return s, lun, rep
}

// signal is a webhook receiver that passes each body on.
func signal(t *testing.T, status int) (*httptest.Server, chan string) {
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 64<<10)
		n, _ := r.Body.Read(b)
		w.WriteHeader(status)
		got <- string(b[:n])
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// The coordinator's round sends the failover once to every target: the
// good ones get it at once while the broken ones (unreachable SMTP, a
// webhook answering 500 or hanging, a hook exiting 1 or never) are each
// retried, then reported as an event on the LUN and in the counts.
func TestServiceSendsOnceAndReportsEveryFailure(t *testing.T) {
	s, lun, rep := serviceOn(t, 2)
	ctx := context.Background()
	mb := startSMTP(t, nil)
	hook, hooked := signal(t, http.StatusOK)
	broken, _ := signal(t, http.StatusInternalServerError)
	hanging := hangingServer(t)
	const hang = 2 * time.Second
	targets := []storage.NotifyTarget{
		{Name: "ops-mail", Kind: TargetMail, Address: mb.addr, From: "wingman@lab.example", To: []string{"ops@lab.example"}},
		{Name: "chat", Kind: TargetWebhook, Address: hook.URL},
		{Name: "no-smtp", Kind: TargetMail, Address: closedPort(t), From: "wingman@lab.example", To: []string{"ops@lab.example"}},
		{Name: "http-500", Kind: TargetWebhook, Address: broken.URL},
		{Name: "http-hang", Kind: TargetWebhook, Address: hanging.URL, Timeout: hang},
		{Name: "exit-1", Kind: TargetExec, Address: writeHook(t, "echo 'pager API down' >&2; exit 1\n")},
		{Name: "never-exits", Kind: TargetExec, Address: writeHook(t, "sleep 600 & wait\n"), Timeout: hang},
	}
	for _, tg := range targets {
		if err := s.AddTarget(ctx, tg); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	sent, err := s.IncidentRound(ctx, time.Now().Add(SettleQuiet)) // as a round a few seconds later
	if err != nil || len(sent) != 1 || sent[0].Kind != KindIncident || !strings.Contains(sent[0].Text, "started on kvm2") {
		t.Fatalf("round sent %+v, %v; want the incident of kvm1", sent, err)
	}
	select {
	case body := <-hooked:
		if !strings.Contains(body, `"host":"kvm1"`) || !strings.Contains(body, `"state":"started"`) {
			t.Fatalf("webhook body %s", body)
		}
	case <-time.After(hang):
		t.Fatal("the webhook waited for the hanging targets")
	}
	for len(mb.received()) == 0 && time.Since(start) < hang {
		time.Sleep(10 * time.Millisecond)
	}
	if m := mb.received(); len(m) != 1 || !strings.Contains(m[0].Data, "Subject: [lab] host kvm1 lost: 1 of 1 VMs restarted") {
		t.Fatalf("mail within %v: %+v", hang, m)
	}

	// Each broken target: three attempts, two "retrying" events, one "not delivered".
	failed := map[string]int{}
	for gaveUp := 0; gaveUp < 5; {
		select {
		case e := <-rep.evs:
			if e.Kind == "notify-failed" {
				for _, tg := range targets[2:] {
					if strings.Contains(e.Message, "to target "+tg.Name+" ") {
						failed[tg.Name]++
					}
				}
				if e.Severity == storage.SevError {
					gaveUp++
				}
			}
		case <-time.After(time.Minute):
			t.Fatalf("not every broken target was reported: %v", failed)
		}
	}
	counts := s.Counts()
	for _, tg := range targets[2:] {
		if c := counts[tg.Name]; failed[tg.Name] != 3 || c.Failed != 3 || c.GaveUp != 1 || c.Retries != 2 || c.Sent != 0 {
			t.Errorf("%s: %d events, counts %+v; want 3 failed attempts, given up once", tg.Name, failed[tg.Name], c)
		}
	}
	for _, name := range []string{"ops-mail", "chat"} {
		if c := counts[name]; c.Sent != 1 || c.Failed != 0 {
			t.Errorf("%s: counts %+v", name, c)
		}
	}
	evs, err := lun.ReadEvents(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var onLUN []string
	for _, e := range evs {
		if strings.HasPrefix(e.Kind, "notify-") {
			onLUN = append(onLUN, e.Kind+" "+e.Message)
		}
	}
	if all := strings.Join(onLUN, "\n"); !strings.Contains(all, "exited with 1") || !strings.Contains(all, "500 Internal Server Error") ||
		!strings.Contains(all, "notify-sent "+sent[0].ID+" to target chat") {
		t.Errorf("events on the LUN:\n%s", all)
	}

	// The next round, like a restarted daemon, sends nothing again.
	if again, err := s.IncidentRound(ctx, time.Now().Add(SettleQuiet)); err != nil || len(again) != 0 {
		t.Fatalf("second round sent %+v, %v", again, err)
	}
}

func TestOnlyTheCoordinatorSendsIncidents(t *testing.T) {
	s, _, _ := serviceOn(t, 1)
	recv := newReceiver(t)
	if err := s.AddTarget(context.Background(), storage.NotifyTarget{Name: "chat", Kind: TargetWebhook, Address: recv.srv.URL}); err != nil {
		t.Fatal(err)
	}
	if sent, err := s.IncidentRound(context.Background(), time.Now().Add(SettleQuiet)); err != nil || len(sent) != 0 {
		t.Fatalf("a host that does not coordinate sent %+v, %v", sent, err)
	}
}

// Test answers per target, at once for the good ones and within its bound
// for one that hangs.
func TestServiceTestAnswersPerTarget(t *testing.T) {
	s, _, _ := serviceOn(t, 1)
	ctx := context.Background()
	mb := startSMTP(t, nil)
	hanging := hangingServer(t)
	for _, tg := range []storage.NotifyTarget{
		{Name: "ops-mail", Kind: TargetMail, Address: mb.addr, From: "wingman@lab.example", To: []string{"ops@lab.example"}},
		{Name: "http-hang", Kind: TargetWebhook, Address: hanging.URL},
		{Name: "exit-1", Kind: TargetExec, Address: writeHook(t, "exit 1\n")},
	} {
		if err := s.AddTarget(ctx, tg); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddTarget(ctx, storage.NotifyTarget{Name: "ops-mail", Kind: TargetWebhook, Address: hanging.URL}); err == nil {
		t.Fatal("a second target of the same name was added")
	}
	start := time.Now()
	res, err := s.Test(ctx, "")
	if err != nil || len(res) != 3 {
		t.Fatalf("test: %+v, %v", res, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("test took %v, bound 1s", took)
	}
	if res[0].Err != nil || res[1].Err == nil || res[2].Err == nil || !strings.Contains(res[2].Err.Error(), "exited with 1") {
		t.Fatalf("results %+v", res)
	}
	if m := mb.received(); len(m) != 1 || !strings.Contains(m[0].Data, "X-Wingman-Kind: test") {
		t.Fatalf("mail %+v", m)
	}
	if _, err := s.Test(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "ops-mail") {
		t.Fatalf("test of an unknown target: %v", err)
	}
	if err := s.RemoveTarget(ctx, "exit-1"); err != nil {
		t.Fatal(err)
	}
	ts, err := s.Targets(ctx)
	if err != nil || len(ts) != 2 || !ts[0].Tried || ts[0].Count.Sent != 1 {
		t.Fatalf("targets %+v, %v", ts, err)
	}
}

// Warnings: a host's own are sent once they held, not again on the next
// round nor by a new Service (a restart), and cleared when gone.
func TestServiceWarnings(t *testing.T) {
	s, _, _ := serviceOn(t, 1)
	ctx := context.Background()
	recv := newReceiver(t)
	if err := s.AddTarget(ctx, storage.NotifyTarget{Name: "chat", Kind: TargetWebhook, Address: recv.srv.URL}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	slow := true
	s.checks = func(_ context.Context, coordinator bool) []Check {
		mu.Lock()
		defer mu.Unlock()
		if coordinator {
			t.Error("host 2 asked for the cluster's checks without coordinating")
		}
		lat := ""
		if slow {
			lat = "latency 300ms"
		}
		return HostChecks("kvm2", lat, false)
	}
	now := time.Now()
	if sent, err := s.WarningRound(ctx, now); err != nil || len(sent) != 0 {
		t.Fatalf("a warning sent before it held: %+v, %v", sent, err)
	}
	sent, err := s.WarningRound(ctx, now.Add(2*time.Minute))
	if err != nil || len(sent) != 1 || sent[0].Kind != KindWarning || sent[0].Warning.Key != WarnLatency {
		t.Fatalf("round sent %+v, %v; want the latency warning", sent, err)
	}
	if sent, _ := s.WarningRound(ctx, now.Add(3*time.Minute)); len(sent) != 0 {
		t.Fatalf("sent again: %+v", sent)
	}
	mu.Lock()
	slow = false
	mu.Unlock()
	s.WarningRound(ctx, now.Add(4*time.Minute))
	sent, err = s.WarningRound(ctx, now.Add(6*time.Minute))
	if err != nil || len(sent) != 1 || sent[0].Kind != KindCleared {
		t.Fatalf("round sent %+v, %v; want the latency warning cleared", sent, err)
	}
}

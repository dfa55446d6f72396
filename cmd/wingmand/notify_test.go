package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/vm/notify/notifytest"
)

func TestNotifyTargetsThroughTheAPI(t *testing.T) {
	lun := formatLUN(t)
	d := startDaemon(t, testConfig(t, lun, "kvm1", 1, nil, freePort(t)))
	ctx := context.Background()
	in, wh := notifytest.ServeMail(t, notifytest.Loopback(t)), notifytest.ServeHooks(t, notifytest.Loopback(t), http.StatusOK)
	mail := api.NotifyTarget{Name: "ops", Kind: "mail", Address: in.Addr, From: "wingman@lab.example", To: []string{"ops@lab.example"}}
	for _, tg := range []api.NotifyTarget{mail, {Name: "chat", Kind: "webhook", Address: wh.URL, Kinds: []string{"incident", "resolved"}}} {
		if _, err := d.client.AddNotifyTarget(ctx, tg); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		t    api.NotifyTarget
		want string
	}{
		{api.NotifyTarget{Name: "x", Kind: "sms", Address: "1234"}, "unknown kind"},
		{api.NotifyTarget{Name: "x", Kind: "webhook", Address: "ftp://hooks"}, "http:// or https://"},
		{api.NotifyTarget{Name: "x", Kind: "webhook", Address: wh.URL, SecretFile: "/nonexistent/key"}, "create it on every host"},
		{api.NotifyTarget{Name: "x", Kind: "webhook", Address: wh.URL, MinSeverity: "loud"}, "use info, warning or error"},
		{mail, "exists"},
	} {
		_, err := d.client.AddNotifyTarget(ctx, c.t)
		var re *api.RemoteError
		if !errors.As(err, &re) || re.Status != http.StatusBadRequest || !strings.Contains(err.Error(), c.want) {
			t.Errorf("add %+v: %v, want a 400 saying %q", c.t, err, c.want)
		}
	}
	res, err := d.client.NotifyTest(ctx, "")
	if err != nil || len(res) != 2 || !res[0].OK || !res[1].OK {
		t.Fatalf("test: %+v, %v", res, err)
	}
	if m, b := in.Received(), wh.Received(); len(m) != 1 || len(b) != 1 || !strings.Contains(b[0], `"kind":"test"`) {
		t.Fatalf("mails %q, webhooks %q", m, b)
	}
	ts, err := d.client.NotifyTargets(ctx)
	if err != nil || len(ts) != 2 || ts[0].Counts == nil || ts[0].Counts.Sent != 1 || ts[1].Kinds[1] != "resolved" {
		t.Fatalf("targets %+v, %v", ts, err)
	}
	if err := d.client.RemoveNotifyTarget(ctx, "nope"); !api.IsNotFound(err) {
		t.Fatalf("remove unknown: %v", err)
	}
	if _, err := d.client.NotifyTest(ctx, "nope"); !api.IsNotFound(err) {
		t.Fatalf("test unknown: %v", err)
	}
	if err := d.client.RemoveNotifyTarget(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if ts, _ := d.client.NotifyTargets(ctx); len(ts) != 1 {
		t.Fatalf("after remove: %+v", ts)
	}
}

// The coordinator tells of a failover once it settled: one mail and one
// webhook with every VM of the lost host and where it runs now.
func TestFailoverIsNotifiedOnce(t *testing.T) {
	a, b := twoDaemons(t)
	ctx := context.Background()
	in, wh := notifytest.ServeMail(t, notifytest.Loopback(t)), notifytest.ServeHooks(t, notifytest.Loopback(t), http.StatusOK)
	if _, err := b.client.AddNotifyTarget(ctx, api.NotifyTarget{Name: "ops", Kind: "mail", Address: in.Addr, From: "wingman@lab.example",
		To: []string{"ops@lab.example"}, Kinds: []string{"incident", "resolved"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.client.AddNotifyTarget(ctx, api.NotifyTarget{Name: "chat", Kind: "webhook", Address: wh.URL, Kinds: []string{"incident"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.client.Protect(ctx, "web1", api.ProtectRequest{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "D of fresh LUN reads on host 2", func() bool {
		in := b.d.loop.Input()
		return in.Now-in.ReadFreshSince >= in.Timings.Dead
	})
	a.crash()
	waitFor(t, "web1 to run on host 2", func() bool {
		v, err := b.client.VM(ctx, "web1")
		return err == nil && v.Owner == 2 && v.State == "running"
	})
	waitFor(t, "the mail and the webhook", func() bool { return len(in.Received()) > 0 && len(wh.Received()) > 0 })
	mail, hook := in.Received()[0], wh.Received()[0]
	if !strings.Contains(mail, "Subject: [unit] host kvm1 lost: 1 of 1 VMs restarted") || !strings.Contains(mail, "web1") ||
		!strings.Contains(mail, "started on kvm2") {
		t.Errorf("mail:\n%s", mail)
	}
	if !strings.Contains(hook, `"name":"web1"`) || !strings.Contains(hook, `"host":"kvm2"`) || !strings.Contains(hook, `"sender":"kvm2"`) {
		t.Errorf("webhook: %s", hook)
	}
	// Another round of the coordinator sends nothing more.
	if again, err := b.d.notify.IncidentRound(ctx, time.Now()); err != nil || len(again) != 0 {
		t.Fatalf("another round sent %+v, %v", again, err)
	}
	if m, h := in.Received(), wh.Received(); len(m) != 1 || len(h) != 1 {
		t.Fatalf("%d mails and %d webhooks, want one each", len(m), len(h))
	}
	evs, err := b.client.Events(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, e := range evs {
		if e.Kind == "notify-sent" {
			sent++
		}
	}
	if sent != 2 {
		t.Errorf("%d notify-sent events, want 2", sent)
	}
}

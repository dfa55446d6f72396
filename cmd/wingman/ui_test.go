package main

import (
	"bufio"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wingmanha/wingman/test/browser"
)

// startUI runs `wingman -c SOCKET ui` in-process until the test ends and
// returns the link it printed.
func startUI(t *testing.T, socket string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-c", socket, "ui"}, stdio{out: pw, errOut: io.Discard})
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("wingman ui ended with exit %d", code)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("wingman ui printed no link: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestUIUsageErrors(t *testing.T) {
	d := startFakeDaemon(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-c", d.socket, "ui", "--port", "70000"}, exitUsage, "--port 70000: use a port from 1 to 65535"},
		{[]string{"-c", "https://kvm1:8443", "ui"}, exitUsage, "serves the dashboard itself at https://kvm1:8443/ui/"},
		{[]string{"-c", d.socket, "ui", "extra"}, exitUsage, "too many arguments"},
		{[]string{"-c", d.socket + ".missing", "ui"}, exitFailed, "no socket at"},
	} {
		code, _, errOut := wingman(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("wingman %s: exit %d, stderr %q; want exit %d saying %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.want)
		}
	}
}

func TestUILinkIsLoopbackWithAToken(t *testing.T) {
	d := startFakeDaemon(t)
	link := startUI(t, d.socket)
	if !strings.HasPrefix(link, "http://127.0.0.1:") || !strings.Contains(link, "/ui/?token=") {
		t.Errorf("link %q: want http://127.0.0.1:PORT/ui/?token=...", link)
	}
}

// TestDashboardInChromium opens the dashboard through `wingman ui` in
// headless Chromium against the fake three-host daemon: hosts with their
// states, the coordinator, warnings, VMs, kvm3's failover timeline and
// the event stream; an action without the session's header is refused;
// maintenance from the page, after its confirmation, reaches the daemon.
func TestDashboardInChromium(t *testing.T) {
	d := startFakeDaemon(t)
	link := startUI(t, d.socket)
	b := browser.Start(t)
	if err := b.Do(30*time.Second, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	wait := func(what, cond string) {
		t.Helper()
		if err := b.Wait(what, cond, 20*time.Second, "body"); err != nil {
			t.Fatal(err)
		}
	}
	wait("three hosts", `document.querySelectorAll("#hosts tbody tr").length === 3`)
	if loc, err := browser.Eval[string](b, "location.href"); err != nil || strings.Contains(loc, "token") {
		t.Errorf("the page's address %q (%v) still has the token", loc, err)
	}
	text := browser.Text
	wait("kvm3 dead, kvm1 alive", text(`#hosts tr[data-host="kvm3"] .state`)+` === "dead" && `+text(`#hosts tr[data-host="kvm1"] .state`)+` === "alive"`)
	wait("kvm2 the coordinator", text(`#hosts tr[data-host="kvm2"] .name`)+`.includes("coordinator") && `+text("#coordinator")+`.includes("kvm2")`)
	wait("quorum and a warning", text("#quorum")+`.includes("quorate") && `+text("#warnings")+`.includes("kvm3 is dead")`)
	wait("db1 on kvm2, priority 500", text(`#vms tr[data-vm="db1"] .host`)+` === "kvm2" && `+text(`#vms tr[data-vm="db1"] .priority`)+`.includes("500")`)
	wait("kvm3's failover timeline", text(`.incident[data-host="kvm3"] .note[data-vm="web2"]`)+`.includes("started on kvm1") && `+
		`["heartbeat", "declared", "planned", "started"].every(m => document.querySelector('.incident[data-host="kvm3"] .track .mark.' + m))`)
	wait("the event stream", `document.querySelector('#events li[data-kind="host.dead"]') !== null`)

	// A request that is not the page's own: no CSRF header.
	d.takeRequests()
	status, err := browser.Eval[int](b, `fetch("/v1/hosts/kvm1/maintenance", {method: "POST", headers: {"Content-Type": "application/json"}, body: '{"enter": true}'}).then(r => r.status)`)
	if err != nil || status != 403 {
		t.Errorf("POST without the CSRF header: status %d (%v), want 403", status, err)
	}
	for _, r := range d.takeRequests() {
		if strings.HasPrefix(r, "POST") {
			t.Errorf("the refused action reached the daemon: %s", r)
		}
	}

	// Maintenance from the page: click, read the plan, confirm.
	if err := b.Do(10*time.Second, chromedp.Click(chromedp.CSS(`#hosts tr[data-host="kvm1"] button[data-action="maintenance-enter"]`), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	wait("the confirmation with the plan", `document.querySelector("#confirm").open && `+text("#confirm-extra")+`.includes("web1 → kvm2")`)
	if _, err := b.Screenshot("dashboard-confirm"); err != nil {
		t.Error(err)
	}
	if slices.ContainsFunc(d.takeRequests(), func(r string) bool { return strings.HasPrefix(r, "POST") }) {
		t.Fatal("the action ran before its confirmation")
	}
	if err := b.Do(10*time.Second, chromedp.Click(chromedp.CSS("#confirm-ok"), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	wait("kvm1 in maintenance", text("#banner")+`.includes("kvm1 is entering maintenance") && `+text(`#hosts tr[data-host="kvm1"] .state`)+` === "maintenance"`)
	if got := d.takeRequests(); !slices.Contains(got, `POST /v1/hosts/kvm1/maintenance {"enter":true,"no_wait":true}`) {
		t.Errorf("the confirmed maintenance did not reach the daemon; it got:\n%s", strings.Join(got, "\n"))
	}
	if _, err := b.Screenshot("dashboard"); err != nil {
		t.Error(err)
	}
	if p := b.Problems(); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}

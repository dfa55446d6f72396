package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wingmanha/wingman/test/browser"
	"github.com/wingmanha/wingman/test/cluster"
)

// TestDashboard: the web dashboard, opened in headless Chromium through the real `wingman ui`
// on one host's socket, shows the three hosts; after a power loss it draws the failover's
// timeline, each guest planned and started on a survivor; maintenance entered from the page
// (click, confirm) moves the guests off that host by live migration, none stopping.
// Screenshots go to $WINGMAN_SCREENSHOTS or the test's temporary directory.
func TestDashboard(t *testing.T) {
	e, ctx, guests := startWithGuests(t, Options{Profile: "fast"}, 2, Policy{Priority: "high"}, "ui")
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	b := browser.Start(t)
	if err := b.Do(30*time.Second, chromedp.Navigate(startUI(t, ctx, h3))); err != nil {
		t.Fatal(err)
	}
	text := browser.Text
	wait := func(what, cond string, timeout time.Duration) {
		t.Helper()
		if err := b.Wait(what, cond, timeout, "main"); err != nil {
			t.Fatal(err)
		}
	}
	var alive []string
	for _, h := range e.Hosts() {
		alive = append(alive, text(`#hosts tr[data-host="`+h.Name()+`"] .state`)+` === "alive"`)
	}
	wait("three hosts alive", `document.querySelectorAll("#hosts tbody tr").length === 3 && `+strings.Join(alive, " && "), 30*time.Second)
	screenshot(t, b, "dashboard-healthy")

	w := e.StartWatch(guests, WatchOptions{})
	if err := e.PowerOff(h1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitRunningOnce(ctx, 90*time.Second, guests, h1); err != nil {
		t.Fatal(err)
	}
	checkWatch(t, w)
	inc := `.incident[data-host="` + h1.Name() + `"]`
	var started []string
	for _, g := range guests {
		started = append(started, text(inc+` .note[data-vm="`+g.Name+`"]`)+`.includes("started on")`)
	}
	wait(h1.Name()+"'s failover timeline", text(`#hosts tr[data-host="`+h1.Name()+`"] .state`)+` === "dead" && `+strings.Join(started, " && ")+
		fmt.Sprintf(` && document.querySelectorAll('%s .track .mark.planned').length === %d`, inc, len(guests))+
		fmt.Sprintf(` && document.querySelectorAll('%s .track .mark.started').length === %d`, inc, len(guests))+
		` && document.querySelector('`+inc+` .track .mark.declared') !== null`, 30*time.Second)
	screenshot(t, b, "dashboard-failover")

	// Maintenance from the page on a survivor that runs a guest now.
	p, err := e.Running(ctx)
	if err != nil {
		t.Fatal(err)
	}
	target := h2
	if p[guests[0].UUID][0] == h3.Name() {
		target = h3
	}
	w = e.StartWatch(guests, WatchOptions{MustNotStop: true})
	if err := b.Do(10*time.Second, chromedp.Click(chromedp.CSS(`#hosts tr[data-host="`+target.Name()+`"] button[data-action="maintenance-enter"]`), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	wait("the confirmation", `document.querySelector("#confirm").open && `+text("#confirm-extra")+`.includes("→")`, 10*time.Second)
	screenshot(t, b, "dashboard-confirm")
	if err := b.Do(10*time.Second, chromedp.Click(chromedp.CSS("#confirm-ok"), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitRunningOnce(ctx, 60*time.Second, guests, h1, target); err != nil {
		t.Fatal(err)
	}
	checkWatch(t, w)
	row := `#hosts tr[data-host="` + target.Name() + `"]`
	rest := h2
	if target == h2 {
		rest = h3
	}
	onRest := []string{text(row+" .state") + ` === "maintenance" && ` + text(row+" .vms") + ` === "0"`}
	for _, g := range guests {
		vm := `#vms tr[data-vm="` + g.Name + `"]`
		onRest = append(onRest, text(vm+" .host")+` === "`+rest.Name()+`" && `+text(vm+" .state")+`.startsWith("running")`)
	}
	wait(target.Name()+" in maintenance, every guest running on "+rest.Name(), strings.Join(onRest, " && "), 30*time.Second)
	screenshot(t, b, "dashboard-maintenance")
	if p := b.Problems(); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}

func screenshot(t *testing.T, b *browser.Browser, name string) {
	t.Helper()
	if _, err := b.Screenshot(name); err != nil {
		t.Error(err)
	}
}

// startUI runs the wingman binary's `ui` on h's socket until the test ends and returns the link
// it printed.
func startUI(t *testing.T, ctx context.Context, h *cluster.Host) string {
	t.Helper()
	cli, err := cluster.BuildBinary(ctx, "./cmd/wingman", true)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cli, "-c", h.APISocket(), "ui")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("wingman ui: %v", err)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("wingman ui printed no link: %v", err)
	}
	return strings.TrimSpace(line)
}

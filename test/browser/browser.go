// Package browser drives Debian's headless Chromium from Go tests with
// chromedp, for the web dashboard: one browser per test, the page's
// uncaught exceptions and Content-Security-Policy violations gathered,
// waits on a condition of the page with a deadline (never a sleep), and
// screenshots saved in the test's output directory.
//
// It must never be imported by production code.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// ScreenshotsEnv names a directory for the screenshots, to keep them;
// without it they go to a t.TempDir(), removed with the test.
const ScreenshotsEnv = "WINGMAN_SCREENSHOTS"

// Browser is one headless Chromium with one tab, for one test.
type Browser struct {
	// Ctx is the tab's chromedp context: run actions with chromedp.Do and
	// chromedp.Run on it (or on a context derived with a deadline).
	Ctx context.Context
	t   testing.TB
	dir string

	mu       sync.Mutex
	problems []string
}

// Start starts Debian's chromium, headless (as root with --no-sandbox),
// for t; it is closed when t ends. Without chromium the test is skipped,
// or fails when $CI is set: `make deps` installs it.
func Start(t testing.TB) *Browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser test: %v: install Debian's chromium (make deps)", err)
		}
		t.Skipf("browser test: %v: install Debian's chromium (make deps) to run it", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1400, 1000))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser for the context's whole life: it
	// gets no deadline of its own (chromedp.Run's rule).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	b := &Browser{Ctx: ctx, t: t, dir: os.Getenv(ScreenshotsEnv)}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s:%d: %s", m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// Problems are the page's uncaught exceptions and the Content Security
// Policy's refusals so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// Do runs steps with a deadline.
func (b *Browser) Do(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.Ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// Wait waits until the JavaScript expression cond is truthy on the page,
// checking every 100 ms, for at most timeout. On timeout the error says
// what was awaited (what) and what the page's element show (a CSS selector) shows.
func (b *Browser) Wait(what, cond string, timeout time.Duration, show string) error {
	err := b.Do(timeout+5*time.Second, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err == nil {
		return nil
	}
	seen, _ := Eval[string](b, Text(show)+` || "(nothing)"`)
	if errors.Is(err, chromedp.ErrPollingTimeout) {
		err = fmt.Errorf("not within %v", timeout)
	}
	return fmt.Errorf("wait for %s: %w; the page's %s shows:\n%s", what, err, show, seen)
}

// Text is a JavaScript expression for the text of the first element that
// the CSS selector sel matches, "" when none does; parenthesized, so that
// Text(sel)+".includes(...)" means what it says.
func Text(sel string) string {
	return fmt.Sprintf(`((document.querySelector(%q) || {}).innerText || "")`, sel)
}

// Eval evaluates a JavaScript expression on the page (awaiting a promise)
// and decodes its value.
func Eval[T any](b *Browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// Screenshot saves a PNG of the whole page as name (.png added) in the
// test's output directory ($WINGMAN_SCREENSHOTS, else a t.TempDir()) and
// logs its path.
func (b *Browser) Screenshot(name string) (string, error) {
	if b.dir == "" {
		b.dir = b.t.TempDir()
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return "", err
	}
	png, err := b.capture()
	if err != nil {
		return "", fmt.Errorf("screenshot %s: %w", name, err)
	}
	p := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		return "", err
	}
	b.t.Logf("screenshot: %s", p)
	return p, nil
}

// capture takes a PNG of the whole page as Puppeteer does: the viewport
// set to the page's size, two animation frames, then the viewport.
func (b *Browser) capture() ([]byte, error) {
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	size, err := chromedp.Run(ctx, chromedp.Evaluate[[2]int64](`[document.documentElement.clientWidth, document.documentElement.scrollHeight]`))
	if err != nil {
		return nil, fmt.Errorf("read the page's size: %w", err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: size[0], Height: size[1], DeviceScaleFactor: 1}); err != nil {
		return nil, fmt.Errorf("set the viewport to %dx%d: %w", size[0], size[1], err)
	}
	defer chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, chromedp.EvalAwaitPromise)); err != nil {
		return nil, fmt.Errorf("wait for a paint: %w", err)
	}
	return chromedp.Run(ctx, chromedp.CaptureScreenshot())
}

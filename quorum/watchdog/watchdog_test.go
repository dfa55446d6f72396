package watchdog

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// openSoftware opens a software watchdog whose expiries are counted.
func openSoftware(t *testing.T, timeout time.Duration) (Watchdog, *atomic.Int32) {
	t.Helper()
	var expired atomic.Int32
	w, warning, err := Open(Config{Mode: ModeSoftware, Timeout: timeout, OnExpire: func() { expired.Add(1) }, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if w.Kind() != KindSoftware || w.Timeout() != timeout || !strings.Contains(warning, "cannot reset a frozen host") {
		t.Fatalf("Open = %s watchdog, timeout %v, warning %q", w.Kind(), w.Timeout(), warning)
	}
	return w, &expired
}

func TestSoftwareFiresWhenNotPetted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, expired := openSoftware(t, 5*time.Second)
		defer w.Close()

		time.Sleep(5*time.Second - time.Millisecond)
		synctest.Wait()
		if n := expired.Load(); n != 0 {
			t.Fatalf("expired %d times before the timeout", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if n := expired.Load(); n != 1 {
			t.Fatalf("expired %d times at the timeout, want 1", n)
		}
		if err := w.Pet(); !errors.Is(err, ErrExpired) {
			t.Errorf("Pet after expiry = %v, want ErrExpired", err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := expired.Load(); n != 1 {
			t.Errorf("expired %d times, want exactly once", n)
		}
	})
}

func TestSoftwareDoesNotFireWhilePetted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, expired := openSoftware(t, 5*time.Second)
		defer w.Close()

		for range 30 {
			time.Sleep(4 * time.Second)
			if err := w.Pet(); err != nil {
				t.Fatalf("Pet: %v", err)
			}
		}
		synctest.Wait()
		if n := expired.Load(); n != 0 {
			t.Fatalf("expired %d times while petted every 4 s with a 5 s timeout", n)
		}
		// The daemon stops petting (self-fence): it fires W after the last pet.
		time.Sleep(5*time.Second - time.Millisecond)
		synctest.Wait()
		if n := expired.Load(); n != 0 {
			t.Fatalf("expired before W had passed since the last pet")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if n := expired.Load(); n != 1 {
			t.Fatalf("expired %d times W after the last pet, want 1", n)
		}
	})
}

func TestSoftwareCloseDisarms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, expired := openSoftware(t, 3*time.Second)
		time.Sleep(2 * time.Second)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := expired.Load(); n != 0 {
			t.Errorf("a closed watchdog expired %d times", n)
		}
		if err := w.Pet(); !errors.Is(err, ErrClosed) {
			t.Errorf("Pet after Close = %v, want ErrClosed", err)
		}
	})
}

func TestOpenFallsBackLoudly(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "watchdog")
	var logs syncBuffer
	w, warning, err := Open(Config{Device: missing, Timeout: 5 * time.Second, OnExpire: func() {},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer w.Close()
	if w.Kind() != KindSoftware {
		t.Fatalf("kind = %s, want software", w.Kind())
	}
	for _, want := range []string{missing + " does not exist", "cannot reset a frozen host", "softdog"} {
		if !strings.Contains(warning, want) {
			t.Errorf("warning %q does not say %q", warning, want)
		}
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "cannot reset a frozen host") {
		t.Errorf("warning not logged: %s", logs.String())
	}

	_, _, err = Open(Config{Mode: ModeDevice, Device: missing, Timeout: 5 * time.Second})
	if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "load a watchdog driver") {
		t.Errorf("Open(device) of a missing device = %v, want ErrNoDevice saying what to do", err)
	}
}

func TestValidate(t *testing.T) {
	noop := func() {}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{OnExpire: noop}, ""},
		{"device needs no OnExpire", Config{Mode: ModeDevice}, ""},
		{"auto needs OnExpire", Config{}, "OnExpire"},
		{"software needs OnExpire", Config{Mode: ModeSoftware}, "OnExpire"},
		{"unknown mode", Config{Mode: "hardware", OnExpire: noop}, "mode"},
		{"sub-second", Config{Timeout: 500 * time.Millisecond, OnExpire: noop}, "whole seconds"},
		{"fractional", Config{Timeout: 2500 * time.Millisecond, OnExpire: noop}, "whole seconds"},
		{"too long", Config{Timeout: time.Hour, OnExpire: noop}, "whole seconds"},
		{"negative", Config{Timeout: -time.Second, OnExpire: noop}, "whole seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
		})
	}
}

// TestDeviceRefusesRegularFile: a device path that is an ordinary file is
// refused before anything is written to it.
func TestDeviceRefusesRegularFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "watchdog")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(Config{Mode: ModeDevice, Device: f, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "not a character device") {
		t.Fatalf("Open = %v, want a refusal of the regular file", err)
	}
	if b, _ := os.ReadFile(f); len(b) != 0 {
		t.Errorf("Open wrote %q into a regular file", b)
	}
}

// TestDeviceRefusesNonWatchdog: /dev/null is a character device that
// answers no watchdog ioctl; Open says so (and disarms, harmlessly, on the
// way out).
func TestDeviceRefusesNonWatchdog(t *testing.T) {
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Skip("no /dev/null")
	}
	_, _, err := Open(Config{Mode: ModeDevice, Device: "/dev/null", Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "no watchdog") {
		t.Fatalf("Open(/dev/null) = %v, want an error saying it is no watchdog", err)
	}
}

// TestRealDevice arms the real /dev/watchdog, pets it and disarms it. A
// watchdog opened and not disarmed reboots the machine, so this runs only
// when asked with WINGMAN_TEST_SOFTDOG=1; then, without /dev/watchdog, it
// loads softdog with soft_noboot=1 (expiry logs instead of rebooting).
func TestRealDevice(t *testing.T) {
	if os.Getenv("WINGMAN_TEST_SOFTDOG") != "1" {
		t.Skip("set WINGMAN_TEST_SOFTDOG=1 to test a real /dev/watchdog: an armed watchdog that is not disarmed reboots the machine")
	}
	if _, err := os.Stat(DefaultDevice); errors.Is(err, os.ErrNotExist) {
		out, err := exec.Command("modprobe", "softdog", "soft_noboot=1", "nowayout=0").CombinedOutput()
		if err != nil {
			t.Skipf("no %s and modprobe softdog failed: %v: %s", DefaultDevice, err, out)
		}
		if _, err := os.Stat(DefaultDevice); err != nil {
			t.Skipf("softdog loaded but %s is missing: %v", DefaultDevice, err)
		}
	}
	w, warning, err := Open(Config{Mode: ModeDevice, Timeout: 30 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	t.Logf("%s watchdog, timeout %v, warning %q", w.Kind(), w.Timeout(), warning)
	if w.Kind() != KindDevice || w.Timeout() > 30*time.Second || w.Timeout() <= 0 {
		t.Errorf("kind %s timeout %v, want device with at most 30s", w.Kind(), w.Timeout())
	}
	for range 3 {
		if err := w.Pet(); err != nil {
			t.Fatalf("Pet: %v", err)
		}
	}
}

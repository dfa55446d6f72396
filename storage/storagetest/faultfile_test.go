package storagetest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage/storagetest"
)

func TestParseFault(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want storagetest.Fault
		text string
	}{
		{"", storagetest.Fault{}, ""},
		{"  \n", storagetest.Fault{}, ""},
		{"eio", storagetest.Fault{Op: storagetest.AllIO, EIO: true}, "eio"},
		{"hang\n", storagetest.Fault{Op: storagetest.AllIO, Hang: true}, "hang"},
		{"latency 300ms", storagetest.Fault{Op: storagetest.AllIO, Latency: 300 * time.Millisecond}, "latency 300ms"},
		{"latency 1.5s writes", storagetest.Fault{Op: storagetest.Writes, Latency: 1500 * time.Millisecond}, "latency 1.5s writes"},
		{"eio reads", storagetest.Fault{Op: storagetest.Reads, EIO: true}, "eio reads"},
	} {
		f, err := storagetest.ParseFault(tc.spec)
		if err != nil {
			t.Errorf("ParseFault(%q): %v", tc.spec, err)
			continue
		}
		if f != tc.want {
			t.Errorf("ParseFault(%q) = %+v, want %+v", tc.spec, f, tc.want)
		}
		if got := storagetest.FaultText(f); got != tc.text {
			t.Errorf("FaultText(ParseFault(%q)) = %q, want %q", tc.spec, got, tc.text)
		}
	}
	for _, bad := range []string{"eoi", "eio 3", "latency", "latency soon", "latency -1s", "latency 0s", "writes", "hang forever"} {
		_, err := storagetest.ParseFault(bad)
		if err == nil || !strings.Contains(err.Error(), "write one of") {
			t.Errorf("ParseFault(%q) = %v, want an error that says what to write", bad, err)
		}
	}
}

// waitAck waits until the device has acknowledged want in the file next to path.
func waitAck(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(storagetest.AckPath(path))
		got := strings.TrimSpace(string(b))
		if got == want || (strings.HasSuffix(want, "*") && strings.HasPrefix(got, strings.TrimSuffix(want, "*"))) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("acknowledgement %q, want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestControlFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lun-fault")
	if err := os.WriteFile(path, []byte("eio writes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logged []string
	// An hour's poll interval: every change below is seen through inotify.
	fc := storagetest.ControlFromFile(fileDevice(t), path, time.Hour, func(m string) {
		mu.Lock()
		logged = append(logged, m)
		mu.Unlock()
	})
	defer fc.Close()

	// A fault present at start applies to the first I/O.
	waitAck(t, path, "eio writes")
	if _, err := fc.WriteAt(buf(1, 1), 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write with eio writes: %v", err)
	}
	if _, err := fc.ReadAt(buf(1, 0), 0); err != nil {
		t.Fatalf("read with eio writes: %v", err)
	}

	// A bad text keeps the fault and says why.
	if err := os.WriteFile(path, []byte("eoi"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitAck(t, path, "error: *")
	if _, err := fc.WriteAt(buf(1, 1), 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write after a bad fault text: %v, want the earlier EIO", err)
	}

	// A hang holds the I/O until the file is emptied.
	if err := os.WriteFile(path, []byte("hang"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitAck(t, path, "hang")
	done := make(chan error, 1)
	go func() {
		_, err := fc.WriteAt(buf(1, 2), 0)
		done <- err
	}()
	for fc.Stats().Hung == 0 {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("hung write returned %v before the fault was cleared", err)
	default:
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitAck(t, path, "")
	if err := <-done; err != nil {
		t.Fatalf("write released by clearing the fault: %v", err)
	}
	if got := readBlock(t, fc, 0); got[0] != 2 {
		t.Errorf("released write did not land: block starts with %d", got[0])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) < 4 {
		t.Errorf("every change should be logged, got %q", logged)
	}
}

func TestControlFromFileCloseEndsHang(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lun-fault")
	if err := os.WriteFile(path, []byte("hang reads"), 0o644); err != nil {
		t.Fatal(err)
	}
	fc := storagetest.ControlFromFile(fileDevice(t), path, time.Hour, nil)
	done := make(chan error, 1)
	go func() {
		_, err := fc.ReadAt(buf(1, 0), 0)
		done <- err
	}()
	for fc.Stats().Hung == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("hung read after Close: %v, want os.ErrClosed", err)
	}
}

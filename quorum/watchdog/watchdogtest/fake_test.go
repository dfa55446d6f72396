package watchdogtest

import (
	"errors"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum/watchdog"
)

func TestFake(t *testing.T) {
	f := New(5 * time.Second)
	var w watchdog.Watchdog = f
	for range 3 {
		if err := w.Pet(); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("ioctl failed")
	f.FailPets(boom)
	if err := w.Pet(); !errors.Is(err, boom) {
		t.Errorf("Pet = %v, want the injected error", err)
	}
	if f.Pets() != 3 || f.LastPet().IsZero() {
		t.Errorf("pets %d last %v, want 3 and a time", f.Pets(), f.LastPet())
	}
	if err := w.Close(); err != nil || !f.Closed() {
		t.Fatalf("Close: %v closed %v", err, f.Closed())
	}
	if err := w.Pet(); !errors.Is(err, watchdog.ErrClosed) {
		t.Errorf("Pet after Close = %v, want ErrClosed", err)
	}
}

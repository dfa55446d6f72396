// Package watchdogtest provides a fake watchdog.Watchdog for the daemon's
// tests: it records pets and closes, and can be told to fail. It owns only
// this fake and must never open a device or run an expiry function.
package watchdogtest

import (
	"fmt"
	"sync"
	"time"

	"github.com/wingmanha/wingman/quorum/watchdog"
)

// Fake is a watchdog.Watchdog that records what the daemon does with it.
type Fake struct {
	timeout time.Duration

	mu      sync.Mutex
	pets    int
	closed  bool
	petErr  error
	lastPet time.Time
}

var _ watchdog.Watchdog = (*Fake)(nil)

// New returns a Fake with the given timeout.
func New(timeout time.Duration) *Fake { return &Fake{timeout: timeout} }

func (f *Fake) Kind() string           { return "fake" }
func (f *Fake) Timeout() time.Duration { return f.timeout }

// Pet records a pet, or returns the error set with FailPets. A closed Fake
// returns an error wrapping watchdog.ErrClosed, as the real ones do.
func (f *Fake) Pet() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("pet fake watchdog: %w", watchdog.ErrClosed)
	}
	if f.petErr != nil {
		return f.petErr
	}
	f.pets++
	f.lastPet = time.Now()
	return nil
}

// Close records a clean stop.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// FailPets makes every later Pet return err (nil: succeed again).
func (f *Fake) FailPets(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.petErr = err
}

// Pets is the number of successful pets.
func (f *Fake) Pets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pets
}

// LastPet is when the last successful pet happened (zero if none).
func (f *Fake) LastPet() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastPet
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

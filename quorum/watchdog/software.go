package watchdog

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// software is the fallback watchdog: a timer that runs onExpire when not
// petted for timeout. It relies on this process being scheduled, which is
// exactly what a frozen host does not do; hence Open's warning.
type software struct {
	timeout  time.Duration
	onExpire func()
	log      *slog.Logger

	mu      sync.Mutex
	lastPet time.Time // monotonic
	timer   *time.Timer
	closed  bool
	expired bool
}

func newSoftware(timeout time.Duration, onExpire func(), log *slog.Logger) *software {
	s := &software{timeout: timeout, onExpire: onExpire, log: log, lastPet: time.Now()}
	s.timer = time.AfterFunc(timeout, s.check)
	return s
}

func (s *software) Kind() string           { return KindSoftware }
func (s *software) Timeout() time.Duration { return s.timeout }

// Pet restarts the countdown.
func (s *software) Pet() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.expired:
		return fmt.Errorf("pet the software watchdog: it expired and stopped this host's VMs; restart wingmand: %w", ErrExpired)
	case s.closed:
		return fmt.Errorf("pet the software watchdog: %w", ErrClosed)
	}
	s.lastPet = time.Now()
	s.timer.Reset(s.timeout)
	return nil
}

// check runs when the timer fires. A Pet may have raced with the firing
// (Reset cannot stop a callback already started), so the time since the
// last pet decides, not the firing itself.
func (s *software) check() {
	s.mu.Lock()
	if s.closed || s.expired {
		s.mu.Unlock()
		return
	}
	if left := s.timeout - time.Since(s.lastPet); left > 0 {
		s.timer.Reset(left)
		s.mu.Unlock()
		return
	}
	s.expired = true
	s.mu.Unlock()
	s.log.Error("software watchdog expired: not petted within the timeout, stopping this host's VMs", "timeout", s.timeout)
	s.onExpire()
}

// Close disarms the software watchdog. Closing twice is harmless.
func (s *software) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.timer.Stop()
	return nil
}

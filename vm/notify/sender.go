package notify

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// ErrQueueFull says a target's queue was full and the notification was
// dropped for it (reported through Config.OnResult).
var ErrQueueFull = errors.New("notification queue of the target is full")

// ErrClosed says the Sender was closed before the notification went out.
var ErrClosed = errors.New("notification sender closed")

// Config of a Sender. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// QueueSize bounds the notifications waiting per target; beyond it
	// Send drops the newest and reports ErrQueueFull.
	QueueSize int
	// Attempts is how many times one notification is tried per target.
	Attempts int
	// Backoff is the wait after the first failed attempt; it doubles after
	// each failure, up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// RateBurst notifications per target per RateWindow; more wait.
	RateBurst  int
	RateWindow time.Duration
	// TLS is the client TLS configuration for SMTP STARTTLS and https
	// webhooks; nil: the system's roots.
	TLS *tls.Config
	// OnResult is told the result of every attempt, from the target's own
	// goroutine: for events and metrics. It must not block for long.
	OnResult func(Result)
}

// DefaultConfig is the production configuration: five attempts per
// target over about a minute and a half, at most ten messages per target
// per ten minutes.
func DefaultConfig() Config {
	return Config{QueueSize: 64, Attempts: 5, Backoff: 5 * time.Second, MaxBackoff: time.Minute,
		RateBurst: 10, RateWindow: 10 * time.Minute}
}

// Validate rejects a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.QueueSize < 1:
		return fmt.Errorf("notify: queue size %d: use at least 1", c.QueueSize)
	case c.Attempts < 1:
		return fmt.Errorf("notify: attempts %d: use at least 1", c.Attempts)
	case c.Backoff <= 0 || c.MaxBackoff < c.Backoff:
		return fmt.Errorf("notify: backoff %v up to %v: both positive, the maximum not below the first", c.Backoff, c.MaxBackoff)
	case c.RateBurst < 1 || c.RateWindow <= 0:
		return fmt.Errorf("notify: rate %d per %v: use at least 1 per a positive window", c.RateBurst, c.RateWindow)
	}
	return nil
}

// Result is what one delivery attempt did.
type Result struct {
	Target  string
	Kind    string // the target's kind
	ID      string // the notification's id
	Attempt int    // 1-based
	Final   bool   // no further attempt follows (delivered, or gave up)
	Err     error  // nil: delivered
	Took    time.Duration
}

// Sender delivers notifications to targets in the background. Send never
// blocks: each target has its own bounded queue and goroutine, so a
// target that hangs delays only its own later notifications.
type Sender struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	workers map[string]*worker // by target name
	wg      sync.WaitGroup
}

type job struct {
	t    storage.NotifyTarget
	n    Notification
	body []byte
}

type worker struct {
	q    chan job
	sent []time.Time // recent sends, for the rate limit
}

// NewSender returns a Sender; Close stops it.
func NewSender(cfg Config) (*Sender, error) {
	d := DefaultConfig()
	if cfg.QueueSize == 0 {
		cfg.QueueSize = d.QueueSize
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = d.Attempts
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = d.Backoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = max(d.MaxBackoff, cfg.Backoff)
	}
	if cfg.RateBurst == 0 {
		cfg.RateBurst = d.RateBurst
	}
	if cfg.RateWindow == 0 {
		cfg.RateWindow = d.RateWindow
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sender{cfg: cfg, ctx: ctx, cancel: cancel, workers: map[string]*worker{}}, nil
}

// Send queues n for every target whose rules want it and returns at once.
// A full queue or a closed Sender is reported through OnResult, and returned.
func (s *Sender) Send(targets []storage.NotifyTarget, n Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notification %s: %w", n.ID, err)
	}
	var errs []error
	for _, t := range targets {
		if !Wants(t, n) {
			continue
		}
		if err := s.enqueue(job{t: t, n: n, body: body}); err != nil {
			s.report(Result{Target: t.Name, Kind: t.Kind, ID: n.ID, Final: true, Err: err})
			errs = append(errs, fmt.Errorf("target %q: %w", t.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Sender) enqueue(j job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	w := s.workers[j.t.Name]
	if w == nil {
		w = &worker{q: make(chan job, s.cfg.QueueSize)}
		s.workers[j.t.Name] = w
		s.wg.Go(func() { s.run(w) })
	}
	select {
	case w.q <- j:
		return nil
	default:
		return fmt.Errorf("%w (%d waiting); is it hanging? see the failures reported before", ErrQueueFull, s.cfg.QueueSize)
	}
}

// Close stops every delivery at once (an attempt in flight is cancelled)
// and waits for the target goroutines to end.
func (s *Sender) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		for _, w := range s.workers {
			close(w.q)
		}
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

func (s *Sender) report(r Result) {
	if s.cfg.OnResult != nil {
		s.cfg.OnResult(r)
	}
}

func (s *Sender) run(w *worker) {
	for j := range w.q {
		if s.ctx.Err() != nil {
			s.report(Result{Target: j.t.Name, Kind: j.t.Kind, ID: j.n.ID, Final: true, Err: ErrClosed})
			continue
		}
		s.waitRate(w)
		s.deliverWithRetries(j)
	}
}

// waitRate holds the target's next send until fewer than RateBurst sends
// happened in the last RateWindow.
func (s *Sender) waitRate(w *worker) {
	now := time.Now()
	for len(w.sent) > 0 && now.Sub(w.sent[0]) >= s.cfg.RateWindow {
		w.sent = w.sent[1:]
	}
	if len(w.sent) >= s.cfg.RateBurst {
		sleep(s.ctx, w.sent[0].Add(s.cfg.RateWindow).Sub(now))
		w.sent = w.sent[1:]
	}
	w.sent = append(w.sent, time.Now())
}

func (s *Sender) deliverWithRetries(j job) {
	wait := s.cfg.Backoff
	for attempt := 1; ; attempt++ {
		start := time.Now()
		ctx, cancel := context.WithTimeout(s.ctx, timeoutOf(j.t))
		err := deliver(ctx, j.t, j.n, j.body, s.cfg.TLS)
		cancel()
		final := err == nil || attempt >= s.cfg.Attempts || s.ctx.Err() != nil
		if err != nil && final && attempt >= s.cfg.Attempts {
			err = fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		s.report(Result{Target: j.t.Name, Kind: j.t.Kind, ID: j.n.ID, Attempt: attempt, Final: final, Err: err, Took: time.Since(start)})
		if final {
			return
		}
		if sleep(s.ctx, wait) != nil {
			s.report(Result{Target: j.t.Name, Kind: j.t.Kind, ID: j.n.ID, Attempt: attempt, Final: true, Err: ErrClosed})
			return
		}
		wait = min(2*wait, s.cfg.MaxBackoff)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"libvirt.org/go/libvirt"
)

var (
	eventLoopOnce sync.Once
	eventLoopErr  error
)

// startEventLoop installs libvirt's default event implementation and runs it
// on one goroutine for the life of the process. libvirt allows this only once
// per process and it must happen before the first connection is opened,
// otherwise that connection never delivers events or keepalives.
func startEventLoop() error {
	eventLoopOnce.Do(func() {
		if err := libvirt.EventRegisterDefaultImpl(); err != nil {
			eventLoopErr = fmt.Errorf("register libvirt event loop: %w", err)
			return
		}
		go func() {
			for {
				if err := libvirt.EventRunDefaultImpl(); err != nil {
					// Only a broken poll() fails here; back off rather
					// than spin, and keep serving the other connections.
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	})
	return eventLoopErr
}

// Conn is a connection to one host's libvirtd that survives libvirtd
// restarts: it keeps the connection alive, notices when it breaks, and
// reconnects in the background with exponential backoff, re-registering its
// event callbacks and telling subscribers to resync. While it is down,
// operations fail fast with ErrConnection.
//
// A Conn is safe for concurrent use.
type Conn struct {
	cfg  Config
	host string

	mu      sync.RWMutex
	lc      *libvirt.Connect // nil while disconnected or closed
	cbIDs   []int            // event callbacks registered on lc
	gen     uint64           // identifies lc; callbacks of older ones are ignored
	broken  bool             // lc is known dead; the supervisor replaces it
	downErr error            // why the connection was lost
	closed  bool

	lostCh chan struct{} // wakes the supervisor
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup

	subsMu sync.Mutex
	subs   map[*eventQueue]struct{}

	change changeSignal // on every lifecycle event and reconnect

	jobsMu sync.Mutex
	jobs   map[string]chan libvirt.DomainJobInfo // migration waiters by domain UUID

	starts *pool[*libvirt.Connect] // connections for domain starts (spares.go)
}

// Dial connects to the libvirtd at cfg.URI. It makes one attempt: a daemon
// that starts before libvirtd should retry Dial itself. Once connected, the
// Conn reconnects on its own.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	op := fmt.Sprintf("connect to libvirt at %s", cfg.URI)
	if err := ctx.Err(); err != nil {
		return nil, &opError{op: op, class: ErrConnection, cause: err}
	}
	if err := startEventLoop(); err != nil {
		return nil, &opError{op: op, class: ErrConnection, cause: err}
	}
	c := &Conn{
		cfg:    cfg,
		host:   cfg.HostName,
		lostCh: make(chan struct{}, 1),
		done:   make(chan struct{}),
		subs:   make(map[*eventQueue]struct{}),
		jobs:   make(map[string]chan libvirt.DomainJobInfo),
		starts: newStartPool(cfg),
	}
	lc, ids, err := c.open(1)
	if err != nil {
		return nil, &opError{op: op, class: ErrConnection, cause: err}
	}
	c.lc, c.cbIDs, c.gen = lc, ids, 1
	if c.host == "" {
		if h, err := lc.GetHostname(); err == nil {
			c.host = h
		} else {
			c.host = cfg.URI
		}
	}
	c.wg.Add(1)
	go c.supervise()
	return c, nil
}

// Host returns the name this Conn uses for its host in messages.
func (c *Conn) Host() string { return c.host }

// Connected reports whether the connection to libvirtd is up right now.
func (c *Conn) Connected() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lc != nil && !c.broken
}

// Close stops reconnecting, ends every event subscription and closes the
// libvirt connection. Operations still running finish on their own reference.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	lc, ids := c.lc, c.cbIDs
	c.lc, c.cbIDs = nil, nil
	c.mu.Unlock()
	close(c.done)
	c.wg.Wait()
	teardown(lc, ids)
	return nil
}

// open connects and installs keepalive, the close callback and the event
// callbacks. gen is the generation this connection will have.
func (c *Conn) open(gen uint64) (*libvirt.Connect, []int, error) {
	lc, err := libvirt.NewConnect(c.cfg.URI)
	if err != nil {
		return nil, nil, err
	}
	// Local drivers (test:///) have no keepalive and no close callback:
	// they cannot lose their connection, so "not supported" is fine.
	if err := lc.SetKeepAlive(int(c.cfg.KeepAliveInterval/time.Second), c.cfg.KeepAliveCount); err != nil && libvirtCode(err) != libvirt.ERR_NO_SUPPORT {
		lc.Close()
		return nil, nil, fmt.Errorf("set keepalive: %w", err)
	}
	if err := lc.RegisterCloseCallback(func(_ *libvirt.Connect, reason libvirt.ConnectCloseReason) {
		c.lost(gen, fmt.Errorf("libvirt closed the connection: %s", closeReasonText(reason)))
	}); err != nil && libvirtCode(err) != libvirt.ERR_NO_SUPPORT {
		lc.Close()
		return nil, nil, fmt.Errorf("register close callback: %w", err)
	}
	var ids []int
	register := func(what string, id int, err error) error {
		if err != nil {
			teardown(lc, ids)
			return fmt.Errorf("register %s events: %w", what, err)
		}
		ids = append(ids, id)
		return nil
	}
	id, err := lc.DomainEventLifecycleRegister(nil, c.onLifecycle)
	if err := register("lifecycle", id, err); err != nil {
		return nil, nil, err
	}
	id, err = lc.DomainEventIOErrorReasonRegister(nil, c.onIOError)
	if err := register("I/O error", id, err); err != nil {
		return nil, nil, err
	}
	id, err = lc.DomainEventJobCompletedRegister(nil, c.onJobCompleted)
	if err := register("job-completed", id, err); err != nil {
		return nil, nil, err
	}
	return lc, ids, nil
}

// teardown undoes open, ignoring errors: the connection may be dead already.
func teardown(lc *libvirt.Connect, ids []int) {
	if lc == nil {
		return
	}
	for _, id := range ids {
		_ = lc.DomainEventDeregister(id)
	}
	_ = lc.UnregisterCloseCallback()
	_, _ = lc.Close()
}

func closeReasonText(r libvirt.ConnectCloseReason) string {
	switch r {
	case libvirt.CONNECT_CLOSE_REASON_ERROR:
		return "I/O error"
	case libvirt.CONNECT_CLOSE_REASON_EOF:
		return "end of file (libvirtd stopped?)"
	case libvirt.CONNECT_CLOSE_REASON_KEEPALIVE:
		return "keepalive timeout"
	case libvirt.CONNECT_CLOSE_REASON_CLIENT:
		return "closed by client"
	}
	return fmt.Sprintf("reason %d", int(r))
}

// lost marks connection generation gen as dead and wakes the supervisor. It
// is called from libvirt's event loop (close callback) and from operations
// that found the connection dead; it never blocks.
func (c *Conn) lost(gen uint64, why error) {
	c.mu.Lock()
	if gen != c.gen || c.broken || c.closed {
		c.mu.Unlock()
		return
	}
	c.broken, c.downErr = true, why
	c.mu.Unlock()
	select {
	case c.lostCh <- struct{}{}:
	default:
	}
}

// supervise replaces a lost connection, forever, until Close.
func (c *Conn) supervise() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.lostCh:
		}
		c.mu.Lock()
		if !c.broken || c.closed {
			c.mu.Unlock()
			continue
		}
		old, ids, why, gen := c.lc, c.cbIDs, c.downErr, c.gen
		c.lc, c.cbIDs = nil, nil
		c.mu.Unlock()
		c.publish(Event{Kind: EventDisconnected, Detail: why.Error(), Received: time.Now()})
		teardown(old, ids)
		if !c.reconnect(gen + 1) {
			return
		}
	}
}

// reconnect dials until it succeeds (true) or the Conn is closed (false).
func (c *Conn) reconnect(gen uint64) bool {
	for attempt := 0; ; attempt++ {
		t := time.NewTimer(backoff(attempt, c.cfg.ReconnectMinBackoff, c.cfg.ReconnectMaxBackoff))
		select {
		case <-c.done:
			t.Stop()
			return false
		case <-t.C:
		}
		lc, ids, err := c.open(gen)
		if err != nil {
			c.mu.Lock()
			c.downErr = err
			c.mu.Unlock()
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			teardown(lc, ids)
			return false
		}
		c.lc, c.cbIDs, c.gen, c.broken, c.downErr = lc, ids, gen, false, nil
		c.mu.Unlock()
		// Events that happened while we were away are gone: say so.
		c.publish(Event{Kind: EventResync, Detail: "reconnected", Received: time.Now()})
		c.change.signal()
		return true
	}
}

// acquire returns the current connection with a reference held for the
// caller, who must release it with lc.Close(). The reference keeps the
// connection valid even if the supervisor replaces it meanwhile.
func (c *Conn) acquire(op string) (*libvirt.Connect, uint64, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil, 0, &opError{op: op, class: ErrClosed}
	}
	if c.lc == nil || c.broken {
		return nil, 0, &opError{op: op, class: ErrConnection, cause: c.downErr}
	}
	if err := c.lc.Ref(); err != nil {
		return nil, 0, &opError{op: op, class: ErrConnection, cause: err}
	}
	return c.lc, c.gen, nil
}

// fail turns a libvirt error into an opError, and starts a reconnect when
// the error means the connection is gone.
func (c *Conn) fail(lc *libvirt.Connect, gen uint64, op string, err error) error {
	var oe *opError
	if errors.As(err, &oe) {
		return err
	}
	class := classify(err)
	if class == nil && mayBeConnectionLoss(err) {
		if alive, aerr := lc.IsAlive(); aerr != nil || !alive {
			c.lost(gen, err)
			class = ErrConnection
		}
	}
	if class == ErrConnection {
		c.lost(gen, err)
	}
	return &opError{op: op, class: class, cause: err}
}

// withDomain looks name up on the current connection and runs fn on it.
// Errors from fn are classified by fail unless fn built an opError itself.
func (c *Conn) withDomain(ctx context.Context, op, name string, fn func(d *libvirt.Domain) error) error {
	if err := ctx.Err(); err != nil {
		return &opError{op: op, cause: err}
	}
	lc, gen, err := c.acquire(op)
	if err != nil {
		return err
	}
	defer lc.Close()
	d, err := lc.LookupDomainByName(name)
	if err != nil {
		return c.fail(lc, gen, op, err)
	}
	defer d.Free()
	if err := fn(d); err != nil {
		return c.fail(lc, gen, op, err)
	}
	return nil
}

// changeSignal wakes whoever waits for a change: changes returns a channel
// that the next signal closes. Take it before checking a state, then wait
// on it: no change is missed. The zero value is ready to use.
type changeSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *changeSignal) changes() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *changeSignal) signal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
	}
	s.ch = make(chan struct{})
}

// waitUntil calls cond until it reports done, waking on changes() and every
// poll as a fallback, until ctx ends (ErrTimeout when its deadline passed).
func waitUntil(ctx context.Context, changes func() <-chan struct{}, poll time.Duration, cond func() (bool, error)) error {
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		ch := changes()
		done, err := cond()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		t.Reset(poll)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
			}
			return ctx.Err()
		}
	}
}

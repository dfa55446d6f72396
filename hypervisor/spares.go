package hypervisor

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"libvirt.org/go/libvirt"
)

// Domain starts beyond the first few run on spare connections.
//
// libvirtd serves at most max_client_requests calls of one client
// connection at once (5 by default, libvirtd.conf), and a start holds its
// call for as long as QEMU takes to come up. On one connection the 15
// failover starts of a survivor went through in batches of 5, several
// seconds apart under load, while libvirt alone started the same guests all
// at once in two thirds of the time. So a Conn runs up to callsPerConn starts
// on its own connection and the rest on spare connections, opened when a
// burst needs them and closed when their last start returns.

// callsPerConn is how many starts share one connection: below libvirtd's
// default max_client_requests of 5, leaving room for the other calls.
const callsPerConn = 4

// maxSpares caps the spare connections of one Conn: with the main one they
// carry 4 × 5 = 20 starts at once, libvirtd's default max_workers.
const maxSpares = 4

// pool hands out connections of type T for calls that may block for long:
// the main one while it has fewer than callsPerConn of them, else the spare
// with the most free room, else a new spare (up to max), else the least busy
// one (libvirtd queues the call). A spare is closed when its last call
// returns, or marked dead by the caller that found it broken. Generic over T
// so that its choices are tested without libvirtd.
type pool[T any] struct {
	open  func() (T, error)
	close func(T)
	max   int

	mu     sync.Mutex
	onMain int
	spares []*spare[T]
}

type spare[T any] struct {
	conn  T
	err   error         // why open failed
	ready chan struct{} // closed once conn or err is set
	busy  int
	dead  bool
}

// lease is one call's hold on a connection: main, or a spare.
type lease[T any] struct {
	p *pool[T]
	s *spare[T] // nil: the main connection
}

// get returns where the next call runs. When opening a spare fails, the
// call runs on the main connection and libvirtd queues it.
func (p *pool[T]) get() (lease[T], T) {
	var zero T
	p.mu.Lock()
	if p.onMain < callsPerConn || p.max == 0 {
		p.onMain++
		p.mu.Unlock()
		return lease[T]{p: p}, zero
	}
	var pick *spare[T]
	for _, s := range p.spares {
		if !s.dead && (pick == nil || s.busy < pick.busy) {
			pick = s
		}
	}
	if pick == nil || (pick.busy >= callsPerConn && len(p.spares) < p.max) {
		pick = &spare[T]{ready: make(chan struct{})}
		p.spares = append(p.spares, pick)
		pick.busy++
		p.mu.Unlock()
		conn, err := p.open()
		p.mu.Lock()
		pick.conn, pick.err = conn, err
		if err != nil {
			pick.dead = true
		}
		close(pick.ready)
	} else {
		pick.busy++
		p.mu.Unlock()
		<-pick.ready
		p.mu.Lock()
	}
	if pick.err != nil {
		p.releaseLocked(pick)
		p.onMain++
		p.mu.Unlock()
		return lease[T]{p: p}, zero
	}
	p.mu.Unlock()
	return lease[T]{p: p, s: pick}, pick.conn
}

// put ends the call; broken says the caller found the spare dead.
func (l lease[T]) put(broken bool) {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	if l.s == nil {
		l.p.onMain--
		return
	}
	if broken {
		l.s.dead = true
	}
	l.p.releaseLocked(l.s)
}

func (p *pool[T]) releaseLocked(s *spare[T]) {
	s.busy--
	if s.busy > 0 {
		return
	}
	for i, x := range p.spares {
		if x == s {
			p.spares = append(p.spares[:i], p.spares[i+1:]...)
			break
		}
	}
	if s.err == nil {
		go p.close(s.conn) // closing talks to libvirtd: not under the lock
	}
}

// spareCount is how many spare connections are open or opening.
func (p *pool[T]) spareCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.spares)
}

// newStartPool returns the start pool of a Conn. Local drivers (test:///)
// get no spares: each connection to them is a separate hypervisor.
func newStartPool(cfg Config) *pool[*libvirt.Connect] {
	p := &pool[*libvirt.Connect]{max: maxSpares,
		open: func() (*libvirt.Connect, error) {
			lc, err := libvirt.NewConnect(cfg.URI)
			if err != nil {
				return nil, err
			}
			if err := lc.SetKeepAlive(int(cfg.KeepAliveInterval/time.Second), cfg.KeepAliveCount); err != nil {
				lc.Close()
				return nil, fmt.Errorf("set keepalive: %w", err)
			}
			return lc, nil
		},
		close: func(lc *libvirt.Connect) { _, _ = lc.Close() },
	}
	if strings.HasPrefix(cfg.URI, "test:") {
		p.max = 0
	}
	return p
}

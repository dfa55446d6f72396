// Package storagetest provides a fault-injecting storage.Device for tests of
// the layers above storage: I/O errors, latency, hangs until released, torn
// writes and dropped writes, per host. It wraps a real device (normally a
// file opened with O_DIRECT), so everything it does not break is real I/O.
//
// It is a test seam for SAN failures that cannot be produced on one machine;
// production code never imports it.
package storagetest

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// Op selects which I/O a fault applies to.
type Op uint8

const (
	Reads  Op = 1 << iota
	Writes    // writes
	AllIO  = Reads | Writes
)

// Fault is one rule. The zero Fault does nothing.
type Fault struct {
	Op Op
	// Blocks restricts the fault to I/Os that touch [From, To) (4096-byte
	// blocks); To == 0 means every block.
	From, To int64
	// EIO fails the I/O with EIO without touching the device.
	EIO bool
	// Latency delays the I/O before it runs.
	Latency time.Duration
	// Hang blocks the I/O until Release, Clear or the device's Close is called.
	Hang bool
	// TornAfter, for writes, writes only the first TornAfter bytes and then
	// fails with EIO: what a crash or path loss mid-write leaves behind.
	TornAfter int
	// Drop, for writes, reports success but writes nothing (a lost write).
	Drop bool
	// Count limits how many I/Os the fault hits; 0 means unlimited.
	Count int
}

// Controller holds the faults of several hosts' devices, so one test can
// break the LUN for one host while others keep working, as a SAN path
// failure does.
type Controller struct {
	mu      sync.Mutex
	faults  map[string][]*Fault // by host name
	release chan struct{}
	stats   map[string]*Stats
}

// Stats counts what a host's device did.
type Stats struct {
	Reads, Writes, Failed, Hung, Torn, Dropped int
}

// NewController returns a controller with no faults.
func NewController() *Controller {
	return &Controller{faults: map[string][]*Fault{}, release: make(chan struct{}), stats: map[string]*Stats{}}
}

// Inject adds a fault for host ("" is every host).
func (c *Controller) Inject(host string, f Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ff := f
	c.faults[host] = append(c.faults[host], &ff)
}

// Clear removes every fault of host ("" clears the faults that apply to all
// hosts) and releases hung I/Os.
func (c *Controller) Clear(host string) {
	c.mu.Lock()
	delete(c.faults, host)
	c.mu.Unlock()
	c.Release()
}

// Release lets every hung I/O proceed.
func (c *Controller) Release() {
	c.mu.Lock()
	close(c.release)
	c.release = make(chan struct{})
	c.mu.Unlock()
}

// Stats returns a copy of host's counters.
func (c *Controller) Stats(host string) Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.stats[host]; s != nil {
		return *s
	}
	return Stats{}
}

// Device wraps dev as seen by host.
func (c *Controller) Device(host string, dev storage.Device) *Device {
	c.mu.Lock()
	if c.stats[host] == nil {
		c.stats[host] = &Stats{}
	}
	c.mu.Unlock()
	return &Device{Device: dev, c: c, host: host, closed: make(chan struct{})}
}

// Device is a storage.Device with faults.
type Device struct {
	storage.Device
	c    *Controller
	host string

	closeOnce sync.Once
	closed    chan struct{} // closed by Close: ends this device's hung I/Os
}

// Grow grows the wrapped device when it can (a file LUN grows to hold the
// cluster-records area); the caller checks Size afterwards.
func (d *Device) Grow(size int64) error {
	if g, ok := d.Device.(interface{ Grow(int64) error }); ok {
		return g.Grow(size)
	}
	return nil
}

// Close ends this device's hung I/Os (they fail with os.ErrClosed) and
// closes the wrapped device.
func (d *Device) Close() error {
	d.closeOnce.Do(func() { close(d.closed) })
	return d.Device.Close()
}

// match returns the first fault that applies and consumes one of its uses.
func (c *Controller) match(host string, op Op, off int64, n int) (Fault, chan struct{}, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first, last := off/storage.BlockSize, (off+int64(n)-1)/storage.BlockSize
	for _, h := range []string{host, ""} {
		for _, f := range c.faults[h] {
			if f.Op&op == 0 || (f.To != 0 && (last < f.From || first >= f.To)) {
				continue
			}
			if f.Count < 0 {
				continue // used up
			}
			fc := *f
			if f.Count > 0 {
				f.Count--
				if f.Count == 0 {
					f.Count = -1
				}
			}
			return fc, c.release, true
		}
	}
	return Fault{}, nil, false
}

func (c *Controller) count(host string, fn func(*Stats)) {
	c.mu.Lock()
	fn(c.stats[host])
	c.mu.Unlock()
}

func (d *Device) apply(op Op, p []byte, off int64) (done bool, n int, err error) {
	f, rel, ok := d.c.match(d.host, op, off, len(p))
	if !ok {
		return false, 0, nil
	}
	if f.Latency > 0 {
		time.Sleep(f.Latency)
	}
	if f.Hang {
		d.c.count(d.host, func(s *Stats) { s.Hung++ })
		select {
		case <-rel:
		case <-d.closed:
			return true, 0, os.ErrClosed
		}
	}
	switch {
	case f.EIO:
		d.c.count(d.host, func(s *Stats) { s.Failed++ })
		return true, 0, syscall.EIO
	case op == Writes && f.Drop:
		d.c.count(d.host, func(s *Stats) { s.Dropped++ })
		return true, len(p), nil
	case op == Writes && f.TornAfter > 0:
		d.c.count(d.host, func(s *Stats) { s.Torn++ })
		return true, 0, d.tear(p, off, f.TornAfter)
	}
	return false, 0, nil
}

// tear writes the first keep bytes of p over what is on disk, then fails.
func (d *Device) tear(p []byte, off int64, keep int) error {
	// Read-modify-write through the aligned path of the real device.
	old := make([]byte, len(p)+storage.BlockSize)
	a := alignedSlice(old, len(p))
	if _, err := d.Device.ReadAt(a, off); err != nil {
		return err
	}
	copy(a, p[:min(keep, len(p))])
	if _, err := d.Device.WriteAt(a, off); err != nil {
		return err
	}
	return errors.Join(syscall.EIO, errors.New("storagetest: torn write"))
}

// ReadAt implements storage.Device.
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	d.c.count(d.host, func(s *Stats) { s.Reads++ })
	if done, n, err := d.apply(Reads, p, off); done {
		return n, err
	}
	return d.Device.ReadAt(p, off)
}

// WriteAt implements storage.Device.
func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	d.c.count(d.host, func(s *Stats) { s.Writes++ })
	if done, n, err := d.apply(Writes, p, off); done {
		return n, err
	}
	return d.Device.WriteAt(p, off)
}

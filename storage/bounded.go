package storage

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// maxStuck caps how many abandoned I/Os (timed out or canceled, not yet
// returned by the kernel) there may be before new ones fail at once: a hung
// LUN must not pile up threads. I/Os still within io_timeout never count: a
// failover of many VMs has dozens in flight at once on a healthy LUN, and
// the heartbeat's write must not fail because of them.
const maxStuck = 8

// boundedIO runs every I/O with a deadline and never lets two writes to one
// block be in flight at once: a write that timed out may still land later, and
// a second write to the same block could then be overwritten by the older one.
type boundedIO struct {
	dev     Device
	timeout time.Duration

	mu          sync.Mutex
	stuck       int             // abandoned I/Os the kernel has not returned yet
	writeBlocks map[int64]int64 // offset -> length of each in-flight write

	reads, writes       atomic.Uint64 // I/Os issued, for IOStats
	readErrs, writeErrs atomic.Uint64 // of them, those that failed
	observe             func(write bool, took time.Duration, err error)
}

func newBoundedIO(dev Device, timeout time.Duration) *boundedIO {
	return &boundedIO{dev: dev, timeout: timeout, writeBlocks: map[int64]int64{}}
}

type ioResult struct {
	n   int
	err error
}

// overlapsWrite reports whether [off, off+n) overlaps an in-flight write. Caller holds mu.
func (b *boundedIO) overlapsWrite(off int64, n int) bool {
	end := off + int64(n)
	for start, length := range b.writeBlocks {
		if off < start+length && start < end {
			return true
		}
	}
	return false
}

// do runs one I/O on buf, an aligned buffer (alignedBuf) that the I/O owns
// until it completes: after a timeout the kernel may still read or fill it,
// so the caller must not touch or reuse it unless do returned nil.
func (b *boundedIO) do(ctx context.Context, write bool, off int64, buf []byte) (err error) {
	if off%BlockSize != 0 || len(buf)%BlockSize != 0 || len(buf) == 0 {
		return fmt.Errorf("lun %s: %w: unaligned I/O at %d length %d", b.dev.Path(), ErrInvalid, off, len(buf))
	}
	if off+int64(len(buf)) > b.dev.Size() {
		return &BlockError{Path: b.dev.Path(), Block: off / BlockSize, What: "I/O", Err: ErrTooSmall,
			Hint: fmt.Sprintf("device is %d bytes; was it shrunk, or is this the wrong device?", b.dev.Size())}
	}
	b.mu.Lock()
	if b.stuck >= maxStuck {
		b.mu.Unlock()
		return &BlockError{Path: b.dev.Path(), Block: off / BlockSize, What: "I/O", Err: ErrIOTimeout,
			Hint: fmt.Sprintf("%d earlier I/Os are still stuck; check the storage path (multipath -ll, dmesg)", maxStuck)}
	}
	if write {
		if b.overlapsWrite(off, len(buf)) {
			b.mu.Unlock()
			return &BlockError{Path: b.dev.Path(), Block: off / BlockSize, What: "write", Err: ErrIOPending,
				Hint: "the storage path is stalling; retry after the earlier write completes"}
		}
		b.writeBlocks[off] = int64(len(buf))
	}
	b.mu.Unlock()
	if write {
		b.writes.Add(1)
	} else {
		b.reads.Add(1)
	}
	issued := time.Now()
	defer func() { b.ended(write, time.Since(issued), err) }()

	done := make(chan ioResult, 1)
	var returned, abandoned bool // under b.mu
	go func() {
		var n int
		var err error
		if write {
			n, err = b.dev.WriteAt(buf, off)
		} else {
			n, err = b.dev.ReadAt(buf, off)
		}
		b.mu.Lock()
		returned = true
		if abandoned {
			b.stuck--
		}
		if write {
			delete(b.writeBlocks, off)
		}
		b.mu.Unlock()
		done <- ioResult{n, err}
	}()

	timer := time.NewTimer(b.timeout)
	defer timer.Stop()
	op := "read"
	if write {
		op = "write"
	}
	abandon := func() {
		b.mu.Lock()
		if !returned {
			abandoned = true
			b.stuck++
		}
		b.mu.Unlock()
	}
	select {
	case r := <-done:
		progressed(ctx)
		if r.err != nil {
			return &BlockError{Path: b.dev.Path(), Block: off / BlockSize, What: op, Err: r.err,
				Hint: "check the storage path (dmesg, multipath -ll)"}
		}
		if r.n != len(buf) {
			return &BlockError{Path: b.dev.Path(), Block: off / BlockSize, What: op,
				Err: fmt.Errorf("short %s: %d of %d bytes", op, r.n, len(buf)), Hint: "is the device smaller than its header says?"}
		}
		return nil
	case <-timer.C:
		abandon()
		return &BlockError{Path: b.dev.Path(), Block: off / BlockSize, What: op, Err: ErrIOTimeout,
			Hint: fmt.Sprintf("no answer within io_timeout %v; check the storage path", b.timeout)}
	case <-ctx.Done():
		abandon()
		return fmt.Errorf("lun %s block %d %s: %w", b.dev.Path(), off/BlockSize, op, ctx.Err())
	}
}

// ended counts an issued I/O's failure and tells the observer.
func (b *boundedIO) ended(write bool, took time.Duration, err error) {
	switch {
	case err != nil && write:
		b.writeErrs.Add(1)
	case err != nil:
		b.readErrs.Add(1)
	}
	if b.observe != nil {
		b.observe(write, took, err)
	}
}

// read returns the n bytes at off in a buffer of the I/O's own: once it
// completed, nothing else touches it.
func (b *boundedIO) read(ctx context.Context, off int64, n int) ([]byte, error) {
	io := alignedBuf(n)
	if err := b.do(ctx, false, off, io); err != nil {
		return nil, err
	}
	return io, nil
}

// write writes p at off from a copy: after a timeout the caller may reuse p
// while the kernel still reads the copy.
func (b *boundedIO) write(ctx context.Context, off int64, p []byte) error {
	io := alignedBuf(len(p))
	copy(io, p)
	return b.do(ctx, true, off, io)
}

package storage

import "context"

type progressKey struct{}

// WithProgress returns a context whose LUN I/Os call progress each time one
// completes, with or without an error; an I/O that times out does not call
// it. A scan of every VM record on a slow SAN path is hundreds of slow but
// completing I/Os: a caller that proves its liveness to a watchdog guard by
// finishing steps can tick the guard with it, so that it tells slow storage
// (progress) from hung storage (none). progress must not block.
func WithProgress(ctx context.Context, progress func()) context.Context {
	return context.WithValue(ctx, progressKey{}, progress)
}

// progressed tells ctx's progress function, if any, that an I/O completed.
func progressed(ctx context.Context) {
	Progressed(ctx)
}

// Progressed calls ctx's progress function, if any. Other waits that are
// slow but provably alive report through it too: a libvirt start on a
// loaded host while libvirtd still answers.
func Progressed(ctx context.Context) {
	if f, ok := ctx.Value(progressKey{}).(func()); ok && f != nil {
		f()
	}
}

package vm

import (
	"context"
	"log/slog"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/reconcile"
)

// Progress is told that a loop progresses (*watchdog.Loop): Tick at every
// step of the loop, Done when it ends.
type Progress interface {
	Tick()
	Done()
}

// stepTimeout bounds one step; each LUN I/O it completes is progress.
const stepTimeout = 5 * time.Minute

// Run runs m's Step on every decision it receives, until ctx ends. A
// failover starts VMs in waves (the concurrency limits): it runs the next
// wave as soon as one is done, not at the next decision, up to 20 waves,
// and a newer decision replaces the one it works on.
func Run(ctx context.Context, m *Manager, decisions <-chan quorum.Decision, tick Progress, log *slog.Logger) {
	defer tick.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case dec := <-decisions:
			for round := 0; round < 20; round++ {
				tick.Tick()
				// A step reads every VM record (hundreds of LUN I/Os): on a
				// slow SAN path each completed I/O is progress, not a stall.
				sctx, cancel := context.WithTimeout(storage.WithProgress(ctx, tick.Tick), stepTimeout)
				acts, err := m.Step(sctx, dec, time.Now())
				cancel()
				if err != nil {
					log.Warn("vm manager step", "err", err)
				}
				if !startedAny(acts) || ctx.Err() != nil {
					break
				}
				select { // a newer decision replaces this one
				case dec = <-decisions:
				default:
				}
			}
			tick.Tick()
		}
	}
}

func startedAny(acts []reconcile.Action) bool {
	for _, a := range acts {
		if a.Kind == reconcile.TakeAndStart || a.Kind == reconcile.ClaimMigrated {
			return true
		}
	}
	return false
}

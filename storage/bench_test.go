package storage_test

import (
	"fmt"
	"testing"

	"github.com/wingmanha/wingman/storage"
)

// BenchmarkHeartbeatCycle measures one Renew on a real O_DIRECT file: one
// read of every slot and one write of our own.
func BenchmarkHeartbeatCycle(b *testing.B) {
	for _, hosts := range []int{16, 64} {
		b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) {
			ctx := testCtx(b)
			tm := testTimings()
			path := lunFile(b, storage.FormatOptions{Timings: tm,
				Geometry: storage.Geometry{MaxHosts: hosts, MaxVMs: 1, EventBlocks: 1, ConfigBlks: 2}})
			hb := acquire(b, openLUN(b, path), 1, "kvm1")
			perCycle := int64(hosts+1) * storage.BlockSize
			b.SetBytes(perCycle)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := hb.Renew(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(perCycle), "bytes/cycle")
		})
	}
}

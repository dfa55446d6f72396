package hypervisor

import "time"

// backoff returns the wait before reconnect attempt n (0-based): min doubled
// n times, capped at max. No jitter: each host has one libvirtd, so there is
// no herd of clients to spread out.
func backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 0; i < n && d < max; i++ {
		if d > max/2 {
			// Doubling would pass max, or overflow into a zero or negative
			// wait that turns the reconnect loop into a busy loop.
			return max
		}
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

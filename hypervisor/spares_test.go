package hypervisor

import (
	"errors"
	"sync"
	"testing"
)

// intPool is a start pool over numbered fake connections; opened lists them.
func intPool(max int, fail bool) (*pool[int], *[]int) {
	var mu sync.Mutex
	var opened []int
	p := &pool[int]{max: max,
		open: func() (int, error) {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return 0, errors.New("too many clients")
			}
			opened = append(opened, len(opened)+1)
			return len(opened), nil
		},
		close: func(int) {},
	}
	return p, &opened
}

func TestStartPoolSpreadsABurst(t *testing.T) {
	p, opened := intPool(maxSpares, false)
	on := map[int]int{} // connection (0: main) -> calls
	var leases []lease[int]
	for range 16 {
		l, c := p.get()
		leases = append(leases, l)
		on[c]++
	}
	// 4 on the main connection, then 4 on each of 3 spares.
	if on[0] != callsPerConn || len(*opened) != 3 {
		t.Fatalf("16 calls: %v on connections, %d spares opened; want 4 each on main and 3 spares", on, len(*opened))
	}
	for c, n := range on {
		if n > callsPerConn {
			t.Errorf("connection %d carries %d calls, more than %d", c, n, callsPerConn)
		}
	}
	// Past the cap, calls queue on the least busy spare.
	for range 8 {
		l, c := p.get()
		leases = append(leases, l)
		on[c]++
	}
	if len(*opened) != maxSpares || on[0] != callsPerConn {
		t.Errorf("24 calls: %v on connections, %d spares; want main at 4 and %d spares", on, len(*opened), maxSpares)
	}
	for _, l := range leases {
		l.put(false)
	}
	if n := p.spareCount(); n != 0 {
		t.Errorf("%d spares still open after every call returned", n)
	}
}

func TestStartPoolReusesABusySpareBeforeOpening(t *testing.T) {
	p, opened := intPool(maxSpares, false)
	for range callsPerConn + 1 {
		p.get() // fill main, one on a spare
	}
	l, c := p.get()
	if c != 1 || len(*opened) != 1 {
		t.Errorf("call went to connection %d with %d spares opened; want the open spare 1", c, len(*opened))
	}
	l.put(false)
}

func TestStartPoolFallsBackToMainWhenASpareCannotOpen(t *testing.T) {
	p, _ := intPool(maxSpares, true)
	for range callsPerConn {
		p.get()
	}
	l, c := p.get()
	if l.s != nil || c != 0 {
		t.Fatalf("open failed, yet the call got spare %d", c)
	}
	if n := p.spareCount(); n != 0 {
		t.Errorf("a spare that failed to open is still counted (%d)", n)
	}
	l.put(false)
}

func TestStartPoolDropsABrokenSpare(t *testing.T) {
	p, opened := intPool(maxSpares, false)
	for range callsPerConn {
		p.get()
	}
	a, _ := p.get()
	b, _ := p.get() // both on spare 1
	a.put(true)     // a found it dead
	l, c := p.get()
	if c == 1 {
		t.Errorf("a call went to spare 1 after it was found broken")
	}
	b.put(false)
	l.put(false)
	if len(*opened) != 2 {
		t.Errorf("%d spares opened, want 2 (one replacing the broken one)", len(*opened))
	}
	if p.spareCount() != 0 {
		t.Errorf("spares left open: %d", p.spareCount())
	}
}

func TestTestDriverGetsNoSpares(t *testing.T) {
	cfg := DefaultConfig()
	cfg.URI = "test:///default"
	if p := newStartPool(cfg); p.max != 0 {
		t.Errorf("test:/// pool may open %d spares; each test:/// connection is a separate hypervisor", p.max)
	}
}

// Package isolation probes this host's isolation addresses (vSphere's
// das.isolationaddress, Pacemaker's ping): devices every host should reach,
// like the gateway. A host cut off from its peers that still reaches one of
// them is not isolated; the heartbeat loop publishes what the Prober found
// in the host's slot, and quorum decides on it (a tie between two halves, a
// poison pill).
//
// A probe is an ICMP echo, as ping sends: a gateway answers it where it
// answers nothing else (a TCP connect to a router's port is dropped by its
// firewall more often than not, which would make a healthy host look
// isolated). wingmand runs as root, so it opens a raw ICMP socket; without
// that privilege it falls back to the kernel's unprivileged ping socket
// (net.ipv4.ping_group_range).
//
// This package does network I/O only; it decides nothing.
package isolation

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Config is the [isolation] section of wingman.toml.
type Config struct {
	// Addresses are IP addresses or host names of devices this host should
	// always reach (its gateway, a core switch). Empty: none, and a tie
	// between two halves goes to the lowest host id.
	Addresses []string `toml:"addresses"`
}

// Problem is a bad key of Config: the key and what to do.
type Problem struct{ Key, Msg string }

// Problems checks every address: an IP address or a host name.
func (c Config) Problems() []Problem {
	var out []Problem
	for i, a := range c.Addresses {
		if err := CheckAddress(a); err != nil {
			out = append(out, Problem{Key: fmt.Sprintf("addresses[%d]", i), Msg: err.Error()})
		}
	}
	return out
}

// CheckAddress reports whether a is an IP address or a host name.
func CheckAddress(a string) error {
	if _, err := netip.ParseAddr(a); err == nil {
		return nil
	}
	fix := "write an IP address (like the gateway's, \"192.0.2.1\") or a host name that every host resolves"
	if a == "" || len(a) > 253 {
		return fmt.Errorf("%q is not an IP address or a host name (1 to 253 bytes): %s", a, fix)
	}
	for _, l := range strings.Split(strings.TrimSuffix(a, "."), ".") {
		ok := len(l) >= 1 && len(l) <= 63 && l[0] != '-' && l[len(l)-1] != '-'
		for _, c := range l {
			ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-')
		}
		if !ok {
			return fmt.Errorf("%q is not an IP address or a host name (label %q): %s", a, l, fix)
		}
	}
	return nil
}

// Prober probes the addresses every interval, all at once, each bounded by
// the interval, and remembers when the latest round that reached one began.
// A nil Prober has no address configured.
type Prober struct {
	addrs    []string
	interval time.Duration
	probe    func(ctx context.Context, addr string) error
	start    time.Time    // monotonic origin of last
	last     atomic.Int64 // nanoseconds since start of the latest successful round; -1: none
}

// New returns a prober of cfg's addresses that probes every interval (the
// heartbeat's R, so that a round ends before the next begins); nil when no
// address is configured.
func New(cfg Config, interval time.Duration) *Prober {
	return newProber(cfg, interval, Ping)
}

func newProber(cfg Config, interval time.Duration, probe func(context.Context, string) error) *Prober {
	if len(cfg.Addresses) == 0 {
		return nil
	}
	p := &Prober{addrs: cfg.Addresses, interval: interval, probe: probe, start: time.Now()}
	p.last.Store(-1)
	return p
}

// Configured reports whether there are addresses to probe.
func (p *Prober) Configured() bool { return p != nil }

// Reached is how long ago the latest round that reached an address began.
func (p *Prober) Reached() (time.Duration, bool) {
	if p == nil {
		return 0, false
	}
	last := p.last.Load()
	if last < 0 {
		return 0, false
	}
	return time.Since(p.start) - time.Duration(last), true
}

// Run probes until ctx ends.
func (p *Prober) Run(ctx context.Context) {
	if p == nil {
		return
	}
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round probes every address once, at once, and reports whether one answered.
func (p *Prober) Round(ctx context.Context) bool {
	began := time.Since(p.start)
	ctx, cancel := context.WithTimeout(ctx, p.interval)
	defer cancel()
	var wg sync.WaitGroup
	var ok atomic.Bool
	for _, a := range p.addrs {
		wg.Go(func() {
			if p.probe(ctx, a) == nil {
				ok.Store(true)
				cancel() // one is enough
			}
		})
	}
	wg.Wait()
	if ok.Load() {
		p.last.Store(int64(began))
	}
	return ok.Load()
}

// Ping sends one ICMP echo to addr (resolved first if it is a name) and
// waits for its reply until ctx ends.
func Ping(ctx context.Context, addr string) error {
	ip, err := resolve(ctx, addr)
	if err != nil {
		return err
	}
	v4 := ip.Is4() || ip.Is4In6()
	networks, proto, typ, reply := []string{"ip4:icmp", "udp4"}, 1, icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply)
	if !v4 {
		networks, proto, typ, reply = []string{"ip6:ipv6-icmp", "udp6"}, 58, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	var c *icmp.PacketConn
	for _, n := range networks {
		if c, err = icmp.ListenPacket(n, ""); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("ping %s: open an ICMP socket (wingmand needs root, or ping_group_range): %w", addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	id, seq := rand.IntN(1<<16), rand.IntN(1<<16)
	b, _ := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("wingman isolation probe")}}).Marshal(nil)
	var dst net.Addr = &net.IPAddr{IP: ip.AsSlice()}
	if c.LocalAddr().Network() == "udp" {
		dst = &net.UDPAddr{IP: ip.AsSlice()}
	}
	if _, err := c.WriteTo(b, dst); err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("ping %s: no reply: %w", addr, err)
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != reply {
			continue
		}
		// The unprivileged socket's kernel sets the id; seq is ours.
		if e, ok := m.Body.(*icmp.Echo); ok && e.Seq == seq && (e.ID == id || c.LocalAddr().Network() == "udp") {
			return nil
		}
	}
}

func resolve(ctx context.Context, addr string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(addr); err == nil {
		return ip, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", addr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve %s: %w", addr, err)
	}
	if len(ips) == 0 {
		return netip.Addr{}, errors.New("resolve " + addr + ": no address")
	}
	return ips[0], nil
}

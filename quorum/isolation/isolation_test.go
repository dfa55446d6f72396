package isolation

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckAddress(t *testing.T) {
	for _, a := range []string{"192.0.2.1", "2001:db8::1", "gw", "gw-1.example.net", "gw.example.net."} {
		if err := CheckAddress(a); err != nil {
			t.Errorf("%q: %v", a, err)
		}
	}
	for _, a := range []string{"", "192.0.2.1:80", "gw_1", "-gw", "a..b", "http://gw", strings.Repeat("a", 64)} {
		err := CheckAddress(a)
		if err == nil || !strings.Contains(err.Error(), "write an IP address") {
			t.Errorf("%q: %v, want an error that says what to write", a, err)
		}
	}
	probs := Config{Addresses: []string{"192.0.2.1", "not an address"}}.Problems()
	if len(probs) != 1 || probs[0].Key != "addresses[1]" {
		t.Errorf("problems %+v, want one for addresses[1]", probs)
	}
}

func TestNoAddressesNoProber(t *testing.T) {
	p := New(Config{}, time.Second)
	if p.Configured() {
		t.Error("a prober without addresses says it is configured")
	}
	if _, ok := p.Reached(); ok {
		t.Error("a prober without addresses reached one")
	}
	p.Run(context.Background()) // returns at once
}

// TestRoundOneAddressIsEnough: a round reaches when one address answers,
// and remembers when it began; a round where none answers leaves that.
func TestRoundOneAddressIsEnough(t *testing.T) {
	up := map[string]bool{"gw1": false, "gw2": true}
	p := newProber(Config{Addresses: []string{"gw1", "gw2"}}, 200*time.Millisecond, func(ctx context.Context, a string) error {
		if up[a] {
			return nil
		}
		<-ctx.Done() // no reply: the round's timeout ends it
		return errors.New("no reply")
	})
	if _, ok := p.Reached(); ok {
		t.Fatal("reached before any round")
	}
	if !p.Round(context.Background()) {
		t.Fatal("a round with gw2 answering did not reach")
	}
	ago, ok := p.Reached()
	if !ok || ago < 0 || ago > time.Second {
		t.Fatalf("reached %v ago, %v", ago, ok)
	}
	up["gw2"] = false
	began := time.Now()
	if p.Round(context.Background()) {
		t.Fatal("a round with no answer reached")
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("a round took %v: each probe is bounded by the interval", took)
	}
	if again, ok := p.Reached(); !ok || again < ago {
		t.Errorf("after a failed round: reached %v ago (%v), want the earlier round's", again, ok)
	}
}

// TestPingLoopback sends a real ICMP echo to the loopback address.
func TestPingLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := Ping(ctx, "127.0.0.1")
	if err != nil && strings.Contains(err.Error(), "open an ICMP socket") {
		t.Skipf("no ICMP socket here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := Ping(ctx, "localhost"); err != nil {
		t.Errorf("by name: %v", err)
	}
}

package quorum

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDisarmRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		running time.Duration // a disarm accepted first, 0: none
		req     DisarmRequest
		err     error
		want    string
	}{
		{"negative", 0, DisarmRequest{For: -time.Second}, ErrDisarmInvalid, "give one from 1s to 24h0m0s"},
		{"too long", 0, DisarmRequest{For: 25 * time.Hour}, ErrDisarmInvalid, "disarm again to extend"},
		{"too short", 0, DisarmRequest{For: time.Millisecond}, ErrDisarmInvalid, "at least 1s"},
		{"long reason", 0, DisarmRequest{For: time.Hour, Reason: strings.Repeat("x", 101)}, ErrDisarmInvalid, "within 100"},
		{"failover", 0, DisarmRequest{For: time.Hour, Failover: "host 3 declared dead"}, ErrDisarmRefused, "a failover is in progress (host 3 declared dead)"},
		{"shortens", time.Hour, DisarmRequest{For: time.Minute}, ErrDisarmRefused, "would end sooner; give a longer duration, or --force"},
		{"shortens with force", time.Hour, DisarmRequest{For: time.Minute, Force: true}, nil, ""},
		{"extends", time.Hour, DisarmRequest{For: 2 * time.Hour}, nil, ""},
		{"arm during a failover", time.Hour, DisarmRequest{Failover: "host 3 declared dead"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := threeHosts(t, 20*time.Second)
			now := 20 * time.Second
			if tc.running > 0 {
				if _, err := n.Disarm(now, DisarmRequest{For: tc.running}); err != nil {
					t.Fatal(err)
				}
			}
			dm, err := n.Disarm(now+time.Second, tc.req)
			if !errors.Is(err, tc.err) || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Disarm(%+v) = %v, want %v containing %q", tc.req, err, tc.err, tc.want)
			}
			if err == nil && (dm.By != 1 || dm.For != tc.req.For || dm.Gen != uint64(1+min(tc.running, 1))) {
				t.Errorf("request = %+v", dm)
			}
		})
	}
}

func TestDisarmRefusedWithoutHeartbeatWrites(t *testing.T) {
	n := threeHosts(t, 20*time.Second)
	_, err := n.Disarm(30*time.Second, DisarmRequest{For: time.Hour})
	if !errors.Is(err, ErrDisarmRefused) || !strings.Contains(err.Error(), "run it on a host that writes the LUN") {
		t.Fatalf("err = %v", err)
	}
}

// A disarm exempts this host from self-fencing only once a write carrying
// its acknowledgement has completed: observers count on what they read.
func TestDisarmExemptsOnlyOnceAcknowledged(t *testing.T) {
	n := threeHosts(t, 20*time.Second)
	now := 20 * time.Second
	if _, err := n.Disarm(now, DisarmRequest{For: time.Minute}); err != nil {
		t.Fatal(err)
	}
	d := n.Decide(now)
	n.Executed(d)
	if !d.Disarm.Disarmed || d.Disarm.Exempt {
		t.Fatalf("before the acknowledgement landed: %+v, want disarmed, not exempt", d.Disarm)
	}
	if d := n.Decide(now + 5*time.Second); d.MayRunVMs {
		t.Fatal("may run VMs 5s after its last write, without an acknowledged disarm")
	}
	n.Wrote(now+time.Second, n.SlotWrite())
	if d := n.Decide(now + 30*time.Second); !d.MayRunVMs || !d.Disarm.Exempt {
		t.Fatalf("30s into an acknowledged disarm: may run %v, %+v", d.MayRunVMs, d.Disarm)
	}
	// It re-arms at now+60s; its self-fence clock counts from then.
	if d := n.Decide(now + 63*time.Second); !d.MayRunVMs || d.Disarm.Disarmed {
		t.Fatalf("3s after re-arming: may run %v, %+v", d.MayRunVMs, d.Disarm)
	}
	if d := n.Decide(now + 64*time.Second); d.MayRunVMs {
		t.Fatal("F after re-arming without a write: still may run VMs")
	}
	var kinds []string
	for _, e := range n.Events() {
		kinds = append(kinds, e.Kind)
	}
	if strings.Join(kinds, " ") != "ha-disarmed ha-rearmed" {
		t.Errorf("events %v, want ha-disarmed ha-rearmed", kinds)
	}
}

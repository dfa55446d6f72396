package reconcile

import (
	"slices"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm/plan"
)

// TestDiskLossDecision: what the owner of a VM paused on an I/O error does,
// as a function of how long it has been paused, the policy, the VM's own
// io-error policy and this host's health.
func TestDiskLossDecision(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	on := DiskLossPolicy{Restart: true, Grace: time.Minute}
	for _, tc := range []struct {
		name     string
		policy   DiskLossPolicy
		paused   time.Duration
		state    DomainState
		ioerr    plan.IOErrorResponse
		minority bool
		self     quorum.HostState
		want     string // "": nothing; else the action kind, "+lost" for a disk-loss release
	}{
		{name: "within the grace: reported", policy: on, paused: 59 * time.Second, want: "notice"},
		{name: "at the grace: released", policy: on, paused: time.Minute, want: "release+lost"},
		{name: "long after: released", policy: on, paused: time.Hour, want: "release+lost"},
		{name: "resumed by itself: nothing", policy: on, paused: time.Hour, state: DomainRunning},
		{name: "paused by the operator: nothing", policy: on, paused: time.Hour, state: DomainPaused},
		{name: "policy off: the VM's own wait", policy: DiskLossPolicy{}, paused: time.Hour, want: "notice"},
		{name: "own response resume wins", policy: on, paused: time.Hour, ioerr: plan.IOErrorResume, want: "resume"},
		{name: "own response restart wins", policy: on, paused: time.Hour, ioerr: plan.IOErrorRestart, want: "release"},
		{name: "minority: not released", policy: on, paused: time.Hour, minority: true, want: "notice"},
		{name: "this host suspect: not released", policy: on, paused: time.Hour, self: quorum.StateSuspect, want: "notice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DiskLoss = tc.policy
			pol := plan.DefaultPolicy()
			if tc.ioerr != "" {
				pol.IOError.Response = tc.ioerr
			}
			self := tc.self
			if self == 0 {
				self = quorum.StateAlive
			}
			state := tc.state
			if state == "" {
				state = DomainIOError
			}
			in := Input{Now: now, Self: 1, SelfGen: 1, MayRunVMs: true, Quorate: !tc.minority, Config: cfg,
				Hosts:   []Host{{ID: 1, Gen: 1, State: self, Memory: 64 << 30, CPUs: 16}, {ID: 2, Gen: 1, State: quorum.StateAlive, Memory: 64 << 30, CPUs: 16}},
				Records: []Record{{Index: 0, UUID: "u", Name: "vm", Policy: pol, Lease: Lease{Epoch: 3, Owner: Owner{1, 1}}}},
				Local:   []Domain{{UUID: "u", Name: "vm", State: state, Active: true, Since: now.Add(-tc.paused)}}}
			acts := Reconcile(in)
			got := ""
			if len(acts) > 0 {
				got = string(acts[0].Kind)
				if acts[0].DiskLost {
					got += "+lost"
					if !acts[0].Destroy || acts[0].Expect != 3 {
						t.Errorf("disk-loss release %+v: want Destroy at epoch 3", acts[0])
					}
				}
				if acts[0].Kind == Notice && tc.policy.Restart && !tc.minority && self == quorum.StateAlive && acts[0].Event != "paused-io-error" {
					t.Errorf("notice event %q, want paused-io-error", acts[0].Event)
				}
			}
			if got != tc.want || len(acts) > 1 {
				t.Errorf("actions %v, want %q", acts, tc.want)
			}
		})
	}
}

func TestAvoided(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		hosts []int
		seen  time.Duration // ago; <0: never seen
		want  []int
	}{
		{"no mark", nil, time.Minute, nil},
		{"fresh mark, sorted and unique", []int{3, 1, 3}, time.Minute, []int{1, 3}},
		{"just before it ends", []int{2}, AvoidAfterDiskLoss - time.Nanosecond, []int{2}},
		{"ended", []int{2}, AvoidAfterDiskLoss, nil},
		{"not seen yet", []int{2}, -1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Record{AvoidHosts: tc.hosts}
			if tc.seen >= 0 {
				r.AvoidSince = now.Add(-tc.seen)
			}
			if got := Avoided(r, now); !slices.Equal(got, tc.want) {
				t.Errorf("Avoided = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDiskLossPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		grace time.Duration
		ok    bool
	}{{MinDiskLossGrace - time.Second, false}, {MinDiskLossGrace, true}, {DefaultDiskLossGrace, true}, {MaxDiskLossGrace, true}, {MaxDiskLossGrace + 1, false}} {
		err := DiskLossPolicy{Restart: true, Grace: tc.grace}.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("grace %v: error %v, want ok=%v", tc.grace, err, tc.ok)
		}
	}
}

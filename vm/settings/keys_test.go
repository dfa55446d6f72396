package settings

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		key, value string
		want       string // canonical value, or "" when refused
		class      error  // ErrUnknownKey, ErrPerHost, ErrBadValue
		says       []string
	}{
		{key: "failover.guest_agent_wait", value: "300s", want: "5m"},
		{key: "failover.guest_agent_wait", value: " 1h0m ", want: "1h"},
		{key: "failover.guest_agent_wait", value: "90s", want: "1m30s"},
		{key: "maintenance.parallel_migrations", value: "16", want: "16"},
		{key: "maintenance.on_migration_failure", value: "cold-move", want: "cold-move"},
		{key: "maintenance.exec_timeout", value: "2h", want: "2h"},

		{key: "failover.guest_agent_wait", value: "5s", class: ErrBadValue, says: []string{"5s: use 10s to 1h"}},
		{key: "failover.guest_agent_wait", value: "2h", class: ErrBadValue, says: []string{"use 10s to 1h"}},
		{key: "failover.guest_agent_wait", value: "five minutes", class: ErrBadValue, says: []string{"not a duration", "5m"}},
		{key: "maintenance.parallel_migrations", value: "0", class: ErrBadValue, says: []string{"must be 1 to 16"}},
		{key: "maintenance.parallel_migrations", value: "17", class: ErrBadValue, says: []string{"must be 1 to 16"}},
		{key: "maintenance.parallel_migrations", value: "2.5", class: ErrBadValue, says: []string{"not a whole number"}},
		{key: "maintenance.on_migration_failure", value: "migrate", class: ErrBadValue, says: []string{`"report"`, `"cold-move"`}},
		{key: "maintenance.exec_timeout", value: "-5s", class: ErrBadValue, says: []string{"must be positive"}},
		{key: "maintenance.exec_timeout", value: "0s", class: ErrBadValue, says: []string{"0s: must be positive"}},

		{key: "shutdown.policy", value: "keep", class: ErrPerHost, says: []string{"per-host and lives in wingman.toml", "shuts down"}},
		{key: "placement.reserved_memory_mib", value: "2048", class: ErrPerHost, says: []string{"advertises its own limits"}},
		{key: "fence.kvm2.params.password", value: "x", class: ErrPerHost, says: []string{"credentials"}},
		{key: "serf.bind", value: "0.0.0.0:7946", class: ErrPerHost},
		{key: "lun", value: "/dev/sdb", class: ErrPerHost},

		{key: "failover.guest_agent_wiat", value: "1m", class: ErrUnknownKey, says: []string{"did you mean failover.guest_agent_wait?"}},
		{key: "guest_agent_wait", value: "1m", class: ErrUnknownKey, says: []string{"did you mean failover.guest_agent_wait?"}},
		{key: "colour", value: "blue", class: ErrUnknownKey, says: []string{`"colour"`}},
	} {
		t.Run(c.key+"="+c.value, func(t *testing.T) {
			_, got, err := Parse(c.key, c.value)
			if c.class == nil {
				if err != nil || got != c.want {
					t.Fatalf("got %q, %v; want %q", got, err, c.want)
				}
				return
			}
			if !errors.Is(err, c.class) || !errors.Is(err, vm.ErrInvalid) {
				t.Fatalf("got %q, %v; want a refusal of class %v", got, err, c.class)
			}
			var rf *vm.Refusal
			if !errors.As(err, &rf) || rf.Hint == "" {
				t.Fatalf("%v: no hint for the operator", err)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
		})
	}
}

// An unknown key's refusal lists the keys there are.
func TestUnknownKeyListsTheKeys(t *testing.T) {
	_, err := Lookup("colour")
	var rf *vm.Refusal
	if !errors.As(err, &rf) {
		t.Fatalf("got %v", err)
	}
	for _, k := range Keys() {
		if !strings.Contains(rf.Hint, k.Name) {
			t.Errorf("hint %q does not list %s", rf.Hint, k.Name)
		}
	}
}

// The defaults pass the checks; each key's check names the key and the
// range, as wingmand --check-config reports it.
func TestProblems(t *testing.T) {
	if p := Defaults().Problems(); len(p) != 0 {
		t.Fatalf("the defaults have problems: %v", p)
	}
	bad := Values{GuestAgentWait: time.Second, ParallelMigrations: 99, OnMigrationFailure: "panic", ExecTimeout: -5 * time.Second,
		DiskLoss: "sometimes", DiskLossGrace: 5 * time.Second, Quarantine: quorum.QuarantineConfig{Threshold: 1, Window: time.Second}}
	got := bad.Problems()
	if len(got) != len(Keys())-1 { // quarantine.migrate_away has no bad value
		t.Fatalf("got %d problems, want one per key: %v", len(got), got)
	}
	for i, k := range Keys()[:len(got)] {
		if got[i].Key != k.Name || got[i].Msg == "" {
			t.Errorf("problem %d is %+v, want one about %s", i, got[i], k.Name)
		}
	}
	if !strings.Contains(got[5].Msg, "-5s: must be positive") {
		t.Errorf("exec_timeout -5s: %q", got[5].Msg)
	}
	if !strings.Contains(got[1].Msg, `"sometimes": use "restart"`) {
		t.Errorf("disk_loss sometimes: %q", got[1].Msg)
	}
	// The grace's floor and why: a SAN path failover must never trigger it.
	if !strings.Contains(got[2].Msg, "5s: use 15s to 24h") || !strings.Contains(got[2].Msg, "path failover") {
		t.Errorf("disk_loss_grace 5s: %q", got[2].Msg)
	}
}

// Each refusal of a quarantine key's value says the range.
func TestQuarantineKeys(t *testing.T) {
	for _, c := range []struct{ key, value, want string }{
		{"quarantine.threshold", "1", "use 0 (never quarantine) or 2 to 10"},
		{"quarantine.threshold", "many", "not a whole number"},
		{"quarantine.window", "10s", "use 1m to 24h"},
		{"quarantine.duration", "30d", "not a duration"},
		{"quarantine.duration", "200h", "use 1m to 168h"},
		{"quarantine.migrate_away", "maybe", "use true or false"},
	} {
		if _, _, err := Parse(c.key, c.value); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s = %s: %v, want %q", c.key, c.value, err, c.want)
		}
	}
	if _, v, err := Parse("quarantine.window", "120m"); err != nil || v != "2h" {
		t.Errorf("window 120m: %q, %v; want 2h", v, err)
	}
	if d := Defaults(); d.Quarantine.Threshold != 3 || d.Quarantine.Window != time.Hour || d.Quarantine.Duration != 2*time.Hour || d.MigrateAway {
		t.Errorf("defaults %+v, want 3 within 1h for 2h, VMs stay", d.Quarantine)
	}
}

// Every key of the table is cluster-wide or per-host, never both.
func TestKeyTableIsConsistent(t *testing.T) {
	for _, k := range Keys() {
		if why, ok := PerHost(k.Name); ok {
			t.Errorf("%s is both cluster-wide and per-host (%s)", k.Name, why)
		}
		if k.Summary == "" || k.Why == "" {
			t.Errorf("%s: say what it does and why it must be alike", k.Name)
		}
		if _, canon, err := Parse(k.Name, k.Default()); err != nil || canon != k.Default() {
			t.Errorf("%s: its default %q parses to %q, %v", k.Name, k.Default(), canon, err)
		}
	}
}

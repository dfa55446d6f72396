package settings

import (
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
)

func TestMerge(t *testing.T) {
	when := time.Unix(1700000000, 0)
	fileWait := Defaults()
	fileWait.GuestAgentWait = time.Minute
	fileWait.ParallelMigrations = 4
	for _, c := range []struct {
		name      string
		file      File
		stored    []storage.ClusterValue
		want      map[string][2]string // key -> value, source
		ignored   string               // a key whose stored value is not applied
		conflicts []string
	}{
		{name: "nothing set", want: map[string][2]string{"failover.guest_agent_wait": {"5m", SourceDefault},
			"maintenance.parallel_migrations": {"2", SourceDefault}}},
		{name: "the cluster wins over the file",
			file:      File{Path: "/etc/wingman/wingman.toml", Values: fileWait, Keys: []string{"failover.guest_agent_wait"}},
			stored:    []storage.ClusterValue{{Key: "failover.guest_agent_wait", Value: "10m", Host: 2, Wall: when}},
			want:      map[string][2]string{"failover.guest_agent_wait": {"10m", SourceCluster}, "maintenance.parallel_migrations": {"2", SourceDefault}},
			conflicts: []string{"kvm2: /etc/wingman/wingman.toml sets failover.guest_agent_wait = 1m, the cluster uses 10m; remove it from /etc/wingman/wingman.toml"}},
		{name: "the file's value where the cluster sets none",
			file: File{Path: "w.toml", Values: fileWait, Keys: []string{"failover.guest_agent_wait", "maintenance.parallel_migrations"}},
			want: map[string][2]string{"failover.guest_agent_wait": {"1m", SourceFile}, "maintenance.parallel_migrations": {"4", SourceFile}},
			conflicts: []string{"w.toml sets failover.guest_agent_wait = 1m where the cluster uses the default 5m, so this host alone uses 1m; set it for every host with 'wingman config set failover.guest_agent_wait 1m'",
				"w.toml sets maintenance.parallel_migrations = 4"}},
		{name: "a file that says what the cluster says",
			file:   File{Path: "w.toml", Values: fileWait, Keys: []string{"failover.guest_agent_wait"}},
			stored: []storage.ClusterValue{{Key: "failover.guest_agent_wait", Value: "1m"}},
			want:   map[string][2]string{"failover.guest_agent_wait": {"1m", SourceCluster}}},
		{name: "a file that sets the default",
			file: File{Path: "w.toml", Values: Defaults(), Keys: []string{"maintenance.exec_timeout"}},
			want: map[string][2]string{"maintenance.exec_timeout": {"30m", SourceFile}}},
		{name: "a newer build's value out of this build's range",
			stored:  []storage.ClusterValue{{Key: "maintenance.parallel_migrations", Value: "32"}},
			want:    map[string][2]string{"maintenance.parallel_migrations": {"2", SourceDefault}},
			ignored: "maintenance.parallel_migrations"},
		{name: "a newer build's key",
			stored:  []storage.ClusterValue{{Key: "failover.something_new", Value: "x", Host: 3}},
			want:    map[string][2]string{"failover.something_new": {"x", SourceCluster}},
			ignored: "failover.something_new"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := Merge(c.file, storage.ClusterSettings{Generation: 7, Values: c.stored})
			if v.Generation != 7 || len(v.Entries) < len(Keys()) {
				t.Fatalf("view %+v", v)
			}
			for key, want := range c.want {
				e, ok := v.Entry(key)
				if !ok || e.Value != want[0] || e.Source != want[1] {
					t.Errorf("%s: got %+v, want %s from %s", key, e, want[0], want[1])
				}
				if (key == c.ignored) != (e.Ignored != "") {
					t.Errorf("%s: ignored %q", key, e.Ignored)
				}
			}
			if e, _ := v.Entry("failover.guest_agent_wait"); e.Ignored == "" && Keys()[0].Get(v.Values) != e.Value {
				t.Errorf("applies %v but lists %s", v.Values.GuestAgentWait, e.Value)
			}
			got := v.Conflicts("kvm2", c.file.Path)
			if len(got) != len(c.conflicts) {
				t.Fatalf("conflicts %q, want %d", got, len(c.conflicts))
			}
			for i, w := range c.conflicts {
				if !strings.Contains(got[i], w) {
					t.Errorf("conflict %q does not say %q", got[i], w)
				}
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{5 * time.Minute: "5m", time.Hour: "1h", 90 * time.Second: "1m30s",
		10 * time.Second: "10s", 25 * time.Hour: "25h", time.Hour + time.Minute: "1h1m"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("%v: got %q, want %q", d, got, want)
		}
	}
}

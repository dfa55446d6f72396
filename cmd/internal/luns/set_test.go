package luns

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

// formatFiles formats n new files in dir as one set of cluster name.
func formatFiles(t *testing.T, dir, name string, n int) Paths {
	t.Helper()
	var paths Paths
	var devs []storage.Device
	for i := range n {
		p := filepath.Join(dir, name+string(rune('a'+i))+".img")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		dev, err := storage.OpenFile(p)
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		paths, devs = append(paths, p), append(devs, dev)
	}
	g := storage.DefaultGeometry()
	g.MaxHosts, g.MaxVMs = 4, 4
	if _, err := Format(context.Background(), devs, storage.FormatOptions{ClusterName: name, Geometry: g}); err != nil {
		t.Fatal(err)
	}
	return paths
}

// TestOpenWrapsEveryMember: Open opens each path through the wrapper, with
// its member number, as one set; LUNs of two clusters are refused, naming
// both.
func TestOpenWrapsEveryMember(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	paths := formatFiles(t, dir, "one", 3)
	var wrapped []int
	l, err := Open(ctx, paths, func(m int, dev storage.Device) storage.Device { wrapped = append(wrapped, m); return dev }, storage.OpenOptions{ClusterName: "one"})
	if err != nil {
		t.Fatal(err)
	}
	if ms := l.Members(); len(ms) != 3 || len(wrapped) != 3 || wrapped[2] != 3 {
		t.Errorf("members %+v, wrapped %v", ms, wrapped)
	}
	l.Close()

	other := formatFiles(t, dir, "two", 3)
	_, err = Open(ctx, Paths{paths[0], paths[1], other[2]}, func(_ int, dev storage.Device) storage.Device { return dev }, storage.OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), paths[0]) || !strings.Contains(err.Error(), other[2]) {
		t.Errorf("LUNs of two clusters: %v, want an error naming both", err)
	}
}

// TestAliveByCountsFreshCopies: a host whose heartbeat changes on every
// member is alive by disk 3/3; once one member's copy stops changing, 2/3;
// short of two, by its network lease; a host whose Beat is fresh though
// this host reads one changing copy (crossed paths), 2/3.
func TestAliveByCountsFreshCopies(t *testing.T) {
	ctx := context.Background()
	paths := formatFiles(t, t.TempDir(), "c", 3)
	l, err := Open(ctx, paths, func(_ int, dev storage.Device) storage.Device { return dev }, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h := NewHealth(l, paths)
	t0 := time.Now()
	step := l.Header().Timings.Renew
	for i := range 8 {
		seq := uint64(10 + i)
		h.Note(t0.Add(time.Duration(i)*step), []storage.SlotView{{HostID: 1, MemberSeq: []uint64{seq, seq, seq}},
			{HostID: 2, MemberSeq: []uint64{seq, 0, seq}}, {HostID: 3, MemberSeq: []uint64{seq, 9, 9}},
			{HostID: 5, MemberSeq: []uint64{0, seq, 9}}})
	}
	// Host 5 writes members 1 and 2 while this host reads 2 and 3: only
	// one copy changes here, but its Beat (Stale) does.
	dec := quorum.Decision{Hosts: []quorum.Host{{ID: 1, State: quorum.StateAlive}, {ID: 2, State: quorum.StateAlive},
		{ID: 3, State: quorum.StateSuspect, Stale: 5 * step}, {ID: 4, State: quorum.StateDead}, {ID: 5, State: quorum.StateAlive}}}
	hosts := []api.Host{{ID: 1}, {ID: 2}, {ID: 3}, {ID: 4}, {ID: 5}}
	h.AliveBy(hosts, dec, 3, true, t0.Add(7*step))
	want := []string{"disk 3/3", "disk 2/3", "network lease", "", "disk 2/3"}
	for i, w := range want {
		if hosts[i].AliveBy != w {
			t.Errorf("host %d alive by %q, want %q", hosts[i].ID, hosts[i].AliveBy, w)
		}
	}
}

package hypervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const mapsLockd = `55d0c0a00000-55d0c0a2c000 r--p 00000000 08:01 1311 /usr/sbin/libvirtd
7f1c2c000000-7f1c2c021000 rw-p 00000000 00:00 0 
7f1c30a4d000-7f1c30a55000 r-xp 00004000 08:01 2210 /usr/lib/x86_64-linux-gnu/libvirt/lock-driver/lockd.so
7f1c30b00000-7f1c30b90000 r-xp 00010000 08:01 2211 /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so
`

const mapsNone = `55d0c0a00000-55d0c0a2c000 r--p 00000000 08:01 1311 /usr/sbin/libvirtd
7f1c30b00000-7f1c30b90000 r-xp 00010000 08:01 2211 /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so
7f1c30c00000-7f1c30c10000 r-xp 00000000 08:01 2212 /opt/my lock-driver/x.so
`

func TestLockDriverInMaps(t *testing.T) {
	for _, tc := range []struct{ maps, want string }{
		{mapsLockd, "lockd"},
		{strings.ReplaceAll(mapsLockd, "lockd.so", "sanlock.so"), "sanlock"},
		{mapsNone, ""},
		{"", ""},
		{"garbage\n\n7f 1 2\n", ""},
	} {
		if got := lockDriverInMaps([]byte(tc.maps)); got != tc.want {
			t.Errorf("lockDriverInMaps(%.60q) = %q, want %q", tc.maps, got, tc.want)
		}
	}
}

// proc writes a /proc-like tree: one directory per pid with comm and maps.
func proc(t *testing.T, procs map[string][2]string) string {
	t.Helper()
	root := t.TempDir()
	for pid, p := range procs {
		dir := filepath.Join(root, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "comm"), []byte(p[0]+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "maps"), []byte(p[1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Not a process.
	if err := os.WriteFile(filepath.Join(root, "uptime"), []byte("1 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestLockManagerInUse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		procs   map[string][2]string
		want    string
		wantErr string
	}{
		{"libvirtd with virtlockd", map[string][2]string{"1": {"init", ""}, "812": {"libvirtd", mapsLockd}}, "lockd", ""},
		{"modular virtqemud", map[string][2]string{"90": {"virtqemud", strings.ReplaceAll(mapsLockd, "lockd.so", "sanlock.so")}}, "sanlock", ""},
		{"no lock manager", map[string][2]string{"812": {"libvirtd", mapsNone}, "900": {"virtlockd", ""}}, "none", ""},
		{"no daemon", map[string][2]string{"1": {"init", mapsLockd}, "2": {"qemu-system-x86", mapsLockd}}, "", "no libvirtd or virtqemud process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LockManagerInUse(proc(t, tc.procs))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LockManagerInUse = %q, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("LockManagerInUse = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := LockManagerInUse(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("LockManagerInUse of a missing proc root: no error")
	}
}

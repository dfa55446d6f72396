package api

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The socket's directory stays as it was unless ListenSocket made it: a
// shared one (world-writable or sticky, like /tmp) is refused with what to
// set, and so is one another user owns.
func TestListenSocketOwnsOnlyItsOwnDirectory(t *testing.T) {
	base := t.TempDir()
	baseBefore, err := os.Stat(base)
	if err != nil {
		t.Fatal(err)
	}
	group := "nogroup-for-tests"
	if g, err := user.LookupGroupId(strconv.Itoa(os.Getgid())); err == nil {
		group = g.Name
	}

	shared := filepath.Join(base, "tmp")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	_, err = ListenSocket(filepath.Join(shared, "wingman.sock"), group)
	if err == nil || !strings.Contains(err.Error(), "is shared (world-writable or sticky)") || !strings.Contains(err.Error(), DefaultSocket) {
		t.Errorf("socket in a sticky, world-writable directory: %v, want it refused", err)
	}
	if st, _ := os.Stat(shared); st.Mode().Perm() != 0o777 || st.Mode()&os.ModeSticky == 0 {
		t.Errorf("the shared directory is now %v", st.Mode())
	}

	// An existing directory of its own keeps its mode.
	own := filepath.Join(base, "own")
	if err := os.Mkdir(own, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(own, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := ListenSocket(filepath.Join(own, "wingman.sock"), group)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(own, "wingman.sock")); err != nil || st.Mode().Perm() != 0o660 {
		t.Errorf("socket: %v, %v; want mode 0660", st, err)
	}
	l.Close()
	if st, _ := os.Stat(own); st.Mode().Perm() != 0o755 {
		t.Errorf("an existing directory became %v", st.Mode().Perm())
	}

	// A directory it creates is its own: mode 0750, the group's.
	made := filepath.Join(base, "run", "wingman")
	l, err = ListenSocket(filepath.Join(made, "wingman.sock"), group)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	st, err := os.Stat(made)
	if err != nil || st.Mode().Perm() != 0o750 {
		t.Fatalf("created directory: %v, %v; want mode 0750", st, err)
	}
	if os.Geteuid() == 0 {
		if gid := st.Sys().(*syscall.Stat_t).Gid; int(gid) != os.Getgid() {
			t.Errorf("created directory's group %d, want %d (%s)", gid, os.Getgid(), group)
		}
	}
	if st, _ := os.Stat(base); st.Mode() != baseBefore.Mode() || st.Sys().(*syscall.Stat_t).Gid != baseBefore.Sys().(*syscall.Stat_t).Gid {
		t.Errorf("the directory above it became %v", st.Mode())
	}
}

func TestCheckSocketPath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"", "is required"},
		{"wingman.sock", "is relative"},
		{"/run/" + strings.Repeat("x", 120) + "/wingman.sock", "over the 107 of a unix socket path"},
		{file + "/wingman.sock", "is not a directory"},
	} {
		if err := CheckSocketPath(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckSocketPath(%q) = %v, want %q", tc.path, err, tc.want)
		}
	}
	if err := CheckSocketPath(filepath.Join(t.TempDir(), "new", "wingman.sock")); err != nil {
		t.Errorf("a directory still to be made: %v", err)
	}
	if os.Geteuid() == 0 {
		dir := t.TempDir()
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := CheckSocketPath(filepath.Join(dir, "wingman.sock")); err == nil || !strings.Contains(err.Error(), "belongs to user 65534") {
			t.Errorf("a directory of user 65534: %v, want it refused", err)
		}
	}
}

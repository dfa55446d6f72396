package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/storage"
)

// TestLUNSetFormatDumpVerify: three paths format one set; dump shows each
// LUN and each host's sequence on it; verify finds the set sound, and, with
// one LUN's header zeroed, names that LUN and exits 3, while the hosts still
// read the set. Naming two of them, or one alone, is refused.
func TestLUNSetFormatDumpVerify(t *testing.T) {
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img"), filepath.Join(dir, "c.img")}
	code, out, errOut := wingman(t, append([]string{"lun", "format", "--cluster", "clinic", "--hosts", "4", "--vms", "8"}, paths...)...)
	if code != exitOK || !strings.Contains(out, "as heartbeat LUN 2 of 3") {
		t.Fatalf("format: exit %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = wingman(t, append([]string{"lun", "verify"}, paths...)...)
	if code != exitOK || !strings.Contains(out, "set of 3 LUNs of cluster \"clinic\" is sound") {
		t.Fatalf("verify of a fresh set: exit %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = wingman(t, append([]string{"lun", "dump", "--json"}, paths...)...)
	var d dumpJSON
	if code != exitOK || json.Unmarshal([]byte(out), &d) != nil || len(d.Members) != 3 || !d.Members[2].OK {
		t.Fatalf("dump: exit %d, members %+v, %q", code, d.Members, errOut)
	}

	f, err := os.OpenFile(paths[1], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, storage.BlockSize), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	code, out, errOut = wingman(t, append([]string{"lun", "verify"}, paths...)...)
	if code != exitDamaged || !strings.Contains(out, "LUN 2 of 3 ("+paths[1]+"): header changed") {
		t.Fatalf("verify with LUN 2's header zeroed: exit %d, %q, %q", code, out, errOut)
	}
	code, out, _ = wingman(t, append([]string{"lun", "dump"}, paths...)...)
	if code != exitOK || !strings.Contains(out, "2 of 3") || !strings.Contains(out, "header changed") {
		t.Fatalf("dump with LUN 2's header zeroed: exit %d, %q", code, out)
	}

	if code, _, errOut = wingman(t, "lun", "verify", paths[0], paths[2]); code != exitUsage || !strings.Contains(errOut, "a majority of 2 is 2") {
		t.Errorf("verify of two: exit %d, %q", code, errOut)
	}
	if code, _, errOut = wingman(t, "lun", "verify", paths[0]); code != exitFailed || !strings.Contains(errOut, "name all 3") {
		t.Errorf("verify of one LUN of the set: exit %d, %q", code, errOut)
	}
}

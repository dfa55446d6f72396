package luns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/cmd/internal/configfile"
)

// TestPathsFromTOML: lun takes one path or a list; anything else is refused
// with the key and an example.
func TestPathsFromTOML(t *testing.T) {
	for _, tc := range []struct {
		toml string
		want Paths
		err  string
	}{
		{`lun = "/dev/a"`, Paths{"/dev/a"}, ""},
		{`lun = ["/dev/a"]`, Paths{"/dev/a"}, ""},
		{`lun = ["/dev/a", "/dev/b", "/dev/c"]`, Paths{"/dev/a", "/dev/b", "/dev/c"}, ""},
		{`lun = 3`, nil, "want a path or a list of 1 or 3 paths"},
		{`lun = ["/dev/a", 2]`, nil, "entry 2 is int64"},
	} {
		p := filepath.Join(t.TempDir(), "wingman.toml")
		if err := os.WriteFile(p, []byte(tc.toml+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			LUN Paths `toml:"lun"`
		}
		err := configfile.Decode(p, &cfg)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.toml, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one saying %q", tc.toml, err, tc.err)
		case tc.err == "" && strings.Join(cfg.LUN, "|") != strings.Join(tc.want, "|"):
			t.Errorf("%s: read %q, want %q", tc.toml, cfg.LUN, tc.want)
		}
	}
}

// TestPathsProblems: 1 or 3 distinct paths are valid; 2, 4 or a path named
// twice are refused, saying why and what to do.
func TestPathsProblems(t *testing.T) {
	for _, tc := range []struct {
		paths Paths
		want  string // "" valid
	}{
		{Paths{"/dev/a"}, ""},
		{Paths{"/dev/a", "/dev/b", "/dev/c"}, ""},
		{nil, "is required"},
		{Paths{"/dev/a", "/dev/b"}, "a majority of 2 is 2"},
		{Paths{"/dev/a", "/dev/b", "/dev/c", "/dev/d"}, "4 heartbeat LUNs: use 1 or 3"},
		{Paths{"/dev/a", "/dev/b", "/dev/a"}, `"/dev/a" is named twice (entries 1 and 3)`},
		{Paths{"/dev/a", "", "/dev/c"}, "entry 2 is empty"},
	} {
		got := strings.Join(tc.paths.Problems(), "; ")
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%q: problems %q, want %q", tc.paths, got, tc.want)
		}
	}
}

package configfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	Cluster  string `toml:"cluster"`
	Shutdown struct {
		Timeout Duration `toml:"timeout"`
	} `toml:"shutdown"`
	Placement struct {
		CPU float64 `toml:"cpu_overcommit"`
	} `toml:"placement"`
	Serf struct {
		Join []string `toml:"join"`
	} `toml:"serf"`
	Fence map[string]struct {
		Agent  string            `toml:"agent"`
		Params map[string]string `toml:"params"`
	} `toml:"fence"`
	Any map[string]any `toml:"any"`
}

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "wingman.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecodeNamesFileLineAndKey(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"cluster = \"c\"\n\n[shutdown]\ntimeout = \"-5s\"\n", `line 4, key shutdown.timeout: "-5s" is negative: give a positive duration`},
		{"cluster = \"c\"\n[shutdown]\ntimeout = \"soon\"\n", `line 3, key shutdown.timeout: "soon" is not a duration`},
		{"cluster = \"c\"\nbogus = 1\n", "unknown key bogus"},
		{"cluster = \n", "line 1"},
		{"[placement]\ncpu_overcommit = \"lots\"\n", "placement.cpu_overcommit"},
	} {
		p := write(t, tc.body)
		var c testConfig
		err := Decode(p, &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p) {
			t.Errorf("%q: error %v, want it to start with the file and name %q", tc.body, err, tc.want)
		}
	}
	var c testConfig
	if err := Decode(filepath.Join(t.TempDir(), "none.toml"), &c); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
}

func TestDecodeReadsAValidFile(t *testing.T) {
	p := write(t, `cluster = "c" # the name
[shutdown]
timeout = "10m"
[serf]
join = ["kvm2:7946", "[::1]:7946", '{{{{{{{{{{{{{{{{{{{{', """
[[[[[[[[[[[[[[[[[[[[[[[[[""", '''a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r'''] # [[[[[[[[[[[[[[[[[[[[[[
[fence.kvm2]
agent = "fence_ipmilan"
params = { ip = "192.0.2.2", username = "u", password = "p.a.s.s.w.o.r.d.[{.[{.[{.[{.[{.[{.[{.[{" }
[placement]
cpu_overcommit = 4.0
[any]
floats = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0]
`)
	var c testConfig
	if err := Decode(p, &c); err != nil {
		t.Fatal(err)
	}
	if c.Cluster != "c" || c.Shutdown.Timeout.Duration != 10*time.Minute || len(c.Serf.Join) != 5 || c.Fence["kvm2"].Params["ip"] != "192.0.2.2" {
		t.Errorf("decoded %+v", c)
	}
	// The example shipped with the package passes the bounds.
	b, err := os.ReadFile("../../../contrib/wingman.toml")
	if err != nil {
		t.Fatal(err)
	}
	if line, err := checkNesting(b, MaxDepth); err != nil {
		t.Errorf("contrib/wingman.toml line %d: %v", line, err)
	}
}

func TestNestingIsBounded(t *testing.T) {
	deep := strings.Repeat("a.", 20) + "b"
	for _, tc := range []struct {
		name, body string
		line       int
	}{
		{"inline tables", "x = 1\nv = " + strings.Repeat("{a=", 40) + "1" + strings.Repeat("}", 40) + "\n", 2},
		{"arrays", "\n\nv = " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n", 3},
		{"dotted key", deep + " = 1\n", 1},
		{"table header", "[" + deep + "]\n", 1},
		{"array of tables", "[[" + deep + "]]\n", 1},
		{"header, keys and tables together", "[a.b.c.d.e.f]\ng.h.i.j.k = { l.m.n = { o = { p = { q = { r = 1 } } } } }\n", 2},
		{"after a multi-line string", "s = \"\"\"\n[[[[\n\"\"\"\"\nv = " + strings.Repeat("[", 20) + "\n", 4},
	} {
		line, err := checkNesting([]byte(tc.body), MaxDepth)
		if !errors.Is(err, ErrTooDeep) || line != tc.line {
			t.Errorf("%s: line %d, %v; want ErrTooDeep at line %d", tc.name, line, err, tc.line)
		}
	}
}

// The input that made the TOML library take 776 MB at 16 KB is refused
// before it parses, at a small cost, up to the size bound.
func TestHostileInputIsRefusedCheaply(t *testing.T) {
	var before, after runtime.MemStats
	for _, body := range []string{
		"v = " + strings.Repeat("{a=", 32<<10/3),
		"v = " + strings.Repeat("{a=", MaxSize/3-2),
		strings.Repeat("a.", MaxSize/2-4) + "b = 1\n",
		"[" + strings.Repeat("a.", MaxSize/2-4) + "b]\n",
	} {
		p := write(t, body)
		runtime.GC()
		runtime.ReadMemStats(&before)
		var c testConfig
		err := Decode(p, &c)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooDeep) || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%d bytes of nesting: %v, want ErrTooDeep", len(body), err)
		}
		if used := after.TotalAlloc - before.TotalAlloc; used > 8<<20 {
			t.Errorf("%d bytes of nesting cost %d MB", len(body), used>>20)
		}
	}
	// Within the bounds the worst is keys as deep as allowed, side by side:
	// the library's cost stays in tens of MB, and the error names ten keys.
	var b strings.Builder
	for i := 0; b.Len() < MaxSize-100; i++ {
		fmt.Fprintf(&b, "k%d = %s1%s\n", i, strings.Repeat("{a=", MaxDepth-1), strings.Repeat("}", MaxDepth-1))
	}
	runtime.GC()
	runtime.ReadMemStats(&before)
	var c testConfig
	err := Decode(write(t, b.String()), &c)
	runtime.ReadMemStats(&after)
	if used := after.TotalAlloc - before.TotalAlloc; used > 64<<20 || err == nil || len(err.Error()) > 1000 || !strings.Contains(err.Error(), "more; check the spelling") {
		t.Errorf("%d bytes of keys %d deep: %d MB, error %.300s", b.Len(), MaxDepth-1, used>>20, err)
	}
	p := write(t, "cluster = \"c\"\n"+strings.Repeat("# padding\n", MaxSize/10))
	if err := Decode(p, &c); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), p) {
		t.Errorf("a file over %d bytes: %v, want ErrTooLarge", MaxSize, err)
	}
}

// Keys tells the keys a file sets from those it leaves to the defaults.
func TestKeysAreTheOnesTheFileSets(t *testing.T) {
	p := write(t, "cluster = \"c\"\n[shutdown]\ntimeout = \"5s\"\n[fence.kvm2]\nagent = \"fence_ipmilan\"\n[fence.kvm2.params]\nip = \"192.0.2.1\"\n")
	got, err := Keys(p)
	if err != nil {
		t.Fatal(err)
	}
	want := "cluster shutdown.timeout fence.kvm2.agent fence.kvm2.params.ip"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := Keys(write(t, "v = "+strings.Repeat("[", 20)+strings.Repeat("]", 20)+"\n")); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("a deep file: %v", err)
	}
}

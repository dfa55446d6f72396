package plan

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDefaultPolicyEncodesSmall(t *testing.T) {
	b, err := DefaultPolicy().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"v":1}` {
		t.Fatalf("default policy encodes as %s, want {\"v\":1}", b)
	}
	p, err := UnmarshalPolicy(b)
	if err != nil || !reflect.DeepEqual(p, DefaultPolicy()) {
		t.Fatalf("decode default: %+v, %v", p, err)
	}
}

func TestPolicyRoundTrip(t *testing.T) {
	p := Policy{
		Priority:       742,
		Restart:        RestartOnFailure,
		RestartLimit:   RestartLimit{Max: 5, Window: 30 * time.Minute},
		AntiAffinity:   "db",
		PreferredHosts: []string{"kvm1", "3"},
		StartOrder:     2,
		StartDelay:     15 * time.Second,
		WaitGuestAgent: true,
		Isolation:      IsolationStop,
		IOError:        IOErrorPolicy{After: 2 * time.Minute, Response: IOErrorRestart},
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"prio":742,"restart":"on-failure","limit":{"max":5,"window":"30m0s"},"group":"db","prefer":["kvm1","3"],"tier":2,"delay":"15s","agent":true,"isolation":"stop","ioerr":{"after":"2m0s","do":"restart"}}`
	if string(b) != want {
		t.Fatalf("encoded\n%s\nwant\n%s", b, want)
	}
	q, err := UnmarshalPolicy(b)
	if err != nil || !reflect.DeepEqual(p, q) {
		t.Fatalf("round trip: %+v, %v", q, err)
	}
	p.Priority = PriorityHigh
	b, _ = p.Marshal()
	if !strings.Contains(string(b), `"prio":"high"`) {
		t.Fatalf("named priority not encoded by name: %s", b)
	}
}

func TestPolicyErrorsNameTheField(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"v":1,"prio":"urgent"}`, `priority "urgent": use high, medium, low or an integer 0..1000`},
		{`{"v":1,"prio":1001}`, `priority "1001"`},
		{`{"v":1,"restart":"sometimes"}`, `restart "sometimes": use always, on-failure or never`},
		{`{"v":1,"limit":{"max":3,"window":"1s"}}`, `restart limit window 1s: use 1m0s to 168h0m0s`},
		{`{"v":1,"limit":{"max":3,"window":"soon"}}`, `restart limit window "soon": use a duration`},
		{`{"v":1,"group":"two words"}`, `anti-affinity group "two words": use printable characters without spaces`},
		{`{"v":1,"prefer":["a","a"]}`, `preferred host "a" is listed twice`},
		{`{"v":1,"tier":101}`, `start order 101: use a tier 0..100`},
		{`{"v":1,"delay":"-1s"}`, `start delay -1s: use 0 to 1h0m0s`},
		{`{"v":1,"isolation":"panic"}`, `isolation response "panic": use stop or leave-running`},
		{`{"v":1,"ioerr":{"after":"0s","do":"resume"}}`, `i/o error threshold 0s`},
		{`{"v":2}`, `version 2 is newer than this wingman understands (1): upgrade wingman`},
		{`{}`, `missing or invalid "v"`},
		{`{"v":1,"colour":"red"}`, `unknown field "colour"`},
		{`{"v":1} {}`, `trailing data`},
		{`[]`, `decode`},
	} {
		_, err := UnmarshalPolicy([]byte(c.in))
		if err == nil || !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an ErrInvalidPolicy containing %q", c.in, err, c.want)
		}
		if err != nil && err.Error() != strings.ToLower(err.Error()[:1])+err.Error()[1:] {
			t.Errorf("%s: error %q does not start lowercase", c.in, err)
		}
	}
	bad := DefaultPolicy()
	bad.Restart = ""
	if _, err := bad.Marshal(); err == nil {
		t.Error("marshal accepted an empty restart policy")
	}
	big := DefaultPolicy()
	for i := range MaxPreferredHosts {
		big.PreferredHosts = append(big.PreferredHosts, strings.Repeat("h", MaxNameLen-3)+strconv.Itoa(100+i))
	}
	if _, err := big.Marshal(); err == nil || !strings.Contains(err.Error(), "at most 4096") {
		t.Errorf("oversized policy: %v", err)
	}
}

func FuzzUnmarshalPolicy(f *testing.F) {
	for _, s := range []string{
		`{"v":1}`, `{"v":1,"prio":"high","group":"db","prefer":["kvm1","2"]}`,
		`{"v":1,"prio":742,"restart":"on-failure","limit":{"max":5,"window":"30m0s"},"tier":2,"delay":"15s","agent":true,"isolation":"leave-running","ioerr":{"after":"2m0s","do":"restart"}}`,
		`{"v":1,"limit":{"max":0,"window":"5m"}}`, `{"v":1,"prio":null}`, `{"v":1,"prio":"\u0068igh"}`, `{"v":2}`, ``, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := UnmarshalPolicy(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error not ErrInvalidPolicy: %v", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("decoded policy is invalid: %v", err)
		}
		enc, err := p.Marshal()
		if err != nil {
			t.Fatalf("re-encode %+v: %v", p, err)
		}
		q, err := UnmarshalPolicy(enc)
		if err != nil {
			t.Fatalf("decode own encoding %s: %v", enc, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip changed the policy:\n%+v\n%+v\nvia %s", p, q, enc)
		}
		enc2, _ := q.Marshal()
		if string(enc) != string(enc2) {
			t.Fatalf("encoding not canonical: %s vs %s", enc, enc2)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.MemoryOvercommit = 0.5
	c.MaxStartsPerHost = 0
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "memory overcommit 0.5") || !strings.Contains(err.Error(), "max starts per host 0: use 1 to 64") {
		t.Fatalf("got %v", err)
	}
	if _, err := Failover(Input{Config: c}); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("failover with a bad config: %v", err)
	}
}

// TestImportsOnlyStandardLibrary: the planner decides; it must not reach
// storage, libvirt, serf, the OS or the network (DESIGN.md, "Decisions are
// pure"). test/guard lists pure packages too; this keeps the rule here
// even before it is listed there.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	forbidden := []string{"os", "os/exec", "net", "net/http", "syscall", "unsafe", "C", "time/tzdata"}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(strings.Split(path, "/")[0], ".") {
				t.Errorf("%s imports %s: only the standard library is allowed", f, path)
			}
			for _, bad := range forbidden {
				if path == bad {
					t.Errorf("%s imports %s: pure code does no I/O", f, path)
				}
			}
		}
		for _, banned := range []string{"time.Now(", "time.Since(", "time.Sleep(", "go func"} {
			if strings.Contains(string(src), banned) {
				t.Errorf("%s uses %s: time is an input and the planner starts no goroutines", f, banned)
			}
		}
	}
}

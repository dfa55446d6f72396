package manpage

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

const sample = `# /etc/x.toml: the head.
#
# Its second paragraph.

# The name, and the slot
# (0: any).
# name = "a"
slot = 0

# How the table is used.
[t]
# A flag. Set
# flag = false to turn it off.
flag = true
# insecure = false   # only on a test network
# The keyring:
#   make-key > /etc/k
list = ["a", "b"]

# Per host.
# [per.h1]
# agent = "x"
`

func TestParseExample(t *testing.T) {
	ex, err := ParseExample([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if ex.Head != "/etc/x.toml: the head.\n\nIts second paragraph." {
		t.Errorf("head %q", ex.Head)
	}
	want := []Table{
		{Keys: []Key{{Names: []string{"name", "slot"}, Lines: []string{`name = "a"`, "slot = 0"}, Doc: "The name, and the slot\n(0: any)."}}},
		{Name: "t", Doc: "How the table is used.", Keys: []Key{
			{Names: []string{"flag", "insecure"}, Lines: []string{"flag = true", "insecure = false"},
				Doc: "A flag. Set\nflag = false to turn it off.\n\ninsecure: only on a test network"},
			{Names: []string{"list"}, Lines: []string{`list = ["a", "b"]`}, Doc: "The keyring:\n  make-key > /etc/k"},
		}},
		{Name: "per.h1", Doc: "Per host.", Keys: []Key{{Names: []string{"agent"}, Lines: []string{`agent = "x"`}}}},
	}
	if !reflect.DeepEqual(ex.Tables, want) {
		t.Errorf("tables:\n%#v\nwant:\n%#v", ex.Tables, want)
	}

	var b bytes.Buffer
	ex.Keys(&b)
	for _, line := range []string{`.SS "Top level"`, `.SS "[per.h1]"`, ".TQ", `\fBslot = 0\fR`, ".nf", `  make\-key > /etc/k`} {
		if !strings.Contains(b.String(), line+"\n") {
			t.Errorf("Keys wrote no line %q:\n%s", line, b.String())
		}
	}
}

func TestParseExampleRefusesWhatIsNotTOML(t *testing.T) {
	_, err := ParseExample([]byte("# fine\nkey = 1\nthis is not toml\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("err = %v, want one naming line 3", err)
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{`a-b`: `a\-b`, `.x`: `\&.x`, `'y`: `\&'y`, `c\d`: `c\ed`} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

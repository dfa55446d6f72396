package gossip

import (
	"errors"
	"strings"
	"testing"
)

func TestTagsRoundTrip(t *testing.T) {
	in := Tags{
		HostID: 42, MemoryTotalMiB: 512 * 1024, MemoryFreeMiB: 100_000, CPUs: 96,
		Maintenance: true, APIAddr: "[fd00::42]:7947",
		ClusterUUID: "5f0c6a43-2d7e-4f4e-9a51-3c1d2b7f8e90", Version: "1.2.3-rc1+g0123abc",
		CPUOvercommit: 12.5, MemoryOvercommit: 1.25, ReservedMiB: 4096, MaxStarts: 24, LockManager: "sanlock",
	}
	m, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeTags(m)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	n, _ := encodedTagSize(m)
	t.Logf("full tags: %d of %d bytes", n, MaxTagBytes)

	minimal := Tags{HostID: 1}
	m, err = minimal.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := DecodeTags(m); err != nil || out != minimal {
		t.Errorf("minimal: %+v %v", out, err)
	}
}

func TestTagsOversize(t *testing.T) {
	big := Tags{HostID: 1, Version: strings.Repeat("x", MaxTagBytes)}
	if _, err := big.Encode(); !errors.Is(err, ErrTagsTooLarge) {
		t.Fatalf("oversize tags: %v, want ErrTagsTooLarge", err)
	}
	// The limit is exact: find the longest version that fits.
	fit := 0
	for l := 0; l < MaxTagBytes; l++ {
		if _, err := (Tags{HostID: 1, Version: strings.Repeat("x", l)}).Encode(); err == nil {
			fit = l
		}
	}
	if fit < 300 {
		t.Errorf("only %d bytes of version fit", fit)
	}
	if _, err := (Tags{HostID: 0}).Encode(); err == nil {
		t.Error("host id 0 encoded")
	}
}

func TestDecodeMalformedTags(t *testing.T) {
	good, err := (Tags{HostID: 3, CPUs: 4, MemoryTotalMiB: 10, MemoryFreeMiB: 5}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		if v == "\x00delete" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := map[string]map[string]string{
		"nil":           nil,
		"not wingman":   {"role": "web"},
		"schema":        with(tagKeySchema, "2"),
		"no id":         with(tagKeyHostID, "\x00delete"),
		"id text":       with(tagKeyHostID, "three"),
		"id range":      with(tagKeyHostID, "300"),
		"memory":        with(tagKeyMemory, "10"),
		"memory text":   with(tagKeyMemory, "a/b"),
		"negative cpus": with(tagKeyCPUs, "-1"),
		"maintenance":   with(tagKeyMaintenance, "yes"),
		"limits fields": with(tagKeyLimits, "4/1/1024"),
		"limits text":   with(tagKeyLimits, "four/1/1024/8"),
		"limits zero":   with(tagKeyLimits, "0/1/1024/8"),
		"limits inf":    with(tagKeyLimits, "+Inf/1/1024/8"),
		"limits nan":    with(tagKeyLimits, "NaN/1/1024/8"),
		"limits neg":    with(tagKeyLimits, "4/1/-1/8"),
		"limits starts": with(tagKeyLimits, "4/1/1024/0"),
	}
	for name, m := range cases {
		if _, err := DecodeTags(m); !errors.Is(err, ErrBadTags) {
			t.Errorf("%s: %v, want ErrBadTags", name, err)
		}
	}
	// Unknown keys are fine: a newer version may add some.
	if _, err := DecodeTags(with("zz", "new")); err != nil {
		t.Errorf("unknown key: %v", err)
	}
}

func FuzzDecodeTags(f *testing.F) {
	f.Add("1", "7", "10/5", "4", "1")
	f.Add("1", "x", "", "", "")
	f.Fuzz(func(t *testing.T, schema, id, mem, cpu, mnt string) {
		m := map[string]string{tagKeySchema: schema, tagKeyHostID: id, tagKeyMemory: mem, tagKeyCPUs: cpu, tagKeyMaintenance: mnt}
		tags, err := DecodeTags(m)
		if err != nil {
			return
		}
		if _, err := tags.Encode(); err != nil && !errors.Is(err, ErrTagsTooLarge) {
			t.Errorf("decoded %+v does not encode: %v", tags, err)
		}
	})
}

func TestPlacementLimits(t *testing.T) {
	if l, err := (Tags{}).PlacementLimits(); l != nil || err != nil {
		t.Fatalf("no limits advertised: %+v, %v", l, err)
	}
	l, err := Tags{CPUOvercommit: 4, MemoryOvercommit: 1, ReservedMiB: 2048, MaxStarts: 4}.PlacementLimits()
	if err != nil || l.ReservedMemory != 2048<<20 || l.MaxStarts != 4 {
		t.Fatalf("limits %+v, %v", l, err)
	}
	for _, bad := range []Tags{{CPUOvercommit: 4, MemoryOvercommit: 1, ReservedMiB: 1 << 40, MaxStarts: 4}, {CPUOvercommit: -1, MemoryOvercommit: 1, MaxStarts: 4}} {
		if l, err := bad.PlacementLimits(); err == nil {
			t.Errorf("%+v: limits %+v accepted", bad, l)
		}
	}
}

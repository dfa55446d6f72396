package gossip

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	key := newKey(t)
	good := func() Config {
		c := DefaultConfig()
		c.NodeName, c.HostID, c.Key = "kvm1", 1, key
		return c
	}
	if err := func() *Config { c := good(); return &c }().Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	tc := TestConfig("t1", 2, "")
	if err := tc.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}

	tests := []struct {
		name   string
		change func(*Config)
		want   string // the field named in the error
	}{
		{"no name", func(c *Config) { c.NodeName = "" }, "NodeName"},
		{"bad name", func(c *Config) { c.NodeName = "kvm 1" }, "NodeName"},
		{"host id 0", func(c *Config) { c.HostID = 0 }, "HostID"},
		{"host id 256", func(c *Config) { c.HostID = 256 }, "HostID"},
		{"bind addr", func(c *Config) { c.BindAddr = "kvm1.example" }, "BindAddr"},
		{"bind port", func(c *Config) { c.BindPort = 70000 }, "BindPort"},
		{"advertise addr", func(c *Config) { c.AdvertiseAddr = "nope" }, "AdvertiseAddr"},
		{"no key", func(c *Config) { c.Key = "" }, "Key"},
		{"short key", func(c *Config) { c.Key = "c2hvcnQ=" }, "Key"},
		{"key not base64", func(c *Config) { c.Key = "!!!" }, "Key"},
		{"join retry", func(c *Config) { c.Join = []string{"10.0.0.2"}; c.JoinRetryInterval = 0 }, "JoinRetryInterval"},
		{"empty join", func(c *Config) { c.Join = []string{" "} }, "Join[0]"},
		{"probe timeout", func(c *Config) { c.Timing.ProbeTimeout = 2 * time.Second }, "Timing.ProbeTimeout"},
		{"suspicion", func(c *Config) { c.Timing.SuspicionMult = 0 }, "Timing.SuspicionMult"},
		{"zero timing", func(c *Config) { c.Timing = Timing{} }, "Timing.ProbeInterval"},
		{"tags", func(c *Config) { c.Tags.Version = strings.Repeat("v", 600) }, "Tags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("%v: not ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want+":") {
				t.Errorf("%v: does not name %s", err, tt.want)
			}
		})
	}
}

func TestInsecureNeedsNoKey(t *testing.T) {
	c := DefaultConfig()
	c.NodeName, c.HostID, c.Insecure = "kvm1", 1, true
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSuspicionTimeout(t *testing.T) {
	lo, hi := DefaultTiming().SuspicionTimeout(3)
	if lo != 3*time.Second || hi != 6*time.Second {
		t.Errorf("default timing, 3 hosts: %v..%v, want 3s..6s", lo, hi)
	}
	lo, _ = DefaultTiming().SuspicionTimeout(100)
	if lo != 6*time.Second {
		t.Errorf("default timing, 100 hosts: min %v, want 6s", lo)
	}
}

func TestKeyringFile(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := newKey(t), newKey(t)
	path := filepath.Join(dir, "keyring")
	if err := WriteKeyringFile(path, k1, k2); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file mode: %v %v", fi, err)
	}
	c := Config{KeyringFile: path}
	keys, err := c.loadKeys()
	if err != nil || len(keys) != 2 || len(keys[0]) != 32 {
		t.Fatalf("load keys: %d keys, %v", len(keys), err)
	}
	c.Key = k2
	keys, err = c.loadKeys()
	if err != nil || len(keys) != 3 || string(keys[0]) != string(keys[2]) {
		t.Fatalf("Key must come first: %d keys, %v", len(keys), err)
	}

	bad := map[string]string{
		"not json":  "nope",
		"no key":    "[]",
		"bad key":   `["c2hvcnQ="]`,
		"not array": `{"k": "v"}`,
	}
	for name, content := range bad {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := (&Config{KeyringFile: p}).loadKeys(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := (&Config{KeyringFile: filepath.Join(dir, "missing")}).loadKeys(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}

	// Two agents: one with the keyring file (k1 primary, k2 accepted), one
	// with k1 given directly.
	a := testConfig("ring1", 1, "")
	a.Insecure, a.KeyringFile = false, path
	b := testConfig("ring2", 2, k1)
	first := startAgent(t, a)
	b.Join = []string{first.Addr().String()}
	agents := []*Agent{first, startAgent(t, b)}
	waitConverged(t, agents)
}

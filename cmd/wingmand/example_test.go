package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The example configuration shipped in the package must stay valid.
func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := LoadConfig("../../contrib/wingman.toml", false)
	if err != nil {
		t.Fatal(err)
	}
	// It names this host's keyring file, which must exist.
	cfg.Serf.Keyring = filepath.Join(t.TempDir(), "serf.keyring")
	if err := os.WriteFile(cfg.Serf.Keyring, []byte(`["`+strings.Repeat("A", 43)+`="]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster != "clinic" || cfg.Serf.Keyring == "" || cfg.Shutdown.Policy != "migrate" ||
		!cfg.Maintenance.AllowExec || cfg.Maintenance.RebootCommand != "systemctl reboot" || cfg.Maintenance.ExecTimeout.Duration != 30*time.Minute {
		t.Errorf("example config = %+v", cfg)
	}
}

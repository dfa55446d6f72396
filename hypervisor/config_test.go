package hypervisor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string // each must appear in the message
	}{
		{"empty URI", func(c *Config) { c.URI = "" }, []string{"URI is empty", "qemu:///system"}},
		{"sub-second keepalive", func(c *Config) { c.KeepAliveInterval = 500 * time.Millisecond }, []string{"KeepAliveInterval 500ms", "whole seconds"}},
		{"no keepalive count", func(c *Config) { c.KeepAliveCount = 0 }, []string{"KeepAliveCount is 0", "at least 1"}},
		{"zero min backoff", func(c *Config) { c.ReconnectMinBackoff = 0 }, []string{"ReconnectMinBackoff 0s must be positive"}},
		{"max below min backoff", func(c *Config) { c.ReconnectMaxBackoff = 100 * time.Millisecond },
			[]string{"ReconnectMaxBackoff 100ms is below ReconnectMinBackoff 250ms"}},
		{"no event buffer", func(c *Config) { c.EventBuffer = 0 }, []string{"EventBuffer 0 must be at least 1"}},
		{"zero poll", func(c *Config) { c.PollInterval = 0 }, []string{"PollInterval 0s must be positive"}},
		{"zero shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }, []string{"ShutdownTimeout"}},
		{"negative agent timeout", func(c *Config) { c.AgentTimeout = -time.Second }, []string{"AgentTimeout -1s must be positive"}},
		{"zero QMP timeout", func(c *Config) { c.QMPTimeout = 0 }, []string{"QMPTimeout"}},
		{"zero progress interval", func(c *Config) { c.MigrationProgressInterval = 0 }, []string{"MigrationProgressInterval"}},
		{"negative job stats wait", func(c *Config) { c.JobStatsWait = -time.Second }, []string{"JobStatsWait -1s must not be negative"}},
		{"two faults", func(c *Config) { c.URI, c.EventBuffer = "", -1 }, []string{"URI is empty", "EventBuffer -1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.change(&cfg)
			err := cfg.Validate()
			wantErrIs(t, err, ErrInvalidConfig)
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
			if msg != strings.ToLower(msg[:1])+msg[1:] {
				t.Errorf("message %q should start lowercase", msg)
			}
		})
	}
}

func TestConfigZeroJobStatsWaitIsValid(t *testing.T) {
	cfg := DefaultConfig()
	cfg.JobStatsWait = 0 // do not wait for the completed-job event
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDialRejectsInvalidConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.URI = ""
	_, err := Dial(context.Background(), cfg)
	wantErrIs(t, err, ErrInvalidConfig)
}

func TestDialFailure(t *testing.T) {
	t.Parallel()
	cfg := testConfig("wingman-no-such-driver:///system", "")
	_, err := Dial(context.Background(), cfg)
	wantErrIs(t, err, ErrConnection)
	if !strings.Contains(err.Error(), "wingman-no-such-driver:///system") {
		t.Errorf("error %q does not name the URI", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Dial(ctx, testConfig(hostURI(t, "kvm1"), ""))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with a canceled context: %v, want context.Canceled", err)
	}
}

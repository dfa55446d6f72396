package notify

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// Target kinds.
const (
	TargetMail    = "mail"
	TargetWebhook = "webhook"
	TargetExec    = "exec"
)

// Default per-target timeouts: one attempt of one delivery.
const (
	DefaultMailTimeout    = 30 * time.Second
	DefaultWebhookTimeout = 10 * time.Second
	DefaultExecTimeout    = 30 * time.Second
)

// ErrInvalidTarget is the class of every validation error.
var ErrInvalidTarget = errors.New("invalid notification target")

// Validate checks a target as `wingman notify add` receives it: a known
// kind, a well-formed address or URL, and a secret file that exists on
// this host. Each error says what is wrong and what to do.
func Validate(t storage.NotifyTarget) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("target %q: %w: %s", t.Name, ErrInvalidTarget, fmt.Sprintf(format, a...))
	}
	if t.Name == "" || len(t.Name) > 63 || strings.ContainsAny(t.Name, " \t\n/") {
		return bad("name must be 1..63 characters without spaces or slashes")
	}
	if t.Timeout < 0 || t.Timeout > 10*time.Minute {
		return bad("timeout %v: use 0 (the default) up to 10m", t.Timeout)
	}
	if t.MinSeverity > storage.SevError {
		return bad("minimum severity %v: use info, warning or error", t.MinSeverity)
	}
	for _, k := range t.Kinds {
		if k != KindIncident && k != KindResolved && k != KindWarning && k != KindCleared {
			return bad("event kind %q: use %s, %s, %s or %s", k, KindIncident, KindResolved, KindWarning, KindCleared)
		}
	}
	switch t.Kind {
	case TargetMail:
		host, port, err := net.SplitHostPort(t.Address)
		if err != nil || host == "" || port == "" {
			return bad("SMTP server %q: give host:port, e.g. smtp.example.com:587", t.Address)
		}
		if _, err := mail.ParseAddress(t.From); err != nil {
			return bad("sender %q is not a mail address: %v", t.From, err)
		}
		if len(t.To) == 0 {
			return bad("no recipient: give at least one --to address")
		}
		for _, to := range t.To {
			if _, err := mail.ParseAddress(to); err != nil {
				return bad("recipient %q is not a mail address: %v", to, err)
			}
		}
		if t.User != "" && t.SecretFile == "" {
			return bad("SMTP user %q needs a password file (--secret-file), kept on every host", t.User)
		}
	case TargetWebhook:
		u, err := url.Parse(t.Address)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("webhook URL %q: give an absolute http:// or https:// URL", t.Address)
		}
		if u.User != nil {
			return bad("webhook URL %q carries credentials; they would be stored on the LUN: put a key in a --secret-file instead", t.Address)
		}
	case TargetExec:
		if !filepath.IsAbs(t.Address) {
			return bad("hook %q: give the program's absolute path", t.Address)
		}
		st, err := os.Stat(t.Address)
		if err != nil {
			return bad("hook %q: %v; install it on every host first", t.Address, err)
		}
		if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			return bad("hook %q is not an executable file; chmod +x it", t.Address)
		}
	default:
		return bad("unknown kind %q: use %s, %s or %s", t.Kind, TargetMail, TargetWebhook, TargetExec)
	}
	if t.SecretFile != "" {
		if !filepath.IsAbs(t.SecretFile) {
			return bad("secret file %q: give an absolute path (the same on every host)", t.SecretFile)
		}
		if _, err := readSecret(t.SecretFile); err != nil {
			return bad("%v; create it on every host (mode 0600)", err)
		}
	}
	return nil
}

// readSecret reads a secret file, without its trailing newline.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	if len(b) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", path)
	}
	return b, nil
}

// Wants reports whether t's rules let n through: its severity, its kind
// and the host it is about. A test notification always goes through.
func Wants(t storage.NotifyTarget, n Notification) bool {
	if n.Kind == KindTest {
		return true
	}
	// A "resolved" message (info) follows its incident: it passes the
	// severity rule, so whoever heard of the loss hears that it is over.
	// Likewise a "cleared" message goes wherever its warning went.
	sev := n.sev
	if n.Kind == KindCleared {
		sev = storage.SevWarning
	}
	if sev < t.MinSeverity && n.Kind != KindResolved {
		return false
	}
	if len(t.Kinds) > 0 && !slices.Contains(t.Kinds, n.Kind) {
		return false
	}
	// A cluster-wide warning is about no host: every target hears it.
	return len(t.Hosts) == 0 || n.hostName == "" && n.Warning != nil || slices.Contains(t.Hosts, n.hostName)
}

// AddTarget adds t to s after Validate, refusing a second target of the
// same name. With storage.ClusterRecords.UpdateSettings it is what
// `wingman notify add` does.
func AddTarget(s *storage.ClusterSettings, t storage.NotifyTarget) error {
	if err := Validate(t); err != nil {
		return err
	}
	for _, o := range s.Targets {
		if o.Name == t.Name {
			return fmt.Errorf("target %q: %w: a target of that name exists (%s %s); remove it first or choose another name",
				t.Name, ErrInvalidTarget, o.Kind, o.Address)
		}
	}
	s.Targets = append(s.Targets, t)
	return nil
}

// ErrNoTarget says no target has the name given.
var ErrNoTarget = errors.New("no such notification target")

// RemoveTarget removes the target named name from s.
func RemoveTarget(s *storage.ClusterSettings, name string) error {
	for i, o := range s.Targets {
		if o.Name == name {
			s.Targets = slices.Delete(slices.Clone(s.Targets), i, i+1)
			return nil
		}
	}
	names := make([]string, 0, len(s.Targets))
	for _, o := range s.Targets {
		names = append(names, o.Name)
	}
	return fmt.Errorf("target %q: %w (targets: %s); see `wingman notify list`", name, ErrNoTarget, strings.Join(names, ", "))
}

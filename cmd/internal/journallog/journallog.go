// Package journallog writes wingmand's log to the systemd journal with each
// attribute as a journal field of its own (host, vm, kind, err, ...), so that
// `journalctl -u wingmand WINGMAN_KIND=failover-started` or
// `journalctl -o json` finds them without parsing text, and logs every
// event wingmand appends to the LUN, so that the journal carries the events
// too. It is the one importer of go-systemd's journal package.
package journallog

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/wingmanha/wingman/storage"
)

// FieldPrefix starts the name of every journal field made from an attribute:
// attribute "vm" is field WINGMAN_VM.
const FieldPrefix = "WINGMAN_"

// Sender sends one entry to the journal; journal.Send is the real one.
type Sender func(message string, priority journal.Priority, fields map[string]string) error

// Handler is a slog.Handler that sends each record as one journal entry:
// MESSAGE is the record's message followed by its attributes as key=value
// (what `journalctl` shows), PRIORITY its level, and each attribute is also
// a field of its own, named FieldPrefix + its key (groups joined by "_") in
// upper case, with the characters a field name may not have made "_".
type Handler struct {
	level      slog.Leveler
	identifier string
	send       Sender
	attrs      []field // from WithAttrs, in order
	group      string  // from WithGroup: "A.B." for attribute keys
}

type field struct{ key, value string }

// New is a Handler that logs records at level and above, as identifier
// (SYSLOG_IDENTIFIER), through send (nil: journal.Send).
func New(identifier string, level slog.Leveler, send Sender) *Handler {
	if send == nil {
		send = journal.Send
	}
	return &Handler{level: level, identifier: identifier, send: send}
}

// Available reports whether the journal takes entries and this process's
// standard output is connected to it (systemd sets $JOURNAL_STREAM), which
// is when the journal, not stderr, is where the log belongs.
func Available(journalStream string) bool {
	return journalStream != "" && journal.Enabled()
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Clip(h.attrs)
	for _, a := range as {
		c.attrs = appendAttr(c.attrs, h.group, a)
	}
	return &c
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	return &c
}

// Handle implements slog.Handler.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	fs := slices.Clip(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		fs = appendAttr(fs, h.group, a)
		return true
	})
	var msg strings.Builder
	msg.WriteString(r.Message)
	fields := make(map[string]string, len(fs)+1)
	for _, f := range fs {
		msg.WriteString(" " + f.key + "=" + quote(f.value))
		fields[FieldName(f.key)] = f.value
	}
	if h.identifier != "" {
		fields["SYSLOG_IDENTIFIER"] = h.identifier
	}
	return h.send(msg.String(), priority(r.Level), fields)
}

// appendAttr flattens a (resolved, group-qualified) into fs.
func appendAttr(fs []field, group string, a slog.Attr) []field {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return fs
	}
	if a.Value.Kind() == slog.KindGroup {
		prefix := group
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			fs = appendAttr(fs, prefix, g)
		}
		return fs
	}
	return append(fs, field{group + a.Key, a.Value.String()})
}

// FieldName is the journal field an attribute key becomes: FieldPrefix and
// the key in upper case, each character other than A-Z, 0-9 made "_"
// (journal field names allow no other), at most 64 characters.
func FieldName(key string) string {
	name := []rune(FieldPrefix + strings.ToUpper(key))
	for i, c := range name {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			name[i] = '_'
		}
	}
	return string(name[:min(len(name), 64)])
}

// quote writes a value as slog's text handler would: bare when it has no
// space, quote, '=' or unprintable character, else Go-quoted.
func quote(s string) string {
	if s == "" || strings.ContainsFunc(s, func(c rune) bool {
		return c == ' ' || c == '"' || c == '=' || !unicode.IsPrint(c)
	}) {
		return strconv.Quote(s)
	}
	return s
}

func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	default:
		return journal.PriDebug
	}
}

// Appender appends an event to the LUN's event ring (*storage.EventLog).
type Appender interface {
	Append(ctx context.Context, e storage.Event) (storage.Event, error)
}

// Events appends each event to Ring and logs it to Log, with its kind, VM
// and subject as attributes: the journal then has every event wingmand
// writes to the LUN, with the host Log carries. It is the vm.Events the
// daemon gives its parts.
type Events struct {
	Ring Appender
	Log  *slog.Logger
}

// Append implements vm.Events.
func (e Events) Append(ctx context.Context, ev storage.Event) (storage.Event, error) {
	attrs := []any{"kind", ev.Kind}
	if !ev.VM.IsZero() {
		attrs = append(attrs, "vm", ev.VM.String())
	}
	if ev.Subject != 0 {
		attrs = append(attrs, "subject", ev.Subject)
	}
	e.Log.Log(ctx, level(ev.Severity), ev.Message, attrs...)
	return e.Ring.Append(ctx, ev)
}

func level(s storage.Severity) slog.Level {
	switch s {
	case storage.SevError:
		return slog.LevelError
	case storage.SevWarning:
		return slog.LevelWarn
	default:
		return slog.LevelInfo
	}
}

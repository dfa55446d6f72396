package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// slogWriter turns serf's and memberlist's "[LEVEL] subsystem: message" log
// lines into slog records at the matching level.
type slogWriter struct {
	logger *slog.Logger
}

func newStdLogger(l *slog.Logger) *log.Logger {
	return log.New(&slogWriter{logger: l}, "", 0)
}

var logLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"[TRACE]", slog.LevelDebug - 4},
	{"[DEBUG]", slog.LevelDebug},
	{"[INFO]", slog.LevelInfo},
	{"[WARN]", slog.LevelWarn},
	{"[ERR]", slog.LevelError},
	{"[ERROR]", slog.LevelError},
}

func (w *slogWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, l := range logLevels {
		if rest, ok := bytes.CutPrefix(line, []byte(l.prefix)); ok {
			level, line = l.level, bytes.TrimSpace(rest)
			break
		}
	}
	if w.logger.Enabled(context.Background(), level) {
		w.logger.Log(context.Background(), level, string(line))
	}
	return len(p), nil
}

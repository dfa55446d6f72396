package e2e

import (
	"fmt"
	"time"
)

// FormatEvent is one line of the event log, as `wingman events` shows it.
func FormatEvent(ev Event) string {
	host := ev.HostName
	if host == "" {
		host = fmt.Sprintf("host%d", ev.Host)
	}
	vm := ""
	if ev.VM != "" {
		vm = " vm=" + ev.VM
	}
	return fmt.Sprintf("%s %-6s %-8s %-22s%s %s", ev.Time.Format("15:04:05.000"), host, ev.Severity, ev.Kind, vm, ev.Message)
}

// Since returns the events at or after t.
func Since(evs []Event, t time.Time) []Event {
	var out []Event
	for _, e := range evs {
		if !e.Time.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// humanDuration renders d for people: "45ms", "1.2s", "2m5s", "3h10m".
func humanDuration(d time.Duration) string {
	neg := ""
	if d < 0 {
		neg, d = "-", -d
	}
	var s string
	switch {
	case d == 0:
		s = "0s"
	case d < time.Millisecond:
		s = fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		s = trimZero(fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))) + "ms"
	case d < time.Second:
		s = fmt.Sprintf("%dms", d.Round(time.Millisecond).Milliseconds())
	case d < time.Minute:
		s = trimZero(fmt.Sprintf("%.1f", d.Seconds())) + "s"
	case d < time.Hour:
		d = d.Round(time.Second)
		if sec := int(d.Seconds()) % 60; sec != 0 {
			s = fmt.Sprintf("%dm%ds", int(d.Minutes()), sec)
		} else {
			s = fmt.Sprintf("%dm", int(d.Minutes()))
		}
	default:
		d = d.Round(time.Minute)
		if m := int(d.Minutes()) % 60; m != 0 {
			s = fmt.Sprintf("%dh%dm", int(d.Hours()), m)
		} else {
			s = fmt.Sprintf("%dh", int(d.Hours()))
		}
	}
	return neg + s
}

// trimZero drops a ".0" decimal: "4.0" -> "4".
func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// humanMiB renders a size given in MiB: "512 MiB", "15.5 GiB", "2 TiB".
func humanMiB(mib uint64) string {
	switch {
	case mib < 1024:
		return fmt.Sprintf("%d MiB", mib)
	case mib < 1024*1024:
		return trimZero(fmt.Sprintf("%.1f", float64(mib)/1024)) + " GiB"
	default:
		return trimZero(fmt.Sprintf("%.1f", float64(mib)/(1024*1024))) + " TiB"
	}
}

// humanBytes renders a byte count: "900 B", "3.5 KiB", "2.1 GiB".
func humanBytes(b uint64) string {
	if b < 1024 {
		return strconv.FormatUint(b, 10) + " B"
	}
	if b < 1<<20 {
		return trimZero(fmt.Sprintf("%.1f", float64(b)/1024)) + " KiB"
	}
	if b < 1<<30 {
		return trimZero(fmt.Sprintf("%.1f", float64(b)/(1<<20))) + " MiB"
	}
	return humanMiB(b >> 20)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// plural renders a count with its noun: "1 VM", "2 VMs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

package luns

import (
	"fmt"
	"strings"
)

// Paths are the heartbeat LUNs of a host, in the order the cluster's hosts
// all name them: one, or three (a majority of which must carry a host's
// heartbeat). In wingman.toml, `lun = "/dev/..."` or
// `lun = ["/dev/...", "/dev/...", "/dev/..."]`.
type Paths []string

// UnmarshalTOML reads one path or a list of paths.
func (p *Paths) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*p = Paths{v}
	case []any:
		out := make(Paths, 0, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("lun: entry %d is %T, want a path in quotes", i+1, e)
			}
			out = append(out, s)
		}
		*p = out
	default:
		return fmt.Errorf("lun: %T: want a path or a list of 1 or 3 paths, like lun = [\"/dev/disk/by-id/a\", \"/dev/disk/by-id/b\", \"/dev/disk/by-id/c\"]", v)
	}
	return nil
}

// String lists the paths as the daemon logs them.
func (p Paths) String() string { return strings.Join(p, ", ") }

// CheckCount says why n heartbeat LUNs cannot work, or nil for 1 or 3.
func CheckCount(n int) error {
	switch {
	case n == 1 || n == 3:
		return nil
	case n == 0:
		return fmt.Errorf("no heartbeat LUN: name one, or three on separate storage")
	case n == 2:
		return fmt.Errorf("2 heartbeat LUNs: use 1 or 3; a majority of 2 is 2, so either one failing would stop the cluster as losing the only LUN does; add a third on separate storage, or keep one")
	default:
		return fmt.Errorf("%d heartbeat LUNs: use 1 or 3; more than 3 adds I/O on every heartbeat and no safety that 3 do not give", n)
	}
}

// Problems says what is wrong with the paths (their number, an empty or
// repeated path), each with what to do; none for a valid list.
func (p Paths) Problems() []string {
	var probs []string
	if len(p) == 0 {
		return []string{"is required: the shared heartbeat LUN (a /dev/disk/by-id/ path), or a list of three on separate storage"}
	}
	if err := CheckCount(len(p)); err != nil {
		probs = append(probs, err.Error())
	}
	seen := map[string]int{}
	for i, path := range p {
		switch j, dup := seen[path]; {
		case path == "":
			probs = append(probs, fmt.Sprintf("entry %d is empty: name a shared block device", i+1))
		case dup:
			probs = append(probs, fmt.Sprintf("%q is named twice (entries %d and %d): each heartbeat LUN must be a different device, on separate storage", path, j, i+1))
		default:
			seen[path] = i + 1
		}
	}
	return probs
}

package storagetest

import "strconv"

// MemberStateFile is the name of the fault file of heartbeat LUN member
// (1..3) in the state directory of a wingmand built with -tags
// wingman_faults: StateFile for the first member (or a single LUN), as
// before sets existed, and StateFile.N for member N.
func MemberStateFile(member int) string {
	if member <= 1 {
		return StateFile
	}
	return StateFile + "." + strconv.Itoa(member)
}

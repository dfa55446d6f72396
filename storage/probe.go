package storage

import (
	"bytes"
	"fmt"
)

// probeBytes is how much of the device Probe reads: enough for the btrfs
// superblock at 64 KiB and the ISO 9660 volume descriptor at 32 KiB.
const probeBytes = 17 * BlockSize

// signature is one kind of data that formatting must not destroy unasked.
type signature struct {
	name  string
	off   int
	magic []byte
}

var signatures = []signature{
	{"a wingman LUN", 0, headerMagic[:]},
	{"an ext2/ext3/ext4 filesystem", 1080, []byte{0x53, 0xef}},
	{"an XFS filesystem", 0, []byte("XFSB")},
	{"a btrfs filesystem", 65600, []byte("_BHRfS_M")},
	{"a GPT partition table", 512, []byte("EFI PART")},
	{"a GPT partition table (4Kn)", 4096, []byte("EFI PART")},
	{"an LVM physical volume", 512 + 24, []byte("LVM2 001")},
	{"an LVM physical volume", 24, []byte("LVM2 001")},
	{"a LUKS encrypted volume", 0, []byte("LUKS\xba\xbe")},
	{"a swap area", 4086, []byte("SWAPSPACE2")},
	{"an ISO 9660 image", 32769, []byte("CD001")},
	{"an SBD device", 0, []byte("SBD_SBD_")},
	{"a sanlock lease area", 0, []byte{0x10, 0x20, 0x21, 0x12}},
	{"a sanlock resource lease", 0, []byte{0x10, 0x20, 0x15, 0x06}},
	{"an MBR partition table or boot sector", 510, []byte{0x55, 0xaa}},
}

// Recognise names the kind of data the first bytes of a device hold: a known
// signature, "unrecognised data" for any other non-zero content, or "" when
// the area is all zeros (safe to format).
func Recognise(b []byte) string {
	for _, s := range signatures {
		if s.off+len(s.magic) <= len(b) && bytes.Equal(b[s.off:s.off+len(s.magic)], s.magic) {
			return s.name
		}
	}
	for i, c := range b {
		if c != 0 {
			return fmt.Sprintf("unrecognised data (first non-zero byte at offset %d)", i)
		}
	}
	return ""
}

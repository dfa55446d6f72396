package storage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// le is the byte order of every on-disk field.
var le = binary.LittleEndian

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// sealRecord stores the CRC32C of rec[:len-4] in the last four bytes.
func sealRecord(rec []byte) {
	n := len(rec)
	le.PutUint32(rec[n-4:], crc32c(rec[:n-4]))
}

// recordOK reports whether rec's trailing CRC32C matches its contents.
func recordOK(rec []byte) bool {
	n := len(rec)
	return le.Uint32(rec[n-4:]) == crc32c(rec[:n-4])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// putString writes s into a fixed-size NUL-padded field, truncating it.
func putString(dst []byte, s string) {
	clear(dst)
	copy(dst, s)
}

// getString reads a NUL-padded field.
func getString(src []byte) string {
	if i := bytes.IndexByte(src, 0); i >= 0 {
		src = src[:i]
	}
	return string(src)
}

package storagetest

import (
	"unsafe"

	"github.com/wingmanha/wingman/storage"
)

// alignedSlice returns n bytes of buf starting at a BlockSize boundary (O_DIRECT).
func alignedSlice(buf []byte, n int) []byte {
	off := 0
	if r := int(uintptr(unsafe.Pointer(&buf[0])) & (storage.BlockSize - 1)); r != 0 {
		off = storage.BlockSize - r
	}
	return buf[off : off+n]
}

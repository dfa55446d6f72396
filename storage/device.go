package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BlockSize is the unit of every LUN record and every I/O: 4096 bytes, so
// the format works unchanged on 512-byte and 4096-byte (4Kn) sector devices.
const BlockSize = 4096

// Device is the raw, blocking block I/O under the LUN. Offsets and lengths
// are multiples of BlockSize and buffers are BlockSize-aligned. The LUN
// bounds every call by io_timeout; a Device need not.
type Device interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Size is the usable size in bytes.
	Size() int64
	// SectorSize is the logical sector size (the direct-I/O alignment).
	SectorSize() int
	// Path names the device in messages.
	Path() string
	Close() error
}

// FileDevice is a block device or regular file opened with O_DIRECT|O_SYNC.
type FileDevice struct {
	f        *os.File
	path     string
	size     int64
	sector   int
	block    bool // a block device, not a regular file
	readOnly bool // opened for reading only: writes fail with ErrReadOnly
}

// OpenFile opens path for direct, synchronous I/O and detects its sector
// size: BLKSSZGET for a block device, statx's direct-I/O alignment for a
// regular file.
func OpenFile(path string) (*FileDevice, error) {
	return openFile(path, os.O_RDWR)
}

// OpenFileReadOnly opens path as OpenFile does, for reading only: every
// write fails with ErrReadOnly. Tools that only read a LUN use it, so that
// they never hold it open for writing.
func OpenFileReadOnly(path string) (*FileDevice, error) {
	return openFile(path, os.O_RDONLY)
}

func openFile(path string, mode int) (*FileDevice, error) {
	f, err := os.OpenFile(path, mode|unix.O_DIRECT|unix.O_SYNC, 0)
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("open %s with O_DIRECT: %w: the filesystem does not support direct I/O (tmpfs?); use a block device or a file on ext4/xfs", path, err)
		}
		return nil, fmt.Errorf("open lun %s: %w", path, err)
	}
	d := &FileDevice{f: f, path: path, readOnly: mode == os.O_RDONLY}
	if err := d.probe(); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

func (d *FileDevice) probe() error {
	st, err := d.f.Stat()
	if err != nil {
		return fmt.Errorf("stat lun %s: %w", d.path, err)
	}
	fd := int(d.f.Fd())
	switch {
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		d.block = true
		ss, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
		if err != nil {
			return fmt.Errorf("lun %s: BLKSSZGET: %w", d.path, err)
		}
		d.sector = ss
		end, err := d.f.Seek(0, io.SeekEnd)
		if err != nil {
			return fmt.Errorf("lun %s: size: %w", d.path, err)
		}
		d.size = end
	case st.Mode().IsRegular():
		d.size = st.Size()
		d.sector = 512
		var sx unix.Statx_t
		if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &sx); err == nil &&
			sx.Mask&unix.STATX_DIOALIGN != 0 && sx.Dio_offset_align > 0 {
			d.sector = int(sx.Dio_offset_align)
		}
	default:
		return fmt.Errorf("lun %s: %w: not a block device or regular file", d.path, ErrInvalid)
	}
	if d.sector <= 0 || d.sector > BlockSize || BlockSize%d.sector != 0 {
		return fmt.Errorf("lun %s: sector size %d is not supported: wingman needs a sector size that divides %d", d.path, d.sector, BlockSize)
	}
	return nil
}

func (d *FileDevice) ReadAt(p []byte, off int64) (int, error) { return d.f.ReadAt(p, off) }
func (d *FileDevice) Size() int64                             { return d.size }
func (d *FileDevice) SectorSize() int                         { return d.sector }
func (d *FileDevice) Path() string                            { return d.path }
func (d *FileDevice) Close() error                            { return d.f.Close() }

func (d *FileDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.readOnly {
		return 0, fmt.Errorf("write to lun %s: %w", d.path, ErrReadOnly)
	}
	return d.f.WriteAt(p, off)
}

// IsBlockDevice reports whether the device is a block device.
func (d *FileDevice) IsBlockDevice() bool { return d.block }

// Grow extends a regular file to at least size bytes. Block devices cannot grow.
func (d *FileDevice) Grow(size int64) error {
	if d.block || size <= d.size {
		return nil
	}
	if d.readOnly {
		return fmt.Errorf("grow lun %s: %w", d.path, ErrReadOnly)
	}
	if err := d.f.Truncate(size); err != nil {
		return fmt.Errorf("grow %s to %d bytes: %w", d.path, size, err)
	}
	d.size = size
	return nil
}

// alignedBuf returns a zeroed n-byte slice whose first byte is BlockSize-aligned,
// as O_DIRECT requires. The Go heap does not move objects, so the alignment holds.
func alignedBuf(n int) []byte {
	// Go's allocator hands out blocks of 4 KiB multiples 4 KiB-aligned in
	// practice; the padded copy below is the fallback, at twice the garbage.
	if b := make([]byte, n); n > 0 && uintptr(unsafe.Pointer(&b[0]))&(BlockSize-1) == 0 {
		return b
	}
	b := make([]byte, n+BlockSize)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) & (BlockSize - 1)); r != 0 {
		off = BlockSize - r
	}
	return b[off : off+n : off+n]
}

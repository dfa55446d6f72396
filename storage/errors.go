package storage

import (
	"errors"
	"fmt"
)

// Error classes. Callers test them with errors.Is; the wrapping error says
// which path, block and record, and what to do.
var (
	ErrNotFormatted   = errors.New("not a wingman LUN")
	ErrCorrupt        = errors.New("record checksum or magic mismatch")
	ErrVersion        = errors.New("unsupported LUN format version")
	ErrForeignCluster = errors.New("LUN belongs to another cluster")
	ErrHeaderChanged  = errors.New("LUN header changed under a running host")
	ErrHasData        = errors.New("path holds recognisable data")
	ErrTooSmall       = errors.New("device too small for this geometry")
	ErrUnsafeTimings  = errors.New("unsafe timing parameters")
	ErrBadGeometry    = errors.New("invalid LUN geometry")
	ErrIOTimeout      = errors.New("LUN I/O did not complete within io_timeout")
	ErrIOPending      = errors.New("an earlier write to this block has not completed")
	ErrSlotHeld       = errors.New("host slot is held by another host or process")
	ErrSlotLost       = errors.New("host slot was taken over by another writer")
	ErrNoFreeSlot     = errors.New("no free host slot")
	ErrLeaseHeld      = errors.New("VM lease is held by another host")
	ErrContended      = errors.New("VM lease acquisition contended")
	ErrNotFound       = errors.New("not found")
	ErrTooLarge       = errors.New("record too large")
	ErrNoFreeVMRecord = errors.New("no free VM record")
	ErrInvalid        = errors.New("invalid argument")
	ErrConflict       = errors.New("changed by another host since it was read")
)

// ErrReadOnly is the class of a write to a LUN opened read-only, and
// ErrAlreadyProtected of protecting a VM that a record holds already.
var (
	ErrReadOnly         = errors.New("LUN opened read-only")
	ErrAlreadyProtected = errors.New("VM is already protected")
)

// BlockError reports a problem with one block of the LUN.
type BlockError struct {
	Path  string // device or file path
	Block int64  // block number (4096-byte units)
	What  string // which record: "header", "heartbeat slot 3", ...
	Err   error  // the class, e.g. ErrCorrupt
	Hint  string // what the operator should do
}

func (e *BlockError) Error() string {
	s := fmt.Sprintf("lun %s block %d (%s): %v", e.Path, e.Block, e.What, e.Err)
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

func (e *BlockError) Unwrap() error { return e.Err }

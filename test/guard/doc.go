// Package guard holds tests that keep the code base in the shape STYLE.md
// asks for: every package documented, pure decision packages free of I/O
// and adapters, and the CLI free of libvirt and cgo. It has no code of its own.
package guard

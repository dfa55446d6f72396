// Package guard holds tests that keep the code base in the shape STYLE.md
// asks for: every package documented, pure decision packages free of I/O
// and adapters, the CLI free of libvirt and cgo, and the daemon free of the
// libvirt passthroughs that taint domains outside the opt-in QMP
// diagnostic. It has no code of its own.
package guard

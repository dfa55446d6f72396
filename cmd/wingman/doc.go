// Command wingman is the operator's command-line tool for a Wingman cluster,
// in the style of virsh: `wingman [-c SOCKET] [--json] COMMAND [SUBCOMMAND]
// [FLAGS] [ARGS]`. Without a command, on a terminal, it is an interactive
// shell (prompt "wingman# ") that runs the same commands line by line.
//
// Every command is one entry of the command table (commands.go) with its own
// pflag.FlagSet and help; `wingman help`, `wingman completion bash` and
// `wingman man` are generated from it, and the generated completion script
// and man page are committed under contrib/ (a golden test keeps them up to
// date: go test ./cmd/wingman -update rewrites them).
//
// The cluster commands (list, status, protect, migrate, maintenance, fence,
// events, ...) are just another client of wingmand's API (cmd/api)
// over its unix socket: -c/--connect, else $WINGMAN_SOCKET, else
// /run/wingman/wingman.sock. Data goes to stdout (a table for people, or
// JSON of the API's types with --json for scripts); diagnostics go to
// stderr, their control characters escaped. In all JSON output, `lun dump`
// included, a duration is an integer of nanoseconds in a field named *_ns.
// The interactive shell edits lines and recalls earlier ones (Up, Down).
//
// Exit codes:
//
//	0  success
//	1  the command failed, or wingmand is not reachable (the message on
//	   stderr says why: no socket, permission denied, nothing listening;
//	   and what to do: start wingmand, be root or in group wingman)
//	2  usage error: unknown command or flag, bad flag value, wrong number of
//	   arguments, a fence or confirm-off without --yes when stdin is not a
//	   terminal
//	3  `lun verify` found damaged records
//
// The tool does not link libvirt (it is built with CGO_ENABLED=0); the `lun`
// commands read and write the heartbeat LUN directly, as `sanlock direct` does,
// and must only format a LUN that no running wingmand uses.
package main

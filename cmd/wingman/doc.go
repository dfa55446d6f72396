// Command wingman is the operator's command-line tool for a Wingman cluster,
// in the style of virsh: `wingman COMMAND [SUBCOMMAND] [FLAGS] [ARGS]`.
//
// Every command is one entry of the command table (commands.go) with its own
// pflag.FlagSet and help. Data goes to stdout (a table for people, or JSON
// with --json for scripts); diagnostics go to stderr.
//
// Exit codes:
//
//	0  success
//	1  the command failed (the message on stderr says why and what to do)
//	2  usage error: unknown command or flag, wrong number of arguments
//	3  `lun verify` found damaged records
//
// The tool does not link libvirt (it is built with CGO_ENABLED=0); the `lun`
// commands read and write the heartbeat LUN directly, as `sanlock direct` does,
// and must only format a LUN that no running wingmand uses.
package main

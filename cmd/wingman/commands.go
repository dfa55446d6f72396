package main

// commands is the command table: every command of the CLI, in one place.
// Generated help, completion and man pages all read it.
var commands = []command{
	lunFormatCmd,
	lunDumpCmd,
	lunVerifyCmd,
	keygenCmd,
	versionCmd,
}

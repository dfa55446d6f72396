// Package manpage writes man pages in the man(7) macros, for the pages that
// are generated from the code: wingman(1) from the CLI's command table,
// wingmand(8) from the daemon's flags, and wingman.toml(5) from the
// commented example configuration (ParseExample).
//
// It owns the troff escaping and layout only: what a page says comes from
// its caller. It must never read files or the environment, so that a page is
// a function of the code it documents and its golden file cannot drift.
package manpage

// Package deb tests the Debian package that contrib/debian/build.sh builds
// (make deb): lintian finds no error and no warning that is not overridden
// with a reason, the package holds what it must (PIE binaries, man pages,
// completion, changelog, copyright) and depends on what it links, and the
// maintainer scripts call deb-systemd-helper and deb-systemd-invoke as
// debhelper's would, for install, upgrade, remove and purge.
//
// It only builds and inspects: it never installs the package on the machine.
package deb

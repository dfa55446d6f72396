// Package systemd tests the installed Debian package under a real systemd:
// it boots a Debian 12 root with systemd as PID 1 in systemd-nspawn (the
// machine that runs the tests need not run systemd itself), with libvirtd
// and a real QEMU guest inside (TCG; package realguest's guest), installs
// the .deb that contrib/debian/build.sh builds from this tree, and checks
// what only systemd shows: the unit is skipped, not failed, until the host
// is configured; Type=notify readiness and the status text; the watchdog
// (petted, and a stopped daemon killed and restarted); structured journal
// fields; a guest whose QEMU process survives `systemctl restart wingmand`
// and an upgrade by `apt-get install` of a newer .deb; `apt-get remove`
// refused while the host owns protected guests; `systemctl poweroff`
// applying shutdown.policy because the host goes down; and `apt-get purge`.
//
// The root is debootstrapped once per machine into
// /var/cache/wingman-test/systemd-KEY, KEY a hash of its package list and
// setup, and each run boots it under an overlay of its own, so a warm run
// builds the two packages and boots twice.
//
// Packages are installed without their Recommends (fence-agents): the
// container has no network.
//
// It needs root, systemd-nspawn (systemd-container), debootstrap, overlayfs
// and, for the first run, the Debian mirror. It skips where the machine
// lacks one of them, saying which, except when the environment variable CI
// is set (.ci/run): there it fails, so that CI never passes by skipping.
package systemd

// Package watchdog arms the host's watchdog so that a host which stops
// making progress is stopped for sure within W (DESIGN.md, "Timing rule"):
// /dev/watchdog when the kernel has a driver, else a software watchdog that
// runs an expiry function, with a loud warning that it cannot reset a frozen
// host.
//
// It owns:
//   - opening the device, setting and verifying its timeout
//     (WDIOC_SETTIMEOUT, WDIOC_GETTIMEOUT), petting it (WDIOC_KEEPALIVE),
//     and disarming it on a clean stop (the magic 'V' before close);
//   - the software fallback, which calls Config.OnExpire once when it is not
//     petted for W (the daemon destroys its protected VMs and exits hard);
//   - Guard, which tells whether every registered loop of the daemon has
//     made progress recently. The daemon pets only while Guard says healthy
//     and the quorum decision allows it to run VMs.
//
// It must never decide when to pet (the daemon does, from Guard and package
// quorum's decision), never pet from a goroutine of its own (that would
// keep a stuck daemon's host alive), never open the device in a default
// test (an armed watchdog that is not disarmed reboots the machine), and
// never report a timeout longer than the one requested: D is computed from W.
package watchdog

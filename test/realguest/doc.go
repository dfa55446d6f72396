// Package realguest gives the test cluster a real guest: a Debian cloud kernel booted directly by
// libvirt with an initramfs of busybox, the virtio and pvpanic modules, qemu-guest-agent and a
// small service of the project's own (guestinit), whose data lives on the guest's shared virtio
// disk (ext4, cache='none'). The service appends numbered records to a ledger on that disk and
// acknowledges each only after fdatasync; the Client writes continuously from the test network's
// switch, records every acknowledgement and connection error with its time, and reads the ledger
// back, so that a test measures what the guest's user feels: when the service answered again after
// a failover, how long a live migration paused it, and whether any acknowledged record was lost.
//
// Build makes the image from Debian's packages (apt-get download and dpkg-deb -x into a cache
// directory; nothing is installed on the machine) and caches it between runs; make deps fills the
// cache. All test hosts share one kernel, whose page cache survives a test host's power loss: the
// ledger check proves that the restarted guest sees every acknowledged record, that no second
// runner damaged the disk, and that the guest recovers; it cannot prove a cache mode.
//
// This package must never be imported by production code.
package realguest

// Package integration holds Wingman's integration tests against real libvirtd and QEMU/KVM: a
// two-host test cluster (test/cluster) started once for the whole package, driven through the
// hypervisor adapter, with faults injected by the harness (power loss, partition, libvirtd crash
// and restart, a guest's QEMU killed, a guest disk whose NBD server dies).
//
// The tests need root and the packages of `make deps`. Without them they skip, except when the
// environment variable CI is set: then they fail, so that CI never passes by skipping. In -short
// mode they skip.
//
// Every wait is on an event or on a condition polled under a deadline, never a fixed sleep.
// Each test names its guests after itself and removes them, and leaves every host powered on,
// on the network and with libvirtd running, also when it fails. TestMain closes the shared
// cluster and then checks that no process, mount or veth of it is left.
//
// migrate_test.go migrates through libvirt directly, independently of the adapter, so that the
// cluster's migration path and the benchmark do not depend on the code under test; tests of the
// adapter's own Conn.Migrate and AbortMigration sit beside it.
//
// With WINGMAN_CLUSTER_DEBUG set, the shared cluster logs libvirtd at debug level and keeps its
// directory (logs, disks, configuration) after the run, for a post-mortem.
//
// BenchmarkLiveMigration measures live migration of an idle 64 MiB guest between two hosts:
//
//	go test -run '^$' -bench LiveMigration -benchtime 1x ./test/integration/
//
// This package must not be imported: it has only tests.
package integration

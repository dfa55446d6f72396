# Wingman build, test and setup targets. Run `make deps` once as root on a fresh Debian machine.
GO        ?= go
GOFLAGS   ?=
BIN       := bin
PKGS      := ./...
# Integration tests (real libvirtd, namespaces, loop devices) need root; they skip with a message otherwise.
TESTFLAGS ?= -count=1 -timeout 25m

# nftables: test/cluster cuts the link between two hosts with bridge rules in its switch (cluster.CutLink).
# chromium: the web dashboard's browser tests (headless, driven by chromedp).
# lintian: test/deb checks the built package; zsh, fish: the completion tests.
# debootstrap, systemd-container: test/systemd boots a Debian root with systemd in systemd-nspawn
# and installs the package there.
# libvirt-daemon also brings virtlockd and its lockd plugin (README, "Second guard: libvirt's lock
# manager"; TestLockManagerRefusesSecondStart), util-linux losetup.
DEB_PACKAGES := build-essential pkg-config git ca-certificates \
	libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients \
	qemu-system-x86 qemu-utils iproute2 nftables util-linux e2fsprogs groff-base adduser \
	libglib2.0-0 libnuma1 libudev1 \
	chromium lintian zsh fish debootstrap systemd-container

.PHONY: all deps setup build deb test test-short lint bench demo e2e sim clean

all: build

# deps installs every Debian package, user, group and directory the build and the tests need.
# Idempotent; must run as root.
deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (it installs Debian packages)" >&2; exit 1; fi
	@missing=""; for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "all Debian packages present"; fi
	@getent group kvm >/dev/null || groupadd --system kvm
	@getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
	@id libvirt-qemu >/dev/null 2>&1 || useradd --system --no-create-home --gid libvirt-qemu --groups kvm --shell /usr/sbin/nologin libvirt-qemu
	@getent group wingman >/dev/null || groupadd --system wingman
	@mkdir -p /var/log/libvirt /var/run/libvirt /run/wingman /var/lib/wingman
	@$(GO) mod download
	@# The real test guest (Debian cloud kernel, busybox, qemu-guest-agent, the ledger service),
	@# unpacked from Debian packages into a cache, not installed: see test/realguest.
	@$(GO) run ./test/realguest/mkimage

# setup runs deps when run as root, so that `make demo` and `make test` work on a fresh machine on their own.
setup:
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory deps; else echo "not root: skipping make deps (the integration tests will skip)"; fi

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/wingman ./cmd/wingman
	@if [ -d cmd/wingmand ] && ls cmd/wingmand/*.go >/dev/null 2>&1; then $(GO) build -o $(BIN)/wingmand ./cmd/wingmand; fi

test: setup lint
	$(GO) test $(TESTFLAGS) $(PKGS)

# deb builds the Debian package (PIE binaries, systemd unit, config, completion for bash, zsh and
# fish, man pages, changelog, copyright) into bin/; test/deb runs lintian on it.
deb:
	@bash contrib/debian/build.sh

test-short:
	$(GO) test -short -count=1 $(PKGS)

lint:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# demo starts a throwaway 3-host cluster with wingmand on this machine and shows a failover, a live
# migration and maintenance mode, then tears it all down (root; about a minute).
demo: setup
	$(GO) run ./test/demo

# e2e runs every end-to-end scenario on real wingmand/libvirtd/KVM test clusters (root; make test runs
# only the fast subset).
e2e:
	WINGMAN_E2E_ALL=1 $(GO) test -count=1 -timeout 60m -v -run . ./test/e2e

# bench measures failover (1, 10, 30 VMs) against libvirt's own floor, the real guest as its client
# sees it, isolation to restart, wingmand at rest, evacuation and the Go benchmarks and writes
# docs/BENCHMARKS.md (root; ~50 min). One line only, e.g.:
# go run ./test/bench -out /tmp/b.md -only fence -vms 10 -runs 3 -skip-go-bench -show-events
bench:
	$(GO) run ./test/bench -out docs/BENCHMARKS.md

# sim runs the quorum simulator over SEEDS random fault schedules (crashes, reboots, partitions,
# freezes, daemon stalls, LUN loss and latency, failing fences, clock drift of up to DRIFT ppm) on
# HOSTS hosts (2 to 255, the LUN's slot count; default: 2 to 7 at random), one worker per CPU,
# checking the invariants at every step, and prints schedules and CPU time per schedule.
# A failing seed prints a one-line reproducer (make sim SEED=N HOSTS=H) and its schedule as a
# scenario file, also saved in $TMPDIR: copy it to quorum/testdata/ and TestScenarios replays it
# (go test ./quorum -run TestScenarios/NAME -update fills in the output once the bug is fixed).
# SEED=N runs that one seed and logs its scenario. SUSPEND=1 adds suspends (a host's monotonic
# clock stops while it sleeps): outside the timing rule's assumption, they find violations.
# LUNS=3 gives the cluster three heartbeat LUNs and adds the faults of one of them (lost or slow
# for every host, one host's path to it lost); see quorum/simluns_test.go for what it finds.
SEEDS ?= 1000
SEED ?=
HOSTS ?=
DRIFT ?=
SUSPEND ?=
LUNS ?=
sim:
	WINGMAN_SIM_SEEDS=$(SEEDS) WINGMAN_SIM_SEED=$(SEED) WINGMAN_SIM_HOSTS=$(HOSTS) WINGMAN_SIM_DRIFT=$(DRIFT) WINGMAN_SIM_SUSPEND=$(SUSPEND) WINGMAN_SIM_LUNS=$(LUNS) \
		$(GO) test -count=1 -timeout 0 -v -run 'TestRandomFaultSchedules' ./quorum/

clean:
	rm -rf $(BIN)

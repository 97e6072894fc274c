# Sprig — every target sets up what it needs, idempotently, on a fresh Debian 12 machine.
#
#   make test    every test (fmt, clippy, unit, integration, cross-process, doc tests)
#   make demo    the end-to-end demo on localhost (server, seeded setting, one tablet)
#   make bench   the benchmarks recorded in docs/BENCHMARKS.md
#   make soak    1,000 seeded fault schedules (proxy faults, kill -9 of server and devices)
#   make fuzz    the fuzz targets, FUZZ_SECONDS (60) each, on nightly (docs/FUZZING.md)
#
# The cargo target directory is CARGO_TARGET_DIR when set (CI keeps it outside the clone so
# repeated runs reuse the build), else ./target.

SHELL := /bin/bash
.DEFAULT_GOAL := test
export CARGO_TERM_COLOR ?= never

# Debian packages: C toolchain and OpenSSL for SQLCipher; D-Bus headers for keyring's Secret
# Service; keyutils, dbus and gnome-keyring for a real keystore without a desktop; libvips-tools
# (vipsthumbnail) and hyperfine for the photo benchmark anchor; exiftool and ImageMagick to
# inspect test images by hand; PostgreSQL's server binaries for the throw-away cluster of
# scripts/with-postgres.sh (its system service is never used).
APT_PACKAGES := build-essential pkg-config libssl-dev perl libdbus-1-dev \
	keyutils gnome-keyring dbus-daemon dbus-bin libsecret-tools sqlite3 \
	libvips-tools hyperfine libimage-exiftool-perl imagemagick jq curl ca-certificates python3 \
	postgresql

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages rust node s3s-fs test lint unit soak demo bench bench-photo bench-store bench-journal bench-sync

setup: system-packages rust node

# Node and npm (the sync benchmark's anchor; the UI later) come with the machine; a machine
# without them gets Debian's.
node:
	@command -v npm >/dev/null || { echo "Installing Node.js and npm (Debian)"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; }

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing system packages: $$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

rust:
	@command -v cargo >/dev/null || { echo "Installing Rust (rustup, stable)"; \
		curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt; }
	@command -v cargo >/dev/null || { echo "cargo not on PATH: run 'source ~/.cargo/env' and retry"; exit 1; }
	@rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt

# The S3-compatible server the media tests start, one per test (s3s-fs from crates.io, over a
# folder; docs/HOSTING.md says why and what it costs). Built once, in release, into a cache
# outside the clone (SPRIG_TOOLS); skipped when that version is already there. Its build
# directory is a temporary one, removed afterwards.
SPRIG_TOOLS ?= $(HOME)/.cache/sprig-tools
S3S_FS_VERSION := 0.14.1
export SPRIG_S3S_FS := $(SPRIG_TOOLS)/bin/s3s-fs
s3s-fs: rust
	@"$(SPRIG_S3S_FS)" --version 2>/dev/null | grep -qx 's3s-fs $(S3S_FS_VERSION)' || { \
		echo "Building s3s-fs $(S3S_FS_VERSION) into $(SPRIG_TOOLS) (once; about 5 minutes on 2 cores)"; \
		env -u CARGO_TARGET_DIR cargo install s3s-fs --version $(S3S_FS_VERSION) --features binary \
			--locked --root "$(SPRIG_TOOLS)"; }

test: setup lint unit bench-smoke

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

# Tests run inside a private kernel keyring session and D-Bus session with an unlocked
# gnome-keyring, so the store's integration tests use a real OS keystore, and beside a
# throw-away PostgreSQL cluster (scripts/with-postgres.sh: its own directory, port and
# unprivileged user, stopped and removed afterwards) for the Postgres backend's tests.
unit: setup s3s-fs
	scripts/with-postgres.sh scripts/with-keystore.sh cargo test --workspace --all-features

# The cross-process fault schedules of tests/e2e/faults.rs, 1,000 of them from a fresh first seed
# (SOAK_SCHEDULES and SOAK_FIRST_SEED override), with the build `make test` uses. Prints
# "fault schedules passed: N", or the seed to replay on a failure (docs/TESTING.md).
SOAK_SCHEDULES ?= 1000
soak: setup
	SPRIG_FAULT_SCHEDULES=$(SOAK_SCHEDULES) $(if $(SOAK_FIRST_SEED),SPRIG_FAULT_FIRST_SEED=$(SOAK_FIRST_SEED)) \
		scripts/with-keystore.sh cargo test -p sprig-e2e --test e2e -- \
		--exact faults::fault_schedules_lose_nothing_and_converge --nocapture

# The whole system on localhost: server, seeded setting, one enrolled tablet, observations with
# photos, sync, purge. Keeps serving until Ctrl-C.
demo: setup
	scripts/with-keystore.sh scripts/demo.sh

bench: bench-journal bench-store bench-photo bench-sync

# Every benchmark once, at a tiny size and on the debug build, so that one that can no longer
# start fails CI instead of rotting: criterion benches in test mode (one pass each), the photo
# anchor once, and the sync script with two children of three observations. Nothing here looks
# at a timing.
BENCH_SMOKE_DIR ?= $(or $(TMPDIR),/tmp)/sprig-bench-smoke
.PHONY: bench-smoke
bench-smoke: setup
	cargo test --workspace --all-features --bench '*'
	rm -rf $(BENCH_SMOKE_DIR) && mkdir -p $(BENCH_SMOKE_DIR)
	PROFILE=dev RUNS=1 benches/photo_pipeline.sh $(BENCH_SMOKE_DIR)/photo
	PROFILE=dev RUNS=1 ITERS=2 CHILDREN=2 PER_CHILD=3 LOAD_DEVICES=2 LAT_MAX_SECS=120 \
		benches/sync.sh $(BENCH_SMOKE_DIR)/sync
	rm -rf $(BENCH_SMOKE_DIR)

bench-journal: setup
	cargo bench -p sprig-core --bench journal

bench-store: setup
	cargo bench -p sprig-store --features insecure-plaintext --bench store

bench-photo: setup
	benches/photo_pipeline.sh

# Our server against automerge-repo-sync-server (npm), first sync of a year, latency.
bench-sync: setup
	benches/sync.sh

# The cargo-fuzz targets of fuzz/ (docs/FUZZING.md), FUZZ_SECONDS each. The replay tests write
# the generated seed corpus first; sanitizer builds get their own target directory, since they
# cannot share the normal build cache. A crash leaves its input in fuzz/artifacts/ and fails.
FUZZ_SECONDS ?= 60
FUZZ_TARGET_DIR ?= $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR)-fuzz,$(CURDIR)/fuzz/target)
FUZZ_RUN = CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) cargo +nightly fuzz run
FUZZ_LIBFUZZER = -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1
.PHONY: fuzz
fuzz: setup
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	SPRIG_FUZZ_SEEDS=$(CURDIR)/fuzz/corpus cargo test -p sprig-proto --test proto fuzz_replay
	SPRIG_FUZZ_SEEDS=$(CURDIR)/fuzz/corpus cargo test -p sprig-media --test media fuzz_replay
	$(FUZZ_RUN) wire_decode -- $(FUZZ_LIBFUZZER) -max_len=16384 -dict=fuzz/wire_decode.dict
	$(FUZZ_RUN) image_decode -- $(FUZZ_LIBFUZZER) -max_len=65536 -malloc_limit_mb=160 \
		-dict=fuzz/image_decode.dict

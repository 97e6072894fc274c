# Sprig — every target sets up what it needs, idempotently, on a fresh Debian 12 machine.
#
#   make test    every test (fmt, clippy, unit, integration, cross-process, doc tests)
#   make demo    the end-to-end demo on localhost (server, seeded setting, one tablet)
#   make bench   the benchmarks recorded in docs/BENCHMARKS.md
#   make soak    1,000 seeded fault schedules (proxy faults, kill -9 of server and devices)
#   make fuzz    the fuzz targets, FUZZ_SECONDS (60) each, on nightly (docs/FUZZING.md)
#   make app     the tablet app: the UI (ui/, entry app) and the release binary sprig-app
#   make app-e2e the real app window under Xvfb over WebDriver; writes docs/screenshots/
#   make portal-e2e the parents' portal and the manager's console in real Chromium (Playwright)
#                 against a real server
#   make api-fuzz schemathesis against the portal's OpenAPI document on a real server
#   make bench-app the tablet app's figures with a year of a 60-child setting
#
# The cargo target directory is CARGO_TARGET_DIR when set (CI keeps it outside the clone so
# repeated runs reuse the build), else ./target.

SHELL := /bin/bash
.DEFAULT_GOAL := test
export CARGO_TERM_COLOR ?= never

# The tablet app (src-tauri, ui/): WebKitGTK and its headers for Tauri; Xvfb, xauth and
# WebKitWebDriver for the window tests; GStreamer's base and good plugins for WebKit's media
# stream (the mock camera); fonts for the screenshots. Node 20 and npm come with the machine.
APP_APT_PACKAGES := libwebkit2gtk-4.1-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev librsvg2-dev \
	xvfb xauth webkit2gtk-driver gstreamer1.0-plugins-base gstreamer1.0-plugins-good fonts-dejavu-core

# The parents' portal's browser tests: Debian's Chromium (driven by playwright-core; nothing
# downloads a browser) and NSS's certutil, to trust the setting's CA in a throw-away profile.
PORTAL_APT_PACKAGES := chromium libnss3-tools

# Debian packages: C toolchain and OpenSSL for SQLCipher; D-Bus headers for keyring's Secret
# Service; keyutils, dbus and gnome-keyring for a real keystore without a desktop; libvips-tools
# (vipsthumbnail) and hyperfine for the photo benchmark anchor; exiftool and ImageMagick to
# inspect test images by hand; PostgreSQL's server binaries for the throw-away cluster of
# scripts/with-postgres.sh (its system service is never used); python3-venv for the API
# fuzzer's virtualenv (scripts/api-fuzz.sh).
APT_PACKAGES := build-essential pkg-config libssl-dev perl libdbus-1-dev \
	keyutils gnome-keyring dbus-daemon dbus-bin libsecret-tools sqlite3 \
	libvips-tools hyperfine libimage-exiftool-perl imagemagick jq curl ca-certificates python3 python3-venv \
	postgresql $(APP_APT_PACKAGES) $(PORTAL_APT_PACKAGES)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages rust node s3s-fs test lint unit soak demo bench bench-photo bench-store bench-journal bench-sync bench-portal

setup: system-packages rust node


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

test: setup lint unit ui-test app-e2e portal-e2e api-fuzz bench-smoke

lint: setup ui
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

# Tests run inside a private kernel keyring session and D-Bus session with an unlocked
# gnome-keyring, so the store's integration tests use a real OS keystore, and beside a
# throw-away PostgreSQL cluster (scripts/with-postgres.sh: its own directory, port and
# unprivileged user, stopped and removed afterwards) for the Postgres backend's tests.
unit: setup s3s-fs ui
	scripts/with-postgres.sh scripts/with-keystore.sh cargo test --workspace --all-features

# Every debug binary, built with the features `unit`'s test build uses, so that the window,
# browser, fuzz and benchmark targets (and the cross-process tests' harness, tests/src/lib.rs)
# reuse that build instead of compiling the server and its dependencies again with other
# features: any other selection (`-p sprig-server`, no --all-features) is a build of its own,
# minutes each on 2 cores.
WORKSPACE := --workspace --all-features
WORKSPACE_BINS := $(WORKSPACE) --bins

# ---- The tablet app ------------------------------------------------------------------------
# Node 20 (>= 20.19) with npm ships with the machine; the UI installs from package-lock.json.
TARGET_DIR := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),$(CURDIR)/target)
TOOLS_DIR ?= $(HOME)/.cache/sprig-tools
TAURI_DRIVER := $(TOOLS_DIR)/bin/tauri-driver
.PHONY: node ui-deps ui ui-test app app-e2e tauri-driver bench-app

# Node and npm (the UI, the sync benchmark's anchor) come with the machine; a machine without
# them gets Debian's (which must then be new enough).
node:
	@command -v npm >/dev/null || { echo "Installing Node.js and npm (Debian)"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; }
	@command -v node >/dev/null || { echo "Node.js 20.19 or later is needed for the UI (ui/)"; exit 1; }
	@node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a < 20 || (a === 20 && b < 19)) { console.error("Node " + process.version + " is too old: the UI needs 20.19 or later"); process.exit(1) }'

# `npm ci` only when package-lock.json changed since the last install.
ui-deps: node
	@if [ ! -f ui/node_modules/.sprig-installed ] || [ ui/package-lock.json -nt ui/node_modules/.sprig-installed ]; then \
		(cd ui && npm ci --no-audit --no-fund) && touch ui/node_modules/.sprig-installed; fi

ui: ui-deps
	cd ui && npm run build

# The UI's type check (svelte-check, TypeScript strict), lint (eslint) and component tests
# (Vitest over the in-memory backend, with axe). The generated bindings are checked by
# `cargo test -p sprig-app` (bindings_are_fresh).
ui-test: ui-deps
	cd ui && npm run check && npm run lint && npm test

# The release app binary with the UI inside (custom-protocol: served from the binary).
app: setup ui
	cargo build --release -p sprig-app --features custom-protocol
	@echo "Built $(TARGET_DIR)/release/sprig-app; run it with SPRIG_APP_DATA=DIR $(TARGET_DIR)/release/sprig-app"

tauri-driver:
	@[ -x $(TAURI_DRIVER) ] || cargo install tauri-driver --locked --root $(TOOLS_DIR)

# The real app binary (a debug build with the UI inside, sharing `make test`'s build) in a
# window under Xvfb, driven over WebDriver against a real sprig-server: the issue's eight
# steps, with screenshots in a temporary folder (`make app-screenshots` refreshes the ones in
# docs/screenshots/).
.PHONY: app-screenshots
app-screenshots: export SPRIG_SCREENSHOTS = docs/screenshots
app-screenshots: app-e2e
app-e2e: setup ui tauri-driver
	cargo build $(WORKSPACE_BINS)
	SPRIG_APP_BIN=$(TARGET_DIR)/debug/sprig-app SPRIG_SERVER_BIN=$(TARGET_DIR)/debug/sprig-server \
	SPRIG_DEVICE_BIN=$(TARGET_DIR)/debug/sprig-device SPRIG_HELPER_BIN=$(TARGET_DIR)/debug/sprig-e2e-helper \
	TAURI_DRIVER=$(TAURI_DRIVER) \
		scripts/with-keystore.sh xvfb-run -a -s "-screen 0 1280x1280x24" node --test ui/e2e/app.e2e.mjs

# The parents' portal in real Chromium (playwright-core, /usr/bin/chromium) against a real
# sprig-server with the UI inside, and a headless tablet (sprig-device) that syncs a photo:
# sign-in, agreement, consent, journal, reply; then the manager's console in the same way
# (two-step set-up, enrolment, monitoring, wipe, approval, deactivation) with two headless
# tablets. axe on every page; screenshots in a temporary folder (`make portal-screenshots`
# refreshes the portal-* and console-* ones in docs/screenshots/).
PORTAL_E2E_ENV = SPRIG_SERVER_BIN=$(TARGET_DIR)/debug/sprig-server SPRIG_DEVICE_BIN=$(TARGET_DIR)/debug/sprig-device
.PHONY: portal-e2e portal-screenshots
portal-screenshots: export SPRIG_SCREENSHOTS = docs/screenshots
portal-screenshots: portal-e2e
portal-e2e: setup ui
	cargo build $(WORKSPACE_BINS)
	$(PORTAL_E2E_ENV) scripts/with-keystore.sh node --test ui/e2e/portal.e2e.mjs
	$(PORTAL_E2E_ENV) scripts/with-keystore.sh node --test ui/e2e/console.e2e.mjs

# schemathesis (PyPI, pinned, in a virtualenv under SPRIG_TOOLS) against the portal's OpenAPI
# document on a real server, signed in as a parent: no 5xx, and statuses, content types and
# bodies as the document declares them (scripts/api-fuzz.sh).
.PHONY: api-fuzz
api-fuzz: setup ui
	cargo build $(WORKSPACE_BINS)
	SPRIG_SERVER_BIN=$(TARGET_DIR)/debug/sprig-server SPRIG_TOOLS=$(TOOLS_DIR) scripts/api-fuzz.sh

bench-app: setup app
	scripts/with-keystore.sh benches/app.sh

# The cross-process fault schedules of tests/e2e/faults.rs, 1,000 of them from a fresh first seed
# (SOAK_SCHEDULES and SOAK_FIRST_SEED override), with the build `make test` uses. Prints
# "fault schedules passed: N", or the seed to replay on a failure (docs/TESTING.md).
SOAK_SCHEDULES ?= 1000
soak: setup
	SPRIG_FAULT_SCHEDULES=$(SOAK_SCHEDULES) $(if $(SOAK_FIRST_SEED),SPRIG_FAULT_FIRST_SEED=$(SOAK_FIRST_SEED)) \
		scripts/with-keystore.sh cargo test --workspace --all-features --test e2e -- \
		--exact faults::fault_schedules_lose_nothing_and_converge --nocapture

# The whole system on localhost: server, seeded setting, one enrolled tablet, observations with
# photos, sync, purge. Keeps serving until Ctrl-C.
demo: setup ui
	scripts/with-keystore.sh scripts/demo.sh

bench: bench-journal bench-store bench-photo bench-sync bench-portal

# Every benchmark once, at a tiny size and on the debug build, so that one that can no longer
# start fails CI instead of rotting: criterion benches in test mode (one pass each), the photo
# anchor once, the sync script with two children of three observations, and the portal script
# with four parents over two children of thirty (two journal pages). Nothing here looks at a
# timing.
BENCH_SMOKE_DIR ?= $(or $(TMPDIR),/tmp)/sprig-bench-smoke
.PHONY: bench-smoke
bench-smoke: setup
	cargo test --workspace --all-features --bench '*'
	rm -rf $(BENCH_SMOKE_DIR) && mkdir -p $(BENCH_SMOKE_DIR)
	SPRIG_CARGO_SELECT="$(WORKSPACE)" PROFILE=dev RUNS=1 \
		benches/photo_pipeline.sh $(BENCH_SMOKE_DIR)/photo
	SPRIG_CARGO_SELECT="$(WORKSPACE_BINS)" PROFILE=dev RUNS=1 ITERS=2 CHILDREN=2 PER_CHILD=3 LOAD_DEVICES=2 LAT_MAX_SECS=120 \
		benches/sync.sh $(BENCH_SMOKE_DIR)/sync
	SPRIG_CARGO_SELECT="$(WORKSPACE_BINS)" PROFILE=dev PARENTS=4 SECS=1 PAGE_REQUESTS=5 CHILDREN=2 PER_CHILD=30 \
		benches/portal.sh $(BENCH_SMOKE_DIR)/portal
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

# The parents' portal: a journal page's latency, 500 concurrent parents, the JavaScript's size.
bench-portal: setup ui-deps
	benches/portal.sh

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

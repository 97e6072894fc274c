#!/usr/bin/env bash
# The parents' portal's performance targets (docs/BENCHMARKS.md, "Parents' portal"), on loopback
# against the real `sprig-server serve` process over HTTPS:
#   1. page latency: one parent fetches its child's first journal page sequentially, beside the
#      portal's `/` (the floor of the HTTP/TLS stack) and an older page, on one connection
#   2. PARENTS concurrent parents, each its own connection and cookie, load their child's first
#      journal page for SECS seconds, beside the same load on `/`: throughput, p50/p99,
#      errors, the server's CPU and peak RSS
#   3. the portal's JavaScript, gzip -9, summed over the built files of ui/dist/portal
#
# Usage: benches/portal.sh [WORK_DIR]      (default /tmp/sprig-portalbench; reused between runs)
# Knobs (environment): PARENTS=500 SECS=20 PAGE_REQUESTS=500 OLD_PAGE=10 CHILDREN=60
#   PER_CHILD=300 SKIP=ui,api (either of them)
#   PROFILE=dev builds the debug profile instead of release: `make test` runs the script once
#   that way at a tiny size, to check that it still starts and finishes (timings mean nothing then)
# Needs: cargo, node + npm (Node 20), gzip.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
work="${1:-/tmp/sprig-portalbench}"
PARENTS="${PARENTS:-500}"
SECS="${SECS:-20}"
PAGE_REQUESTS="${PAGE_REQUESTS:-500}"
OLD_PAGE="${OLD_PAGE:-10}"
CHILDREN="${CHILDREN:-60}"
PER_CHILD="${PER_CHILD:-300}"
SKIP="${SKIP:-}"
PROFILE="${PROFILE:-release}"
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"
summary="$work/summary.txt"
: >"$summary"

skip() { [[ ",$SKIP," == *",$1,"* ]]; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"

# The UI first: the server embeds ui/dist/portal when it is compiled.
echo "== building the UI" >&2
if [ ! -f "$root/ui/node_modules/.sprig-installed" ] || [ "$root/ui/package-lock.json" -nt "$root/ui/node_modules/.sprig-installed" ]; then
    (cd "$root/ui" && npm ci --no-audit --no-fund) && touch "$root/ui/node_modules/.sprig-installed"
fi
# Only when a source is newer than the last build: a rebuild rewrites every file, and the server
# (which embeds them) would be compiled again.
stamp="$root/ui/dist/portal/index.html"
if [ ! -f "$stamp" ] || [ -n "$(find "$root/ui/src" "$root/ui/portal" "$root/ui/app" "$root/ui/package-lock.json" \
        "$root/ui/vite.config.ts" "$root/ui/svelte.config.js" -newer "$stamp" -print -quit 2>/dev/null)" ]; then
    (cd "$root/ui" && npm run build >&2)
fi

if ! skip ui; then
    # Every script the portal entry's build produced, each compressed on its own as a server
    # would send it.
    total=0
    while IFS= read -r f; do
        raw=$(wc -c <"$f")
        gz=$(gzip -9 -c "$f" | wc -c)
        total=$((total + gz))
        echo "portal js ${f#"$root/"}: $raw bytes, gzip -9 $gz bytes" | tee -a "$summary"
    done < <(find "$root/ui/dist/portal" -name '*.js' -type f | sort)
    awk -v b="$total" 'BEGIN { kb = b / 1024; printf "portal js total gzip -9: %d bytes = %.1f KB; target <= 150 KB: %s\n", b, kb, (kb <= 150 ? "met" : "MISSED") }' | tee -a "$summary"
fi

if ! skip api; then
    echo "== building ($PROFILE)" >&2
    # SPRIG_CARGO_SELECT: what cargo builds (as in benches/sync.sh; `make test` passes its own).
    # shellcheck disable=SC2086 # a list of cargo arguments
    (cd "$root" && cargo build --profile "$PROFILE" ${SPRIG_CARGO_SELECT:--p sprig-bench-sync -p sprig-server})
    out="$target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"
    echo "== portal API: page latency, then $PARENTS concurrent parents for $SECS s" >&2
    "$out/sprig-bench-sync" portal --work "$work" --server-bin "$out/sprig-server" \
        --children "$CHILDREN" --per-child "$PER_CHILD" --parents "$PARENTS" \
        --page-requests "$PAGE_REQUESTS" --old-page "$OLD_PAGE" --secs "$SECS" | tee "$work/portal.txt"
    grep -E '^portal' "$work/portal.txt" >>"$summary"
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"
echo
echo "== summary ($summary)"
cat "$summary"

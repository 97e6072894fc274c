#!/usr/bin/env bash
# Sprig's sync benchmarks, all on loopback (docs/BENCHMARKS.md, "Sync"):
#   1. first full sync of a freshly enrolled device: a year of a 60-child setting
#   2. latency: an observation on device A visible on device B after both sync (p50/p99)
#   3. our server vs automerge-repo-sync-server: D clients pull the same journals;
#      throughput and the server's peak RSS (VmHWM), side by side
#
# Usage: benches/sync.sh [WORK_DIR]      (default /tmp/sprig-syncbench; reused between runs)
# Knobs (environment): RUNS=5 ITERS=100 LAT_MAX_SECS=300 CHILDREN=60 PER_CHILD=300
#   LOAD_DEVICES=10 LOAD_PER_CHILD=PER_CHILD LOAD_ROUNDS=1 SKIP=first,latency,load (any of them)
#   (the load comparison serves the same year-sized journals as the first sync by default)
#   PROFILE=dev builds the debug profile instead of release: `make test` runs the script once
#   that way at a tiny size, to check that it still starts and finishes (timings mean nothing then)
#   SPRIG_CARGO_SELECT="-p sprig-bench-sync -p sprig-server" is what cargo builds; `make test`
#   passes its own selection (--workspace --all-features --bins) so that the build it already
#   holds is reused rather than a second one with other features
# Needs: cargo, node + npm (Node 20), the keystore tools of scripts/with-keystore.sh.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
work="${1:-/tmp/sprig-syncbench}"
RUNS="${RUNS:-5}"
ITERS="${ITERS:-100}"
LAT_MAX_SECS="${LAT_MAX_SECS:-300}"
CHILDREN="${CHILDREN:-60}"
PER_CHILD="${PER_CHILD:-300}"
LOAD_DEVICES="${LOAD_DEVICES:-10}"
LOAD_PER_CHILD="${LOAD_PER_CHILD:-$PER_CHILD}"
LOAD_ROUNDS="${LOAD_ROUNDS:-1}"
SKIP="${SKIP:-}"
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"
summary="$work/summary.txt"
: >"$summary"

skip() { [[ ",$SKIP," == *",$1,"* ]]; }

PROFILE="${PROFILE:-release}"
echo "== building ($PROFILE)" >&2
SPRIG_CARGO_SELECT="${SPRIG_CARGO_SELECT:--p sprig-bench-sync -p sprig-server}"
# shellcheck disable=SC2086 # a list of cargo arguments
(cd "$root" && cargo build --profile "$PROFILE" $SPRIG_CARGO_SELECT)
out="$target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"
bench="$out/sprig-bench-sync"
server_bin="$out/sprig-server"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"

if ! skip first; then
    echo "== 1. first full sync of a new device" >&2
    "$root/scripts/with-keystore.sh" "$bench" first-sync --work "$work" \
        --children "$CHILDREN" --per-child "$PER_CHILD" --runs "$RUNS" | tee "$work/first-sync.txt"
    grep -E '^first-sync(:| bytes| profile)' "$work/first-sync.txt" >>"$summary"
fi

if ! skip latency; then
    echo "== 2. latency A -> B" >&2
    "$root/scripts/with-keystore.sh" "$bench" latency --work "$work" \
        --children "$CHILDREN" --per-child "$PER_CHILD" --iters "$ITERS" \
        --max-secs "$LAT_MAX_SECS" | tee "$work/latency.txt"
    grep -E '^latency' "$work/latency.txt" >>"$summary"
fi

# Peak and current RSS of a process, in MB, from /proc.
rss() { awk -v k="$2" '$1 == k":" { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# CPU seconds (user + system) a process has used.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if ! skip load; then
    echo "== 3. our server vs automerge-repo-sync-server" >&2
    am="$here/automerge-repo"
    if [ ! -d "$am/node_modules/@automerge/automerge-repo-sync-server" ]; then
        (cd "$am" && npm ci --no-audit --no-fund)
    fi
    lw="$work/load-${CHILDREN}x${LOAD_PER_CHILD}-d${LOAD_DEVICES}"
    if [ ! -f "$lw/export/urls.json" ]; then
        rm -rf "$lw"
        "$bench" setup-load --data "$lw/sprig" --creds "$lw/creds" --export "$lw/export" \
            --children "$CHILDREN" --per-child "$LOAD_PER_CHILD" --devices "$LOAD_DEVICES"
        node "$am/seed.mjs" "$lw/amrg" "$lw/export"
    fi
    # Each run serves a fresh copy of the data, so both start from the same stored state.
    rm -rf "$lw/run" && mkdir -p "$lw/run" && cp -a "$lw/sprig" "$lw/run/sprig" && cp -a "$lw/amrg" "$lw/run/amrg"

    pids=()
    cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
    trap cleanup EXIT

    # Ours: the real server process, mutual TLS.
    port="$(free_port)"
    RUST_LOG=warn "$server_bin" serve --data "$lw/run/sprig" --listen "127.0.0.1:$port" \
        >"$lw/sprig-server.log" 2>&1 &
    spid=$!; pids+=("$spid")
    wait_port "$port"
    s_idle="$(rss "$spid" VmRSS)"
    "$bench" load --port "$port" --creds "$lw/creds" --devices "$LOAD_DEVICES" \
        --rounds "$LOAD_ROUNDS" | tee "$lw/sprig-load.jsonl" || echo "sprig load client failed" >&2
    s_hwm="$(rss "$spid" VmHWM)"; s_cpu="$(cpu "$spid")"
    kill "$spid"; wait "$spid" 2>/dev/null || true

    # Theirs: automerge-repo-sync-server (bound to 127.0.0.1), plain WebSocket.
    port="$(free_port)"
    (cd "$lw/run" && PORT="$port" DATA_DIR="$lw/run/amrg" exec node "$am/server.mjs") \
        >"$lw/amrg-server.log" 2>&1 &
    apid=$!; pids+=("$apid")
    wait_port "$port"
    a_idle="$(rss "$apid" VmRSS)"
    node "$am/client.mjs" "$port" "$lw/export/urls.json" "$LOAD_DEVICES" "$LOAD_ROUNDS" \
        | tee "$lw/amrg-load.jsonl" || echo "automerge-repo client failed" >&2
    a_hwm="$(rss "$apid" VmHWM)"; a_cpu="$(cpu "$apid")"
    kill "$apid"; wait "$apid" 2>/dev/null || true
    trap - EXIT

    python3 - "$lw" "$s_idle" "$s_hwm" "$s_cpu" "$a_idle" "$a_hwm" "$a_cpu" <<'EOF' | tee -a "$summary"
import json, sys, statistics
lw, s_idle, s_hwm, s_cpu, a_idle, a_hwm, a_cpu = sys.argv[1:]
def rows(f):
    return [json.loads(l) for l in open(f"{lw}/{f}") if l.startswith("{")]
s, a = rows("sprig-load.jsonl"), rows("amrg-load.jsonl")
def line(name, r, idle, hwm, cpu):
    dps = [x["docs_per_s"] for x in r]
    print(f"load {name:<27} rounds {len(r)}: docs/s per round {', '.join(f'{d:.0f}' for d in dps)}"
          f" (median {statistics.median(dps):.0f}); {r[0]['devices']} clients x {r[0]['docs'] // r[0]['devices']} docs,"
          f" {r[0]['entries']} entries per round; server RSS idle {idle} MB, peak (VmHWM) {hwm} MB; server CPU {cpu} s")
line("sprig-server (mTLS)", s, s_idle, s_hwm, s_cpu)
if not a:
    print(f"load automerge-repo-sync-server   did not finish (see {lw}/amrg-load.jsonl); server peak (VmHWM) so far {a_hwm} MB; no ratio")
    sys.exit(1)
line("automerge-repo-sync-server", a, a_idle, a_hwm, a_cpu)
# Both servers must have delivered the same documents: same count, same entries, every round.
same = all(x["docs"] == y["docs"] and x["entries"] == y["entries"] for x, y in zip(s, a)) and len(s) == len(a)
print(f"load check: both servers delivered the same {s[0]['docs']} documents with {s[0]['entries']} entries per round: {'yes' if same else 'NO'}")
if not same:
    sys.exit("load: the two servers did not deliver the same documents; the comparison is void")
ms = statistics.median(x["docs_per_s"] for x in s)
ma = statistics.median(x["docs_per_s"] for x in a)
ratio_t = ms / ma
ratio_m = float(s_hwm) / float(a_hwm)
ok = ratio_t >= 5 and ratio_m <= 0.2
print(f"load ratio: throughput sprig/theirs {ratio_t:.2f}x (target >= 5x), peak memory sprig/theirs {ratio_m:.2f} (target <= 0.20): {'met' if ok else 'MISSED'}")
EOF
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"
echo
echo "== summary ($summary)"
cat "$summary"

#!/usr/bin/env bash
# The tablet app's figures (docs/BENCHMARKS.md, "Tablet app"), with a year of a 60-child setting
# on the tablet (60 × 300 = 18,000 observations): app start to lock screen, unlock to home,
# opening a child's journal, saving an observation with a 12 MP photo (against vipsthumbnail on
# the same photo, in the same run), and resident memory. The release app binary runs in a real
# WebKitGTK window under Xvfb, driven over WebDriver (tauri-driver).
#
# Usage: benches/app.sh [WORK_DIR]   (default /tmp/sprig-appbench; the setting is reused)
# Knobs: RUNS=5 CHILDREN=60 PER_CHILD=300. Needs what `make app` and `make app-e2e` need; run
# through `make bench-app` (which builds the app and provides a keystore session).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
work="${1:-/tmp/sprig-appbench}"
RUNS="${RUNS:-5}"
CHILDREN="${CHILDREN:-60}"
PER_CHILD="${PER_CHILD:-300}"
target="${CARGO_TARGET_DIR:-$root/target}"
tools="${TOOLS_DIR:-$HOME/.cache/sprig-tools}"
mkdir -p "$work"

echo "== building (release)" >&2
(cd "$root" && cargo build --release -p sprig-app --features custom-protocol -p sprig-bench-sync -p sprig-server -p sprig-device)
app="$target/release/sprig-app"
[ -x "$app" ] || { echo "build the app first: make app" >&2; exit 1; }
srv_bin="$target/release/sprig-server"
dev_bin="$target/release/sprig-device"

set_dir="$work/setting-${CHILDREN}x${PER_CHILD}"
if [ ! -f "$set_dir/setting.json" ]; then
    rm -rf "$set_dir"
    mkdir -p "$set_dir"
    "$target/release/sprig-bench-sync" setup-setting --data "$set_dir/server" \
        --children "$CHILDREN" --per-child "$PER_CHILD" >"$set_dir/setting.json.tmp"
    mv "$set_dir/setting.json.tmp" "$set_dir/setting.json"
fi
photo="$work/photo-12mp.jpg"
[ -f "$photo" ] || convert -size 4000x3000 plasma:fractal -seed 12 -quality 92 "$photo"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$srv_bin" serve --data "$set_dir/server" --listen "127.0.0.1:$port" 2>"$work/server.log" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

tablet="$work/tablet"
rm -rf "$tablet"
code=$("$srv_bin" enrol-code --data "$set_dir/server" --device-name "bench tablet" --json)
"$dev_bin" enrol --data "$tablet" --server "https://localhost:$port" \
    --code "$(jq -r .code <<<"$code")" --ca-fingerprint "$(jq -r .ca_fingerprint <<<"$code")" --json >/dev/null
echo "== first sync of the tablet (a year)" >&2
/usr/bin/time -f "first sync: %e s, %M KB peak" "$dev_bin" sync --data "$tablet" --json >/dev/null

echo "== vipsthumbnail on the same photo (anchor)" >&2
vips_ms=()
for _ in $(seq "$RUNS"); do
    s=$(date +%s%N)
    vipsthumbnail "$photo" -s 2048 -o "$work/vips-out.jpg[Q=82,strip]"
    vips_ms+=($(( ($(date +%s%N) - s) / 1000000 )))
done

echo "== the app (release) under Xvfb" >&2
SPRIG_APP_BIN="$app" SPRIG_BENCH_DATA="$tablet" SPRIG_BENCH_SETTING="$set_dir/setting.json" \
SPRIG_BENCH_PHOTO="$photo" SPRIG_BENCH_RUNS="$RUNS" SPRIG_BENCH_VIPS_MS="${vips_ms[*]}" \
TAURI_DRIVER="$tools/bin/tauri-driver" \
    xvfb-run -a -s "-screen 0 1280x800x24" node "$here/app/bench.mjs" | tee "$work/app.txt"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

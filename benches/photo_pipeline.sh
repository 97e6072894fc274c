#!/usr/bin/env bash
# Photo pipeline anchor: Sprig's `process_photo` (release build of the sprig-media `process`
# example) against `vipsthumbnail` on the same deterministic 12 MP JPEG, side by side in one
# hyperfine run. Target: Sprig's mean time ≤ 1.5 × vipsthumbnail's.
#
# Usage: benches/photo_pipeline.sh [work-dir]     (RUNS=20 by default)
# PROFILE=dev builds the debug profile instead of release: `make test` runs the script once
# that way (RUNS=1) to check that it still starts and finishes; its timings mean nothing then.
# SPRIG_CARGO_SELECT="-p sprig-media" is what cargo builds the examples of (`make test` passes
# --workspace --all-features, to reuse the examples its test build already holds).
# Needs: cargo, hyperfine, vipsthumbnail, vipsheader, jq.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
work="${1:-$(mktemp -d)}"
runs="${RUNS:-20}"
profile="${PROFILE:-release}"
mkdir -p "$work"

# shellcheck disable=SC2086 # a list of cargo arguments
cargo build --profile "$profile" --examples ${SPRIG_CARGO_SELECT:--p sprig-media} --manifest-path "$repo/Cargo.toml"
bin="$target/$([ "$profile" = dev ] && echo debug || echo "$profile")/examples"

cd "$work"
# Generated once: 4000 × 3000, camera-like content, EXIF with GPS.
[ -f photo.jpg ] || "$bin/gen_photo" photo.jpg
echo "input: $(vipsheader photo.jpg), $(stat -c %s photo.jpg) bytes; $(nproc) cores; $(vips --version)"

hyperfine --warmup "$([ "$runs" -gt 1 ] && echo 3 || echo 0)" --runs "$runs" --export-json result.json \
  -n sprig "$bin/process photo.jpg sprig.jpg" \
  -n vipsthumbnail "vipsthumbnail photo.jpg -s 2048 -o vips.jpg[Q=82,strip]"

# Both must have done the same job: a 2048 px long edge.
for f in sprig.jpg vips.jpg; do
  w=$(vipsheader -f width "$f")
  h=$(vipsheader -f height "$f")
  long=$(( w > h ? w : h ))
  echo "$f: ${w}x${h}, $(stat -c %s "$f") bytes"
  if [ "$long" -ne 2048 ]; then
    echo "error: $f has a long edge of $long px, expected 2048" >&2
    exit 1
  fi
done

jq -r '
  .results as $r
  | ($r[0].mean / $r[1].mean) as $ratio
  | "sprig \($r[0].mean * 1000 | round) ms ± \(($r[0].stddev // 0) * 1000 | round), "
    + "vipsthumbnail \($r[1].mean * 1000 | round) ms ± \(($r[1].stddev // 0) * 1000 | round); "
    + "ratio sprig/vips = \($ratio * 100 | round / 100) (target ≤ 1.5: "
    + (if $ratio <= 1.5 then "met" else "NOT met" end) + ")"
' result.json

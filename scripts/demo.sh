#!/usr/bin/env bash
# The Sprig demo: a setting's sync server on localhost with a self-signed CA, a seeded roster,
# one enrolled tablet (the headless `sprig-device`) that records observations with photos
# offline, then syncs: journals reach the server, photos are uploaded, acknowledged and purged
# from the tablet. Keeps serving until Ctrl-C.
#
# Run through `make demo` (which installs what is needed and provides a keystore session).
# DEMO_DIR (default ./demo-data) is recreated on every run; it holds only generated data.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
demo="${DEMO_DIR:-$repo/demo-data}"
port=8443
target="${CARGO_TARGET_DIR:-$repo/target}"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "Port $port on 127.0.0.1 is already in use (an earlier demo still running?). Stop it and run 'make demo' again." >&2
  exit 1
fi

say "Building sprig-server, sprig-device and the tablet app (sprig-app, UI inside)"
cargo build --quiet --manifest-path "$repo/Cargo.toml" -p sprig-server -p sprig-device --bins
cargo build --quiet --manifest-path "$repo/Cargo.toml" -p sprig-app --features custom-protocol
server="$target/debug/sprig-server"
device="$target/debug/sprig-device"
app="$target/debug/sprig-app"

rm -rf "$demo"
mkdir -p "$demo/photos"
srv="$demo/server"
tab="$demo/tablet-1"

say "Setting up 'Acorn Pre-School' (CA and server certificate for localhost)"
fp=$("$server" init --data "$srv" --name "Acorn Pre-School" --hostname localhost --json | jq -r .ca_fingerprint)
echo "CA fingerprint: $fp"

staff_add() { "$server" staff add --data "$srv" --json "$@" | jq -r .id; }
manager=$(staff_add --name "Morgan Hale" --role manager --pin 1357 \
  --email morgan.hale@example.org --password "demo manager pass phrase")
amara=$(staff_add --name "Amara Okafor" --role practitioner --pin 2468)
ben=$(staff_add --name "Ben Ashdown" --role practitioner --pin 3579)
cleo=$(staff_add --name "Cleo Fenwick" --role practitioner --pin 4680)
workers=("$amara" "$ben" "$cleo")

names=("Ada Birchley" "Bram Coldwell" "Cleo Dunmore" "Dev Elmsworth" "Esme Greyholt" "Finn Hartwell"
       "Gia Ashdown" "Hugo Birchley" "Ines Coldwell" "Jude Dunmore" "Kit Elmsworth" "Luca Fenwick")
children=()
for i in "${!names[@]}"; do
  room=$([ $((i % 2)) -eq 0 ] && echo "Acorns" || echo "Oaks")
  consent=$([ $((i % 4)) -eq 3 ] && echo no || echo yes)
  id=$("$server" child add --data "$srv" --json --name "${names[$i]}" --key-worker "${workers[$((i % 3))]}" \
        --room "$room" --photo-consent "$consent" | jq -r .id)
  children+=("$id")
  "$server" parent add --data "$srv" --json --email "parent$i@example.org" --name "Parent of ${names[$i]}" \
     --password "demo parent pass phrase $i" --child "$id" >/dev/null
done
echo "12 children in Acorns and Oaks (every fourth without photo consent: ${names[3]}, ${names[7]}, ${names[11]}),"
echo "12 parents, 3 practitioners and a manager (PINs: Amara 2468, Ben 3579, Cleo 4680, Morgan 1357)."

say "Starting the server on https://localhost:$port"
"$server" serve --data "$srv" --listen "127.0.0.1:$port" 2>"$demo/server.log" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null || true' EXIT
trap 'echo; echo "Stopping the server."; exit 0' INT TERM
for _ in $(seq 50); do
  curl -sk "https://localhost:$port/v1/health" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -sk "https://localhost:$port/v1/health" >/dev/null || { echo "the server did not start; see $demo/server.log" >&2; exit 1; }

say "Enrolling a tablet with a one-time code"
code_json=$("$server" enrol-code --data "$srv" --device-name "Acorns room tablet" --json)
echo "$code_json" | jq '{code, url, expires_at}'
device_id=$("$device" enrol --data "$tab" --server "$(jq -r .url <<<"$code_json")" \
  --code "$(jq -r .code <<<"$code_json")" --ca-fingerprint "$(jq -r .ca_fingerprint <<<"$code_json")" --json | jq -r .device_id)
echo "Tablet enrolled as $device_id"
"$device" sync --data "$tab" --json | jq -c .

say "Recording observations offline (the server is not needed for this)"
# Camera-like photos carrying GPS and a sideways EXIF orientation: the tablet strips both.
for n in 1 2; do
  convert -size 1600x1200 "plasma:fractal" -seed "$n" "$demo/photos/photo$n.jpg"
  exiftool -q -overwrite_original -n -GPSLatitude=51.7 -GPSLatitudeRef=N -GPSLongitude=0.05 \
    -GPSLongitudeRef=E -Orientation=6 -Make=DemoCam "$demo/photos/photo$n.jpg"
done
echo "photo1.jpg before: $(exiftool -s -s -s -GPSPosition "$demo/photos/photo1.jpg") (GPS), orientation $(exiftool -n -s -s -s -Orientation "$demo/photos/photo1.jpg")"
obs() { "$device" observe --data "$tab" --json "$@" | jq -r .id; }
obs --staff "$amara" --pin 2468 --child "${children[0]}" --area mathematics \
  --text "Ada counted the conkers to twelve and sorted them by size." --next-step "Try counting back from ten." >/dev/null
obs --staff "$amara" --pin 2468 --child "${children[1]}" --area physical-development \
  --text "Bram balanced along the beam on his own for the first time." --photo "$demo/photos/photo1.jpg" >/dev/null
obs --staff "$ben" --pin 3579 --child "${children[0]}" --child "${children[2]}" --area communication-and-language \
  --text "Ada and Cleo took turns telling the story of the three bears." --photo "$demo/photos/photo2.jpg" >/dev/null
echo "3 observations recorded (one for two children, two with photos)."
echo "A group photo that includes ${names[3]} (no photo consent) is refused:"
"$device" observe --data "$tab" --staff "$ben" --pin 3579 --child "${children[0]}" --child "${children[3]}" \
  --text "Group painting" --photo "$demo/photos/photo2.jpg" 2>&1 | sed 's/^/  /' || true
echo "A wrong PIN is refused:"
"$device" journal --data "$tab" --staff "$amara" --pin 0000 --child "${children[0]}" 2>&1 | sed 's/^/  /' || true
echo "Tablet before sync:"
"$device" status --data "$tab" --json | jq -c '{pending_media, last_sync}'

say "Syncing: journals to the server, photos uploaded, acknowledged, then purged from the tablet"
"$device" sync --data "$tab" --json | jq -c .
"$device" status --data "$tab" --json | jq -c '{pending_media, uploaded_media, purged_media, last_sync}'
stored=$(find "$srv/media" -maxdepth 2 -type f -path '*/media/??/*' | head -1)
echo "A photo as the server holds it: $(identify -format '%wx%h' "$stored" 2>/dev/null), GPS: $(exiftool -s -s -s -GPSPosition "$stored" || true)$( [ -z "$(exiftool -s -s -s -GPSPosition "$stored")" ] && echo 'none (stripped)')"
echo "Ada's journal on the tablet:"
"$device" journal --data "$tab" --staff "$amara" --pin 2468 --child "${children[0]}" --json \
  | jq -r '.[] | "  \(.created_at)  \(.text)" + (if (.media | length) > 0 then "  [photo: \([.media[].state] | join(", "))]" else "" end)'
"$server" device list --data "$srv" --json | jq -c '.[] | {name, status, last_sync, unsynced_media}'

say "The tablet app"
# The app's own tablet, enrolled with its own code and synced, so it opens on the lock screen.
code_app=$("$server" enrol-code --data "$srv" --device-name "Oaks room tablet (app)" --json)
"$device" enrol --data "$demo/app-tablet" --server "https://localhost:$port" \
  --code "$(jq -r .code <<<"$code_app")" --ca-fingerprint "$fp" --json >/dev/null
"$device" sync --data "$demo/app-tablet" --json >/dev/null
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  SPRIG_APP_DATA="$demo/app-tablet" "$app" 2>"$demo/app.log" &
  app_pid=$!
  trap 'kill $app_pid $server_pid 2>/dev/null; wait $server_pid 2>/dev/null || true' EXIT
  echo "The tablet app is open on your display (data in $demo/app-tablet). Unlock as Amara (PIN 2468),"
  echo "Ben (3579), Cleo (4680) or the manager Morgan (1357, who also sees Coverage)."
else
  echo "No display here, so the app window is not opened. To see it:"
  echo "  - on a desktop:   SPRIG_APP_DATA=$demo/app-tablet $app"
  echo "  - headless:       xvfb-run -a -s '-screen 0 1280x800x24' env SPRIG_APP_DATA=$demo/app-tablet $app"
  echo "                    (then 'import -window root shot.png' under the same display)"
  echo "  - or look at docs/screenshots/, which 'make app-e2e' writes from the real window."
  echo "  PINs: Amara 2468, Ben 3579, Cleo 4680, Morgan (manager) 1357."
fi

cat <<EOF

Sprig is serving on https://localhost:$port (data in $demo). Try, in another shell:
  $server device list --data $srv --json
  $server policy set --data $srv --lock-after 8h --wipe-after 30d --max-pin-failures 8 --json
                                    # the terms of the signed lease every tablet gets at its next sync
  $server device revoke --data $srv $device_id      # the demo tablet is refused from its next sync
  $server device wipe --data $srv $device_id        # lost: it wipes itself at its next connection
  $server device retire --data $srv $device_id      # decommission: it syncs everything, then wipes
Enrol a second tablet, record for ${names[4]} and sync (a tablet's database key lives in the OS
keystore; scripts/with-keystore.sh gives this one its own keystore session):
  code=\$($server enrol-code --data $srv --device-name "Oaks room tablet" --json)
  scripts/with-keystore.sh bash -c '$device enrol --data $demo/tablet-2 --server https://localhost:$port \\
      --code \$(jq -r .code <<<"\$0") --ca-fingerprint $fp --json &&
    $device sync --data $demo/tablet-2 --json &&
    $device observe --data $demo/tablet-2 --staff $cleo --pin 4680 --child ${children[4]} --text "Esme planted cress" --json &&
    $device sync --data $demo/tablet-2 --json' "\$code"
The manager's view of what each tablet holds: $server device list --data $srv --json

The parents' portal: https://localhost:$port/ (a phone-sized window suits it). The browser does
not know the setting's own CA: import $srv/ca.pem as a trusted authority, or accept the warning.
Parent logins (e-mail / password), each seeing only their own child's journal:
  parent0@example.org / demo parent pass phrase 0    ${names[0]} (photos, a group observation)
  parent1@example.org / demo parent pass phrase 1    ${names[1]} (a photo)
  parentN@example.org / demo parent pass phrase N    for N up to 11
The managers' console is the same address: morgan.hale@example.org / demo manager pass phrase.
At the first sign-in it shows a QR code for an authenticator app (or type its secret into one;
\`oathtool --totp -b SECRET\` gives the codes too), then ten recovery codes to keep.
Press Ctrl-C to stop.
EOF
wait $server_pid || true

#!/usr/bin/env bash
# Runs a command with a real OS keystore reachable, on a machine without a desktop session
# (CI, containers, SSH): a fresh kernel session keyring (keyctl) plus a private D-Bus session
# with an unlocked gnome-keyring Secret Service. keyring's `linux-native-sync-persistent` store
# keeps entries in Secret Service and caches them in the kernel keyring; child processes of CMD
# inherit both, so cross-process tests see the same keys.
#
# Usage: scripts/with-keystore.sh CMD [ARGS...]
#   e.g. scripts/with-keystore.sh cargo test -p sprig-store
#
# The keyring password only unlocks a throw-away login keyring inside this private session
# (its files live under a temporary XDG_DATA_HOME removed on exit); it protects nothing real.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

for tool in keyctl dbus-run-session gnome-keyring-daemon; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$0: '$tool' not found; install keyutils, dbus-daemon/dbus-bin and gnome-keyring" >&2
        exit 127
    fi
done

keystore_home="$(mktemp -d "${TMPDIR:-/tmp}/sprig-keystore.XXXXXX")"
trap 'rm -rf "$keystore_home"' EXIT

# Without XDG_RUNTIME_DIR gnome-keyring puts its control socket under ~/.cache; keep it private.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -w "${XDG_RUNTIME_DIR}" ]; then
    export XDG_RUNTIME_DIR="$keystore_home/run"
    mkdir -p -m 700 "$XDG_RUNTIME_DIR"
fi
export XDG_DATA_HOME="$keystore_home/data"

# The Secret Service is started by D-Bus activation from a service file of our own, which
# takes precedence over the system's (XDG_DATA_HOME comes first in the session bus's search
# path): the system's starts gnome-keyring-daemon with a locked login keyring, which then asks
# a graphical prompter for the password and fails without a display. Ours unlocks it with the
# throw-away password, on first use and again if the daemon ever exits mid-run (it did once
# under CI load), so every client finds an unlocked keystore holding the same files.
services="$XDG_DATA_HOME/dbus-1/services"
mkdir -p "$services"
cat >"$keystore_home/secrets-daemon" <<'DAEMON'
#!/bin/sh
echo "started $(date +%s)" >>"$SPRIG_KEYSTORE_HOME/daemon.log"
printf %s sprig-test-keystore |
    exec gnome-keyring-daemon --unlock --foreground --components=secrets
DAEMON
chmod +x "$keystore_home/secrets-daemon"
for name in org.freedesktop.secrets org.gnome.keyring; do
    printf '[D-BUS Service]\nName=%s\nExec=%s\n' "$name" "$keystore_home/secrets-daemon" \
        >"$services/$name.service"
done
export SPRIG_KEYSTORE_HOME="$keystore_home"

status=0
# Not exec: the trap must run to remove the temporary keyring files.
keyctl session - dbus-run-session -- "$@" || status=$?
starts="$(grep -c started "$keystore_home/daemon.log" 2>/dev/null || true)"
if [ "${starts:-0}" -gt 1 ]; then
    echo "$0: note: the Secret Service daemon exited and was restarted $((starts - 1)) time(s)" >&2
fi
exit "$status"

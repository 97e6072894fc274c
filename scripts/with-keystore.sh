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

# Not exec: the trap must run to remove the temporary keyring files.
XDG_DATA_HOME="$keystore_home/data" XDG_RUNTIME_DIR_FALLBACK="$keystore_home" \
keyctl session - dbus-run-session -- bash -c '
    set -e
    mkdir -p "$XDG_DATA_HOME"
    # Without XDG_RUNTIME_DIR gnome-keyring puts its control socket under ~/.cache; keep it private.
    if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -w "${XDG_RUNTIME_DIR}" ]; then
        export XDG_RUNTIME_DIR="$XDG_RUNTIME_DIR_FALLBACK/run"
        mkdir -p -m 700 "$XDG_RUNTIME_DIR"
    fi
    unset XDG_RUNTIME_DIR_FALLBACK
    echo -n "sprig-test-keystore" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    exec "$@"
' with-keystore "$@"

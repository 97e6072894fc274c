#!/usr/bin/env bash
# API fuzzing: schemathesis (PyPI, pinned, in a virtualenv under SPRIG_TOOLS) against the
# portal's OpenAPI document served by a real sprig-server on https://localhost, signed in as a
# parent who has accepted the agreement (so the fuzzer reaches the handlers behind the
# session, not only the 401s). Checks: no 5xx, status codes, content types and response
# bodies as the document declares them.
#
#   scripts/api-fuzz.sh            (make api-fuzz; run by make test)
#
# SPRIG_SERVER_BIN is the server binary; API_FUZZ_EXAMPLES (default 20) bounds the examples per
# operation. Exits non-zero on any failure, with schemathesis' report.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
SERVER=${SPRIG_SERVER_BIN:?SPRIG_SERVER_BIN is not set (run through make api-fuzz)}
TOOLS=${SPRIG_TOOLS:-$HOME/.cache/sprig-tools}
VERSION=4.32.5
EXAMPLES=${API_FUZZ_EXAMPLES:-20}
venv="$TOOLS/schemathesis-$VERSION"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION"; then
    echo "Installing schemathesis $VERSION into $venv (once)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sprig-api-fuzz.XXXXXX")
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="https://localhost:$port"
data="$work/server"
srv() { "$SERVER" "$@" --json; }

srv init --data "$data" --name "Fuzz Pre-School" --hostname localhost >/dev/null
staff=$(srv staff add --data "$data" --name "Kit Fairweather" --role practitioner --pin 1357 | jq -r .id)
child=$(srv child add --data "$data" --name "Robin Ashdown" --key-worker "$staff" --room Acorns \
    --photo-consent yes | jq -r .id)
srv parent add --data "$data" --email fuzz.parent@example.org --name "Lee Ashdown" \
    --password "a long fuzzing pass phrase" --child "$child" >/dev/null

"$SERVER" serve --data "$data" --listen "127.0.0.1:$port" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do
    curl -sf --cacert "$data/ca.pem" "$base/v1/health" >/dev/null 2>&1 && break
    sleep 0.2
done

# Sign in and accept the agreement, as the portal would.
jar="$work/cookies"
api() { curl -sf --cacert "$data/ca.pem" -b "$jar" -c "$jar" -H 'Content-Type: application/json' "$@"; }
api -d '{"email":"fuzz.parent@example.org","password":"a long fuzzing pass phrase"}' \
    "$base/api/v1/session" >/dev/null
version=$(api "$base/api/v1/agreement" | jq -r .version)
api -d "{\"version\":\"$version\"}" "$base/api/v1/agreement" >/dev/null
cookie=$(awk '$6 == "__Host-sprig-session" { print $7 }' "$jar")
[ -n "$cookie" ] || { echo "api-fuzz: the sign-in gave no session cookie" >&2; exit 1; }

# Signing out (either way) would leave the rest of the run signed out: those two are left to
# the server's own tests. Every request asks for its own connection: the server closes a
# keep-alive connection idle for 30 s (its header-read timeout), and a POST the client sends
# on one just as it closes fails as a network error that says nothing about the API.
set +e
cd "$work"
"$venv/bin/schemathesis" run "$base/api/v1/openapi.json" \
    --tls-verify "$data/ca.pem" \
    -H "Cookie: __Host-sprig-session=$cookie" -H "Connection: close" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --exclude-operation-id delete_session --exclude-operation-id end_session \
    --max-examples "$EXAMPLES" --workers 2 --seed 1 --generation-database none \
    --no-color
rc=$?
set -e
if [ $rc -ne 0 ]; then
    echo "api-fuzz: schemathesis found failures (server log: below)" >&2
    tail -50 "$work/server.log" >&2
    exit $rc
fi
echo "api-fuzz: passed"

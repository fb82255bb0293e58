#!/bin/sh
# The k_client portal's browser regression, self-contained: a virtual card,
# k_server, k_proxy and k_client_portal on free loopback ports, then the
# Playwright spec against the system Chromium. Prints "N passed, M failed"
# last; a skipped or not-run test counts as failed. Bounded to about 60 s.
#
#   sh harness/browser/run.sh          (from the repo root, after make all)
# Environment: BUILD (build), CHROMIUM_PATH (/usr/bin/chromium),
# CARD_REGISTRATION_TIMEOUT_MS and CARD_LOGIN_TIMEOUT_MS (15000 here).

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bin"
OUT="$BUILD/browser"
CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kcard-browser.XXXXXX")
PIDS=""

summary_fail() {
    echo "run.sh: $1" >&2
    echo "0 passed, 1 failed"
    exit 1
}

cleanup() {
    for p in $PIDS; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $PIDS; do
        n=40 # 40 x 0.05 s = 2 s, then SIGKILL
        while kill -0 "$p" 2>/dev/null && [ "$n" -gt 0 ]; do
            sleep 0.05
            n=$((n - 1))
        done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    PIDS=""
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# wait_file FILE: until FILE has a line (at most 5 s)
wait_file() {
    n=100
    while [ "$n" -gt 0 ]; do
        [ -s "$1" ] && return 0
        sleep 0.05
        n=$((n - 1))
    done
    return 1
}

# wait_healthy URL NAME LOG: until GET URL/healthz answers 200 (at most 5 s)
wait_healthy() {
    n=100
    while [ "$n" -gt 0 ]; do
        curl -fsS -o /dev/null --max-time 1 "$1/healthz" 2>/dev/null && return 0
        sleep 0.05
        n=$((n - 1))
    done
    echo "run.sh: $2 is not healthy at $1; its log:" >&2
    sed 's/^/    | /' "$3" | tail -n 20 >&2
    return 1
}

# start NAME PORTFILE CMD...: a service on --port 0, its port in $PORT
start() {
    name=$1
    pf=$2
    shift 2
    "$@" 2>"$TMP/$name.log" &
    PIDS="$PIDS $!"
    if ! wait_file "$pf"; then
        echo "run.sh: $name did not start; its log:" >&2
        sed 's/^/    | /' "$TMP/$name.log" | tail -n 20 >&2
        return 1
    fi
    PORT=$(cat "$pf")
    wait_healthy "http://127.0.0.1:$PORT" "$name" "$TMP/$name.log"
}

for b in vcard vcard-ctl k_server k_proxy k_client_portal; do
    [ -x "$BIN/$b" ] || summary_fail "$BIN/$b is missing: run 'make all' first"
done
[ -x "$CHROMIUM_PATH" ] ||
    summary_fail "no Chromium at $CHROMIUM_PATH (apt-get install chromium, or set CHROMIUM_PATH)"
command -v npm >/dev/null 2>&1 || summary_fail "npm is missing (apt-get install npm)"

cd "$HERE" || exit 1
if [ ! -d node_modules/@playwright/test ]; then
    echo "run.sh: installing @playwright/test (npm ci)" >&2
    if ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >"$TMP/npm.log" 2>&1 &&
        ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund >>"$TMP/npm.log" 2>&1; then
        tail -n 5 "$TMP/npm.log" | sed 's/^/    | /' >&2
        summary_fail "cannot install @playwright/test (offline? the registry must be reachable once: npm ci in harness/browser)"
    fi
fi

# the virtual card: approves by default, the spec drives it through vcard-ctl
"$BIN/vcard" --listen 127.0.0.1:0 --control "$TMP/vcard.sock" 2>"$TMP/vcard.log" &
PIDS="$PIDS $!"
n=100
while [ "$n" -gt 0 ] && ! grep -q "vcard: listening on udp:" "$TMP/vcard.log" 2>/dev/null; do
    sleep 0.05
    n=$((n - 1))
done
URI=$(sed -n 's/.*vcard: listening on \(udp:[0-9.]*:[0-9]*\).*/\1/p' "$TMP/vcard.log" | head -n 1)
[ -n "$URI" ] || summary_fail "vcard did not start: $(head -n 3 "$TMP/vcard.log")"
n=100
while [ ! -S "$TMP/vcard.sock" ] && [ "$n" -gt 0 ]; do
    sleep 0.05
    n=$((n - 1))
done

# a fresh shared token for k_proxy -> k_server signing, never on a command line
TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$TOKEN" >"$TMP/token"
chmod 600 "$TMP/token"

start k_server "$TMP/k_server.port" "$BIN/k_server" --port 0 --port-file "$TMP/k_server.port" \
    --proxy-token-file "$TMP/token" --state-db "$TMP/k_server.db" ||
    summary_fail "k_server did not start"
KS_PORT=$PORT
start k_proxy "$TMP/k_proxy.port" "$BIN/k_proxy" --port 0 --port-file "$TMP/k_proxy.port" \
    --proxy-token-file "$TMP/token" --state-db "$TMP/k_proxy.db" --device "$URI" \
    --server-base-url "http://127.0.0.1:$KS_PORT" --card-timeout-ms 10000 ||
    summary_fail "k_proxy did not start"
KP_PORT=$PORT
start k_client_portal "$TMP/portal.port" "$BIN/k_client_portal" --port 0 \
    --port-file "$TMP/portal.port" --proxy-base-url "http://127.0.0.1:$KP_PORT" \
    --static-dir "$ROOT/services/k_client_portal/static" ||
    summary_fail "k_client_portal did not start"
PORTAL_PORT=$PORT

mkdir -p "$OUT"
rm -f "$OUT/results.json"
PORTAL_BASE_URL="http://127.0.0.1:$PORTAL_PORT" VCARD_CTL="$TMP/vcard.sock" \
    VCARD_CTL_BIN="$BIN/vcard-ctl" CHROMIUM_PATH="$CHROMIUM_PATH" \
    CARD_REGISTRATION_TIMEOUT_MS=${CARD_REGISTRATION_TIMEOUT_MS:-15000} \
    CARD_LOGIN_TIMEOUT_MS=${CARD_LOGIN_TIMEOUT_MS:-15000} \
    PW_JSON_REPORT="$OUT/results.json" PW_OUTPUT_DIR="$OUT/artifacts" \
    timeout -k 5 45 npx --no-install playwright test
PW_STATUS=$?

# passed = tests that went as expected; unexpected, flaky, skipped = failed
# shellcheck disable=SC2016 # JavaScript, not shell, in single quotes
COUNTS=$(node -e '
const fs = require("fs");
let r;
try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch (e) { process.exit(1); }
const s = r.stats || {};
const failed = (s.unexpected || 0) + (s.flaky || 0) + (s.skipped || 0) + (r.errors || []).length;
console.log(`${s.expected || 0} ${failed}`);
' "$OUT/results.json" 2>/dev/null)
if [ -z "$COUNTS" ]; then
    echo "run.sh: no Playwright results (exit $PW_STATUS; timed out or did not start)" >&2
    COUNTS="0 1"
fi
PASSED=${COUNTS% *}
FAILED=${COUNTS#* }
if [ "$PASSED" -eq 0 ] && [ "$FAILED" -eq 0 ]; then
    FAILED=1 # no test ran at all
fi
if [ "$FAILED" -ne 0 ] || [ "$PW_STATUS" -ne 0 ]; then
    for f in k_client_portal k_proxy; do
        echo "--- last lines of $f's log" >&2
        tail -n 8 "$TMP/$f.log" | sed 's/^/    | /' >&2
    done
    [ "$FAILED" -eq 0 ] && FAILED=1 # playwright failed without a failed test
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

# Shared helpers for end-to-end tests (POSIX sh; source it).
# Binaries come from $BUILD/bin (default build/bin). Every process a test
# starts is killed by cleanup, which each test installs with:  trap cleanup EXIT
#
#   start_vcard [vcard args...]  starts a virtual card on a free loopback port;
#                                sets VCARD_PID, VCARD_PORT, VCARD_URI, VCARD_CTL
#                                (control socket), VCARD_DIR (its temp dir)
#   stop_vcard                   stops it (SIGTERM, then SIGKILL after 3 s)
#   ok NAME / not_ok NAME [why]  record one check
#   check NAME CMD...            ok when CMD exits 0
#   check_exit NAME CODE CMD...  ok when CMD exits with CODE
#   json_get FILE EXPR           python3 expression over the parsed JSON `j`
#   finish                       prints "N passed, M failed"; exit status 1 if any failed

BUILD=${BUILD:-build}
BIN=${BIN:-$BUILD/bin}
PASSED=0
FAILED=0
E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kcard-e2e.XXXXXX")
_E2E_PIDS=""

ok() {
    PASSED=$((PASSED + 1))
    echo "ok - $1"
}

not_ok() {
    FAILED=$((FAILED + 1))
    echo "not ok - $1${2:+: $2}"
}

check() {
    _name=$1
    shift
    if "$@" >"$E2E_TMP/last.out" 2>"$E2E_TMP/last.err"; then
        ok "$_name"
    else
        not_ok "$_name" "exit $? from: $*"
        sed 's/^/    | /' "$E2E_TMP/last.err" | head -n 20
    fi
}

check_exit() {
    _name=$1
    _want=$2
    shift 2
    "$@" >"$E2E_TMP/last.out" 2>"$E2E_TMP/last.err"
    _got=$?
    if [ "$_got" -eq "$_want" ]; then
        ok "$_name"
    else
        not_ok "$_name" "exit $_got, wanted $_want, from: $*"
        sed 's/^/    | /' "$E2E_TMP/last.err" | head -n 20
    fi
}

json_get() {
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# Wait (bounded) until FILE contains PATTERN. Returns 1 on timeout.
wait_for_line() {
    _file=$1
    _pattern=$2
    _tries=${3:-100} # 100 x 0.05 s = 5 s
    while [ "$_tries" -gt 0 ]; do
        grep -q "$_pattern" "$_file" 2>/dev/null && return 0
        sleep 0.05
        _tries=$((_tries - 1))
    done
    return 1
}

start_vcard() {
    VCARD_DIR=$(mktemp -d "$E2E_TMP/vcard.XXXXXX")
    VCARD_CTL="$VCARD_DIR/control.sock"
    "$BIN/vcard" --listen 127.0.0.1:0 --control "$VCARD_CTL" "$@" 2>"$VCARD_DIR/stderr" &
    VCARD_PID=$!
    _E2E_PIDS="$_E2E_PIDS $VCARD_PID"
    if ! wait_for_line "$VCARD_DIR/stderr" "vcard: listening on udp:" 100; then
        echo "start_vcard: no ready line within 5 s; stderr:" >&2
        sed 's/^/    | /' "$VCARD_DIR/stderr" >&2
        return 1
    fi
    VCARD_URI=$(sed -n 's/.*vcard: listening on \(udp:[0-9.]*:[0-9]*\).*/\1/p' "$VCARD_DIR/stderr" | head -n 1)
    VCARD_PORT=${VCARD_URI##*:}
    # the control socket is created after the ready line on some paths: wait for it
    _tries=100
    while [ ! -S "$VCARD_CTL" ] && [ "$_tries" -gt 0 ]; do
        sleep 0.05
        _tries=$((_tries - 1))
    done
    export VCARD_PID VCARD_URI VCARD_PORT VCARD_CTL VCARD_DIR
}

stop_vcard() {
    [ -n "${VCARD_PID:-}" ] || return 0
    kill -TERM "$VCARD_PID" 2>/dev/null
    _tries=60
    while kill -0 "$VCARD_PID" 2>/dev/null && [ "$_tries" -gt 0 ]; do
        sleep 0.05
        _tries=$((_tries - 1))
    done
    kill -KILL "$VCARD_PID" 2>/dev/null
    wait "$VCARD_PID" 2>/dev/null
    VCARD_PID=""
}

cleanup() {
    for _p in $_E2E_PIDS; do
        kill -KILL "$_p" 2>/dev/null
    done
    rm -rf "$E2E_TMP"
}

finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

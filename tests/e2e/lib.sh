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
#   need_vcard NAME [args...]    start_vcard, or record NAME failed, finish and exit 1
#   wait_exit PID                waits (at most 3 s) until PID has exited
#   finish                       prints "N passed, M failed"; exit status 1 if any failed
#
# For the tool tests (rawctap, fido2-probe): $T is $E2E_TMP, $CTL vcard-ctl,
# $PY a plain python3, $FAST short timeouts for fault profiles, and
#   tool_test PROG               the start of one: cleanup on EXIT, exit 1 on INT
#                                or TERM, run runs PROG ($RUN_TOOL)
#   run NAME WANT_EXIT args...   $RUN_TOOL ARGS with stdout in $T/out, stderr in
#                                $T/err; one check on the exit code
#   jcheck NAME EXPR             EXPR over the JSON in $T/out (`j`) is true
#   json_true FILE EXPR          the same as a status, python's stderr in $T/jerr
#   grep_out / grep_err NAME RE  a line of $T/out / $T/err matches
#   ctl ARGS...                  vcard-ctl on the running card, quiet unless it fails
#   show_head N FILE...          the first N lines of FILEs, indented, under a failure
# What a failed run or jcheck shows comes from run_show and jcheck_show, which
# a test may define again after sourcing this file.

BUILD=${BUILD:-build}
BIN=${BIN:-$BUILD/bin}
PASSED=0
FAILED=0
E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kcard-e2e.XXXXXX")
_E2E_PIDS=""
T=$E2E_TMP
CTL="$BIN/vcard-ctl"
# a plain interpreter: version-manager shims can take a second per start
PY=python3
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; fi
# shellcheck disable=SC2034 # used by the tests that source this file
FAST="--init-timeout-ms 300 --timeout-ms 700"

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

need_vcard() {
    _what=$1
    shift
    start_vcard "$@" || {
        not_ok "$_what"
        finish
        exit 1
    }
}

wait_exit() {
    _tries=60 # 60 x 0.05 s = 3 s
    while kill -0 "$1" 2>/dev/null && [ "$_tries" -gt 0 ]; do
        sleep 0.05
        _tries=$((_tries - 1))
    done
}

stop_vcard() {
    [ -n "${VCARD_PID:-}" ] || return 0
    kill -TERM "$VCARD_PID" 2>/dev/null
    wait_exit "$VCARD_PID"
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

# ---- for the tool tests ----

tool_test() {
    trap cleanup EXIT
    trap 'exit 1' INT TERM
    RUN_TOOL=$1
}

show_head() {
    _lines=$1
    shift
    sed 's/^/    | /' "$@" | head -n "$_lines"
}

run_show() {
    show_head 15 "$T/err"
}

run() {
    _name=$1
    _want=$2
    shift 2
    "$RUN_TOOL" "$@" >"$T/out" 2>"$T/err"
    _got=$?
    if [ "$_got" -eq "$_want" ]; then
        ok "$_name"
    else
        not_ok "$_name" "exit $_got, wanted $_want: ${RUN_TOOL##*/} $*"
        run_show
    fi
}

json_true() {
    "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$1" "$2" 2>"$T/jerr"
}

jcheck_show() {
    show_head 5 "$T/out"
}

jcheck() {
    if json_true "$T/out" "$2"; then
        ok "$1"
    else
        not_ok "$1" "false: $2"
        jcheck_show
    fi
}

grep_out() {
    if grep -q -- "$2" "$T/out"; then ok "$1"; else
        not_ok "$1" "stdout lacks '$2'"
        show_head 10 "$T/out"
    fi
}

grep_err() {
    if grep -q -- "$2" "$T/err"; then ok "$1"; else
        not_ok "$1" "stderr lacks '$2'"
        show_head 10 "$T/err"
    fi
}

ctl() {
    "$CTL" --control "$VCARD_CTL" "$@" >/dev/null 2>"$T/ctl.err" || {
        echo "    | vcard-ctl $* failed: $(cat "$T/ctl.err")"
        return 1
    }
}

# ---- the session chain ----
#   start_k_server [args...]  k_server on a free loopback port with --proxy-token
#                             $CHAIN_TOKEN and a state database in its own dir;
#                             sets KS_PID, KS_PORT, KS_DIR (KS_DIR/log: its JSON log)
#   start_k_proxy [args...]   k_proxy the same way (give --server-base-url and
#                             --device); sets KP_PID, KP_PORT, KP_DIR
#   stop_pid PID              SIGTERM, then SIGKILL after 3 s
#   kp PATH [curl args...]    POST to $KP_URL/PATH; body in $T/out, prints the status
#   want NAME CODE PATH [curl args...]  one check: kp answers CODE
CHAIN_TOKEN=${CHAIN_TOKEN:-e2e-proxy-token}

kp() {
    _path=$1
    shift
    curl -sS -m 60 -o "$T/out" -w '%{http_code}' -X POST "$KP_URL$_path" "$@" 2>"$T/curl.err"
}

want() {
    _n=$1
    _c=$2
    shift 2
    _got=$(kp "$@")
    if [ "$_got" = "$_c" ]; then ok "$_n"; else
        not_ok "$_n" "HTTP $_got, wanted $_c"
        show_head 5 "$T/out" "$T/curl.err"
    fi
}

# Waits (bounded, 5 s) for a non-empty FILE while PID lives.
_wait_port_file() {
    _tries=100
    while [ ! -s "$1" ] && kill -0 "$2" 2>/dev/null && [ "$_tries" -gt 0 ]; do
        sleep 0.05
        _tries=$((_tries - 1))
    done
    [ -s "$1" ]
}

# $SERVICE_WRAPPER, when set, is a command (words, unquoted) that execs the
# service, such as "chrt --idle 0": start_k_server and start_k_proxy run
# the service through it.
_start_service() {
    _svc=$1
    _dir=$2
    shift 2
    # shellcheck disable=SC2086
    ${SERVICE_WRAPPER:-} "$BIN/$_svc" --port 0 --port-file "$_dir/port" --proxy-token "$CHAIN_TOKEN" \
        --state-db "$_dir/$_svc.db" "$@" 2>"$_dir/log" &
    _pid=$!
    _E2E_PIDS="$_E2E_PIDS $_pid"
    if ! _wait_port_file "$_dir/port" "$_pid"; then
        echo "$_svc did not start within 5 s; its log:" >&2
        sed 's/^/    | /' "$_dir/log" | head -n 20 >&2
        return 1
    fi
}

start_k_server() {
    KS_DIR=$(mktemp -d "$E2E_TMP/k_server.XXXXXX")
    _start_service k_server "$KS_DIR" "$@" || return 1
    KS_PID=$_pid
    KS_PORT=$(cat "$KS_DIR/port")
}

start_k_proxy() {
    KP_DIR=$(mktemp -d "$E2E_TMP/k_proxy.XXXXXX")
    _start_service k_proxy "$KP_DIR" "$@" || return 1
    KP_PID=$_pid
    KP_PORT=$(cat "$KP_DIR/port")
}

stop_pid() {
    kill -TERM "$1" 2>/dev/null
    wait_exit "$1"
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

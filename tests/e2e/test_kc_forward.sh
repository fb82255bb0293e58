#!/bin/sh
# kc-forward between two network namespaces of its own: an HTTP server and an
# echo server in one ("target"), kc-forward listening in the other ("listen"),
# as `qvm-connect-tcp 9780:TARGET:8780` would in a VM. Checks bytes both ways,
# multi-megabyte transfers intact (sha256), half-close, isolation, a target
# that is down, idle timeout, connection bound, exit codes, and that no
# namespace is left behind. Needs root (ip netns); otherwise it fails, saying so.
# shellcheck source=tests/e2e/lib.sh
. tests/e2e/lib.sh

TOOL=harness/chain/tcptool.py
FWD="$BIN/kc-forward"
RUN_ID="kcft$$$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')"
NS_T="$RUN_ID-target"
NS_L="$RUN_ID-listen"
PIDS=""

teardown() {
    for _p in $PIDS; do
        kill -TERM "$_p" 2>/dev/null
    done
    for _p in $PIDS; do
        wait_exit "$_p"
        kill -KILL "$_p" 2>/dev/null
    done
    PIDS=""
    for _ns in "$NS_T" "$NS_L"; do
        ip netns del "$_ns" 2>/dev/null
    done
}

trap 'teardown; cleanup' EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" -ne 0 ]; then
    not_ok "kc-forward e2e needs root to create network namespaces (ip netns); running as uid $(id -u)"
    finish
    exit 1
fi
if [ ! -x "$FWD" ]; then
    not_ok "kc-forward binary" "$FWD missing (make $FWD)"
    finish
    exit 1
fi

# in NS: run a command
in_ns() {
    _ns=$1
    shift
    ip netns exec "$_ns" "$@"
}

# start NAME NS CMD...: background, stderr to $T/NAME.err, pid recorded
start() {
    _name=$1
    _ns=$2
    shift 2
    ip netns exec "$_ns" "$@" >"$T/$_name.out" 2>"$T/$_name.err" &
    _pid=$!
    PIDS="$PIDS $_pid"
    eval "PID_$_name=$_pid"
}

# wait (at most 5 s) until something listens on 127.0.0.1:PORT inside NS
wait_port() {
    _tries=100
    while [ "$_tries" -gt 0 ]; do
        in_ns "$1" "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()' "$2" 2>/dev/null && return 0
        sleep 0.05
        _tries=$((_tries - 1))
    done
    return 1
}

wait_file() {
    _tries=100
    while [ ! -s "$1" ] && [ "$_tries" -gt 0 ]; do
        sleep 0.05
        _tries=$((_tries - 1))
    done
    [ -s "$1" ]
}

# ---- namespaces ----
for ns in "$NS_T" "$NS_L"; do
    if ip netns add "$ns" && in_ns "$ns" ip link set lo up; then
        ok "namespace $ns created"
    else
        not_ok "namespace $ns created"
        finish
        exit 1
    fi
done

# ---- the target side: HTTP on 8780, echo on 8790 ----
mkdir -p "$T/www"
printf 'hello through the forward\n' >"$T/www/small.txt"
head -c 4194304 /dev/urandom >"$T/www/big.bin"
want_big=$(sha256sum <"$T/www/big.bin" | cut -d' ' -f1)
start http "$NS_T" "$PY" -m http.server --bind 127.0.0.1 --directory "$T/www" 8780
start echo "$NS_T" "$PY" "$TOOL" echo 8790
if wait_port "$NS_T" 8780 && wait_port "$NS_T" 8790; then
    ok "target servers listening in $NS_T"
else
    not_ok "target servers listening in $NS_T"
    show_head 10 "$T/http.err" "$T/echo.err"
    finish
    exit 1
fi

# ---- kc-forward run inside the listen namespace, the runbook's way ----
start fwd "$NS_L" "$FWD" -v --ready-file "$T/fwd.ready" 9780:"$NS_T":8780
start fwde "$NS_L" "$FWD" -v --ready-file "$T/fwde.ready" 9790:"$NS_T":8790
if wait_file "$T/fwd.ready" && wait_file "$T/fwde.ready"; then
    ok "kc-forward ready files written"
else
    not_ok "kc-forward ready files written"
    show_head 10 "$T/fwd.err" "$T/fwde.err"
fi
if [ "$(cat "$T/fwd.ready" 2>/dev/null)" = "127.0.0.1:9780" ]; then
    ok "ready file names the listening address"
else
    not_ok "ready file names the listening address" "got '$(cat "$T/fwd.ready" 2>/dev/null)'"
fi

# small request and answer
if in_ns "$NS_L" curl -sS --max-time 10 -o "$T/small.got" http://127.0.0.1:9780/small.txt 2>"$T/curl.err" &&
    cmp -s "$T/small.got" "$T/www/small.txt"; then
    ok "HTTP request and answer pass through the forward"
else
    not_ok "HTTP request and answer pass through the forward"
    show_head 5 "$T/curl.err" "$T/fwd.err"
fi

# a large download, intact
in_ns "$NS_L" curl -sS --max-time 30 -o "$T/big.got" http://127.0.0.1:9780/big.bin 2>"$T/curl.err"
got_big=$(sha256sum <"$T/big.got" 2>/dev/null | cut -d' ' -f1)
if [ "$got_big" = "$want_big" ]; then
    ok "4 MiB download intact (sha256)"
else
    not_ok "4 MiB download intact (sha256)" "got $got_big"
    show_head 5 "$T/curl.err"
fi

# both directions at once, with half-close: the client shuts its write side
# after 3 MiB and the echo server still sends everything back
check "3 MiB both ways with half-close (sha256)" in_ns "$NS_L" timeout 30 "$PY" "$TOOL" roundtrip 9790 3145728
check "several round trips in a row" sh -c "for i in 1 2 3 4 5; do ip netns exec '$NS_L' '$PY' '$TOOL' roundtrip 9790 1000 || exit 1; done"

# the log: one open and one close line per connection, with byte counts
if grep -q '"event":"close"' "$T/fwd.err" && grep -q '"bytes_to_client":4194' "$T/fwd.err"; then
    ok "verbose log has close lines with byte counts"
else
    not_ok "verbose log has close lines with byte counts"
    show_head 10 "$T/fwd.err"
fi
if "$PY" -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
opens = [l["conn"] for l in lines if l["event"] == "open"]
closes = [l for l in lines if l["event"] == "close"]
ok = len(opens) >= 2 and sorted(opens) == sorted(c["conn"] for c in closes)
ok = ok and all(c["reason"] == "eof" for c in closes)
sys.exit(0 if ok else 1)' "$T/fwd.err"; then
    ok "every opened connection was closed cleanly (reason eof)"
else
    not_ok "every opened connection was closed cleanly (reason eof)"
    show_head 10 "$T/fwd.err"
fi

# isolation: the target's port is not reachable from the listen namespace
check "target port 8780 not reachable directly from $NS_L" in_ns "$NS_L" "$PY" "$TOOL" connect_fails 8780
# and kc-forward's port is only in the listen namespace
check "forward port 9780 not present in $NS_T" in_ns "$NS_T" "$PY" "$TOOL" connect_fails 9780

# ---- --listen-netns/--target-netns from the root namespace; limits ----
start fwd2 "$NS_L" "$FWD" -v --ready-file "$T/fwd2.ready" --idle-timeout-ms 400 --max-conns 1 \
    9791:"$NS_T":8790
wait_file "$T/fwd2.ready"
check "idle connection closed after --idle-timeout-ms" in_ns "$NS_L" "$PY" "$TOOL" expect_close 9791 3
in_ns "$NS_L" "$PY" "$TOOL" hold 9791 2 &
HOLD=$!
PIDS="$PIDS $HOLD"
sleep 0.3
check "connection beyond --max-conns closed at once" in_ns "$NS_L" "$PY" "$TOOL" expect_close 9791 0.5
wait "$HOLD" 2>/dev/null
if grep -q '"reason":"max_conns"' "$T/fwd2.err" && grep -q '"reason":"idle_timeout"' "$T/fwd2.err"; then
    ok "log names idle_timeout and max_conns"
else
    not_ok "log names idle_timeout and max_conns"
    show_head 10 "$T/fwd2.err"
fi

"$FWD" --listen-netns "$NS_L" --target-netns "$NS_T" --ready-file "$T/fwd3.ready" \
    9792:label:8790 2>"$T/fwd3.err" &
FWD3=$!
PIDS="$PIDS $FWD3"
wait_file "$T/fwd3.ready"
check "--listen-netns/--target-netns from the root namespace" in_ns "$NS_L" "$PY" "$TOOL" roundtrip 9792 100000

# ---- the target down: the client sees its connection closed quickly ----
# shellcheck disable=SC2154 # PID_http is set by start, through eval
kill -TERM "$PID_http" 2>/dev/null
wait_exit "$PID_http"
check "target down: connection closed within 1 s" in_ns "$NS_L" "$PY" "$TOOL" expect_close 9780 1
if grep -q '"reason":"target_refused"' "$T/fwd.err"; then
    ok "log says target_refused"
else
    not_ok "log says target_refused"
    show_head 10 "$T/fwd.err"
fi
check "kc-forward still serves after a refused target" in_ns "$NS_L" "$PY" "$TOOL" roundtrip 9790 10000

# ---- exit codes ----
check_exit "no spec: exit 2" 2 "$FWD"
check_exit "bad spec: exit 2" 2 "$FWD" 9780:k_server
check_exit "--help: exit 0" 0 "$FWD" --help
check_exit "missing namespace: exit 3" 3 "$FWD" "9793:$RUN_ID-nonexistent:80"
check_exit "port taken: exit 3" 3 in_ns "$NS_L" "$FWD" 9780::80
# shellcheck disable=SC2154 # PID_fwd is set by start, through eval
kill -TERM "$PID_fwd"
wait_exit "$PID_fwd"
wait "$PID_fwd"
rc=$?
if [ "$rc" -eq 0 ] && [ ! -e "$T/fwd.ready" ]; then
    ok "SIGTERM: exit 0, ready file removed"
else
    not_ok "SIGTERM: exit 0, ready file removed" "exit $rc"
fi

# ---- no namespace left behind ----
teardown
if ip netns list | grep -q "^$RUN_ID"; then
    not_ok "no namespace left behind" "$(ip netns list | grep "^$RUN_ID" | tr '\n' ' ')"
else
    ok "no namespace left behind"
fi
finish

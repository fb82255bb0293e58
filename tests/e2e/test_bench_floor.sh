#!/bin/sh
# The chain bench's library floor (bench/floor/, issue 9) answers what the
# bench asks of it, so that its figures measure a working proxy: floor_proxy
# forwards to floor_upstream and hands back its status and body, every answer
# of a burst over kept-alive connections is 200, an upstream that is gone
# gives 502 (not a hang), and both stop on SIGTERM. With TLS on both hops
# (floor_tls2) the proxy verifies the upstream: a wrong CA is a 502; with TLS
# in front only (floor_tls) it forwards to a plain upstream; bad TLS options
# are refused at start with exit 2.
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

UP="$BUILD/bench/floor_upstream"
PX="$BUILD/bench/floor_proxy"
if [ ! -x "$UP" ] || [ ! -x "$PX" ]; then
    not_ok "the floor programs are built ($UP, $PX: make e2e builds them)"
    finish
    exit 1
fi
D=$(mktemp -d "$E2E_TMP/floor.XXXXXX")

"$UP" --port 0 --port-file "$D/up.port" --threads 2 2>"$D/up.log" &
UP_PID=$!
_E2E_PIDS="$_E2E_PIDS $UP_PID"
check "floor_upstream starts and writes its port" _wait_port_file "$D/up.port" "$UP_PID"
UP_PORT=$(cat "$D/up.port" 2>/dev/null)
body=$(curl -sS -m 5 -X POST "http://127.0.0.1:$UP_PORT/counter/next" 2>&1)
check "floor_upstream answers {\"counter\":1} (got: $body)" test "$body" = '{"counter":1}'

"$PX" --port 0 --port-file "$D/px.port" --threads 2 \
    --upstream "http://127.0.0.1:$UP_PORT/counter/next" 2>"$D/px.log" &
PX_PID=$!
_E2E_PIDS="$_E2E_PIDS $PX_PID"
check "floor_proxy starts and writes its port" _wait_port_file "$D/px.port" "$PX_PID"
PX_PORT=$(cat "$D/px.port" 2>/dev/null)
out=$(curl -sS -m 5 -o "$D/one.body" -w '%{http_code} %{content_type}' -X POST \
    "http://127.0.0.1:$PX_PORT/resource/counter" 2>&1)
check "floor_proxy forwards: HTTP and type '$out'" test "$out" = "200 application/json"
check "floor_proxy hands back the upstream's body" test "$(cat "$D/one.body")" = '{"counter":1}'

# 2,000 requests on 16 kept-alive connections (bounded: 60 s); prints the
# count of 200s with the upstream's body, and of the rest
timeout -k 5 60 "$PY" - "$PX_PORT" >"$D/burst" 2>&1 <<'EOF'
import http.client, sys, threading
port = int(sys.argv[1])
counts = {"ok": 0, "other": 0}
lock = threading.Lock()
def run():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(125):
        c.request("POST", "/resource/counter", body=b"", headers={"Content-Length": "0"})
        r = c.getresponse()
        good = r.status == 200 and r.read().strip() == b'{"counter":1}'
        with lock:
            counts["ok" if good else "other"] += 1
threads = [threading.Thread(target=run) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print(counts["ok"], counts["other"])
EOF
read -r N_OK N_OTHER <"$D/burst" 2>/dev/null
check "a burst of 2000 on 16 connections: ${N_OK:-none} answered 200 with the body, ${N_OTHER:-?} other" \
    test "${N_OK:-0}" -eq 2000

stop_pid "$UP_PID"
code=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PX_PORT/resource/counter" \
    2>/dev/null)
check "with the upstream gone floor_proxy answers 502 (got $code)" test "$code" = 502

kill -TERM "$PX_PID" 2>/dev/null
wait_exit "$PX_PID"
check "floor_proxy stops on SIGTERM within 3 s" sh -c "! kill -0 $PX_PID 2>/dev/null"
wait "$PX_PID" 2>/dev/null
rc=$?
check "floor_proxy exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0

# ---- floor_tls2: both hops over TLS, with the chain's certificates
TLSD="$D/tls"
mkdir -p "$TLSD"
sh fixtures/tls/gen.sh "$TLSD" >"$D/gen.log" 2>&1
"$UP" --port 0 --port-file "$D/tup.port" --threads 2 \
    --tls-certfile "$TLSD/k_server.crt" --tls-keyfile "$TLSD/k_server.key" 2>"$D/tup.log" &
TUP_PID=$!
_E2E_PIDS="$_E2E_PIDS $TUP_PID"
check "floor_upstream starts with TLS" _wait_port_file "$D/tup.port" "$TUP_PID"
TUP_PORT=$(cat "$D/tup.port" 2>/dev/null)
body=$(curl -sS -m 5 --cacert "$TLSD/ca.crt" -X POST "https://127.0.0.1:$TUP_PORT/counter/next" 2>&1)
check "floor_upstream answers over TLS (got: $body)" test "$body" = '{"counter":1}'

# start_tls_proxy NAME CA: a TLS floor_proxy to the TLS upstream, verified against CA
start_tls_proxy() {
    "$PX" --port 0 --port-file "$D/$1.port" --threads 1 \
        --tls-certfile "$TLSD/k_proxy.crt" --tls-keyfile "$TLSD/k_proxy.key" --ca-file "$2" \
        --upstream "https://127.0.0.1:$TUP_PORT/counter/next" 2>"$D/$1.log" &
    _tpx=$!
    _E2E_PIDS="$_E2E_PIDS $_tpx"
    _wait_port_file "$D/$1.port" "$_tpx"
}
check "floor_proxy starts with TLS on both hops" start_tls_proxy tpx "$TLSD/ca.crt"
TPX_PID=$_tpx
out=$(curl -sS -m 5 --cacert "$TLSD/ca.crt" -o "$D/tls.body" -w '%{http_code}' -X POST \
    "https://127.0.0.1:$(cat "$D/tpx.port")/resource/counter" 2>&1)
check "floor_proxy forwards over TLS both ways: HTTP '$out', body '$(cat "$D/tls.body" 2>/dev/null)'" \
    sh -c "test '$out' = 200 && test \"\$(cat '$D/tls.body')\" = '{\"counter\":1}'"
# an upstream certificate the given CA did not sign: refused, so 502
check "floor_proxy starts with a CA that did not sign the upstream" start_tls_proxy wrongca \
    "$TLSD/k_proxy.crt"
code=$(curl -sS -m 10 --cacert "$TLSD/ca.crt" -o /dev/null -w '%{http_code}' -X POST \
    "https://127.0.0.1:$(cat "$D/wrongca.port")/resource/counter" 2>/dev/null)
check "an upstream certificate the CA did not sign gives 502 (got $code)" test "$code" = 502
stop_pid "$_tpx"
stop_pid "$TPX_PID"
stop_pid "$TUP_PID"

# ---- floor_tls: TLS in front only, the upstream over plain HTTP (no CA needed)
"$UP" --port 0 --port-file "$D/pup.port" --threads 1 2>"$D/pup.log" &
PUP_PID=$!
_E2E_PIDS="$_E2E_PIDS $PUP_PID"
check "a plain floor_upstream starts" _wait_port_file "$D/pup.port" "$PUP_PID"
"$PX" --port 0 --port-file "$D/fpx.port" --threads 1 \
    --tls-certfile "$TLSD/k_proxy.crt" --tls-keyfile "$TLSD/k_proxy.key" \
    --upstream "http://127.0.0.1:$(cat "$D/pup.port" 2>/dev/null)/counter/next" 2>"$D/fpx.log" &
FPX_PID=$!
_E2E_PIDS="$_E2E_PIDS $FPX_PID"
check "floor_proxy starts with TLS in front of a plain upstream" _wait_port_file "$D/fpx.port" "$FPX_PID"
out=$(curl -sS -m 5 --cacert "$TLSD/ca.crt" -o "$D/fpx.body" -w '%{http_code}' -X POST \
    "https://127.0.0.1:$(cat "$D/fpx.port" 2>/dev/null)/resource/counter" 2>&1)
check "floor_proxy forwards TLS in front to plain HTTP behind: HTTP '$out', body '$(cat "$D/fpx.body" 2>/dev/null)'" \
    sh -c "test '$out' = 200 && test \"\$(cat '$D/fpx.body')\" = '{\"counter\":1}'"
out=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -X POST \
    "http://127.0.0.1:$(cat "$D/fpx.port" 2>/dev/null)/resource/counter" 2>/dev/null)
check "plain HTTP to its TLS front is not answered 200 (got '$out')" test "$out" != 200
stop_pid "$FPX_PID"
stop_pid "$PUP_PID"

# bad TLS options: exit 2 with the reason, before serving anything
: >"$D/empty.pem"
RUN_TOOL=$PX
run "an https:// upstream without --ca-file: exit 2" 2 --upstream "https://127.0.0.1:1/x"
grep_err "the missing --ca-file is named" "needs --ca-file"
RUN_TOOL=$UP
run "--tls-certfile without --tls-keyfile: exit 2" 2 --tls-certfile "$TLSD/k_server.crt"
grep_err "the pairing is named" "go together"
run "an empty certificate file: exit 2" 2 --tls-certfile "$D/empty.pem" --tls-keyfile "$TLSD/k_server.key"
grep_err "the empty file is named" "empty.pem is empty"
run "a missing certificate file: exit 2" 2 --tls-certfile "$D/missing.pem" --tls-keyfile "$TLSD/k_server.key"
grep_err "the missing file is named" "cannot open $D/missing.pem"
finish

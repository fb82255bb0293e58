#!/bin/sh
# The services' shared HTTP front (services/common/http.c) under abuse, and
# its deferral API: strict framing (a request readable two ways is refused
# and its connection closed, so nothing smuggled behind it is served),
# connection limits that keep a service answering while one address holds
# thousands of trickling connections, refusals counted in /metrics, and
# handlers that park a request and complete it from another thread.
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM
HERE=$(dirname "$0")
PROBE="$PY $HERE/http_probe.py"

metric() { # FILE NAME{LABELS}: the value, or -1
    awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print -1 }' "$1"
}

# ---- strict framing, on k_server ----
start_k_server --request-timeout 2 --max-connections-per-address 100 ||
    { not_ok "k_server starts"; finish; exit 1; }
ok "k_server starts with --request-timeout 2 --max-connections-per-address 100"
raw() { $PROBE raw 127.0.0.1 "$KS_PORT" "$1" >"$T/out" 2>"$T/err" || cat "$T/err"; }
raw pipelined
jcheck "control: two pipelined requests get two answers" "j['responses'] == 2 and j['status'] == 200"
raw smuggle
jcheck "Content-Length with Transfer-Encoding: one 400 bad_request naming both" \
    "j['status'] == 400 and j['body']['error'] == 'bad_request' and 'Content-Length and Transfer-Encoding' in j['body']['message']"
jcheck "and the connection is closed: the request smuggled behind it is never answered" \
    "j['responses'] == 1 and j['closed'] and j['headers'].get('connection') == 'close'"
raw dup_length
jcheck "differing Content-Length headers: 400 naming them, one answer, closed" \
    "j['status'] == 400 and 'differing' in j['body']['message'] and j['responses'] == 1 and j['closed']"
raw same_length
jcheck "two equal Content-Length headers are accepted" "j['status'] == 200"
raw no_host
jcheck "HTTP/1.1 without Host: 400 naming Host, closed" \
    "j['status'] == 400 and 'Host' in j['body']['message'] and j['closed']"
raw two_hosts
jcheck "two Host headers: 400" "j['status'] == 400 and 'Host' in j['body']['message']"
raw http10_no_host
jcheck "HTTP/1.0 without Host is served" "j['status'] == 200 and j['responses'] == 1"
raw te_gzip
jcheck "Transfer-Encoding other than chunked: 400, closed" \
    "j['status'] == 400 and 'chunked' in j['body']['message'] and j['closed']"
curl -sS -m 5 "http://127.0.0.1:$KS_PORT/metrics" >"$T/m1"
n=$(metric "$T/m1" 'kcard_k_server_connections_closed_total{reason="bad_framing"}')
if [ "$n" -ge 5 ]; then ok "refused framings counted in /metrics ($n)"; else not_ok "bad_framing counted" "$n"; fi
sleep 0.2 # the logger thread writes within milliseconds
if grep '"event":"request"' "$KS_DIR/log" | grep '"status":400' | grep -q '"error":"bad_request"'; then
    ok "a refused framing gets its request log line"
else not_ok "bad_request log line"; fi

# ---- 10,000 trickling connections from 127.0.0.2 ----
$PROBE flood 127.0.0.1 "$KS_PORT" 127.0.0.2 10000 5.5 0.5 >"$T/flood.json" 2>"$T/flood.err" &
FLOOD=$!
sleep 1
slow=0
i=0
held=0
while [ $i -lt 10 ]; do
    r=$(curl -sS -m 1 -o /dev/null -w '%{http_code} %{time_total}' "http://127.0.0.1:$KS_PORT/healthz" 2>&1)
    case $r in
        "200 "*) ;;
        *) slow=$((slow + 1)) && echo "    | healthz during the flood: $r" ;;
    esac
    if [ $i = 5 ]; then
        curl -sS -m 1 "http://127.0.0.1:$KS_PORT/metrics" >"$T/mflood" 2>&1
        held=$(metric "$T/mflood" kcard_k_server_connections_open)
    fi
    sleep 0.35
    i=$((i + 1))
done
if [ "$slow" -eq 0 ]; then ok "during the flood /healthz from 127.0.0.1 answered 200 within 1 s, 10 times of 10"; else
    not_ok "healthz during the flood" "$slow of 10 failed or took over 1 s"; fi
wait "$FLOOD"
if [ "$held" -ge 90 ] && [ "$held" -le 105 ] &&
    json_true "$T/flood.json" "j['opened'] > 5000 and j['closed_by_server'] > 5000"; then
    ok "the flooder opened $(json_get "$T/flood.json" "j['opened']") connections; k_server held $held (100 from it, the rest ours)"
else not_ok "flood figures" "held $held; $(cat "$T/flood.json" "$T/flood.err")"; fi
curl -sS -m 5 "http://127.0.0.1:$KS_PORT/metrics" >"$T/m2"
n=$(metric "$T/m2" 'kcard_k_server_connections_refused_total{reason="per_address_limit"}')
if [ "$n" -gt 1000 ]; then ok "refusals counted: per_address_limit $n"; else not_ok "per_address_limit counted" "$n"; fi
n=$(metric "$T/m2" 'kcard_k_server_connections_closed_total{reason="request_timeout"}')
if [ "$n" -ge 100 ]; then ok "trickling connections closed at the 2 s request deadline: $n"; else
    not_ok "request_timeout closes" "$n"; fi
code=$(curl -sS -m 5 -o "$T/out" -w '%{http_code}' "http://127.0.0.1:$KS_PORT/healthz")
if [ "$code" = 200 ]; then ok "after the flood k_server answers as before"; else not_ok "after the flood" "HTTP $code"; fi

# ---- the total limit ----
stop_pid "$KS_PID"
start_k_server --max-connections 20 || not_ok "k_server --max-connections 20 starts"
$PROBE flood 127.0.0.1 "$KS_PORT" 127.0.0.3 40 1.5 5 >"$T/flood.json" 2>"$T/flood.err"
curl -sS -m 5 "http://127.0.0.1:$KS_PORT/metrics" >"$T/m3"
n=$(metric "$T/m3" 'kcard_k_server_connections_refused_total{reason="connection_limit"}')
if [ "$n" -gt 0 ] && json_true "$T/flood.json" "j['max_open'] <= 40 and j['closed_by_server'] > 0"; then
    ok "--max-connections 20: the 21st connection is closed at once, counted ($n)"
else not_ok "connection_limit" "$n $(cat "$T/flood.json")"; fi
check_exit "--max-connections 0 is a usage error" 2 "$BIN/k_server" --proxy-token x --max-connections 0
check_exit "--request-timeout abc is a usage error" 2 "$BIN/k_server" --proxy-token x --request-timeout abc
if "$BIN/k_server" --help | grep -q -- '--max-connections-per-address'; then ok "k_server --help names the limits"; else
    not_ok "k_server --help"; fi

# ---- how the kernel schedules the threads: --cpu-scheduling ----
# "NAME POLICY" a thread of PID (policy: 0 SCHED_OTHER, 3 SCHED_BATCH, 5
# SCHED_IDLE; stat's field 41, the 39th after "PID (COMM) ")
threads() { for _t in /proc/"$1"/task/*; do echo "$(cat "$_t/comm") $(sed 's/.*) //' "$_t/stat" | awk '{print $39}')"; done; }
start_line_says() { grep '"event":"start"' "$1" | grep -q "\"cpu_scheduling\":\"$2\""; }
threads "$KS_PID" >"$T/threads"
loops=$(grep -c '^http-loop-[0-9]* 3$' "$T/threads")
others=$(grep -vc '^http-loop-' "$T/threads")
other_batch=$(grep -v '^http-loop-' "$T/threads" | grep -vc ' 0$')
if [ "$loops" -eq "$(nproc)" ] && [ "$others" -ge 3 ] && [ "$other_batch" -eq 0 ]; then
    ok "by default the $loops request loops run SCHED_BATCH, the other $others threads (log writer, workers, counter) SCHED_OTHER"
else
    not_ok "default scheduling" "$(tr '\n' ';' <"$T/threads")"
fi
if start_line_says "$KS_DIR/log" batch; then ok "the start line says cpu_scheduling batch"; else
    not_ok "start line cpu_scheduling"; fi
check_exit "--cpu-scheduling fast: exit 2" 2 "$BIN/k_server" --cpu-scheduling fast --proxy-token "$CHAIN_TOKEN"
if grep -q 'cpu-scheduling fast: want batch or inherit' "$E2E_TMP/last.err"; then ok "and it names the option and the values it takes"; else
    not_ok "bad --cpu-scheduling message" "$(cat "$E2E_TMP/last.err")"; fi
KS_DEFAULT_PID=$KS_PID
if start_k_server --cpu-scheduling inherit; then
    threads "$KS_PID" >"$T/threads"
    if [ "$(grep -c '^http-loop-' "$T/threads")" -eq "$(nproc)" ] && ! grep -vq ' 0$' "$T/threads" &&
        start_line_says "$KS_DIR/log" inherited; then
        ok "--cpu-scheduling inherit: every thread SCHED_OTHER, the start line says inherited"
    else not_ok "--cpu-scheduling inherit" "$(tr '\n' ';' <"$T/threads")"; fi
    stop_pid "$KS_PID"
else not_ok "k_server starts with --cpu-scheduling inherit"; fi
# an operator's policy is kept: started under chrt --idle, the loops stay SCHED_IDLE
SERVICE_WRAPPER="chrt --idle 0"
if start_k_server; then
    threads "$KS_PID" >"$T/threads"
    if [ "$(grep -c '^http-loop-[0-9]* 5$' "$T/threads")" -eq "$(nproc)" ] && start_line_says "$KS_DIR/log" inherited &&
        ! grep -q cpu_scheduling_unavailable "$KS_DIR/log"; then
        ok "started under chrt --idle, the loops keep SCHED_IDLE and the start line says inherited"
    else not_ok "chrt --idle kept" "$(tr '\n' ';' <"$T/threads")"; fi
    stop_pid "$KS_PID"
else not_ok "k_server starts under chrt --idle"; fi
# a kernel that refuses the policy (a seccomp filter, tests/e2e/deny_sched.c)
SERVICE_WRAPPER=$T/deny_sched
if ${CC:-cc} -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -o "$T/deny_sched" "$HERE/deny_sched.c" 2>"$T/cc.err" &&
    start_k_server; then
    threads "$KS_PID" >"$T/threads"
    if [ "$(grep -c '^http-loop-[0-9]* 0$' "$T/threads")" -eq "$(nproc)" ] && start_line_says "$KS_DIR/log" inherited &&
        [ "$(grep -c '"event":"cpu_scheduling_unavailable".*"error":"Operation not permitted"' "$KS_DIR/log")" -eq 1 ] &&
        [ "$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$KS_PORT/healthz")" = 200 ]; then
        ok "batch refused by the kernel: one cpu_scheduling_unavailable line, loops SCHED_OTHER, start line inherited, and it answers"
    else not_ok "batch refused" "$(tr '\n' ';' <"$T/threads") $(grep -c cpu_scheduling_unavailable "$KS_DIR/log")"; fi
    stop_pid "$KS_PID"
else not_ok "k_server starts under deny_sched" "$(head -c 300 "$T/cc.err")"; fi
# shellcheck disable=SC2034 # read by lib.sh's _start_service
SERVICE_WRAPPER=""
KS_PID=$KS_DEFAULT_PID

# ---- accepting: the loops share connections; no descriptors left ----
stop_pid "$KS_PID"
start_k_server --max-connections 1000 --max-connections-per-address 1000 ||
    not_ok "k_server starts with room for the burst"
# a burst of 40 kept-alive connections, each answered once and left open
"$PY" - "$KS_PORT" >"$T/out" 2>"$T/burst.err" <<'PY'
import json, socket, sys
port = int(sys.argv[1])
conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
ok = 0
for c in conns:
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: k\r\n\r\n")
    ok += c.recv(64).startswith(b"HTTP/1.1 200")
m = socket.create_connection(("127.0.0.1", port), timeout=5)
m.sendall(b"GET /metrics HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n")
text = b""
while True:
    d = m.recv(65536)
    if not d:
        break
    text += d
loops = [float(l.split()[-1]) for l in text.decode().splitlines()
         if l.startswith("kcard_k_server_loop_connections{")]
print(json.dumps({"answered": ok, "loops": loops}))
PY
jcheck "a burst of 40 connections: one loop a core, none serving more than twice the least busy and one (loop_connections)" \
    "j['answered'] == 40 and len(j['loops']) == $(nproc) and sum(j['loops']) == 41 and max(j['loops']) <= 2 * min(j['loops']) + 2"
# out of descriptors: accepting pauses (one log line a loop), the service
# does not spin, and answers again once descriptors are free
prlimit --nofile=64:64 --pid "$KS_PID" 2>"$T/prlimit.err" || not_ok "prlimit lowers k_server's descriptor limit" "$(cat "$T/prlimit.err")"
"$PY" - "$KS_PORT" "$KS_PID" >"$T/out" 2>"$T/nofd.err" <<'PY'
import json, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
def ticks():
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(100)]
time.sleep(0.5)
t0 = ticks()
time.sleep(2)
spent = ticks() - t0
for c in held:
    c.close()
time.sleep(0.5)
c = socket.create_connection(("127.0.0.1", port), timeout=5)
c.sendall(b"GET /healthz HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n")
print(json.dumps({"ticks": spent, "after": c.recv(64).decode("latin-1")[:15]}))
PY
jcheck "out of descriptors: under 0.2 s of CPU in 2 s (no spin), then a new call is answered" \
    "j['ticks'] < 20 and j['after'] == 'HTTP/1.1 200 OK'"
n=$(grep -c '"event":"accept_paused"' "$KS_DIR/log")
if [ "$n" -ge 1 ] && [ "$n" -le 2 ]; then ok "accept_paused logged once a loop ($n lines)"; else
    not_ok "accept_paused lines" "$n"; fi

# ---- the chain's front: a counter call while 127.0.0.2 floods k_proxy ----
stop_pid "$KS_PID"
need_vcard "vcard starts" --presence yes
start_k_server || not_ok "k_server starts again"
start_k_proxy --server-base-url "http://127.0.0.1:$KS_PORT" --device "$VCARD_URI" --request-timeout 2 \
    --max-connections-per-address 100 || { not_ok "k_proxy starts"; finish; exit 1; }
KP_URL="http://127.0.0.1:$KP_PORT"
want "login" 200 /session/login -H 'Content-Type: application/json' -d '{"username":"alice"}'
TOKEN=$(json_get "$T/out" "j['session_token']")
$PROBE flood 127.0.0.1 "$KP_PORT" 127.0.0.2 10000 4 0.5 >"$T/flood.json" 2>"$T/flood.err" &
FLOOD=$!
sleep 1
slow=0
i=0
while [ $i -lt 6 ]; do
    r=$(curl -sS -m 1 -o "$T/c.out" -w '%{http_code} %{time_total}' -X POST "$KP_URL/resource/counter" \
        -H "Authorization: Bearer $TOKEN" 2>&1)
    case $r in
        "200 "*) ;;
        *) slow=$((slow + 1)) && echo "    | counter during the flood: $r" ;;
    esac
    sleep 0.3
    i=$((i + 1))
done
wait "$FLOOD"
if [ "$slow" -eq 0 ]; then ok "during a flood of k_proxy a counter call through the chain answered 200 within 1 s, 6 of 6"; else
    not_ok "counter during the flood" "$slow of 6 failed or took over 1 s"; fi
curl -sS -m 5 "$KP_URL/metrics" >"$T/m4"
n=$(metric "$T/m4" 'kcard_k_proxy_connections_refused_total{reason="per_address_limit"}')
if [ "$n" -gt 1000 ]; then ok "k_proxy counts its refusals ($n)"; else not_ok "k_proxy refusals" "$n"; fi

# ---- deferral: a test server on the ksvc API (built here) ----
SAN=""
case $BUILD in *san*) SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" ;; esac
# shellcheck disable=SC2046,SC2086
if ${CC:-cc} -std=c11 -D_GNU_SOURCE -I. -O1 -g $SAN -o "$T/http_defer_server" "$HERE/http_defer_server.c" \
    "$BUILD/libkcsvc.a" "$BUILD/libctaphid.a" "$BUILD/libkcutil.a" $(pkg-config --cflags --libs jansson libmicrohttpd gnutls libcrypto libcurl sqlite3 libcbor) \
    -lpthread 2>"$T/cc.err"; then
    ok "the deferral test server builds against $BUILD/libkcsvc.a"
else
    not_ok "build the deferral test server"
    show_head 20 "$T/cc.err"
    finish
    exit 1
fi
D_DIR=$(mktemp -d "$T/defer.XXXXXX")
"$T/http_defer_server" "$D_DIR/port" 2>"$D_DIR/log" &
D_PID=$!
_E2E_PIDS="$_E2E_PIDS $D_PID"
_wait_port_file "$D_DIR/port" "$D_PID" || { not_ok "deferral test server starts"; show_head 10 "$D_DIR/log"; finish; exit 1; }
D_URL="http://127.0.0.1:$(cat "$D_DIR/port")"
dcall() { curl -sS -m 5 -o "$T/out" -w '%{http_code}' -X POST "$D_URL$1" ${2:+-d "$2"}; }
code=$(dcall /sync)
[ "$code" = 200 ] && jcheck "a synchronous handler answers as before" "j['mode'] == 'sync'" || not_ok "/sync" "HTTP $code"
code=$(dcall /defer-later hello)
[ "$code" = 200 ] && jcheck "deferred, completed from another thread 200 ms later, the body read from there" \
    "j['mode'] == 'deferred' and j['echo'] == 'hello' and j['path'] == '/defer-later'" || not_ok "/defer-later" "HTTP $code"
code=$(dcall /defer-now)
[ "$code" = 200 ] && jcheck "completed inside the handler, before it returned" "j['mode'] == 'completed_before_return'" ||
    not_ok "/defer-now" "HTTP $code"
code=$(dcall /defer-twice)
[ "$code" = 200 ] && jcheck "a second ksvc_defer of one request gives NULL" "j['second_defer_null'] is True" ||
    not_ok "/defer-twice" "HTTP $code"
code=$(dcall /defer-raw)
if [ "$code" = 200 ] && [ "$(cat "$T/out")" = "raw text answer" ]; then
    ok "a raw body given to ksvc_complete is copied before it returns"
else not_ok "/defer-raw" "HTTP $code: $(head -c 80 "$T/out")"; fi
code=$(dcall /block-defer)
[ "$code" = 200 ] && jcheck "a worker's handler can defer too" "j['mode'] == 'deferred'" || not_ok "/block-defer" "HTTP $code"

$PROBE parallel "$D_URL/defer-later" 40 >"$T/par.json" &
PAR=$!
sleep 0.1
r=$(curl -sS -m 1 -o /dev/null -w '%{http_code} %{time_total}' "$D_URL/sync" 2>&1)
wait "$PAR"
mv "$T/par.json" "$T/out"
jcheck "40 parked requests of 200 ms each finish together (< 1.5 s): no thread waits on them" \
    "j['elapsed'] < 1.5 and j['statuses'] == [200] * 40"
jcheck "and each got its own body back" "all(b['echo'] == 'body-%d' % i for i, b in enumerate(j['bodies']))"
case $r in
    "200 "*) ok "while they are parked a synchronous request is answered at once ($r s)" ;;
    *) not_ok "sync while parked" "$r" ;;
esac
$PROBE parallel "$D_URL/block" 8 >"$T/out"
jcheck "8 blocking handlers of 300 ms on 4 workers take two rounds (0.55..1.5 s)" \
    "0.55 <= j['elapsed'] < 1.5 and j['statuses'] == [200] * 8"

# a client that gives up while its request is parked: the late answer is dropped
curl -sS -m 0.05 -o /dev/null -X POST "$D_URL/defer-later" -d gone 2>/dev/null
sleep 0.4
code=$(dcall /sync)
curl -sS -m 5 "$D_URL/metrics" >"$T/md"
if [ "$code" = 200 ] && [ "$(metric "$T/md" kcard_http_defer_test_requests_parked)" = 0 ] &&
    [ "$(metric "$T/md" 'kcard_http_defer_test_http_requests_total{route="/defer-later",method="POST",code="200"}')" = 42 ]; then
    ok "an abandoned parked request is completed and dropped; nothing stays parked; 42 counted"
else not_ok "abandoned parked request" "HTTP $code; $(grep -E 'parked|defer-later' "$T/md" | head -3)"; fi

# a stop waits for a parked request and answers it
curl -sS -m 5 -o "$T/late.out" -w '%{http_code}' -X POST "$D_URL/defer-later" -d last >"$T/late.code" &
LATE=$!
sleep 0.05
kill -TERM "$D_PID"
wait "$LATE"
wait_exit "$D_PID"
if ! kill -0 "$D_PID" 2>/dev/null && [ "$(cat "$T/late.code")" = 200 ]; then
    ok "SIGTERM with a request parked: it is answered (200), then the server exits"
else not_ok "stop with a parked request" "$(cat "$T/late.code")"; fi
wait "$D_PID"
rc=$?
if [ "$rc" = 0 ]; then ok "the test server exited 0"; else not_ok "test server exit" "$rc"; fi
"$PY" - "$D_DIR/log" >"$T/out" <<'PYEOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
req = [l for l in lines if l.get("event") == "request"]
later = [l for l in req if l["path"] == "/defer-later"]
print(json.dumps({
    "requests": len(req),
    "all_early_late": all(l.get("early") is True and l.get("late") is True for l in req if l["path"] != "/metrics"),
    "later": len(later),
    "later_min_ms": min(l["ms"] for l in later) if later else 0,
    "ids_unique": len({l["request_id"] for l in req}) == len(req),
}))
PYEOF
jcheck "one log line per request, 59 in all, request ids unique" "j['requests'] == 59 and j['ids_unique']"
jcheck "each line has the fields set before ksvc_defer and at completion" "j['all_early_late']"
jcheck "a deferred request's line is written at completion: ms >= 195 for all 43" \
    "j['later'] == 43 and j['later_min_ms'] >= 195"

finish

#!/bin/sh
# Replay protection of the chain without a global cap, across restarts
# (issue 9): k_proxy signs with its instance id and a sequence number,
# k_server keeps a window per instance and records the instances in its
# database.
#   - a request captured on the wire (a small recording forwarder between
#     k_proxy and k_server) is refused with 401 replayed_request right away,
#     after a k_proxy restart, after a k_server restart and after kill -9 of
#     k_server; the chain keeps answering 200 throughout;
#   - 60,000 counter requests through the real chain at parallelism 16 (what
#     filled the old replay cache at 49,152): all 200, unique, gap-free;
#   - kill -9 of k_server under load, then a restart: no value twice, and no
#     request after the restart refused as replayed;
#   - chaos (issue 10): 10 more kill -9 under 8-way load with the journal
#     deleted, emptied or cut in between: no value twice (or a refused
#     start); an emptied database is refused, not taken as new.
# REPLAY_REQUESTS sets the size of the load run (default 60000; 15000 for a
# sanitizer build, which is several times slower).
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

case $BUILD in
*san*) N_DEFAULT=15000 ;;
*) N_DEFAULT=60000 ;;
esac
N=${REPLAY_REQUESTS:-$N_DEFAULT}
H='Content-Type: application/json'
token() { json_get "$T/out" "j['session_token']"; }

# ---- a recording forwarder: one file per request, as it crossed the wire ----
cat >"$T/recorder.py" <<'EOF'
import os, socket, sys, threading
port_file, upstream_port, out_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(16)
lock = threading.Lock()
count = [0]

def read_message(sock, buf):
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            return None, buf
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        d = sock.recv(65536)
        if not d:
            return None, buf
        rest += d
    return head + b"\r\n\r\n" + rest[:length], rest[length:]

def serve(client):
    buf = b""
    with client:
        while True:
            request, buf = read_message(client, buf)
            if request is None:
                return
            with lock:
                count[0] += 1
                n = count[0]
            with open(os.path.join(out_dir, "req.%d.tmp" % n), "wb") as f:
                f.write(request)
            os.rename(os.path.join(out_dir, "req.%d.tmp" % n), os.path.join(out_dir, "req.%d" % n))
            try:
                with socket.create_connection(("127.0.0.1", upstream_port), timeout=10) as up:
                    up.sendall(request)
                    answer, _ = read_message(up, b"")
            except OSError:
                answer = None
            if answer is None:
                return
            with open(os.path.join(out_dir, "resp.%d.tmp" % n), "wb") as f:
                f.write(answer)
            os.rename(os.path.join(out_dir, "resp.%d.tmp" % n), os.path.join(out_dir, "resp.%d" % n))
            client.sendall(answer)

with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

need_vcard "vcard starts" --presence yes
start_k_server || { not_ok "k_server starts"; finish; exit 1; }
ok "k_server starts"
KS_DB=$KS_DIR/k_server.db
if grep -q '"event":"state_created"' "$KS_DIR/log"; then ok "k_server logs that it created a new counter"; else
    not_ok "k_server logs state_created"; fi

# k_server again on its port and database, its log appended; STARTS counts
STARTS=1
restart_k_server() {
    STARTS=$((STARTS + 1))
    "$BIN/k_server" --port "$KS_PORT" --port-file "$KS_DIR/port.$STARTS" --proxy-token "$CHAIN_TOKEN" \
        --state-db "$KS_DB" 2>>"$KS_DIR/log.$STARTS" &
    KS_PID=$!
    _E2E_PIDS="$_E2E_PIDS $KS_PID"
    _wait_port_file "$KS_DIR/port.$STARTS" "$KS_PID"
}

mkdir -p "$T/wire"
"$PY" "$T/recorder.py" "$T/recorder.port" "$KS_PORT" "$T/wire" 2>"$T/recorder.log" &
_E2E_PIDS="$_E2E_PIDS $!"
_wait_port_file "$T/recorder.port" $! || { not_ok "the recorder starts"; finish; exit 1; }
REC_PORT=$(cat "$T/recorder.port")

# k_proxy B talks to k_server through the recorder
start_k_proxy --server-base-url "http://127.0.0.1:$REC_PORT" --device "$VCARD_URI" ||
    { not_ok "k_proxy (recorded) starts"; finish; exit 1; }
KPB_DIR=$KP_DIR
KPB_PORT=$KP_PORT
KP_URL="http://127.0.0.1:$KPB_PORT"
restart_k_proxy_b() {
    stop_pid "$KP_PID"
    "$BIN/k_proxy" --port "$KPB_PORT" --port-file "$KPB_DIR/port.again" --proxy-token "$CHAIN_TOKEN" \
        --state-db "$KPB_DIR/k_proxy.db" --server-base-url "http://127.0.0.1:$REC_PORT" \
        --device "$VCARD_URI" 2>>"$KPB_DIR/log" &
    KP_PID=$!
    _E2E_PIDS="$_E2E_PIDS $KP_PID"
    rm -f "$KPB_DIR/port.again"
    _wait_port_file "$KPB_DIR/port.again" "$KP_PID"
}

# ---- capture a real signed request ----
want "login through the recorded chain" 200 /session/login -H "$H" -d '{"username":"carol"}'
CAROL=$(token)
want "a counter call through the recorder" 200 /resource/counter -H "Authorization: Bearer $CAROL"
CAPTURED_AT=$(date +%s)
CAPTURED_N=$(for f in "$T/wire"/req.*; do
    case $f in
    *.tmp) ;;
    *) echo "${f##*.}" ;;
    esac
done | sort -n | tail -n 1)
CAPTURED=req.$CAPTURED_N
if [ -n "$CAPTURED_N" ] && grep -q 'Authorization: KC-HMAC-SHA256 ts=[0-9]*, inst=[0-9a-f]\{32\}, seq=[0-9]*, ref=' "$T/wire/$CAPTURED"; then
    ok "the request on the wire carries ts, inst, seq, ref, sig"
else
    not_ok "the captured request has the signed header"
    show_head 10 "$T/wire/$CAPTURED" "$T/recorder.log"
fi
AUTHZ=$(sed -n 's/^Authorization: \(KC-HMAC-SHA256 [^\r]*\)\r*$/\1/p' "$T/wire/$CAPTURED")
# k_server's 200 to a signed call (only k_proxy can sign) carries only what
# HTTP needs: each browser-facing header line would cost k_proxy's client
ANSWER_HEADERS=$(tr -d '\r' <"$T/wire/resp.$CAPTURED_N" 2>/dev/null | sed -n '2,/^$/p' | sed '/^$/d' |
    sed 's/:.*//' | tr 'A-Z' 'a-z' | sort | tr '\n' ' ')
# and Kcard-Counter: the counter and the ref of its JSON body, for k_proxy
COUNTER_HEADER=$(tr -d '\r' <"$T/wire/resp.$CAPTURED_N" | sed -n 's/^[Kk]card-[Cc]ounter: //p')
BODY_AS_HEADER=$("$PY" -c 'import json,sys; d=open(sys.argv[1],"rb").read().split(b"\r\n\r\n",1)[1]; j=json.loads(d); print(j["counter"], j["ref"])' "$T/wire/resp.$CAPTURED_N" 2>/dev/null)
if [ "$ANSWER_HEADERS" = "content-length content-type date kcard-counter " ] &&
    [ -n "$COUNTER_HEADER" ] && [ "$COUNTER_HEADER" = "$BODY_AS_HEADER" ]; then
    ok "k_server's 200 to the signed call has only Content-Length, Content-Type, Date and Kcard-Counter ($COUNTER_HEADER, as its body)"
else
    not_ok "k_server's signed 200 carries only the bare headers" "$ANSWER_HEADERS"
    show_head 12 "$T/wire/resp.$CAPTURED_N"
fi
# the body is what followed the blank line
"$PY" -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.stdout.buffer.write(d.split(b"\r\n\r\n",1)[1])' \
    "$T/wire/$CAPTURED" >"$T/captured.body"

# replay WHEN: the captured request straight to k_server with curl
replay() {
    code=$(curl -sS -m 5 -D "$T/replay.h" -o "$T/replay.out" -w '%{http_code}' -X POST "http://127.0.0.1:$KS_PORT/counter/next" \
        -H "Authorization: $AUTHZ" -H "$H" --data-binary @"$T/captured.body" 2>"$T/curl.err")
    if [ "$code" = 401 ] && json_true "$T/replay.out" "j['error'] == 'replayed_request'"; then
        ok "the captured request replayed $1: 401 replayed_request"
    else
        not_ok "the captured request replayed $1 is refused as replayed" "HTTP $code"
        show_head 5 "$T/replay.out" "$T/curl.err"
    fi
}
# the same request with one field changed is not even authentic
forged=$(printf '%s' "$AUTHZ" | sed 's/seq=\([0-9]*\)/seq=9\1/')
code=$(curl -sS -m 5 -o "$T/out" -w '%{http_code}' -X POST "http://127.0.0.1:$KS_PORT/counter/next" \
    -H "Authorization: $forged" -H "$H" --data-binary @"$T/captured.body")
if [ "$code" = 401 ] && json_true "$T/out" "j['error'] == 'bad_signature'"; then
    ok "a changed sequence number is 401 bad_signature"
else not_ok "a changed sequence number is refused" "HTTP $code"; fi

replay "at once"
if grep -qi '^x-content-type-options: nosniff' "$T/replay.h" && grep -qi '^x-request-id: ' "$T/replay.h" &&
    grep -qi '^cache-control: no-store' "$T/replay.h"; then
    ok "k_server's refusals keep nosniff, X-Request-Id and Cache-Control"
else
    not_ok "k_server's 401 has its usual headers"
    show_head 12 "$T/replay.h"
fi

restart_k_proxy_b && ok "k_proxy restarts" || not_ok "k_proxy restarts"
replay "after a k_proxy restart"
want "the session still counts after the k_proxy restart" 200 /resource/counter -H "Authorization: Bearer $CAROL"

stop_pid "$KS_PID"
restart_k_server && ok "k_server restarts (SIGTERM)" || not_ok "k_server restarts"
replay "after a k_server restart"
want "the chain answers 200 right after the k_server restart" 200 /resource/counter -H "Authorization: Bearer $CAROL"
if grep -q '"replayed_request"' "$KS_DIR/log.$STARTS"; then
    ok "k_server refused k_proxy's old instance after its restart (k_proxy renewed it)"
else not_ok "k_server closed the old instance"; show_head 10 "$KS_DIR/log.$STARTS"; fi

kill -KILL "$KS_PID"
wait "$KS_PID" 2>/dev/null
restart_k_server && ok "k_server restarts after kill -9" || not_ok "k_server restarts after kill -9"
replay "after kill -9 and a restart of k_server"
want "the chain answers 200 right after kill -9 and restart" 200 /resource/counter -H "Authorization: Bearer $CAROL"
elapsed=$(($(date +%s) - CAPTURED_AT))
if [ "$elapsed" -lt 28 ]; then
    ok "every replay came within the 30 s skew window (${elapsed} s): refused for the replay, not the time"
else not_ok "replays within the skew window" "${elapsed} s"; fi
stop_pid "$KP_PID"

# ---- the load: k_proxy A straight to k_server ----
start_k_proxy --server-base-url "http://127.0.0.1:$KS_PORT" --device "$VCARD_URI" ||
    { not_ok "k_proxy starts"; finish; exit 1; }
KP_URL="http://127.0.0.1:$KP_PORT"
regress() {
    _out=$1
    shift
    timeout -k 5 200 "$BIN/chain-regress" --base-url "$KP_URL" --json "$@" >"$_out" 2>"$T/regress.err"
}
t0=$(date +%s)
regress "$T/load.json" --requests "$N" --parallelism 16
rc=$?
t1=$(date +%s)
if [ "$rc" -eq 0 ] && json_true "$T/load.json" \
    "j['requests'] == $N and len(j['counters']) == $N and j['analysis']['unique'] and j['analysis']['gap_free'] and j['non_200'] == 0"; then
    ok "$N counter requests at parallelism 16: all 200, unique, gap-free ($((t1 - t0)) s, $(json_get "$T/load.json" "round(j['throughput_rps'])") req/s)"
else
    not_ok "$N counter requests at parallelism 16 all 200" "exit $rc"
    "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print("    |", j.get("message"))' "$T/load.json" 2>/dev/null
fi
if [ "$N" -ge 60000 ]; then
    if [ $((t1 - t0)) -le 90 ]; then ok "within about a minute ($((t1 - t0)) s)"; else
        not_ok "60,000 requests within about a minute" "$((t1 - t0)) s"; fi
fi

# ---- kill -9 of k_server under load ----
ks_counter() { curl -sS -m 2 "http://127.0.0.1:$KS_PORT/healthz" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["counter"])' 2>/dev/null; }
start_value=$(ks_counter)
regress "$T/crash.json" --requests 30000 --parallelism 8 --timeout-ms 3000 &
RPID=$!
_E2E_PIDS="$_E2E_PIDS $RPID"
# kill when the run is well under way (bounded: 10 s)
_tries=200
while [ "$_tries" -gt 0 ] && [ "$(ks_counter)" -lt $((start_value + 3000)) ] 2>/dev/null; do
    sleep 0.05
    _tries=$((_tries - 1))
done
kill -KILL "$KS_PID"
wait "$KS_PID" 2>/dev/null
sleep 0.3
restart_k_server && ok "k_server restarts after kill -9 under load" || not_ok "k_server restarts under load"
wait "$RPID"
rc=$?
if [ "$rc" -le 1 ] && json_true "$T/crash.json" "len(j['counters']) > 3000"; then
    ok "the run across the crash: $(json_get "$T/crash.json" "len(j['counters'])") x 200, $(json_get "$T/crash.json" "j['non_200']") refused while k_server was down"
else not_ok "the run across the crash finished with a report" "exit $rc"; fi
if json_true "$T/crash.json" "not any('replayed' in (r.get('error') or '') for r in j['results'])"; then
    ok "no request of the run across the crash refused as replayed"
else
    not_ok "a request across the crash was refused as replayed"
    "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print("    |", [r for r in j["results"] if "replayed" in (r.get("error") or "")][:3])' "$T/crash.json"
fi
if json_true "$T/crash.json" "j['results'][-1]['status'] == 200"; then
    ok "the run ended answered 200 again after the restart"
else not_ok "the run across the crash recovered"; fi
regress "$T/after.json" --requests 3000 --parallelism 16
rc=$?
if [ "$rc" -eq 0 ] && json_true "$T/after.json" "len(j['counters']) == 3000 and j['non_200'] == 0"; then
    ok "after kill -9 and restart: 3000 requests all 200"
else
    not_ok "after kill -9 and restart all 200" "exit $rc"
    "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print("    |", j.get("message"))' "$T/after.json" 2>/dev/null
fi
all_dups=$("$PY" -c '
import json, sys
vals = []
for f in sys.argv[1:]:
    vals += json.load(open(f))["counters"]
print(len(vals) - len(set(vals)), len(vals))' "$T/load.json" "$T/crash.json" "$T/after.json")
set -- $all_dups
if [ "$1" = 0 ]; then ok "no value twice in what the clients got across the crash ($2 values)"; else
    not_ok "no value twice across the crash" "$1 duplicates of $2"; fi
# every value k_server's logs say it handed out, across all its runs: none twice
dups=$(cat "$KS_DIR"/log* | "$PY" -c '
import json, sys
seen = {}
dup = 0
for line in sys.stdin:
    try:
        j = json.loads(line)
    except Exception:
        continue
    c = j.get("counter")
    if j.get("event") == "request" and j.get("status") == 200 and isinstance(c, int):
        dup += c in seen
        seen[c] = 1
print(dup, len(seen))')
set -- $dups
if [ "$1" = 0 ]; then
    ok "no counter value twice in k_server's logs across 3 restarts and 2 kill -9 ($2 values)"
else not_ok "no value twice in k_server's logs" "$1 duplicates of $2"; fi
after_min=$(json_get "$T/after.json" "min(j['counters'])")
if [ "$after_min" -gt "$(json_get "$T/crash.json" "max(j['counters'])")" ]; then
    ok "values after the crash run are above every value before them"
else not_ok "values after the crash above those before"; fi

# ---- chaos: 10 kill -9 under 8-way load, side files deleted or truncated ----
# (issue 10: values never repeat through file handling). After each kill the
# journal, if any, is deleted or cut; k_server must come back and never hand
# out a value twice, or refuse to start.
CHAOS_FILES=""
refused_starts=0
for round in 1 2 3 4 5 6 7 8 9 10; do
    base=$(ks_counter)
    regress "$T/chaos.$round.json" --requests 4000 --parallelism 8 --timeout-ms 3000 &
    RPID=$!
    _tries=100
    while [ "$_tries" -gt 0 ] && [ "$(ks_counter)" -lt $((base + 500)) ] 2>/dev/null; do
        sleep 0.05
        _tries=$((_tries - 1))
    done
    kill -KILL "$KS_PID"
    wait "$KS_PID" 2>/dev/null
    case $round in
    3 | 6) rm -f "$KS_DB-journal" "$KS_DB-wal" ;;
    4 | 7) [ -e "$KS_DB-journal" ] && : >"$KS_DB-journal" ;;
    5 | 8) [ -e "$KS_DB-journal" ] && truncate -s 512 "$KS_DB-journal" ;;
    esac
    if ! restart_k_server; then
        refused_starts=$((refused_starts + 1))
        echo "    | round $round: k_server refused to start: $(tail -n 1 "$KS_DIR/log.$STARTS")"
        # a refusal is allowed; the file is then as the crash left it: stop here
        wait "$RPID"
        CHAOS_FILES="$CHAOS_FILES $T/chaos.$round.json"
        break
    fi
    wait "$RPID"
    CHAOS_FILES="$CHAOS_FILES $T/chaos.$round.json"
done
# shellcheck disable=SC2086 # CHAOS_FILES is a list of paths without spaces
chaos=$("$PY" -c '
import json, sys
vals = []
for f in sys.argv[1:]:
    try:
        vals += json.load(open(f))["counters"]
    except Exception:
        pass
print(len(vals) - len(set(vals)), len(vals))' "$T/load.json" "$T/crash.json" "$T/after.json" $CHAOS_FILES)
set -- $chaos
if [ "$1" = 0 ] && [ "$2" -gt "$N" ]; then
    ok "chaos: 10 kill -9 under load with the journal deleted, emptied or cut: no value twice ($2 values, $refused_starts refused starts)"
else not_ok "chaos: no value twice" "$1 duplicates of $2, $refused_starts refused starts"; fi
if [ "$refused_starts" -eq 0 ]; then
    regress "$T/chaos.after.json" --requests 1000 --parallelism 8
    if [ "$?" -eq 0 ] && "$PY" -c '
import json, sys
after = json.load(open(sys.argv[1]))["counters"]
before = []
for f in sys.argv[2:]:
    before += json.load(open(f))["counters"]
sys.exit(0 if min(after) > max(before) else 1)' "$T/chaos.after.json" $CHAOS_FILES; then
        ok "after the chaos the chain answers 200, above every value before"
    else not_ok "after the chaos the chain answers 200 above every earlier value"; fi
fi
# an emptied database is refused, not taken as new (it would hand out 1 again)
stop_pid "$KS_PID"
cp "$KS_DB" "$T/ks.backup"
: >"$KS_DB"
check_exit "chaos: an emptied database is refused (exit 3)" 3 "$BIN/k_server" --proxy-token x --port 0 \
    --state-db "$KS_DB"
if [ ! -s "$KS_DB" ]; then ok "and left empty"; else not_ok "the emptied database was written"; fi
cp "$T/ks.backup" "$KS_DB"
restart_k_server || not_ok "k_server restarts on its restored database"

# ---- what k_server keeps ----
curl -sS -m 5 "http://127.0.0.1:$KS_PORT/healthz" >"$T/out"
jcheck "k_server /healthz says ok and counts its replay instances" \
    "j['status'] == 'ok' and j['replay_instances'] >= 1"
curl -sS -m 5 "http://127.0.0.1:$KS_PORT/metrics" >"$T/metrics"
if grep -q '^kcard_k_server_replay_instances [1-9]' "$T/metrics" &&
    grep -q '^kcard_k_server_counter_reserved [1-9]' "$T/metrics"; then
    ok "k_server /metrics shows the instances and the reservation"
else not_ok "k_server /metrics"; show_head 20 "$T/metrics"; fi
if ! grep -q replay_cache_full "$KS_DIR"/log*; then ok "no replay_cache_full anywhere"; else
    not_ok "replay_cache_full is gone"; fi
stop_pid "$KS_PID"
if [ ! -e "$KS_DB-wal" ] && [ ! -e "$KS_DB-journal" ]; then
    ok "a stopped k_server leaves only its database file"
else not_ok "no side file after a clean stop"; ls -la "$KS_DIR" | sed 's/^/    | /'; fi
: >"$T/empty.db"
check_exit "k_server refuses an empty database file (exit 3)" 3 "$BIN/k_server" --proxy-token x --port 0 \
    --state-db "$T/empty.db"
if [ ! -s "$T/empty.db" ]; then ok "and leaves it empty"; else not_ok "the empty file was written"; fi

finish

#!/bin/sh
# k_proxy's limits under attack (issue 10, "no client takes what others
# need"; issue 9, "card operations on their own worker"):
#  (a) one session floods /resource/counter from several processes as fast
#      as they can: it gets 429 with Retry-After above its limit, while
#      another session's calls keep succeeding, quickly;
#  (b) card denials in a row lock the user out: the next login gets 429 with
#      Retry-After at once, without asking the card; after the lockout an
#      approved login succeeds; a per-user login rate refuses a burst;
#  (c) with the card waiting for a touch, logins beyond --max-card-waiters
#      get 503 card_busy at once, and another session's counter call is
#      answered meanwhile (no HTTP thread waits for the card).
# Bounded: about 20 s.
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

H='Content-Type: application/json'
FLOOD_SECS=4
SESSION_RATE=200
SESSION_BURST=50

need_vcard "vcard starts" --presence yes
start_k_server || {
    not_ok "k_server starts"
    finish
    exit 1
}
start_k_proxy --server-base-url "http://127.0.0.1:$KS_PORT" --device "$VCARD_URI" \
    --card-timeout-ms 2000 --counter-limit-session "$SESSION_RATE:$SESSION_BURST" \
    --login-limit-user 0.5:4 --lockout-after 3 --lockout-base-ms 2000 --max-card-waiters 2 || {
    not_ok "k_proxy starts"
    finish
    exit 1
}
KP_URL="http://127.0.0.1:$KP_PORT"
ok "the chain starts (per-session counter limit $SESSION_RATE/s, burst $SESSION_BURST)"

# login USER: the session token on stdout
login() {
    curl -sS -m 10 -X POST "$KP_URL/session/login" -H "$H" -d "{\"username\":\"$1\"}" |
        "$PY" -c 'import json,sys; print(json.load(sys.stdin).get("session_token", ""))'
}
FLOODER=$(login flooder)
OTHER=$(login other)
if [ -n "$FLOODER" ] && [ -n "$OTHER" ]; then ok "two sessions log in"; else
    not_ok "two sessions log in" "flooder '$FLOODER' other '$OTHER'"
    finish
    exit 1
fi

# ---- (a) one session floods the counter; another keeps being served ----
cat >"$T/flood.py" <<'PYEOF'
# flood.py PORT TOKEN SECONDS THREADS OUT: keep-alive POSTs to the counter
# as fast as they go; counts statuses and 429s carrying Retry-After.
import http.client, json, sys, threading, time
port, token, secs, nthreads, out = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json", "Content-Length": "0"}
lock = threading.Lock()
tally = {"codes": {}, "retry_after": 0, "errors": 0}
end = time.monotonic() + secs
def run():
    c = None
    while time.monotonic() < end:
        try:
            if c is None:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("POST", "/resource/counter", headers=hdr)
            r = c.getresponse()
            r.read()
            ra = r.getheader("Retry-After")
            with lock:
                tally["codes"][str(r.status)] = tally["codes"].get(str(r.status), 0) + 1
                if r.status == 429 and ra is not None and ra.isdigit() and int(ra) >= 1:
                    tally["retry_after"] += 1
        except Exception:
            with lock:
                tally["errors"] += 1
            c = None
ts = [threading.Thread(target=run) for _ in range(nthreads)]
for t in ts: t.start()
for t in ts: t.join()
json.dump(tally, open(out, "w"))
PYEOF
cat >"$T/victim.py" <<'PYEOF'
# victim.py PORT TOKEN N DELAY OUT: N counter calls, one at a time, each on
# a new connection (as a fresh client would); statuses and latencies.
import http.client, json, sys, time
port, token, n, delay, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json", "Content-Length": "0"}
codes, lat, values = {}, [], []
for i in range(n):
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", "/resource/counter", headers=hdr)
        r = c.getresponse()
        body = r.read()
        c.close()
        code = str(r.status)
        if r.status == 200:
            values.append(json.loads(body)["counter"])
    except Exception as e:
        code = "error:" + type(e).__name__
    lat.append((time.monotonic() - t0) * 1000)
    codes[code] = codes.get(code, 0) + 1
    time.sleep(delay)
lat.sort()
json.dump({"codes": codes, "n": n, "ok": codes.get("200", 0), "p50": lat[len(lat) // 2],
           "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))], "max": lat[-1],
           "unique": len(set(values)) == len(values)}, open(out, "w"))
PYEOF
start=$(date +%s.%N)
for i in 1 2 3; do
    "$PY" "$T/flood.py" "$KP_PORT" "$FLOODER" "$FLOOD_SECS" 4 "$T/flood$i.json" &
    eval "FLOOD_PID$i=\$!"
done
sleep 0.5 # the flood is on
"$PY" "$T/victim.py" "$KP_PORT" "$OTHER" 200 0.01 "$T/victim.json"
wait "$FLOOD_PID1" "$FLOOD_PID2" "$FLOOD_PID3"
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
"$PY" - "$T" "$elapsed" "$SESSION_RATE" "$SESSION_BURST" >"$T/flood.txt" <<'PYEOF'
import json, sys
t, elapsed, rate, burst = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
codes, ra, errors = {}, 0, 0
for i in (1, 2, 3):
    f = json.load(open("%s/flood%d.json" % (t, i)))
    for k, v in f["codes"].items():
        codes[k] = codes.get(k, 0) + v
    ra += f["retry_after"]
    errors += f["errors"]
total = sum(codes.values())
print("flood: %d requests in %.1f s (%.0f/s): %s, %d errors, %d 429s with Retry-After"
      % (total, elapsed, total / elapsed, codes, errors, ra))
print("FLOOD_OK=%d FLOOD_429=%d FLOOD_RA=%d FLOOD_TOTAL=%d FLOOD_MAX_OK=%d"
      % (codes.get("200", 0), codes.get("429", 0), ra, total, int(burst + rate * elapsed) + 1))
PYEOF
sed -n 1p "$T/flood.txt"
eval "$(sed -n 2p "$T/flood.txt")"
"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print("other session: %d of %d OK, statuses %s, p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (j["ok"], j["n"], j["codes"], j["p50"], j["p99"], j["max"]))' "$T/victim.json"
if [ "${FLOOD_429:-0}" -gt 0 ] && [ "$FLOOD_RA" -eq "$FLOOD_429" ]; then
    ok "the flooding session got 429 with Retry-After above its limit ($FLOOD_429 of $FLOOD_TOTAL)"
else not_ok "flood 429s with Retry-After" "$(sed -n 1p "$T/flood.txt")"; fi
if [ "${FLOOD_OK:-0}" -gt 0 ] && [ "$FLOOD_OK" -le "$FLOOD_MAX_OK" ]; then
    ok "the flooding session was served at most its rate and burst ($FLOOD_OK <= $FLOOD_MAX_OK)"
else not_ok "flood served within its limit" "$FLOOD_OK OK, at most $FLOOD_MAX_OK allowed"; fi
cp "$T/victim.json" "$T/out"
jcheck "the other session kept being served during the flood (>= 99% OK, every non-200 counted above)" \
    "j['ok'] >= 0.99 * j['n']"
jcheck "its p99 latency stayed under 500 ms" "j['p99'] < 500"
jcheck "its counter values are unique" "j['unique']"
want "the other session is not limited after the flood" 200 /resource/counter -H "$H" \
    -H "Authorization: Bearer $OTHER"

# ---- (b) denials in a row lock the user out; the card is not asked ----
ctl presence no
for i in 1 2 3; do
    want "denied login $i of 3 for mallory: 401" 401 /session/login -H "$H" -d '{"username":"mallory"}'
done
jcheck "the third says card_denied" "j['error'] == 'card_denied'"
before=$("$CTL" --control "$VCARD_CTL" --json status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
ctl presence yes
code=$(curl -sS -m 10 -o "$T/out" -D "$T/hdr" -w '%{http_code} %{time_total}' -X POST \
    "$KP_URL/session/login" -H "$H" -d '{"username":"mallory"}')
after=$("$CTL" --control "$VCARD_CTL" --json status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
ra=$(tr -d '\r' <"$T/hdr" | sed -n 's/^[Rr]etry-[Aa]fter: *//p')
case $code in
429\ 0.*) ok "the fourth login is locked out at once: 429 (${code#* } s)" ;;
*) not_ok "locked login" "HTTP/time $code" ;;
esac
jcheck "error locked_out" "j['error'] == 'locked_out'"
case $ra in
1 | 2) ok "Retry-After: $ra (what is left of the 2 s lockout, rounded up)" ;;
*) not_ok "Retry-After of the lockout" "'$ra'" ;;
esac
if [ "$before" = "$after" ]; then ok "the card was not asked ($before requests before and after)"; else
    not_ok "card not asked" "vcard requests $before -> $after"
fi
want "bob is not locked out by mallory's denials" 200 /session/login -H "$H" -d '{"username":"bob"}'
sleep 2.1
want "after the lockout an approved login succeeds" 200 /session/login -H "$H" -d '{"username":"mallory"}'
for i in 1 2 3 4; do
    want "login $i of a burst of 4 for carol" 200 /session/login -H "$H" -d '{"username":"carol"}'
done
code=$(curl -sS -m 10 -o "$T/out" -D "$T/hdr" -w '%{http_code}' -X POST \
    "$KP_URL/session/login" -H "$H" -d '{"username":"carol"}')
ra=$(tr -d '\r' <"$T/hdr" | sed -n 's/^[Rr]etry-[Aa]fter: *//p')
if [ "$code" = 429 ] && { [ "$ra" = 1 ] || [ "$ra" = 2 ]; }; then
    ok "the fifth (over 0.5 a second, burst 4): 429, Retry-After: $ra"
else
    not_ok "per-user login rate" "HTTP $code, Retry-After '$ra'"
fi
jcheck "error rate_limited" "j['error'] == 'rate_limited'"

# ---- (c) logins beyond --max-card-waiters: 503 at once ----
ctl presence ask # nobody touches: each login holds the card for --card-timeout-ms
i=1
while [ "$i" -le 20 ]; do
    curl -sS -m 15 -o "$T/w$i.json" -D "$T/w$i.hdr" -w '%{http_code} %{time_total}\n' -X POST \
        "$KP_URL/session/login" -H "$H" -d "{\"username\":\"waiter$i\"}" >"$T/w$i.code" 2>&1 &
    eval "W_PID$i=\$!"
    i=$((i + 1))
done
sleep 0.3
code=$(curl -sS -m 10 -o "$T/out" -w '%{http_code} %{time_total}' -X POST "$KP_URL/resource/counter" \
    -H "$H" -H "Authorization: Bearer $OTHER")
case $code in
200\ 0.*) ok "another session's counter call is answered while the card waits (${code#* } s)" ;;
*) not_ok "counter call while the card waits" "HTTP/time $code" ;;
esac
i=1
while [ "$i" -le 20 ]; do
    eval "wait \$W_PID$i"
    i=$((i + 1))
done
"$PY" - "$T" >"$T/waiters.txt" <<'PYEOF'
import json, sys
t = sys.argv[1]
# refused at once: 503 card_busy with Retry-After in under 1 s; the two
# taken wait for the card (the second one may give up after the first's
# --card-timeout-ms: 503 card_busy then, after a wait)
fast = ra = slow = 0
for i in range(1, 21):
    code, secs = open("%s/w%d.code" % (t, i)).read().split()
    if float(secs) >= 1.0:
        slow += 1
        continue
    j = json.load(open("%s/w%d.json" % (t, i)))
    hdr = open("%s/w%d.hdr" % (t, i)).read().lower()
    fast += code == "503" and j.get("error") == "card_busy"
    ra += "\nretry-after: 1" in hdr
print("fast_503=%d with_retry_after=%d waited=%d" % (fast, ra, slow))
PYEOF
res=$(cat "$T/waiters.txt")
if [ "$res" = "fast_503=18 with_retry_after=18 waited=2" ]; then
    ok "20 logins, 2 card waiters: 18 got 503 card_busy with Retry-After in under 1 s"
else not_ok "logins beyond --max-card-waiters" "$res"; fi
ctl presence yes

# ---- the limits in /metrics ----
curl -sS -m 5 "$KP_URL/metrics" >"$T/metrics"
for m in 'kcard_k_proxy_rate_limited_total{route="/resource/counter",scope="session"}' \
    'kcard_k_proxy_rate_limited_total{route="/session/login",scope="user"}' \
    'kcard_k_proxy_lockouts_total{route="/session/login"}' \
    'kcard_k_proxy_card_waiters_refused_total{route="/session/login"} 18' \
    'kcard_k_proxy_card_waiters 0' 'kcard_k_proxy_card_waiters_max 2' \
    'kcard_k_proxy_limit{limit="counter_session_rate"} 200'; do
    if grep -qF "$m" "$T/metrics"; then ok "/metrics: $m"; else not_ok "/metrics: $m" "missing"; fi
done

# ---- stopping: a login waiting for the card is answered at once ----
ctl presence ask
curl -sS -m 15 -o /dev/null -X POST "$KP_URL/session/login" -H "$H" -d '{"username":"s1"}' &
S1=$!
sleep 0.3
curl -sS -m 15 -o "$T/s2.json" -w '%{http_code} %{time_total}' -X POST "$KP_URL/session/login" \
    -H "$H" -d '{"username":"s2"}' >"$T/s2.code" &
S2=$!
sleep 0.3
kill -TERM "$KP_PID"
wait "$S2"
code=$(cat "$T/s2.code")
case $code in
503\ 0.*) ok "on SIGTERM the login waiting behind the card is answered at once: 503 (${code#* } s)" ;;
*) not_ok "waiting login on SIGTERM" "HTTP/time $code" ;;
esac
cp "$T/s2.json" "$T/out"
jcheck "error shutting_down" "j['error'] == 'shutting_down'"
wait "$S1"
wait_exit "$KP_PID"
if kill -0 "$KP_PID" 2>/dev/null; then not_ok "k_proxy stops after the card's timeout"; else
    ok "k_proxy stops once the card operation in flight has ended"
fi
ctl presence yes

finish

#!/bin/sh
# The session chain on loopback: vcard -> k_proxy -> k_server, driven with
# curl exactly as the Phase 5 runbook's test flow does, plus what kcard adds
# beyond the prototype (durable state, signed upstream trust, opaque session
# references, card failures answered without calling k_server).
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

H='Content-Type: application/json'
token() { json_get "$T/out" "j['session_token']"; }
ks_counter() { curl -sS -m 5 "http://127.0.0.1:$KS_PORT/healthz" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["counter"])'; }

need_vcard "vcard starts" --presence yes
start_k_server || { not_ok "k_server starts"; finish; exit 1; }
ok "k_server starts"
start_k_proxy --server-base-url "http://127.0.0.1:$KS_PORT" --device "$VCARD_URI" \
    --card-timeout-ms 3000 || { not_ok "k_proxy starts"; finish; exit 1; }
ok "k_proxy starts"
KP_URL="http://127.0.0.1:$KP_PORT"

# ---- the runbook's test flow ----
want "login alice (card presence + approval)" 200 /session/login -H "$H" -d '{"username":"alice"}'
jcheck "login answers a 43-char token, auth_mode card_probe, ttl 300" \
    "len(j['session_token']) == 43 and j['auth_mode'] == 'card_probe' and j['expires_in'] == 300 and j['username'] == 'alice'"
TOKEN=$(token)
want "session status" 200 /session/status -H "Authorization: Bearer $TOKEN"
jcheck "status: active, alice, no requests yet" "j['active'] is True and j['username'] == 'alice' and j['requests'] == 0"
want "counter 1" 200 /resource/counter -H "Authorization: Bearer $TOKEN"
c1=$(json_get "$T/out" "j['counter']")
want "counter 2 without a new login" 200 /resource/counter -H "Authorization: Bearer $TOKEN"
c2=$(json_get "$T/out" "j['counter']")
if [ "$c2" -eq $((c1 + 1)) ]; then ok "counter increases by one ($c1, $c2)"; else not_ok "counter increases by one" "$c1 then $c2"; fi
if [ "$(grep -c '"event":"request".*"path":"/session/login"' "$KP_DIR/log")" -eq 1 ] &&
    [ "$(grep -c '"card_outcome"' "$KP_DIR/log")" -eq 1 ]; then
    ok "the card was used once for login and not for the counter calls"
else not_ok "the card was used once"; fi
want "status counts the requests" 200 /session/status -H "Authorization: Bearer $TOKEN"
jcheck "requests == 2" "j['requests'] == 2"
want "logout" 200 /session/logout -H "Authorization: Bearer $TOKEN"
jcheck "logout answer" "j['logged_out'] is True and j['username'] == 'alice'"
want "counter after logout is 401" 401 /resource/counter -H "Authorization: Bearer $TOKEN"
jcheck "401 names invalid_session" "j['error'] == 'invalid_session'"
if curl -sS -i -X POST "$KP_URL/resource/counter" -H "Authorization: Bearer $TOKEN" | grep -qi '^WWW-Authenticate: Bearer'; then
    ok "401 carries WWW-Authenticate: Bearer"
else not_ok "401 carries WWW-Authenticate"; fi
want "logout twice is 401" 401 /session/logout -H "Authorization: Bearer $TOKEN"

# ---- k_server sees only opaque references, never tokens or usernames ----
if grep -q '"ref":"[A-Za-z0-9_-]\{22\}"' "$KS_DIR/log" && ! grep -q alice "$KS_DIR/log" &&
    ! grep -q "$TOKEN" "$KS_DIR/log"; then
    ok "k_server logs a 22-char session reference and never the username or token"
else not_ok "k_server logs only references"; show_head 5 "$KS_DIR/log"; fi
if ! grep -q "$TOKEN" "$KP_DIR/log"; then ok "k_proxy never logs the bearer token"; else not_ok "k_proxy logs the token"; fi

# ---- upstream trust is a signature, not a static header ----
code=$(curl -sS -o "$T/out" -w '%{http_code}' -X POST "http://127.0.0.1:$KS_PORT/counter/next" -H "X-Proxy-Token: $CHAIN_TOKEN")
if [ "$code" = 401 ] && json_true "$T/out" "j['error'] == 'unsigned_request' and 'X-Proxy-Token' in j['message']"; then
    ok "k_server refuses the prototype's X-Proxy-Token header (401, named)"
else not_ok "k_server refuses X-Proxy-Token" "HTTP $code"; fi
code=$(curl -sS -o "$T/out" -w '%{http_code}' -X POST "http://127.0.0.1:$KS_PORT/counter/next" \
    -H 'Authorization: KC-HMAC-SHA256 ts=1, inst=000102030405060708090a0b0c0d0e0f, seq=1, ref=x, sig=0000000000000000000000000000000000000000000000000000000000000000')
if [ "$code" = 401 ] && json_true "$T/out" "j['error'] == 'bad_signature'"; then ok "a forged signature is 401 bad_signature"; else not_ok "forged signature" "HTTP $code"; fi

# ---- request fields never select authority ----
want "login bob" 200 /session/login -H "$H" -d '{"username":"bob"}'
BOB=$(token)
want "counter with a body naming another user" 200 /resource/counter -H "Authorization: Bearer $BOB" -H "$H" -d '{"username":"alice"}'
jcheck "the session decides: bob" "j['username'] == 'bob'"

# ---- bad input: 4xx naming what was wrong ----
want "bad JSON is 400" 400 /session/login -H "$H" -d '{"username":'
jcheck "400 bad_json" "j['error'] == 'bad_json'"
want "missing username is 400" 400 /session/login -H "$H" -d '{}'
want "bad username is 400" 400 /session/login -H "$H" -d '{"username":"a b/c"}'
jcheck "400 bad_username" "j['error'] == 'bad_username'"
want "a non-object body is 400" 400 /session/login -H "$H" -d '[1]'
want "form data is 415" 415 /session/login -H 'Content-Type: application/x-www-form-urlencoded' -d 'username=alice'
head -c 20000 /dev/zero | tr '\0' 'a' >"$T/big"
want "a 20 kB body is 413" 413 /session/login -H "$H" --data-binary @"$T/big"
want "unknown path is 404" 404 /nope
code=$(curl -sS -o "$T/out" -w '%{http_code}' "$KP_URL/session/login")
if [ "$code" = 405 ]; then ok "GET /session/login is 405"; else not_ok "405" "HTTP $code"; fi
want "garbage bearer is 401" 401 /session/status -H "Authorization: Bearer not a token"
want "no bearer is 401" 401 /session/status

# ---- the card decides; a refusal never reaches k_server ----
before=$(ks_counter)
ctl presence no
want "login with the card refusing is 401" 401 /session/login -H "$H" -d '{"username":"carol"}'
jcheck "401 card_denied, k_server not called" "j['error'] == 'card_denied' and j['upstream_called'] is False"
ctl presence yes
after=$(ks_counter)
if [ "$before" = "$after" ]; then ok "k_server's counter unchanged by a denied login ($after)"; else not_ok "counter changed" "$before -> $after"; fi

# ---- registry (the portal's view) ----
want "register alice" 201 /enroll/register -H "$H" -d '{"username":"alice"}'
want "register alice twice is 409" 409 /enroll/register -H "$H" -d '{"username":"alice"}'
code=$(curl -sS -o "$T/out" -w '%{http_code}' "$KP_URL/users")
if [ "$code" = 200 ] && json_true "$T/out" "[u['username'] for u in j['users']] == ['alice']"; then ok "GET /users lists alice"; else not_ok "users" "HTTP $code"; fi
want "login alice again" 200 /session/login -H "$H" -d '{"username":"alice"}'
ALICE=$(token)
want "login bob for the next check" 200 /session/login -H "$H" -d '{"username":"bob"}'
BOB2=$(token)
want "bob's session cannot unregister alice" 403 /enroll/unregister -H "$H" -H "Authorization: Bearer $BOB2" -d '{"username":"alice"}'
ctl presence no
want "without a session, unregistering needs the card: refused is 401" 401 /enroll/unregister -H "$H" -d '{"username":"alice"}'
ctl presence yes
want "alice is still logged in" 200 /session/status -H "Authorization: Bearer $ALICE"
want "alice's own session unregisters her and ends her sessions" 200 /enroll/unregister -H "$H" -H "Authorization: Bearer $ALICE" -d '{"username":"alice"}'
jcheck "one session ended" "j['sessions_ended'] == 1"
want "her token is dead" 401 /session/status -H "Authorization: Bearer $ALICE"
want "unregister unknown is 404" 404 /enroll/unregister -H "$H" -d '{"username":"alice"}'
want "register zed" 201 /enroll/register -H "$H" -d '{"username":"zed"}'
want "the card holder unregisters zed (card approval)" 200 /enroll/unregister -H "$H" -d '{"username":"zed"}'

# ---- state survives restarts ----
want "login dave" 200 /session/login -H "$H" -d '{"username":"dave"}'
DAVE=$(token)
want "dave counter" 200 /resource/counter -H "Authorization: Bearer $DAVE"
last=$(json_get "$T/out" "j['counter']")
stop_pid "$KS_PID"
want "k_server down: 502 upstream_failed" 502 /resource/counter -H "Authorization: Bearer $DAVE"
jcheck "502 names k_server" "j['error'] == 'upstream_failed' and 'k_server' in j['message']"
KS_OLD_DIR=$KS_DIR
"$BIN/k_server" --port "$KS_PORT" --port-file "$KS_OLD_DIR/port.again" --proxy-token "$CHAIN_TOKEN" \
    --state-db "$KS_OLD_DIR/k_server.db" 2>>"$KS_OLD_DIR/log" &
KS_PID=$!
_E2E_PIDS="$_E2E_PIDS $KS_PID"
if _wait_port_file "$KS_OLD_DIR/port.again" "$KS_PID" &&
    [ "$(grep -c '"event":"start".*"counter":'"$last"'}' "$KS_OLD_DIR/log")" -eq 1 ]; then
    ok "k_server restarts with counter $last"
else not_ok "k_server restart"; fi
stop_pid "$KP_PID"
"$BIN/k_proxy" --port "$KP_PORT" --port-file "$KP_DIR/port.again" --proxy-token "$CHAIN_TOKEN" \
    --state-db "$KP_DIR/k_proxy.db" --server-base-url "http://127.0.0.1:$KS_PORT" \
    --device "$VCARD_URI" 2>>"$KP_DIR/log" &
KP_PID=$!
_E2E_PIDS="$_E2E_PIDS $KP_PID"
_wait_port_file "$KP_DIR/port.again" "$KP_PID" && ok "k_proxy restarts on its port" || not_ok "k_proxy restart"
want "dave's session survives both restarts" 200 /resource/counter -H "Authorization: Bearer $DAVE"
jcheck "and the counter continues gap-free" "j['counter'] == $last + 1"

# ---- a wrong proxy token is refused upstream, and says how to fix it ----
stop_pid "$KP_PID"
start_k_proxy --server-base-url "http://127.0.0.1:$KS_PORT" --device "$VCARD_URI" --proxy-token wrong-token ||
    not_ok "k_proxy with a wrong token starts"
KP_URL="http://127.0.0.1:$KP_PORT"
want "login with the wrong proxy token" 200 /session/login -H "$H" -d '{"username":"erin"}'
ERIN=$(token)
want "counter with the wrong proxy token is 502" 502 /resource/counter -H "Authorization: Bearer $ERIN"
jcheck "502 says the signature was refused and names --proxy-token" "'bad_signature' in j['message'] and '--proxy-token' in j['message']"

# ---- card unavailable: 503 with the probe's diagnosis ----
stop_vcard
want "login with no card is 503" 503 /session/login -H "$H" -d '{"username":"frank"}'
jcheck "503 card_unavailable" "j['error'] == 'card_unavailable'"

# ---- health and metrics ----
code=$(curl -sS -o "$T/out" -w '%{http_code}' "$KP_URL/healthz")
if [ "$code" = 200 ] && json_true "$T/out" "j['status'] == 'ok' and j['service'] == 'k_proxy' and j['auth_mode'] == 'card_probe'"; then ok "k_proxy /healthz"; else not_ok "k_proxy /healthz" "HTTP $code"; fi
curl -sS "$KP_URL/metrics" >"$T/metrics"
if grep -q '^kcard_k_proxy_http_requests_total{route="/session/login",method="POST",code="200"} 1$' "$T/metrics" &&
    grep -q '^kcard_k_proxy_card_operations_total{op="login",outcome="card_unavailable"} 1$' "$T/metrics" &&
    grep -q '^kcard_k_proxy_upstream_requests_total{result="refused"} 1$' "$T/metrics" &&
    grep -q '^# TYPE kcard_k_proxy_http_request_duration_seconds histogram$' "$T/metrics"; then
    ok "k_proxy /metrics counts logins, card outcomes and upstream refusals"
else not_ok "k_proxy /metrics"; show_head 20 "$T/metrics"; fi
curl -sS "http://127.0.0.1:$KS_PORT/metrics" >"$T/metrics"
if grep -q '^kcard_k_server_upstream_refused_total{reason="bad_signature"} [1-9]' "$T/metrics" &&
    grep -q '^kcard_k_server_counter_value [1-9]' "$T/metrics"; then
    ok "k_server /metrics counts refusals and shows the counter"
else not_ok "k_server /metrics"; show_head 20 "$T/metrics"; fi

# ---- every log line is one JSON object ----
bad=$(cat "$KS_DIR/log" "$KS_OLD_DIR/log" "$KP_DIR/log" | "$PY" -c '
import json, sys
bad = 0
for line in sys.stdin:
    try:
        j = json.loads(line)
        assert isinstance(j, dict) and "ts" in j and "event" in j and "service" in j
    except Exception:
        bad += 1
print(bad)')
if [ "$bad" = 0 ]; then ok "every service log line is a JSON object with ts, service, event"; else not_ok "log lines" "$bad bad"; fi

# ---- usage errors ----
check_exit "k_server without a token exits 2" 2 env -u KCARD_PROXY_TOKEN "$BIN/k_server" --port 0
check_exit "k_proxy --auth-mode bogus exits 2" 2 "$BIN/k_proxy" --proxy-token x --auth-mode bogus
check_exit "k_proxy --session-ttl abc exits 2" 2 "$BIN/k_proxy" --proxy-token x --session-ttl abc
check_exit "k_server on a port in use exits 3" 3 "$BIN/k_server" --proxy-token x --port "$KS_PORT" --state-db "$T/other.db"
printf 'not a database, just text\n' >"$T/corrupt.db"
cp "$T/corrupt.db" "$T/corrupt.orig"
check_exit "k_server refuses a corrupt state file (exit 3)" 3 "$BIN/k_server" --proxy-token x --port 0 --state-db "$T/corrupt.db"
check "and leaves it untouched" cmp "$T/corrupt.db" "$T/corrupt.orig"
check "k_server --help" "$BIN/k_server" --help
check "k_proxy --help" "$BIN/k_proxy" --help

finish

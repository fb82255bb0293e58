#!/bin/sh
# Cross-site use and honest health (issue 10, points 4 and 7): k_proxy
# refuses state-changing requests that a page on another site can send (a
# foreign Origin, no or a non-JSON Content-Type, a DNS-rebinding Host) before
# the card is asked; the portal sends CSP, framing, nosniff and referrer
# headers and checks Host on every address; k_proxy's /healthz names k_server
# when it cannot reach it; k_server's /healthz fails when its disk is full.
# Needs root for the full-disk check (a tmpfs in its own mount namespace).
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

H='Content-Type: application/json'
ALLOWED=https://portal.example
card_requests() { "$CTL" --control "$VCARD_CTL" --json status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }
# status CODE of curl ARGS (GET unless ARGS say otherwise), body in $T/out, headers in $T/h
st() { curl -sS -m 10 -D "$T/h" -o "$T/out" -w '%{http_code}' "$@" 2>"$T/curl.err"; }
is() { # NAME WANT GOT
    if [ "$3" = "$2" ]; then ok "$1"; else
        not_ok "$1" "HTTP $3, wanted $2"
        show_head 5 "$T/out" "$T/curl.err"
    fi
}

need_vcard "vcard starts" --presence yes
start_k_server || { not_ok "k_server starts"; finish; exit 1; }
start_k_proxy --server-base-url "http://127.0.0.1:$KS_PORT" --device "$VCARD_URI" \
    --card-timeout-ms 3000 --allowed-origin "$ALLOWED" --allowed-host proxy.example ||
    { not_ok "k_proxy starts"; finish; exit 1; }
KP_URL="http://127.0.0.1:$KP_PORT"

want "register alice with the right headers" 201 /enroll/register -H "$H" -d '{"username":"alice"}'
before=$(card_requests)

# ---- what another site's page can send: refused before the card ----
want "a foreign Origin with no Content-Type cannot unregister alice: 403" 403 /enroll/unregister \
    -H 'Content-Type:' -H 'Origin: https://evil.example' -d '{"username":"alice"}'
jcheck "403 origin_not_allowed" "j['error'] == 'origin_not_allowed'"
want "no Content-Type cannot unregister alice: 415" 415 /enroll/unregister -H 'Content-Type:' \
    -d '{"username":"alice"}'
jcheck "415 unsupported_media_type" "j['error'] == 'unsupported_media_type'"
want "a form post (text/plain) cannot unregister alice: 415" 415 /enroll/unregister \
    -H 'Content-Type: text/plain' -d '{"username":"alice"}'
want "a form post cannot log in: 415" 415 /session/login -d 'username=alice'
want "application/jsonx cannot log in: 415" 415 /session/login -H 'Content-Type: application/jsonx' \
    -d '{"username":"alice"}'
want "a foreign Origin with JSON cannot log in: 403" 403 /session/login -H "$H" \
    -H 'Origin: https://evil.example' -d '{"username":"alice"}'
want "Origin: null cannot log in: 403" 403 /session/login -H "$H" -H 'Origin: null' \
    -d '{"username":"alice"}'
want "DNS rebinding (Host: evil.example, its Origin) cannot log in: 421" 421 /session/login -H "$H" \
    -H 'Host: evil.example' -H 'Origin: http://evil.example' -d '{"username":"alice"}'
jcheck "421 misdirected_request, no token" "j['error'] == 'misdirected_request' and 'session_token' not in j"
want "Host: evil.example:$KP_PORT without Origin: 421" 421 /session/login -H "$H" \
    -H "Host: evil.example:$KP_PORT" -d '{"username":"alice"}'
want "a foreign address literal as Host: 421" 421 /session/login -H "$H" -H 'Host: 203.0.113.9' \
    -d '{"username":"alice"}'
code=$(st -H 'Host: evil.example' "$KP_URL/users")
is "a rebinding page cannot read the user list: 421" 421 "$code"
after=$(card_requests)
if [ -n "$before" ] && [ "$before" = "$after" ]; then ok "the card was never asked ($after requests)"; else
    not_ok "the card was asked" "requests $before -> $after"; fi
code=$(st "$KP_URL/users")
if [ "$code" = 200 ] && json_true "$T/out" "[u['username'] for u in j['users']] == ['alice']"; then
    ok "alice is still registered"; else not_ok "alice is still registered" "HTTP $code"; fi
grep -q '"guard":"origin_not_allowed"' "$KP_DIR/log" && grep -q '"guard":"misdirected_request"' "$KP_DIR/log" &&
    ok "refusals are logged with their reason" || not_ok "refusals logged"

# ---- the same requests with the right headers succeed ----
want "JSON login: 200" 200 /session/login -H "$H" -d '{"username":"alice"}'
want "JSON with charset, an allowed Origin, an --allowed-host: 200" 200 /session/login \
    -H 'Content-Type: Application/JSON; charset=utf-8' -H "Origin: $ALLOWED" \
    -H "Host: proxy.example:8443" -d '{"username":"alice"}'
TOKEN=$(json_get "$T/out" "j['session_token']")
want "Host by another loopback literal (a forward's port): 200" 200 /session/status \
    -H "Authorization: Bearer $TOKEN" -H 'Host: 127.0.0.2:9771'
want "the runbook's bearer-only counter call (no body, no type): 200" 200 /resource/counter \
    -H "Authorization: Bearer $TOKEN"
want "a foreign Origin cannot use the token: 403" 403 /resource/counter -H "Authorization: Bearer $TOKEN" \
    -H 'Origin: https://evil.example'
after_ok=$(card_requests)
[ "$after_ok" -gt "$after" ] 2>/dev/null && ok "the card was asked for the good logins" ||
    not_ok "the card was asked for the good logins" "requests $after -> $after_ok"
want "JSON unregister by the card holder: 200" 200 /enroll/unregister -H "$H" -d '{"username":"alice"}'

# ---- k_proxy's /healthz names k_server when it cannot reach it ----
wait_health() { # URL WANT: until /healthz answers WANT (6 s)
    _n=60
    while [ "$_n" -gt 0 ]; do
        [ "$(st "$1/healthz")" = "$2" ] && return 0
        sleep 0.1
        _n=$((_n - 1))
    done
    return 1
}
code=$(st "$KP_URL/healthz")
if [ "$code" = 200 ] && json_true "$T/out" "j['k_server']['ok'] and j['card']['ok']"; then
    ok "k_proxy /healthz: k_server and card ok"; else not_ok "k_proxy /healthz ok" "HTTP $code"; show_head 3 "$T/out"; fi
stop_pid "$KS_PID"
if wait_health "$KP_URL" 503 && json_true "$T/out" "'k_server' in j['reason'] and not j['k_server']['ok'] and j['status'] == 'unhealthy'"; then
    ok "k_server stopped: k_proxy /healthz is 503 naming k_server"; else not_ok "k_proxy /healthz without k_server"; show_head 3 "$T/out"; fi
"$BIN/k_server" --port "$KS_PORT" --port-file "$KS_DIR/port.again" --proxy-token "$CHAIN_TOKEN" \
    --state-db "$KS_DIR/k_server.db" 2>>"$KS_DIR/log" &
KS_PID=$!
_E2E_PIDS="$_E2E_PIDS $KS_PID"
_wait_port_file "$KS_DIR/port.again" "$KS_PID" || not_ok "k_server restarts"
if wait_health "$KP_URL" 200; then ok "k_server back: k_proxy /healthz is 200 again"; else
    not_ok "k_proxy /healthz after k_server's restart"; show_head 3 "$T/out"; fi
lat=$(curl -sS -o /dev/null -w '%{time_total}' "$KP_URL/healthz")
"$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 0.1 else 1)' "$lat" &&
    ok "/healthz answers from memory (${lat} s)" || not_ok "/healthz is slow" "$lat s"

# ---- and names the card when it is not there (--device auto: announced or
# hidraw; the check looks for the card, it never opens it) ----
mkdir -p "$T/announce" "$T/no-sysfs"
export KCARD_ANNOUNCE_DIR="$T/announce" KCARD_SYSFS_HIDRAW="$T/no-sysfs"
KP_MAIN_PID=$KP_PID KP_MAIN_PORT=$KP_PORT
start_k_proxy --server-base-url "http://127.0.0.1:$KS_PORT" --device auto ||
    not_ok "k_proxy --device auto starts"
unset KCARD_ANNOUNCE_DIR KCARD_SYSFS_HIDRAW
code=$(st "http://127.0.0.1:$KP_PORT/healthz")
if [ "$code" = 503 ] && json_true "$T/out" "'card absent' in j['reason'] and j['k_server']['ok'] and not j['card']['ok']"; then
    ok "no card announced: k_proxy /healthz is 503 naming the card"; else not_ok "k_proxy /healthz without a card" "HTTP $code"; show_head 3 "$T/out"; fi
echo "$VCARD_URI" >"$T/announce/vcard.uri"
if wait_health "http://127.0.0.1:$KP_PORT" 200 && json_true "$T/out" "j['card']['ok'] and j['card']['checked']"; then
    ok "the card announced: /healthz is 200 again"; else not_ok "k_proxy /healthz with the card back"; show_head 3 "$T/out"; fi
stop_pid "$KP_PID"
KP_PID=$KP_MAIN_PID KP_PORT=$KP_MAIN_PORT

# ---- the portal: headers on every answer, Host checked on any address ----
PORTAL_DIR=$E2E_TMP/portal
mkdir -p "$PORTAL_DIR"
start_portal() { # NAME ARGS...: sets PORTAL_PID, PORTAL_PORT
    rm -f "$PORTAL_DIR/port"
    "$BIN/k_client_portal" --port 0 --port-file "$PORTAL_DIR/port" \
        --proxy-base-url "$KP_URL" "$@" 2>>"$PORTAL_DIR/log" &
    PORTAL_PID=$!
    _E2E_PIDS="$_E2E_PIDS $PORTAL_PID"
    _wait_port_file "$PORTAL_DIR/port" "$PORTAL_PID" || return 1
    PORTAL_PORT=$(cat "$PORTAL_DIR/port")
}
headers_ok() {
    grep -qi "^content-security-policy: default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'" "$T/h" &&
        grep -qi '^x-frame-options: DENY' "$T/h" && grep -qi '^x-content-type-options: nosniff' "$T/h" &&
        grep -qi '^referrer-policy: no-referrer' "$T/h"
}
if start_portal; then
    P="http://127.0.0.1:$PORTAL_PORT"
    for what in / /app.js /api/users /api/nope; do
        code=$(st "$P$what")
        if headers_ok; then ok "portal $what (HTTP $code): CSP, X-Frame-Options, nosniff, Referrer-Policy"; else
            not_ok "portal $what headers"; show_head 12 "$T/h"; fi
    done
    code=$(st -H 'Host: evil.example' "$P/api/users")
    is "portal on 127.0.0.1: Host evil.example is 421" 421 "$code"
    stop_pid "$PORTAL_PID"
else not_ok "portal starts"; show_head 10 "$PORTAL_DIR/log"; fi
if start_portal --host 0.0.0.0 --allowed-host portal.example; then
    P="http://127.0.0.1:$PORTAL_PORT"
    code=$(st -H "Host: evil.example:$PORTAL_PORT" "$P/")
    is "portal on 0.0.0.0: Host evil.example is 421" 421 "$code"
    headers_ok && ok "and the 421 carries the headers too" || not_ok "421 headers"
    code=$(st -X POST -H 'Host: evil.example' -H "$H" -d '{"username":"bob"}' "$P/api/login")
    is "portal on 0.0.0.0: a rebinding login is 421" 421 "$code"
    code=$(st "$P/")
    is "portal on 0.0.0.0: Host 127.0.0.1 is 200" 200 "$code"
    code=$(st -H "Host: portal.example:$PORTAL_PORT" "$P/api/users")
    is "portal on 0.0.0.0: an --allowed-host name is 200" 200 "$code"
    stop_pid "$PORTAL_PID"
else not_ok "portal --host 0.0.0.0 starts"; show_head 10 "$PORTAL_DIR/log"; fi

# ---- k_server's /healthz and a full disk ----
# A 1 MiB tmpfs in a mount namespace of k_server's own, filled from that
# namespace. k_server keeps its rollback journal and updates its counter row
# in place (locking_mode EXCLUSIVE), so a full disk does not stop it from
# reserving: 520 counter values (past the half-block mark that starts the
# next reservation, KSRV_RESERVE_BLOCK 1024) are all served and /healthz
# rightly stays 200. Needs root for the mount namespace.
if [ "$(id -u)" != 0 ] || ! unshare -m --propagation private true 2>/dev/null; then
    not_ok "the full-disk check needs root and unshare -m; running as uid $(id -u)"
else
    FULL=$E2E_TMP/full
    mkdir -p "$FULL/mnt"
    unshare -m --propagation private sh -c 'mount -t tmpfs -o size=1m kcard-full "$1" && shift && exec "$@"' \
        sh "$FULL/mnt" "$BIN/k_server" --port 0 --port-file "$FULL/port" --proxy-token "$CHAIN_TOKEN" \
        --state-db "$FULL/mnt/k_server.db" 2>"$FULL/log" &
    FS_PID=$!
    _E2E_PIDS="$_E2E_PIDS $FS_PID"
    if _wait_port_file "$FULL/port" "$FS_PID"; then
        FS_URL="http://127.0.0.1:$(cat "$FULL/port")"
        code=$(st "$FS_URL/healthz")
        is "k_server on a tmpfs: /healthz 200" 200 "$code"
        stop_pid "$KP_PID"
        start_k_proxy --server-base-url "$FS_URL" --device "$VCARD_URI" --card-timeout-ms 3000 ||
            not_ok "k_proxy in front of it starts"
        KP_URL="http://127.0.0.1:$KP_PORT"
        want "login" 200 /session/login -H "$H" -d '{"username":"dora"}'
        TOKEN=$(json_get "$T/out" "j['session_token']")
        want "a counter value before the disk fills" 200 /resource/counter -H "Authorization: Bearer $TOKEN"
        nsenter -t "$FS_PID" -m dd if=/dev/zero of="$FULL/mnt/fill" bs=64k 2>/dev/null
        if nsenter -t "$FS_PID" -m sh -c 'echo x >"$1/probe"' sh "$FULL/mnt" 2>/dev/null; then
            not_ok "the tmpfs is full"; else ok "the tmpfs is full"; fi
        urls=$(i=0; while [ $i -lt 520 ]; do printf '%s ' "$KP_URL/resource/counter"; i=$((i + 1)); done)
        # shellcheck disable=SC2086 # one URL per word
        curl -sS -m 30 -X POST -H "Authorization: Bearer $TOKEN" $urls >"$T/bodies" 2>/dev/null
        served=$(grep -o '"counter":[0-9]*' "$T/bodies" | sort -u | wc -l)
        code=$(st "$FS_URL/healthz")
        if [ "$served" -eq 520 ] && [ "$code" = 200 ] && json_true "$T/out" "j['counter'] == 521"; then
            ok "disk full: 520 distinct values past a reservation, /healthz 200 (it can reserve)"
        else
            not_ok "k_server with a full disk" "served $served, /healthz HTTP $code"
            show_head 3 "$T/out"
        fi
        stop_pid "$FS_PID"
        if wait_health "$KP_URL" 503 && json_true "$T/out" "'k_server' in j['reason']"; then
            ok "k_server gone: k_proxy /healthz is 503 naming it"; else not_ok "k_proxy /healthz, k_server gone"; show_head 3 "$T/out"; fi
    else
        not_ok "k_server starts on a tmpfs"
        show_head 10 "$FULL/log"
    fi
    # a read-only database (its file system remounted read-only, which Linux
    # allows only while no file on it is open for writing): refused at start
    RO=$E2E_TMP/ro
    mkdir -p "$RO/mnt"
    unshare -m --propagation private sh -c '
        mount -t tmpfs -o size=1m kcard-ro "$1/mnt" || exit 90
        "$2" --port 0 --port-file "$1/port" --proxy-token t --state-db "$1/mnt/k_server.db" 2>"$1/log1" &
        p=$!
        n=100
        while [ ! -s "$1/port" ] && [ $n -gt 0 ]; do sleep 0.05; n=$((n - 1)); done
        kill -TERM $p; wait $p
        mount -o remount,ro "$1/mnt" || exit 91
        timeout 10 "$2" --port 0 --proxy-token t --state-db "$1/mnt/k_server.db" 2>"$1/log2"' \
        sh "$RO" "$BIN/k_server"
    rc=$?
    if [ "$rc" = 3 ] && grep -q 'readonly' "$RO/log2"; then
        ok "a read-only database: k_server refuses to start (exit 3) naming it"
    else
        not_ok "k_server on a read-only database" "exit $rc"
        show_head 5 "$RO/log2"
    fi
fi

# ---- options ----
check_exit "k_proxy --allowed-origin with a path exits 2" 2 "$BIN/k_proxy" --proxy-token x \
    --allowed-origin https://a.example/path
check_exit "k_proxy --allowed-host with a space exits 2" 2 "$BIN/k_proxy" --proxy-token x \
    --allowed-host 'a b'
check_exit "k_client_portal --allowed-host with a space exits 2" 2 "$BIN/k_client_portal" \
    --allowed-host 'a b'
finish

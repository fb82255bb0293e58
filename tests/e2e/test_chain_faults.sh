#!/bin/sh
# The runbook's field failures, reproduced on the virtual card, as k_proxy
# answers them (docs/runbook/PHASE5_RUNBOOK.md, "When something fails"): each
# card fault gives its status and code, says what to do, and never calls
# k_server; a healthy card afterwards logs in again without a restart.
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

H='Content-Type: application/json'
LOGIN='{"username":"alice"}'
ks_counter() { curl -sS -m 5 "http://127.0.0.1:$KS_PORT/healthz" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["counter"])'; }

# k_proxy finds the card by "auto": the announced virtual card, followed
# when it re-plugs under another address.
KCARD_ANNOUNCE_DIR=$E2E_TMP/announce
mkdir -p "$KCARD_ANNOUNCE_DIR"
export KCARD_ANNOUNCE_DIR
need_vcard "vcard starts" --presence yes --announce "$KCARD_ANNOUNCE_DIR"
start_k_server || { not_ok "k_server starts"; finish; exit 1; }
start_k_proxy --server-base-url "http://127.0.0.1:$KS_PORT" --device auto \
    --card-timeout-ms 1500 || { not_ok "k_proxy starts"; finish; exit 1; }
PROBE_PORT=$KP_PORT
start_k_proxy --server-base-url "http://127.0.0.1:$KS_PORT" --device auto --auth-mode fido2-direct \
    --card-timeout-ms 1500 || { not_ok "k_proxy fido2-direct starts"; finish; exit 1; }
DIRECT_PORT=$KP_PORT
KP_URL="http://127.0.0.1:$PROBE_PORT"
ok "the chain starts, with a probe and a fido2-direct k_proxy on one card"

# fault: STATUS ERROR [extra python condition on j]
fault() {
    _profile=$1
    _status=$2
    _code=$3
    _cond=${4:-True}
    ctl fault "$_profile" || { not_ok "$_profile: vcard-ctl"; return; }
    want "$_profile: login answers $_status" "$_status" /session/login -H "$H" -d "$LOGIN"
    jcheck "$_profile: $_code, k_server not called" \
        "j['error'] == '$_code' and j['upstream_called'] is False and ($_cond)"
    ctl clear
}

before=$(ks_counter)
fault no-init-reply 503 card_unavailable "'init' in j['message'].lower() and 'Fix:' in j['message']"
KP_URL="http://127.0.0.1:$DIRECT_PORT"
want "fido2-direct: register alice" 201 /enroll/register -H "$H" -d "$LOGIN"
fault hang-before-up 504 card_timeout
fault bogus-signature 401 assertion_invalid
KP_URL="http://127.0.0.1:$PROBE_PORT"
ctl presence timeout
want "presence never given: login is 401" 401 /session/login -H "$H" -d "$LOGIN"
jcheck "card_denied" "j['error'] == 'card_denied'"
ctl presence yes
fault unplug 503 card_unavailable
"$CTL" --control "$VCARD_CTL" replug >"$T/replug" 2>&1 || not_ok "replug"
if grep -q "udp:" "$T/replug" && ! grep -q "$VCARD_URI" "$T/replug"; then
    ok "the card re-plugs under another address ($(cat "$T/replug"))"
else not_ok "replug address" "$(cat "$T/replug")"; fi
want "k_proxy --device auto follows it: login works again, no restart" 200 /session/login -H "$H" -d "$LOGIN"
after=$(ks_counter)
if [ "$before" = "$after" ]; then ok "no failed login reached k_server (counter $after)"; else not_ok "k_server called" "$before -> $after"; fi

# A card that can only do CTAP1 still approves a probe login (U2F presence).
ctl fault ctap1-only
want "ctap1-only card: probe login approved through U2F" 200 /session/login -H "$H" -d "$LOGIN"
ctl clear
# A card without PIN/UV protocols logs in: no PIN is needed (the prototype's
# "No compatible PIN/UV protocols supported!" cannot happen).
ctl fault no-pin-protocols
want "no-pin-protocols card: login works" 200 /session/login -H "$H" -d "$LOGIN"
ctl clear
want "a healthy card logs in again" 200 /session/login -H "$H" -d "$LOGIN"
TOKEN=$(json_get "$T/out" "j['session_token']")
want "and the counter works" 200 /resource/counter -H "Authorization: Bearer $TOKEN"

# Two logins at once: the card serves one at a time; both succeed.
kp /session/login -H "$H" -d '{"username":"p1"}' >"$T/c1" &
p1=$!
kp /session/login -H "$H" -d '{"username":"p2"}' >"$T/c2" &
p2=$!
wait "$p1" "$p2"
if [ "$(cat "$T/c1")" = 200 ] && [ "$(cat "$T/c2")" = 200 ]; then ok "two concurrent logins share the card"; else not_ok "concurrent logins" "$(cat "$T/c1") $(cat "$T/c2")"; fi

grep -q '"card_outcome":"card_timeout"' "$KP_DIR/log" && ok "the log line names the card outcome" || not_ok "card outcome logged"
finish

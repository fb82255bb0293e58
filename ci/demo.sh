#!/bin/sh
# `make demo`: the main job end to end, on the virtual card. Starts vcard on a
# free loopback port, then does what an engineer does in triage: check the
# card is present, exercise the transport, register and authenticate with
# keepalives shown, and reproduce the runbook's "hang before the presence
# prompt" failure to see rawctap's diagnosis and doctor's verdict; then the
# session chain over TLS: login through the card, the protected counter, logout,
# a refused login, and the concurrency regression. Everything it starts is
# stopped at the end.
set -u
BUILD=${BUILD:-build}
BIN=$BUILD/bin
. tests/e2e/lib.sh
trap cleanup EXIT

step() {
    printf '\n\033[1m$ %s\033[0m\n' "$*"
    "$@"
    rc=$?
    echo "(exit $rc)"
    return 0
}

STATE=$E2E_TMP/card-state
start_vcard --presence yes --state "$STATE" || { echo "demo: vcard did not start"; exit 1; }
echo "virtual card up at $VCARD_URI (control socket $VCARD_CTL)"
D="--device $VCARD_URI"

step "$BIN/fido2-probe" --device "$VCARD_URI" --json
step "$BIN/rawctap" $D info
step "$BIN/rawctap" $D ping --size 7609
echo
echo "# the card now waits 1.2 s for a person before it approves: keepalives show it"
"$BIN/vcard-ctl" --control "$VCARD_CTL" presence delay:1200 >/dev/null
step "$BIN/rawctap" $D make-credential --rp-id localhost --user alice --cred-file "$E2E_TMP/cred.json"
step "$BIN/rawctap" $D get-assertion --rp-id localhost --cred-file "$E2E_TMP/cred.json"
"$BIN/vcard-ctl" --control "$VCARD_CTL" presence yes >/dev/null
echo
echo "# reproduce the runbook's field failure: the card never asks for presence"
"$BIN/vcard-ctl" --control "$VCARD_CTL" fault hang-before-up >/dev/null
step "$BIN/rawctap" $D --timeout-ms 1500 make-credential --rp-id localhost
echo
echo "# the same, as the triage decision tree sees it"
step "$BIN/rawctap" $D --timeout-ms 1500 doctor
"$BIN/vcard-ctl" --control "$VCARD_CTL" clear >/dev/null
echo
echo "# and one that needs a PIN on a card that advertises no PIN/UV protocol"
"$BIN/vcard-ctl" --control "$VCARD_CTL" fault no-pin-protocols >/dev/null
step "$BIN/rawctap" $D -v make-credential --rp-id localhost
"$BIN/vcard-ctl" --control "$VCARD_CTL" clear >/dev/null

echo
echo "# the session chain (docs/runbook/PHASE5_RUNBOOK.md): k_server and k_proxy over"
echo "# TLS, k_proxy gating logins with this card"
sh fixtures/tls/gen.sh "$E2E_TMP/tls" >/dev/null || { echo "demo: TLS material failed"; exit 1; }
TLS=$E2E_TMP/tls
start_k_server --tls-certfile "$TLS/k_server.crt" --tls-keyfile "$TLS/k_server.key" ||
    { echo "demo: k_server did not start"; exit 1; }
start_k_proxy --server-base-url "https://127.0.0.1:$KS_PORT" --server-ca-file "$TLS/ca.crt" \
    --tls-certfile "$TLS/k_proxy.crt" --tls-keyfile "$TLS/k_proxy.key" --device "$VCARD_URI" ||
    { echo "demo: k_proxy did not start"; exit 1; }
P=https://127.0.0.1:$KP_PORT
echo "k_server on https://127.0.0.1:$KS_PORT, k_proxy on $P"
C="curl -sS --cacert $TLS/ca.crt -X POST"
printf '\n\033[1m$ %s\033[0m\n' "$C $P/session/login -H 'Content-Type: application/json' -d '{\"username\":\"alice\"}'"
$C "$P/session/login" -H 'Content-Type: application/json' -d '{"username":"alice"}' >"$E2E_TMP/login.json"
cat "$E2E_TMP/login.json"
TOKEN=$(sed -n 's/.*"session_token":"\([^"]*\)".*/\1/p' "$E2E_TMP/login.json")
step $C "$P/session/status" -H "Authorization: Bearer $TOKEN"
step $C "$P/resource/counter" -H "Authorization: Bearer $TOKEN"
step $C "$P/resource/counter" -H "Authorization: Bearer $TOKEN"
step $C "$P/session/logout" -H "Authorization: Bearer $TOKEN"
step curl -sS -o /dev/null -w 'after logout: HTTP %{http_code}\n' --cacert "$TLS/ca.crt" -X POST \
    "$P/resource/counter" -H "Authorization: Bearer $TOKEN"
echo
echo "# the card refuses: k_server is not called"
"$BIN/vcard-ctl" --control "$VCARD_CTL" presence no >/dev/null
step $C "$P/session/login" -H 'Content-Type: application/json' -d '{"username":"mallory"}'
"$BIN/vcard-ctl" --control "$VCARD_CTL" presence yes >/dev/null
echo
echo "# the concurrency regression: 50 requests at parallelism 12, unique and gap-free"
step "$BIN/chain-regress" --base-url "$P" --cacert "$TLS/ca.crt" --requests 50 --parallelism 12
stop_pid "$KP_PID"
stop_pid "$KS_PID"
stop_vcard
echo
echo "demo: done (card state was kept in $STATE while it ran)"

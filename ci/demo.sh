#!/bin/sh
# `make demo`: the main job end to end, on the virtual card. Starts vcard on a
# free loopback port, then does what an engineer does in triage: check the
# card is present, exercise the transport, register and authenticate with
# keepalives shown, and reproduce the runbook's "hang before the presence
# prompt" failure to see rawctap's diagnosis and doctor's verdict. Everything
# it starts is stopped at the end.
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
stop_vcard
echo
echo "demo: done (card state was kept in $STATE while it ran)"

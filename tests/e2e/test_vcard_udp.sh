#!/bin/sh
# vcard's CTAPHID server over real UDP on loopback: starts build/bin/vcard on
# a free port with a control socket, an announce directory and -v, runs the
# socket-level checks of test_vcard_udp.py (bounded), then checks a clean
# exit on SIGTERM (announce file and control socket removed).
HERE=$(dirname "$0")
. "$HERE/lib.sh"
trap cleanup EXIT

ANNOUNCE="$E2E_TMP/announce"
mkdir -p "$ANNOUNCE"

# Adds the "N passed, M failed" of a python run (file $1) to the totals.
merge_py() {
    grep -v '^[0-9]* passed, [0-9]* failed$' "$1"
    _summary=$(tail -n 1 "$1")
    _p=$(echo "$_summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    _f=$(echo "$_summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$_p" ]; then
        not_ok "$2 ended with a summary line"
    else
        PASSED=$((PASSED + _p))
        FAILED=$((FAILED + _f))
    fi
}

check_exit "vcard --help exits 0" 0 "$BIN/vcard" --help
check_exit "vcard with a bad fault profile exits 2" 2 "$BIN/vcard" --fault nope
check_exit "vcard with a bad presence mode exits 2" 2 "$BIN/vcard" --presence maybe
check_exit "vcard on an unbindable address exits 3" 3 "$BIN/vcard" --listen 192.0.2.1:1
check_exit "vcard with an unwritable state file exits 3" 3 "$BIN/vcard" --listen 127.0.0.1:0 \
    --state "$E2E_TMP/no/such/dir/state"
printf 'not cbor' >"$E2E_TMP/corrupt.state"
chmod 600 "$E2E_TMP/corrupt.state"
check_exit "vcard with a corrupt state file exits 3" 3 "$BIN/vcard" --listen 127.0.0.1:0 \
    --state "$E2E_TMP/corrupt.state"
check_exit "vcard with a control path that is not a socket exits 3" 3 "$BIN/vcard" \
    --listen 127.0.0.1:0 --control "$E2E_TMP/corrupt.state"
check_exit "vcard with an unexpected argument exits 2" 2 "$BIN/vcard" extra
check_exit "vcard --uhid=bogus exits 2" 2 "$BIN/vcard" --uhid=bogus
if [ ! -e /dev/uhid ]; then
    check_exit "vcard --uhid without /dev/uhid exits 3" 3 "$BIN/vcard" --listen 127.0.0.1:0 --uhid
fi

need_vcard "vcard starts and prints its ready line" --announce "$ANNOUNCE" -v
ok "vcard starts and prints its ready line"

timeout -k 5 180 python3 "$HERE/test_vcard_udp.py" "$VCARD_PORT" "$VCARD_CTL" "$ANNOUNCE" \
    "$VCARD_DIR/stderr" >"$E2E_TMP/py.out" 2>&1
merge_py "$E2E_TMP/py.out" "python checks"

# vcard-ctl against the same card
check "vcard-ctl status" "$BIN/vcard-ctl" --control "$VCARD_CTL" status
check "vcard-ctl --json status is JSON with ok:true" sh -c \
    "'$BIN/vcard-ctl' --control '$VCARD_CTL' --json status | python3 -c 'import json,sys; assert json.load(sys.stdin)[\"ok\"] is True'"
check "vcard-ctl presence ask" "$BIN/vcard-ctl" --control "$VCARD_CTL" presence ask
check "VCARD_CONTROL from the environment" env VCARD_CONTROL="$VCARD_CTL" "$BIN/vcard-ctl" presence yes
check_exit "vcard-ctl refused command exits 1" 1 "$BIN/vcard-ctl" --control "$VCARD_CTL" fault bogus
check_exit "vcard-ctl without a command exits 2" 2 "$BIN/vcard-ctl" --control "$VCARD_CTL"
check_exit "vcard-ctl to a missing socket exits 3" 3 "$BIN/vcard-ctl" --control "$E2E_TMP/nope.sock" status

kill -TERM "$VCARD_PID" 2>/dev/null
wait_exit "$VCARD_PID"
if kill -0 "$VCARD_PID" 2>/dev/null; then
    not_ok "vcard exits on SIGTERM within 3 s"
    stop_vcard
else
    wait "$VCARD_PID"
    rc=$?
    VCARD_PID=""
    if [ "$rc" -eq 0 ]; then ok "vcard exits 0 on SIGTERM"; else not_ok "vcard exits 0 on SIGTERM" "exit $rc"; fi
fi
if [ -z "$(ls "$ANNOUNCE")" ]; then ok "announce file removed on exit"; else not_ok "announce file removed on exit"; fi
if [ ! -e "$VCARD_CTL" ]; then ok "control socket removed on exit"; else not_ok "control socket removed on exit"; fi

# --fault replug given at start: the card re-enumerates after its first request
ANNOUNCE2="$E2E_TMP/announce2"
mkdir -p "$ANNOUNCE2"
if start_vcard --announce "$ANNOUNCE2" --fault replug; then
    timeout -k 5 60 python3 "$HERE/test_vcard_udp.py" replug-once "$VCARD_PORT" "$ANNOUNCE2" \
        >"$E2E_TMP/py2.out" 2>&1
    merge_py "$E2E_TMP/py2.out" "replug-once checks"
    stop_vcard
else
    not_ok "vcard --fault replug starts"
fi

# --state FILE: a card keeps its resident credential and its signCount across
# a restart, the file is private (0600), and a corrupt file is refused by
# name (exit 3) and left exactly as it was.
STATE_DIR="$E2E_TMP/state"
STATE="$STATE_DIR/card.state"
mkdir -p "$STATE_DIR"
# jtrue NAME FILE EXPR: the python expression over the JSON in FILE (j) is true
jtrue() {
    if python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$2" "$3" 2>/dev/null; then
        ok "$1"
    else
        not_ok "$1" "false: $3"
        sed 's/^/    | /' "$2" | head -n 5
    fi
}
file_mode_is_0600() {
    if [ "$(stat -c %a "$STATE" 2>/dev/null)" = 600 ]; then ok "$1"; else
        not_ok "$1" "mode $(stat -c %a "$STATE" 2>&1)"
    fi
}
if start_vcard --state "$STATE"; then
    check "state: make-credential --rk" "$BIN/rawctap" --device "$VCARD_URI" make-credential \
        --rp-id state.example.org --rk --user carol --json
    cp "$E2E_TMP/last.out" "$STATE_DIR/mc.json"
    check "state: get-assertion before the restart" "$BIN/rawctap" --device "$VCARD_URI" \
        get-assertion --rp-id state.example.org --json
    jtrue "state: signCount 1 before the restart" "$E2E_TMP/last.out" 'j["sign_count"] == 1'
    stop_vcard
else
    not_ok "vcard --state starts"
fi
file_mode_is_0600 "state file has mode 0600"
if start_vcard --state "$STATE"; then
    check "state: get-assertion without a credential id after the restart" "$BIN/rawctap" \
        --device "$VCARD_URI" get-assertion --rp-id state.example.org --json
    cp "$E2E_TMP/last.out" "$STATE_DIR/ga.json"
    _cid=$(json_get "$STATE_DIR/mc.json" 'j["cred_id"]')
    jtrue "state: the resident credential survives the restart" "$STATE_DIR/ga.json" \
        "j['cred_id'] == '$_cid' and j['user_name'] == 'carol'"
    jtrue "state: signCount continues after the restart (2)" "$STATE_DIR/ga.json" 'j["sign_count"] == 2'
    stop_vcard
else
    not_ok "vcard --state restarts on its own file"
fi
file_mode_is_0600 "state file still has mode 0600 after rewrites"
# two flipped bits in the master key: still CBOR, but the MAC (keyed from
# the master key) no longer matches, so it is refused, not a different card
cp "$STATE" "$STATE_DIR/good"
"$PY" - "$STATE" <<'PYEOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
at = b.find(b"master_key") + len(b"master_key") + 2  # past the 32-byte string header
b[at + 5] ^= 0x01
b[at + 20] ^= 0x80
open(p, "wb").write(bytes(b))
PYEOF
_sum=$(sha256sum <"$STATE")
check_exit "state: flipped bits in the master key make vcard exit 3" 3 \
    timeout -k 2 10 "$BIN/vcard" --listen 127.0.0.1:0 --state "$STATE"
if grep -q "MAC does not match" "$E2E_TMP/last.err" && [ "$(sha256sum <"$STATE")" = "$_sum" ]; then
    ok "state: the MAC catches them, and the file is left untouched"
else
    not_ok "state: the MAC catches flipped bits" "$(cat "$E2E_TMP/last.err")"
fi
cp "$STATE_DIR/good" "$STATE"
# a state file cut in half: no longer CBOR
_size=$(wc -c <"$STATE")
head -c $((_size / 2)) "$STATE" >"$STATE_DIR/cut" && cat "$STATE_DIR/cut" >"$STATE"
_sum=$(sha256sum <"$STATE")
check_exit "state: a corrupt (truncated) state file makes vcard exit 3" 3 \
    timeout -k 2 10 "$BIN/vcard" --listen 127.0.0.1:0 --state "$STATE"
if grep -q "state file $STATE is corrupt" "$E2E_TMP/last.err"; then
    ok "state: the error names the corrupt file"
else
    not_ok "state: the error names the corrupt file" "$(cat "$E2E_TMP/last.err")"
fi
if [ "$(sha256sum <"$STATE")" = "$_sum" ]; then
    ok "state: the corrupt file is left untouched"
else
    not_ok "state: the corrupt file is left untouched"
fi
# well-formed CBOR that is not a card's state: {"version": 2}
printf '\241\147version\002' >"$STATE"
_sum=$(sha256sum <"$STATE")
check_exit "state: an unknown state version makes vcard exit 3" 3 \
    timeout -k 2 10 "$BIN/vcard" --listen 127.0.0.1:0 --state "$STATE"
if grep -q "state file $STATE is corrupt: missing or unknown \"version\"" "$E2E_TMP/last.err" &&
    [ "$(sha256sum <"$STATE")" = "$_sum" ]; then
    ok "state: the unknown version is named and the file kept"
else
    not_ok "state: the unknown version is named and the file kept" "$(cat "$E2E_TMP/last.err")"
fi
if [ -z "$(find "$STATE_DIR" -name 'card.state.tmp*')" ]; then
    ok "state: no temporary files left beside the state file"
else
    not_ok "state: no temporary files left beside the state file"
fi

finish

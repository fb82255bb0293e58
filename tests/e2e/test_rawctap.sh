#!/bin/sh
# End-to-end: every rawctap command against the virtual card over udp, with
# outputs, JSON and exit codes checked. Fault profiles: test_rawctap_faults.sh.
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib.sh
tool_test "$BIN/rawctap"
RAWCTAP=$RUN_TOOL

# a failed jcheck shows python's complaint too
jcheck_show() {
    show_head 5 "$T/out"
    show_head 5 "$T/jerr"
}

# fcheck NAME FILE PYTHON-EXPR: the same over a JSON file
fcheck() {
    if json_true "$2" "$3"; then
        ok "$1"
    else
        not_ok "$1" "false on $2: $3"
    fi
}

no_grep() {
    if grep -q -- "$3" "$2"; then not_ok "$1" "$2 contains '$3'"; else ok "$1"; fi
}

# ---- command line, no card ----
run "help exits 0" 0 --help
grep_out "help documents exit codes" "verification failed"
run "command help exits 0" 0 make-credential --help
grep_out "command help names --cred-file" "cred-file"
run "no command is a usage error" 2
run "unknown command is a usage error" 2 frobnicate
run "unknown option is a usage error" 2 --frob init
run "make-credential without --rp-id is a usage error" 2 make-credential
run "ping --size above 7609 is a usage error" 2 ping --size 7610
run "bad --alg is a usage error" 2 --alg rsa make-credential --rp-id x
run "pin without subcommand is a usage error" 2 pin
run "malformed device URI is a usage error" 2 --device bogus:x init
run "missing hidraw path is a transport error" 3 --device-path /nonexistent/hidraw9 init
grep_err "missing path is named" "/nonexistent/hidraw9"
run "version" 0 --version
grep_out "version line" "^rawctap "

# ---- against the virtual card ----
need_vcard "vcard starts" --presence yes
D="--device $VCARD_URI"

# reset is allowed only in the first seconds after power-up: do it first
run "reset right after start" 0 $D reset --json
jcheck "reset answers CTAP2_OK" 'j["ok"] and j["status"] == "CTAP2_OK"'

run "init" 0 $D init --json
jcheck "init reports channel and CBOR" 'len(j["channel"]) == 8 and j["cbor"] is True'
KCARD_DEVICE=$VCARD_URI "$RAWCTAP" init >"$T/out" 2>"$T/err" && ok "KCARD_DEVICE honoured" ||
    not_ok "KCARD_DEVICE honoured"

run "ping 7609 bytes" 0 $D ping --size 7609 --json
jcheck "ping echoes 7609 bytes" 'j["size"] == 7609 and j["seconds"] > 0'
run "ping default" 0 $D ping
grep_out "ping text output" "^size: 64"
run "wink" 0 $D wink

run "info" 0 $D info --json
jcheck "info versions" '"FIDO_2_1" in j["versions"] and "U2F_V2" in j["versions"]'
jcheck "info pin protocols" 'j["pin_protocols"] == [2, 1]'
jcheck "info algorithms" '-7 in j["algorithms"] and -8 in j["algorithms"]'

# make-credential, ES256 with a credential file
run "make-credential ES256" 0 $D make-credential --rp-id example.org --cred-file "$T/es.json" --json
jcheck "make-credential ES256 key and attestation" \
    'j["alg"] == "ES256" and j["attestation"].startswith("ok") and j["fmt"] == "packed" and len(j["cred_id"]) > 20 and "BEGIN PUBLIC KEY" in j["public_key_pem"]'
fcheck "cred file written" "$T/es.json" \
    'j["rp_id"] == "example.org" and j["alg"] == -7 and j["sign_count"] == 0 and j["public_key_cose"].startswith("a5")'
CRED_ID=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["cred_id"])' "$T/es.json")

run "make-credential EdDSA" 0 $D --alg eddsa make-credential --rp-id example.org --cred-file "$T/ed.json" --json
jcheck "make-credential EdDSA key" 'j["alg"] == "EdDSA" and j["attestation"].startswith("ok")'
run "make-credential --rk" 0 $D make-credential --rp-id rk.example.org --rk --user alice --json
jcheck "make-credential --rk ok" 'j["ok"] is True and j["up"] is True'
run "make-credential text prints id and key" 0 $D make-credential --rp-id localhost
grep_out "text cred_id" "^cred_id: "
grep_out "text public key" "^public_key_cose: a5"
run "make-credential --pem" 0 $D make-credential --rp-id localhost --pem
grep_out "PEM output" "BEGIN PUBLIC KEY"
# the runbook's spelling: --device-path before the command
run "runbook form --device-path ... make-credential --rp-id localhost" 0 \
    --device-path "$VCARD_URI" make-credential --rp-id localhost

# get-assertion
run "get-assertion --cred-file" 0 $D get-assertion --cred-file "$T/es.json" --json
jcheck "assertion verified, count 1" 'j["verified"].startswith("ok") and j["sign_count"] == 1 and j["up"] is True'
fcheck "cred file sign_count updated" "$T/es.json" 'j["sign_count"] == 1'
run "get-assertion --cred-file again" 0 $D get-assertion --cred-file "$T/es.json" --json
jcheck "assertion count 2" 'j["sign_count"] == 2 and j["previous_sign_count"] == 1'
run "get-assertion EdDSA --cred-file" 0 $D get-assertion --cred-file "$T/ed.json" --json
jcheck "EdDSA assertion verified" 'j["verified"].startswith("ok (EdDSA")'
run "get-assertion --cred-id" 0 $D get-assertion --rp-id example.org --cred-id "$CRED_ID" --json
jcheck "cred-id assertion unverified but named" 'j["cred_id"] == "'"$CRED_ID"'" and j["verified"] == "no key"'
run "get-assertion --no-up" 0 $D get-assertion --cred-file "$T/es.json" --no-up --json
jcheck "no-up assertion has up false" 'j["up"] is False and j["verified"].startswith("ok")'
run "get-assertion unknown rp" 4 $D get-assertion --rp-id other.example --cred-id "$CRED_ID"
grep_err "unknown rp names CTAP2_ERR_NO_CREDENTIALS" "CTAP2_ERR_NO_CREDENTIALS"
run "get-assertion with both --cred-id and --cred-file" 2 $D get-assertion \
    --cred-file "$T/es.json" --cred-id "$CRED_ID"
echo '{"rp_id": 1}' >"$T/bad.json"
run "get-assertion malformed cred file" 2 $D get-assertion --cred-file "$T/bad.json"

run "selection" 0 $D selection

# PIN
run "pin status before set" 0 $D pin status --json
jcheck "pin not set, 8 retries" 'j["pin_set"] is False and j["retries"] == 8'
jcheck "pin status: the card's protocols and the one used" 'j["pin_protocols"] == [2, 1] and j["protocol"] == 2'
run "pin status --protocol 1 (offered)" 0 $D pin status --protocol 1 --json
jcheck "pin status --protocol 1: used 1, the card's list unchanged" 'j["pin_protocols"] == [2, 1] and j["protocol"] == 1'
run "pin --force-protocol without --protocol is a usage error" 2 $D pin status --force-protocol
run "pin set" 0 $D pin set --new-pin 1234
run "pin status after set" 0 $D pin status --json
jcheck "pin set now" 'j["pin_set"] is True'
RAWCTAP_PIN=1234 RAWCTAP_NEW_PIN=5678 "$RAWCTAP" $D pin change >"$T/out" 2>"$T/err" &&
    ok "pin change from environment" || not_ok "pin change from environment"
printf '5678\n' >"$T/pin.txt"
run "make-credential with --pin-file" 0 $D make-credential --rp-id pin.example \
    --pin-file "$T/pin.txt" --cred-file "$T/pin.json" --json --trace="$T/trace.txt"
jcheck "PIN used, uv set" 'j["pin_used"] is True and j["uv"] is True'
no_grep "PIN not in stdout" "$T/out" "5678"
no_grep "PIN not in the trace (ascii)" "$T/trace.txt" "5678"
no_grep "PIN not in the trace (hex)" "$T/trace.txt" "35 36 37 38"
grep -q "CBOR" "$T/trace.txt" && ok "trace shows CBOR reports" || not_ok "trace shows CBOR reports"
run "make-credential with --pin" 0 $D make-credential --rp-id pin.example --pin 5678
run "get-assertion with --pin" 0 $D get-assertion --cred-file "$T/pin.json" --pin 5678 --json
jcheck "PIN assertion verified with uv" 'j["uv"] is True and j["verified"].startswith("ok")'
run "wrong PIN" 4 $D make-credential --rp-id pin.example --pin 0000
grep_err "wrong PIN named" "CTAP2_ERR_PIN_INVALID"
no_grep "wrong PIN not echoed" "$T/err" "0000"
run "json trace format" 0 $D --trace="$T/trace.jsonl" --trace-format json ping
"$PY" -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' "$T/trace.jsonl" &&
    ok "json trace lines parse" || not_ok "json trace lines parse"

# a JSON-lines trace plays back as a device
run "info with a JSON trace" 0 $D --trace="$T/info.jsonl" --trace-format json info
cp "$T/out" "$T/info.live"
run "info replayed from the trace" 0 --device "replay:$T/info.jsonl" info
grep -v '^seconds:' "$T/info.live" >"$T/a"
grep -v '^seconds:' "$T/out" >"$T/b"
cmp -s "$T/a" "$T/b" && ok "replayed info equals the live one" || not_ok "replayed info equals the live one"

# CTAP1/U2F
run "u2f-register" 0 $D u2f-register --app-id u2f.example --key-file "$T/u2f.json" --json
jcheck "u2f-register attestation" 'j["attestation"].startswith("ok (fido-u2f") and j["protocol"] == "ctap1"'
run "u2f-authenticate" 0 $D u2f-authenticate --key-file "$T/u2f.json" --json
jcheck "u2f-authenticate verified, counter 1" 'j["verified"].startswith("ok") and j["sign_count"] == 1'
run "u2f-authenticate again" 0 $D u2f-authenticate --key-file "$T/u2f.json" --json
jcheck "u2f counter 2" 'j["sign_count"] == 2'
run "u2f-authenticate --check-only" 0 $D u2f-authenticate --key-file "$T/u2f.json" --check-only --json
jcheck "key handle known" 'j["key_handle_known"] is True'
run "u2f-authenticate wrong app id" 4 $D u2f-authenticate --key-file "$T/u2f.json" --app-id other.example
grep_err "wrong app id names the status word" "WRONG_DATA"

# presence modes and cancel
ctl presence ask
run "cancel --after-ms 300 (presence ask)" 0 $D cancel --after-ms 300 --json
jcheck "cancel answered KEEPALIVE_CANCEL" 'j["answer"] == "CTAP2_ERR_KEEPALIVE_CANCEL" and j["cancel_sent"] and 0.25 < j["seconds"] < 2'
grep_err "keepalive UPNEEDED printed while waiting" "keepalive UPNEEDED +0\.[0-9]*s: confirm on the card"
grep_err "cancel says how long" "cancelled: the card answered CTAP2_ERR_KEEPALIVE_CANCEL"
run "presence timeout diagnosed" 3 $D --presence-timeout-ms 400 make-credential --rp-id x
grep_err "presence phase named" "timeout in presence phase"
ctl presence delay:3000
run "cancel --after-ms 0 (presence ask)" 0 $D cancel --after-ms 0 --json
jcheck "cancel --after-ms 0 answered KEEPALIVE_CANCEL" 'j["answer"] == "CTAP2_ERR_KEEPALIVE_CANCEL" and j["ok"] is True'
run "cancel --after-ms 200 (presence delay)" 0 $D cancel --after-ms 200 --json
jcheck "cancel during delay" 'j["answer"] == "CTAP2_ERR_KEEPALIVE_CANCEL"'
ctl presence yes
run "cancel after the card said yes: exit 4" 4 $D cancel --after-ms 400 --json
jcheck "cancel after the answer: too late, named" \
    'j["error_name"] == "CANCEL_TOO_LATE" and j["answer"] == "CTAP2_OK" and j["cancel_sent"] is False and j["exit"] == 4'
grep_err "cancel after the answer: said so" "the cancel came too late"
ctl presence delay:300
run "presence delay then approve" 0 $D make-credential --rp-id delay.example
grep_err "keepalive printed during delay" "keepalive UPNEEDED"
ctl presence no
run "presence no" 4 $D make-credential --rp-id x --json
jcheck "presence no named" 'j["error_name"] == "CTAP2_ERR_OPERATION_DENIED" and j["exit"] == 4'
grep_err "denied on stderr" "CTAP2_ERR_OPERATION_DENIED"
ctl presence yes

# device listing: the card announces itself in a folder
stop_vcard
mkdir -p "$T/announce"
start_vcard --presence yes --announce "$T/announce" || not_ok "vcard with --announce starts"
KCARD_ANNOUNCE_DIR="$T/announce" KCARD_SYSFS_HIDRAW="$T/nosysfs" "$RAWCTAP" list --json \
    >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && ok "list finds the announced card" || not_ok "list finds the announced card"
jcheck "list names the card's URI" 'any(d["uri"] == "'"$VCARD_URI"'" for d in j["devices"])'
KCARD_ANNOUNCE_DIR="$T/announce" KCARD_SYSFS_HIDRAW="$T/nosysfs" "$RAWCTAP" --device auto init \
    >"$T/out" 2>"$T/err" && ok "auto resolves to the announced card" ||
    not_ok "auto resolves to the announced card" "$(cat "$T/err")"
# re-plugged under a new address: auto follows the announcement
OLD_URI=$VCARD_URI
ctl replug
KCARD_ANNOUNCE_DIR="$T/announce" KCARD_SYSFS_HIDRAW="$T/nosysfs" "$RAWCTAP" --json --device auto init \
    >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && ok "auto finds the re-plugged card" || not_ok "auto finds the re-plugged card" "$(cat "$T/err")"
jcheck "re-plugged card has a new address" 'j["device"].startswith("udp:") and j["device"] != "'"$OLD_URI"'"'
run "the old address is gone" 3 --device "$OLD_URI" --init-timeout-ms 300 init
stop_vcard
KCARD_ANNOUNCE_DIR="$T/empty" KCARD_SYSFS_HIDRAW="$T/nosysfs" "$RAWCTAP" list >"$T/out" 2>"$T/err"
[ $? -eq 3 ] && ok "list with no card exits 3" || not_ok "list with no card exits 3"

finish

#!/bin/sh
# End-to-end: rawctap cred (authenticatorCredentialManagement) against the
# virtual card over udp. rawctap makes resident credentials, then lists,
# renames and deletes them: on a CTAP 2.1 card (command 0x0A, cm permission,
# PIN protocol 2) with the result surviving a restart through --state, on a
# 2.1-PRE card (0x41, PIN protocol 1), refused on a card without it. Then
# Debian's python-fido2 (CredentialManagement) on the same card, checked
# against rawctap's view both ways, and Debian's libfido2 (fido_credman_*,
# what fido2-token -I -c, -L and -D use; it sends the 2.1-PRE command 0x41).
# shellcheck disable=SC1091,SC2086 # sourced helpers; $FAST splits on purpose
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib.sh
tool_test "$BIN/rawctap"

jcheck_show() {
    show_head 5 "$T/out"
    show_head 5 "$T/jerr"
}

PIN=1234
export RAWCTAP_PIN=$PIN

# mk RP USER: a resident credential, its id into $T/id.RP.USER
mk() {
    run "make-credential rk $1/$2" 0 --device "$VCARD_URI" $FAST --json make-credential \
        --rp-id "$1" --user "$2" --rk
    json_get "$T/out" 'j["cred_id"]' >"$T/id.$1.$2" 2>/dev/null || true
}

# ---- command line, no card ----
run "cred --help exits 0" 0 cred --help
grep_out "cred help names update-user" "update-user"
run "cred without subcommand is a usage error" 2 cred
run "cred unknown subcommand is a usage error" 2 cred frob
run "cred list without --rp-id is a usage error" 2 cred list
run "cred delete without --cred-id is a usage error" 2 cred delete
run "cred delete with a bad --cred-id is a usage error" 2 cred delete --cred-id '!!'
run "cred update-user without --user-id is a usage error" 2 cred update-user --cred-id AAAA
run "cred --rp-id on metadata is a usage error" 2 cred metadata --rp-id x
RAWCTAP_PIN='' run "cred without a PIN is a usage error" 2 --json cred metadata
jcheck "usage error as JSON" 'j["ok"] is False and j["exit"] == 2'
RAWCTAP_PIN=$PIN # a prefix assignment to a function may stick in some shells

# ---- CTAP 2.1 card: 0x0A, state file ----
STATE="$T/card.state"
need_vcard "vcard ctap2.1-full starts" --personality ctap2.1-full --pin "$PIN" --state "$STATE"
run "metadata on an empty card" 0 --device "$VCARD_URI" $FAST --json cred metadata
jcheck "empty: 0 existing, 50 remaining, command 0x0a" \
    'j["existing"] == 0 and j["remaining"] == 50 and j["command"] == "0x0a"'
run "rps on an empty card" 0 --device "$VCARD_URI" $FAST --json cred rps
jcheck "empty: no rps" 'j["count"] == 0 and j["rps"] == []'
mk example.com alice
mk example.com bob
mk other.org carol
run "metadata counts three" 0 --device "$VCARD_URI" $FAST --json cred metadata
jcheck "3 existing, 47 remaining" 'j["existing"] == 3 and j["remaining"] == 47'
run "rps lists both rps" 0 --device "$VCARD_URI" $FAST --json cred rps
jcheck "rps: example.com and other.org with their hashes" \
    'sorted(r["id"] for r in j["rps"]) == ["example.com", "other.org"] and all(r["id_hash"] == __import__("hashlib").sha256(r["id"].encode()).hexdigest() for r in j["rps"])'
run "list example.com" 0 --device "$VCARD_URI" $FAST --json cred list --rp-id example.com
cp "$T/out" "$T/list1.json"
ALICE=$(cat "$T/id.example.com.alice")
BOB=$(cat "$T/id.example.com.bob")
jcheck "list: alice and bob with the ids make-credential printed" \
    "sorted(c['cred_id'] for c in j['credentials']) == sorted(['$ALICE', '$BOB']) and sorted(c['user_name'] for c in j['credentials']) == ['alice', 'bob']"
jcheck "list: ES256 keys, credProtect 1" \
    'all(c["alg"] == -7 and c["cred_protect"] == 1 and c["public_key"].startswith("a5") for c in j["credentials"])'
run "list text output" 0 --device "$VCARD_URI" $FAST cred list --rp-id example.com
grep_out "text names the user" "user: alice"
run "list of an rp without credentials" 0 --device "$VCARD_URI" $FAST --json cred list --rp-id nobody.example
jcheck "no credentials: count 0" 'j["count"] == 0'
ALICE_UID=$(json_get "$T/list1.json" "[c['user_id'] for c in j['credentials'] if c['user_name'] == 'alice'][0]")
run "update-user renames alice" 0 --device "$VCARD_URI" $FAST cred update-user \
    --cred-id "$ALICE" --user-id "$ALICE_UID" --name alice2 --display-name "Alice Two"
run "update-user with bob's user id is refused" 4 --device "$VCARD_URI" $FAST --json cred \
    update-user --cred-id "$ALICE" --user-id "$(json_get "$T/list1.json" "[c['user_id'] for c in j['credentials'] if c['user_name'] == 'bob'][0]")" --name x
jcheck "refusal named INVALID_PARAMETER" 'j["error_name"] == "CTAP1_ERR_INVALID_PARAMETER"'
run "delete bob" 0 --device "$VCARD_URI" $FAST --json cred delete --cred-id "$BOB"
jcheck "delete: status deleted" 'j["status"] == "deleted"'
run "delete bob again" 4 --device "$VCARD_URI" $FAST --json cred delete --cred-id "$BOB"
jcheck "second delete: CTAP2_ERR_NO_CREDENTIALS" 'j["error_name"] == "CTAP2_ERR_NO_CREDENTIALS"'
# a deleted credential is gone, by its id too (its id still decrypts on vcard)
run "assertion naming deleted bob" 4 --device "$VCARD_URI" $FAST --json get-assertion \
    --rp-id example.com --cred-id "$BOB"
jcheck "deleted bob: CTAP2_ERR_NO_CREDENTIALS" 'j["error_name"] == "CTAP2_ERR_NO_CREDENTIALS"'
run "assertion naming alice still works" 0 --device "$VCARD_URI" $FAST --json get-assertion \
    --rp-id example.com --cred-id "$ALICE"
run "info says 48 discoverable credentials remain" 0 --device "$VCARD_URI" $FAST --json info
jcheck "info: remaining_discoverable_credentials 48" \
    'j.get("remaining_discoverable_credentials", j.get("info", {}).get("remaining_discoverable_credentials")) == 48'
run "wrong PIN" 4 --device "$VCARD_URI" $FAST --json cred metadata --pin 9999
jcheck "wrong PIN named" 'j["error_name"] == "CTAP2_ERR_PIN_INVALID"'
run "-v names the command and the token" 0 --device "$VCARD_URI" $FAST -v cred metadata
grep_err "-v: command 0x0a" "command 0x0a"
grep_err "-v: permission cm" "permission cm"
run "--trace shows the request" 0 --device "$VCARD_URI" $FAST --trace cred metadata
grep_err "trace: command 0x0a, getCredsMetadata with its pinUvAuthParam" " 90 00 [0-9a-f][0-9a-f] 0a a3 01 01 03 02 04 58 20 "
stop_vcard
need_vcard "vcard restarts on the same state" --personality ctap2.1-full --pin "$PIN" --state "$STATE"
run "list after restart" 0 --device "$VCARD_URI" $FAST --json cred list --rp-id example.com
jcheck "restart: alice renamed, bob gone" \
    'j["count"] == 1 and j["credentials"][0]["user_name"] == "alice2" and j["credentials"][0]["display_name"] == "Alice Two"'
run "metadata after restart" 0 --device "$VCARD_URI" $FAST --json cred metadata
jcheck "restart: 2 existing" 'j["existing"] == 2 and j["remaining"] == 48'
stop_vcard

# ---- 2.1-PRE card: 0x41, protocol 1 ----
need_vcard "vcard ctap2.1-pre starts" --personality ctap2.1-pre --pin "$PIN"
mk example.com dave
run "pre: metadata" 0 --device "$VCARD_URI" $FAST --json cred metadata
jcheck "pre: command 0x41, 1 existing" 'j["command"] == "0x41" and j["existing"] == 1'
run "pre: list" 0 --device "$VCARD_URI" $FAST --json cred list --rp-id example.com
jcheck "pre: dave listed" "[c['cred_id'] for c in j['credentials']] == ['$(cat "$T/id.example.com.dave")']"
run "pre: delete dave" 0 --device "$VCARD_URI" $FAST cred delete --cred-id "$(cat "$T/id.example.com.dave")"
run "pre: rps after delete" 0 --device "$VCARD_URI" $FAST --json cred rps
jcheck "pre: no rps left" 'j["count"] == 0'
stop_vcard

# ---- a card without credential management ----
need_vcard "vcard kcard-2.1 starts" --pin "$PIN"
run "kcard-2.1: cred refused" 4 --device "$VCARD_URI" $FAST --json cred metadata
jcheck "kcard-2.1: CRED_MGMT_NOT_OFFERED" 'j["error_name"] == "CRED_MGMT_NOT_OFFERED"'
stop_vcard

# ---- python-fido2 CredentialManagement against the same card ----
for pers in ctap2.1-full ctap2.1-pre; do
    need_vcard "vcard $pers starts for python-fido2" --personality "$pers" --pin "$PIN"
    mk example.com alice
    mk example.com bob
    mk other.org carol
    run "$pers: rawctap list before python-fido2" 0 --device "$VCARD_URI" $FAST --json cred list --rp-id example.com
    cp "$T/out" "$T/before.json"
    A=$(cat "$T/id.example.com.alice")
    B=$(cat "$T/id.example.com.bob")
    if timeout -k 2 20 "$PY" tests/interop/python_fido2_credman.py 127.0.0.1 "$VCARD_PORT" "$PIN" \
        "$T/before.json" "$B" "$A" >"$T/py.out" 2>&1; then
        ok "$pers: python-fido2 CredentialManagement checks"
    else
        not_ok "$pers: python-fido2 CredentialManagement checks"
    fi
    sed 's/^/    /' "$T/py.out"
    if tail -n 1 "$T/py.out" | grep -q '^9 passed, 0 failed$'; then
        ok "$pers: python-fido2 ran 9 checks"
    else
        not_ok "$pers: python-fido2 ran 9 checks"
    fi
    run "$pers: rawctap sees python-fido2's changes" 0 --device "$VCARD_URI" $FAST --json cred list --rp-id example.com
    jcheck "$pers: bob deleted, alice renamed by python-fido2" \
        "[(c['cred_id'], c['user_name']) for c in j['credentials']] == [('$A', 'renamed-by-python-fido2')]"
    run "$pers: rawctap metadata after python-fido2" 0 --device "$VCARD_URI" $FAST --json cred metadata
    jcheck "$pers: 2 existing" 'j["existing"] == 2'
    stop_vcard
done

# ---- libfido2's fido_credman_* (fido2-token -I -c, -L -r/-k, -D -i) the same way ----
LIBFIDO2_CREDMAN="$BUILD/interop/libfido2_credman"
hex_of() {
    "$PY" -c 'import base64,sys; s=sys.argv[1]; print(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).hex())' "$1"
}
for pers in ctap2.1-full ctap2.1-pre; do
    if [ ! -x "$LIBFIDO2_CREDMAN" ]; then
        not_ok "$pers: $LIBFIDO2_CREDMAN built (make interop)"
        continue
    fi
    need_vcard "vcard $pers starts for libfido2" --personality "$pers" --pin "$PIN"
    mk example.com alice
    mk example.com bob
    mk other.org carol
    B=$(cat "$T/id.example.com.bob")
    if timeout -k 2 20 "$LIBFIDO2_CREDMAN" 127.0.0.1 "$VCARD_PORT" "$PIN" 3 example.com \
        "$(hex_of "$B")" >"$T/lf.out" 2>&1; then
        ok "$pers: libfido2 credman checks"
    else
        not_ok "$pers: libfido2 credman checks"
    fi
    sed 's/^/    /' "$T/lf.out"
    if tail -n 1 "$T/lf.out" | grep -q '^9 passed, 0 failed$'; then
        ok "$pers: libfido2 ran 9 checks"
    else
        not_ok "$pers: libfido2 ran 9 checks"
    fi
    run "$pers: rawctap after libfido2's delete" 0 --device "$VCARD_URI" $FAST --json cred list --rp-id example.com
    jcheck "$pers: bob gone, alice left" \
        "[c['user_name'] for c in j['credentials']] == ['alice'] and '$B' not in [c['cred_id'] for c in j['credentials']]"
    stop_vcard
done

finish

#!/bin/sh
# End-to-end: rawctap doctor reports resident-credential capacity in its
# getinfo step (text) and in "capacity" (--json): credential management's
# metadata (existing, remaining) when a PIN is given and accepted and the
# card offers credMgmt (0x0A on a 2.1 card, 0x41 on a 2.1-PRE one). The
# numbers follow the card (a resident credential made, one deleted), the
# doctor's own makeCredential (not resident) does not change them, and
# capacity is a report, never a finding: the diagnosis stays OK, even on a
# full card, and no fix advises a reset or a delete. Without a PIN, with a
# wrong one, or on a card without credential management there is no
# capacity and nothing else changes.
# shellcheck disable=SC1091,SC2086 # sourced helpers; $FAST splits on purpose
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib.sh
tool_test "$BIN/rawctap"

PIN=246813

jcheck_show() {
    show_head 8 "$T/out"
    show_head 5 "$T/jerr"
}

# doc NAME WANT_EXIT ARGS...: rawctap --json doctor on the card
doc() {
    _n=$1
    _w=$2
    shift 2
    run "$_n" "$_w" --device "$VCARD_URI" --json doctor --no-presence-test "$@"
}
# no fix (the diagnosis's or a warning's) advises a reset or a delete
NO_DESTRUCTIVE='not any(w in (f or "").lower() for f in [j.get("fix")] + [x.get("fix") for x in j.get("warnings", [])] for w in ("reset", "delete", "erase"))'

# ---- a CTAP 2.1 card with credMgmt (0x0A) ----
need_vcard "vcard ctap2.1-full starts" --personality ctap2.1-full
run "set the PIN" 0 --device "$VCARD_URI" pin set --new-pin "$PIN"

doc "doctor with the PIN on an empty card" 0 --pin "$PIN"
jcheck "diagnosis OK" 'j["code"] == "OK" and j["exit"] == 0'
jcheck "capacity: 0 existing, 50 remaining (credMgmt metadata)" \
    'j["capacity"]["existing_resident_credentials"] == 0 and j["capacity"]["remaining_resident_credentials"] == 50'
jcheck "the getinfo step's detail names the counts" \
    'any(s["name"] == "getinfo" and "resident credentials: 0 existing, 50 remaining (credMgmt)" in s["detail"] for s in j["steps"])'
jcheck "getInfo 0x14 agrees: 50 discoverable credentials remain" \
    'j["capacity"]["remaining_discoverable_credentials"] == 50'
jcheck "the PIN step still passed (the token was fetched again)" \
    'any(s["name"] == "pin" and s["result"] == "pass" for s in j["steps"])'

run "make a resident credential" 0 --device "$VCARD_URI" --json make-credential \
    --rp-id capacity.example --user one --rk --pin "$PIN"
ID1=$(json_get "$T/out" 'j["cred_id"]' 2>/dev/null)
run "make a second one" 0 --device "$VCARD_URI" make-credential \
    --rp-id capacity.example --user two --rk --pin "$PIN"
doc "doctor after two resident credentials" 0 --pin "$PIN"
jcheck "capacity follows: 2 existing, 48 remaining" \
    'j["capacity"]["existing_resident_credentials"] == 2 and j["capacity"]["remaining_resident_credentials"] == 48'
run "rawctap cred metadata agrees" 0 --device "$VCARD_URI" --json cred metadata --pin "$PIN"
jcheck "cred metadata: 2 existing, 48 remaining" 'j["existing"] == 2 and j["remaining"] == 48'

# with the presence test: doctor's own (non-resident) credential takes no slot
run "doctor with presence test and the PIN" 0 --device "$VCARD_URI" --json doctor --pin "$PIN"
jcheck "OK, capacity unchanged by doctor's own makeCredential" \
    'j["code"] == "OK" and j["capacity"]["existing_resident_credentials"] == 2'
run "cred metadata after doctor's makeCredential" 0 --device "$VCARD_URI" --json cred metadata --pin "$PIN"
jcheck "still 2 resident credentials" 'j["existing"] == 2'

run "delete one" 0 --device "$VCARD_URI" cred delete --cred-id "$ID1" --pin "$PIN"
doc "doctor after the delete" 0 --pin "$PIN"
jcheck "capacity: 1 existing, 49 remaining" \
    'j["capacity"]["existing_resident_credentials"] == 1 and j["capacity"]["remaining_resident_credentials"] == 49'

# text output
run "doctor text output" 0 --device "$VCARD_URI" doctor --no-presence-test --pin "$PIN"
grep_out "text: the getinfo line carries the counts" \
    'getinfo .*resident credentials: 1 existing, 49 remaining (credMgmt)'
grep_out "text: diagnosis OK" '^diagnosis: OK$'

# no PIN: credential management is not asked; getInfo's 0x14 still tells
doc "doctor without a PIN" 0
jcheck "no PIN: getInfo's count only (1 used, 49 remain), no credMgmt counts" \
    'j["capacity"] == {"remaining_discoverable_credentials": 49}' 
# a wrong PIN: refused, no capacity, and nothing destructive advised
doc "doctor with a wrong PIN" 4 --pin 999999
jcheck "a wrong PIN: PIN_INVALID and no credMgmt counts" \
    'j["code"] == "PIN_INVALID" and "existing_resident_credentials" not in j.get("capacity", {})'
jcheck "a wrong PIN: no fix advises a reset or a delete" "$NO_DESTRUCTIVE"
run "pin retries after the wrong PIN" 0 --device "$VCARD_URI" --json pin retries
jcheck "doctor spent exactly the one attempt the wrong PIN cost" 'j["retries"] == 7'

# a full card: reported, not a finding, nothing destructive advised
i=1
while [ "$i" -le 49 ]; do
    "$BIN/rawctap" --device "$VCARD_URI" make-credential --rp-id "fill$i.example" --rk \
        --pin "$PIN" >/dev/null 2>&1 || break
    i=$((i + 1))
done
run "the card is full: one more is refused" 4 --device "$VCARD_URI" make-credential \
    --rp-id full.example --rk --pin "$PIN"
grep_err "the card says KEY_STORE_FULL" 'CTAP2_ERR_KEY_STORE_FULL'
doc "doctor on a full card" 0 --pin "$PIN"
jcheck "full card: 50 existing, 0 remaining, diagnosis still OK" \
    'j["code"] == "OK" and j["capacity"]["existing_resident_credentials"] == 50 and j["capacity"]["remaining_resident_credentials"] == 0'
jcheck "full card: no warning, no fix advises a reset or a delete" \
    "j[\"warnings\"] == [] and $NO_DESTRUCTIVE"
stop_vcard

# ---- a 2.1-PRE card: credentialMgmtPreview (0x41), PIN protocol 1 ----
need_vcard "vcard ctap2.1-pre starts" --personality ctap2.1-pre
run "set the PIN (2.1-PRE)" 0 --device "$VCARD_URI" pin set --new-pin "$PIN"
run "a resident credential (2.1-PRE)" 0 --device "$VCARD_URI" make-credential \
    --rp-id pre.example --rk --pin "$PIN"
doc "doctor with the PIN (2.1-PRE)" 0 --pin "$PIN"
jcheck "2.1-PRE: capacity from 0x41 metadata, 1 existing" \
    'j["code"] == "OK" and j["capacity"]["existing_resident_credentials"] == 1'
stop_vcard

# ---- a card without credential management: nothing asked ----
need_vcard "vcard kcard-2.1 starts"
run "set the PIN (kcard-2.1)" 0 --device "$VCARD_URI" pin set --new-pin "$PIN"
doc "doctor with the PIN (no credMgmt)" 0 --pin "$PIN"
jcheck "no credMgmt: no capacity, OK" 'j["code"] == "OK" and "capacity" not in j'
stop_vcard

finish

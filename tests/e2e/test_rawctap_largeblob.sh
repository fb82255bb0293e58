#!/bin/sh
# rawctap large-blob against vcard over UDP (personality ctap2.1-full, which
# offers authenticatorLargeBlobs): the initial array, set then get round
# trips in one and in several fragments, the PIN/lbw rule, one credential's
# blob under a key, the state file keeping the array across a restart, a
# card without large blobs, `--fault unplug` given at start (no device until
# cleared), and Debian's python-fido2 (LargeBlobs, hmac-secret) on the same
# card as an independent client.
# shellcheck disable=SC1091,SC2086 # sourced helpers; $FAST split on purpose
. tests/e2e/lib.sh
tool_test "$BIN/rawctap"

PIN=246810
PYCLIENT_LB="$PY tests/interop/python_fido2_largeblob.py"
K=$(printf '2a%.0s' $(seq 32))

need_vcard "vcard starts (ctap2.1-full)" --personality ctap2.1-full --state "$T/card.state"
D="--device $VCARD_URI"

run "get: the initial array" 0 large-blob get $D --json
jcheck "initial array is empty with its hash" \
    'j["array"] == "80" and j["size"] == 17 and j["hash_ok"] and j["max_fragment_length"] == 1984'

# a three-entry array in one fragment
printf '\203\103abc\001\241\001\002' >"$T/small.cbor"
run "set a small array (no PIN yet)" 0 large-blob set --file "$T/small.cbor" $D --json
jcheck "one fragment written" 'j["fragments"] == 1 and j["written"] == 9 + 16'
run "get it back" 0 large-blob get --file "$T/small.back" $D --json
jcheck "same array, three entries" 'j["array"] == "8343616263 01a10102".replace(" ", "") and j["entries"] == 3'
check "get --file holds the same bytes" cmp "$T/small.cbor" "$T/small.back"

# a larger array: several fragments both ways (maxFragmentLength 1984)
"$PY" -c '
import sys
blob = bytes(range(256)) * 12
sys.stdout.buffer.write(b"\x81\x59" + len(blob).to_bytes(2, "big") + blob)' >"$T/big.cbor"
run "set a 3 KB array" 0 large-blob set --file "$T/big.cbor" $D --json
jcheck "written in two fragments" 'j["fragments"] == 2'
run "get the 3 KB array" 0 large-blob get --file "$T/big.back" $D --json
check "3 KB array round trip" cmp "$T/big.cbor" "$T/big.back"

run "set: a file that is not a CBOR array" 2 large-blob set --file "$T/err" $D --json
jcheck "named NOT_A_CBOR_ARRAY" 'j["error_name"] == "NOT_A_CBOR_ARRAY"'
run "set without --file" 2 large-blob set $D

# one credential's blob under its largeBlobKey
printf 'per-credential blob' >"$T/blob.txt"
run "set one blob by key" 0 large-blob set --key-hex "$K" --file "$T/blob.txt" $D --json
run "get that blob by key" 0 large-blob get --key-hex "$K" --file "$T/blob.back" $D --json
jcheck "blob back, beside the other entries" 'bytes.fromhex(j["blob"]) == b"per-credential blob" and j["entries"] == 2'
check "blob --file round trip" cmp "$T/blob.txt" "$T/blob.back"
run "another key finds nothing" 4 large-blob get --key-hex "$(printf '3b%.0s' $(seq 32))" $D --json
jcheck "named NO_BLOB_FOR_KEY" 'j["error_name"] == "NO_BLOB_FOR_KEY"'

# extensions on make-credential / get-assertion, and one credential's blob
# by its largeBlobKey fetched from the card (--cred-id)
S1=$(printf 'a1%.0s' $(seq 32))
S2=$(printf 'b2%.0s' $(seq 32))
run "make-credential with every extension" 0 make-credential --rp-id example.com --rk \
    --hmac-secret --cred-protect 2 --cred-blob aGVsbG8 --large-blob-key --min-pin-length $D --json
jcheck "extension outputs shown" \
    'j["ext_hmac_secret"] and j["ext_cred_protect"] == 2 and j["ext_cred_blob"] and len(j["large_blob_key"]) == 64'
CID=$(json_get "$T/out" 'j["cred_id"]')
LBK=$(json_get "$T/out" 'j["large_blob_key"]')
run "get-assertion: hmac-secret two salts, credBlob, largeBlobKey" 0 get-assertion \
    --rp-id example.com --cred-id "$CID" --hmac-secret "$S1,$S2" --cred-blob --large-blob-key $D --json
jcheck "outputs shown" \
    "j['cred_blob'] == '68656c6c6f' and j['large_blob_key'] == '$LBK' and len(j['hmac_output1']) == 64 and j['hmac_output1'] != j['hmac_output2']"
H2=$(json_get "$T/out" 'j["hmac_output1"]')
run "hmac-secret one salt, protocol 1" 0 get-assertion --rp-id example.com --cred-id "$CID" \
    --hmac-secret "$S1" --hmac-protocol 1 $D --json
jcheck "the same secret across runs and protocols" "j['hmac_output1'] == '$H2' and j['hmac_protocol'] == 1 and 'hmac_output2' not in j"
run "hmac-secret one salt, protocol 2, again" 0 get-assertion --rp-id example.com --cred-id "$CID" \
    --hmac-secret "$S1" --hmac-protocol 2 $D --json
jcheck "consistent between runs" "j['hmac_output1'] == '$H2'"
run "hmac-secret with a short salt" 2 get-assertion --rp-id example.com --cred-id "$CID" \
    --hmac-secret abcd $D
run "bad --cred-protect" 2 make-credential --rp-id example.com --cred-protect 4 $D
run "large-blob set by --cred-id" 0 large-blob set --cred-id "$CID" --rp-id example.com \
    --file "$T/blob.txt" $D --json
run "large-blob get by --key-hex (the key make-credential showed)" 0 large-blob get \
    --key-hex "$LBK" $D --json
jcheck "the blob set through the card's key" 'bytes.fromhex(j["blob"]) == b"per-credential blob"'

# a PIN: writing now needs a token with the lbw permission
"$BIN/rawctap" pin set --new-pin "$PIN" $D >/dev/null 2>&1 || not_ok "pin set"
run "set without PIN on a PIN card" 4 large-blob set --file "$T/small.cbor" $D --json
jcheck "PUAT_REQUIRED named" 'j["error_name"] == "CTAP2_ERR_PUAT_REQUIRED"'
grep_err "the fix is named" "give --pin"
run "set with PIN" 0 large-blob set --file "$T/small.cbor" --pin "$PIN" $D --json
run "get after PIN set" 0 large-blob get $D --json
jcheck "the PIN-written array" 'j["array"] == "834361626301a10102"'

# the state file keeps the array
stop_vcard
need_vcard "vcard restarts on the same state" --personality ctap2.1-full --state "$T/card.state"
D="--device $VCARD_URI"
run "get after restart" 0 large-blob get $D --json
jcheck "array survived the restart" 'j["array"] == "834361626301a10102"'

# python-fido2 reads what rawctap wrote, then writes an array rawctap reads
if "$PY" -c 'import fido2.ctap2; fido2.ctap2.LargeBlobs' 2>/dev/null; then
    "$BIN/rawctap" large-blob set --file "$T/big.cbor" --pin "$PIN" $D >/dev/null 2>&1 ||
        not_ok "rawctap writes the 3 KB array for python-fido2"
    if timeout 30 $PYCLIENT_LB 127.0.0.1 "$VCARD_PORT" "$PIN" "$T/big.cbor" "$T/py.hex" \
        >"$T/py.out" 2>&1; then
        ok "python-fido2 LargeBlobs and hmac-secret ($(grep -c '^ok' "$T/py.out") checks)"
    else
        not_ok "python-fido2 LargeBlobs and hmac-secret"
        show_head 30 "$T/py.out"
    fi
    run "rawctap reads python-fido2's array" 0 large-blob get $D --json
    if [ -s "$T/py.hex" ]; then
        jcheck "the array python-fido2 wrote" "j['array'] == open('$T/py.hex').read().strip()"
    else
        not_ok "python-fido2 wrote no array"
    fi
else
    not_ok "python3-fido2 with LargeBlobs is not installed"
fi
stop_vcard

# a card without large blobs
need_vcard "vcard starts (kcard-2.1)"
run "kcard-2.1 offers no large blobs" 4 large-blob get --device "$VCARD_URI" --json
jcheck "named LARGE_BLOBS_NOT_OFFERED" 'j["error_name"] == "LARGE_BLOBS_NOT_OFFERED"'
stop_vcard

# --fault unplug at start: no device until cleared
need_vcard "vcard starts unplugged" --personality ctap2.1-full --fault unplug
run "unplugged from the start: no device" 3 large-blob get --device "$VCARD_URI" $FAST --json
jcheck "a transport failure" 'j["exit"] == 3 and not j["ok"]'
ctl clear || not_ok "vcard-ctl clear"
run "after clear the card answers" 0 large-blob get --device "$VCARD_URI" $FAST --json
stop_vcard

finish

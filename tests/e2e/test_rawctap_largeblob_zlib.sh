#!/bin/sh
# End-to-end: one credential's large blob is raw DEFLATE (RFC 1951) under
# AES-256-GCM, and rawctap reads and writes it with zlib. Entries are built
# here by an independent implementation (python3's zlib and
# python3-cryptography's AESGCM, CBOR by python-fido2) and written as the
# whole array with `rawctap large-blob set`; `rawctap large-blob get
# --key-hex` must inflate another compressor's stream (dynamic Huffman at
# level 9, fixed Huffman, an RFC 1950 stream as libfido2 wrote before
# 1.11) and refuse, exit 5 with the fault named, a truncated stream, an
# origSize that does not match, a decompression bomb under a small
# origSize and an origSize beyond the 1 MiB cap. What rawctap writes is
# opened and inflated by python, and is smaller than the blob.
# shellcheck disable=SC1091,SC2086 # sourced helpers; $D splits on purpose
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib.sh
tool_test "$BIN/rawctap"

KEY=2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a
OTHER=3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b

if ! "$PY" -c 'import fido2.cbor, zlib; from cryptography.hazmat.primitives.ciphers.aead import AESGCM' 2>/dev/null; then
    not_ok "python3 with fido2.cbor, zlib and cryptography is needed"
    finish
    exit 1
fi

# mk.py seal KEYHEX KIND FILE OUT: an array of one entry sealing FILE's
# bytes under KEYHEX, compressed as KIND says
# mk.py open KEYHEX ARRAYHEX OUT: the blob of the entry that opens, inflated
cat >"$T/mk.py" <<'EOF'
import os, sys, zlib
import fido2.cbor as cbor
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def raw(data, level=9, strategy=zlib.Z_DEFAULT_STRATEGY):
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
    return c.compress(data) + c.flush()

cmd, key = sys.argv[1], bytes.fromhex(sys.argv[2])
if cmd == "seal":
    kind, data = sys.argv[3], open(sys.argv[4], "rb").read()
    orig = len(data)
    if kind == "dynamic":
        z = raw(data)
    elif kind == "fixed":
        z = raw(data, 6, zlib.Z_FIXED)
    elif kind == "rfc1950":
        z = zlib.compress(data, 9)
    elif kind == "truncated":
        z = raw(data)[:-4]
    elif kind == "short":  # origSize one more than the stream gives
        z, orig = raw(data), orig + 1
    elif kind == "bomb":  # 2 MiB of zeros under origSize 1000
        z, orig = raw(bytes(2 << 20)), 1000
    elif kind == "huge":  # the same under its true origSize, above the cap
        z, orig = raw(bytes(2 << 20)), 2 << 20
    else:
        sys.exit("unknown kind " + kind)
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(nonce, z, b"blob" + orig.to_bytes(8, "little"))
    open(sys.argv[5], "wb").write(cbor.encode([{1: ct, 2: nonce, 3: orig}]))
else:
    for e in cbor.decode(bytes.fromhex(sys.argv[3])):
        try:
            z = AESGCM(key).decrypt(e[2], e[1], b"blob" + e[3].to_bytes(8, "little"))
        except Exception:
            continue
        d = zlib.decompressobj(-15)
        out = d.decompress(z) + d.flush()
        assert d.eof and not d.unused_data and len(out) == e[3], "bad stream"
        open(sys.argv[4], "wb").write(out)
        print(len(z))
        sys.exit(0)
    sys.exit("no entry opens")
EOF

{
    echo "kcard large-blob zlib interop"
    i=1
    while [ "$i" -le 20 ]; do
        echo "line $i: the quick brown fox jumps over the lazy dog"
        i=$((i + 1))
    done
} >"$T/blob"

need_vcard "vcard ctap2.1-full starts" --personality ctap2.1-full
D="--device $VCARD_URI"

# case KIND: the sealed array written whole; the get that follows is checked
seal_and_get() {
    "$PY" "$T/mk.py" seal "$KEY" "$1" "$T/blob" "$T/arr.$1" 2>"$T/py.err" || {
        not_ok "python seals a $1 entry"
        show_head 5 "$T/py.err"
    }
    run "set the array with a $1 entry" 0 large-blob set --file "$T/arr.$1" $D
    rm -f "$T/got"
    run "get --key-hex on the $1 entry: exit $2" "$2" large-blob get --key-hex "$KEY" \
        --file "$T/got" $D --json
}

for kind in dynamic fixed rfc1950; do
    seal_and_get "$kind" 0
    check "the $kind entry inflates to the same bytes" cmp -s "$T/blob" "$T/got"
    jcheck "blob_size is the file's" "j['blob_size'] == $(wc -c <"$T/blob")"
done

seal_and_get truncated 5
jcheck "truncated: named" 'j["error_name"] == "CBOR" and "truncated" in j["error"]'
check "truncated: no blob file written" test ! -e "$T/got"
seal_and_get short 5
jcheck "origSize mismatch: named" \
    "j['error_name'] == 'VERIFY' and 'but origSize says $(($(wc -c <"$T/blob") + 1))' in j['error']"
seal_and_get bomb 5
jcheck "bomb under origSize 1000: stopped, named" \
    'j["error_name"] == "TOO_LARGE" and "more than origSize (1000 bytes)" in j["error"]'
seal_and_get huge 5
jcheck "origSize 2 MiB: refused before inflating, named" \
    'j["error_name"] == "TOO_LARGE" and "origSize 2097152 is larger than kcard accepts" in j["error"]'
run "another key finds no entry" 4 large-blob get --key-hex "$OTHER" $D --json
jcheck "NO_BLOB_FOR_KEY" 'j["error_name"] == "NO_BLOB_FOR_KEY"'

# rawctap writes, python reads: compressed, and this key's broken entry
# (the huge one above) replaced, not kept
run "rawctap large-blob set --key-hex" 0 large-blob set --key-hex "$KEY" --file "$T/blob" $D
run "get the array" 0 large-blob get $D --json
jcheck "one entry: the old one of this key is gone" 'j["entries"] == 1'
json_get "$T/out" 'j["array"]' >"$T/arr.hex" 2>/dev/null
if zlen=$("$PY" "$T/mk.py" open "$KEY" "$(cat "$T/arr.hex")" "$T/pygot" 2>"$T/py.err") &&
    cmp -s "$T/blob" "$T/pygot"; then
    ok "python3 (AESGCM, zlib raw inflate) opens rawctap's entry to the same bytes"
else
    not_ok "python3 opens rawctap's entry to the same bytes"
    show_head 5 "$T/py.err"
fi
if [ -n "${zlen:-}" ] && [ "$zlen" -lt "$(wc -c <"$T/blob")" ]; then
    ok "rawctap compressed it ($zlen bytes of DEFLATE for $(wc -c <"$T/blob"))"
else
    not_ok "rawctap compressed it (${zlen:-?} bytes)"
fi
stop_vcard
finish

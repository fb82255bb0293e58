#!/bin/sh
# Independent FIDO2 client libraries (Debian's libfido2 and python-fido2)
# register and authenticate against the virtual card over UDP and verify
# what it returns. Each client gets a fresh card.
. tests/e2e/lib.sh
trap cleanup EXIT

# Each interop program prints "ok - ..." lines and a final "N passed, M failed":
# fold its counts into ours.
run_client() {
    label=$1
    shift
    out="$E2E_TMP/$label.out"
    timeout -k 2 60 "$@" >"$out" 2>&1
    rc=$?
    sed 's/^/    /' "$out"
    counts=$(tail -n 1 "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
    if [ -z "$counts" ]; then
        not_ok "$label ran to completion" "exit $rc, no summary"
        return
    fi
    set -- $counts
    PASSED=$((PASSED + $1))
    FAILED=$((FAILED + $2))
    [ "$rc" -eq 0 ] || [ "$2" -gt 0 ] || not_ok "$label exit status" "exit $rc"
}

need_vcard "vcard starts" --presence yes
run_client libfido2 "$BUILD/interop/libfido2_udp" 127.0.0.1 "$VCARD_PORT"
stop_vcard

need_vcard "vcard starts" --presence yes
run_client python-fido2 /usr/bin/python3 tests/interop/python_fido2_udp.py 127.0.0.1 "$VCARD_PORT"
stop_vcard

finish

#!/bin/sh
# Independent FIDO2 clients (Debian's libfido2 and python-fido2) survive the
# card faults a client must survive, and each run asserts what the library
# reports: a slow CTAP1 card (replies held back 2 s behind KEEPALIVE
# PROCESSING), a card that never sends KEEPALIVE while it waits 700 ms for
# presence, and a presence delay of 700 ms (KEEPALIVE UPNEEDED meanwhile).
# The slow-CTAP1 check is shown to bite on a card that is not slow.
# shellcheck disable=SC1091,SC2086 # sourced helpers; client commands split on purpose
. tests/e2e/lib.sh
. tests/interop/e2e_helpers.sh
trap cleanup EXIT

for client in libfido2 python-fido2; do
    case $client in
        libfido2)
            probes="$LIBFIDO2_DIR/libfido2_probes"
            slow="u2f:slow"
            long=""
            ;;
        python-fido2)
            probes="$PYCLIENT/python_fido2_probes.py"
            slow="ctap1:slow"
            long="--timeout 10"
            ;;
    esac
    need_vcard "vcard starts" --fault slow-ctap1
    run_client "$client" "fault slow-ctap1" "CTAP1 register+authenticate" \
        $probes $long 127.0.0.1 "$VCARD_PORT" "$slow"
    stop_vcard

    need_vcard "vcard starts" --fault no-keepalive --presence delay:700
    run_client "$client" "no-keepalive, presence 700ms" "makeCred+getAssert, no keepalive" \
        $probes 127.0.0.1 "$VCARD_PORT" keepalive:none
    stop_vcard

    need_vcard "vcard starts" --presence delay:700
    run_client "$client" "presence delay:700" "makeCred+getAssert, UPNEEDED" \
        $probes 127.0.0.1 "$VCARD_PORT" keepalive:upneeded
    stop_vcard
done

# the keepalive checks bite: a card that is not slow sends no PROCESSING
need_vcard "vcard starts" --presence yes
run_client_fails python-fido2 kcard-2.1 "ctap1:slow on a fast card" "held back" \
    $PYCLIENT/python_fido2_probes.py 127.0.0.1 "$VCARD_PORT" ctap1:slow
stop_vcard

interop_table
finish

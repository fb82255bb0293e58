#!/bin/sh
# Independent FIDO2 client libraries (Debian's libfido2 and python-fido2)
# against the virtual card over UDP: register and authenticate with
# everything verified, the negative probes (unknown CTAPHID command, channel
# never allocated, unknown credential, excludeList hit) with their exact
# errors, and six assertions with a strictly rising signCount, a check shown
# to bite on a card whose counter rolls back. Each client gets a fresh card.
# Faults: test_interop_faults.sh; personalities and fixed ports:
# test_interop_cards.sh.
# shellcheck disable=SC1091,SC2086 # sourced helpers; client commands split on purpose
. tests/e2e/lib.sh
. tests/interop/e2e_helpers.sh
trap cleanup EXIT

for client in libfido2 python-fido2; do
    case $client in
        libfido2)
            basic="$LIBFIDO2_DIR/libfido2_udp"
            probes="$LIBFIDO2_DIR/libfido2_probes"
            ;;
        python-fido2)
            basic="$PYCLIENT/python_fido2_udp.py"
            probes="$PYCLIENT/python_fido2_probes.py"
            ;;
    esac
    need_vcard "vcard starts" --presence yes
    run_client "$client" kcard-2.1 "register+assert ES256/EdDSA" $basic 127.0.0.1 "$VCARD_PORT"
    stop_vcard

    need_vcard "vcard starts" --presence yes
    run_client "$client" kcard-2.1 "negative probes, counter:6" \
        $probes 127.0.0.1 "$VCARD_PORT" negative counter:6
    stop_vcard

    # the counter check bites: the card's counter rolls back half-way
    need_vcard "vcard starts" --presence yes
    run_client_fails "$client" "kcard-2.1 + counter-rollback" "counter:6, rollback after 3" \
        "signCount rises strictly.*(rollback)" \
        $probes --rollback-ctl "$VCARD_CTL" 127.0.0.1 "$VCARD_PORT" counter:6
    stop_vcard

    need_vcard "vcard starts" --fault counter-rollback
    run_client_fails "$client" "fault counter-rollback" "counter:6 (counter stays 0)" \
        "signCount rises strictly.*(did not rise)" $probes 127.0.0.1 "$VCARD_PORT" counter:6
    stop_vcard
done

interop_table
finish

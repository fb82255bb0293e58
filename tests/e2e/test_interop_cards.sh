#!/bin/sh
# Independent FIDO2 clients (Debian's libfido2 and python-fido2) against the
# virtual card's personalities: each reads getInfo and does what that card
# allows (PIN token where a PIN is set, CTAP1 only on a U2F-only card, a
# 7000-byte request accepted by a 7609-byte card and refused with
# REQUEST_TOO_LARGE by a 1200-byte one; a blocked PIN, a PIN that must be
# changed and a card replying on a channel it never allocated each refused
# with their exact error), and the simulator port convention:
# a client on an unconnected socket bound to the port the card replies to
# (vcard --reply-port) registers and authenticates; one bound elsewhere gets
# nothing and times out quickly.
# shellcheck disable=SC1091,SC2086 # sourced helpers; client commands split on purpose
. tests/e2e/lib.sh
. tests/interop/e2e_helpers.sh
trap cleanup EXIT

PIN=4321

# card LABEL "VCARD ARGS" "LIBFIDO2 ARGS" "PYTHON ARGS" SCENARIOS...
# One fresh card per client; both clients run the same scenarios on it.
card() {
    _label=$1
    _vargs=$2
    _largs=$3
    _pargs=$4
    shift 4
    need_vcard "vcard $_label starts" $_vargs
    run_client libfido2 "$_label" "$*" $LIBFIDO2_DIR/libfido2_cards $_largs 127.0.0.1 "$VCARD_PORT" "$@"
    stop_vcard
    need_vcard "vcard $_label starts" $_vargs
    run_client python-fido2 "$_label" "$*" $PYCLIENT/python_fido2_cards.py $_pargs \
        127.0.0.1 "$VCARD_PORT" "$@"
    stop_vcard
}

yes2="--expect-ctap2 yes"
card kcard-2.1 "--personality kcard-2.1" "$yes2 --expect-max-msg 1200" \
    "$yes2 --expect-max-msg 1200 --expect-protocol 2" info register large:7000
card "kcard-2.1 --pin" "--personality kcard-2.1 --pin $PIN" "--pin $PIN" "--pin $PIN" register
card "ctap2.0-pin --pin" "--personality ctap2.0-pin --pin $PIN" \
    "$yes2 --expect-max-msg 4096 --pin $PIN" \
    "$yes2 --expect-max-msg 4096 --expect-protocol 1 --pin $PIN" info register large:3000
card ctap2.0-nopin "--personality ctap2.0-nopin" "$yes2 --expect-max-msg 1200" \
    "$yes2 --expect-max-msg 1200" info register
card "ctap2.1-pre --pin" "--personality ctap2.1-pre --pin $PIN" \
    "$yes2 --expect-max-msg 1200 --pin $PIN" \
    "$yes2 --expect-max-msg 1200 --expect-protocol 1 --pin $PIN" info register
card "ctap2.1-full --pin" "--personality ctap2.1-full --pin $PIN" \
    "$yes2 --expect-max-msg 2048 --pin $PIN" \
    "$yes2 --expect-max-msg 2048 --expect-protocol 2 --pin $PIN" info register large:1800
card fido2-no-u2f-7609 "--personality fido2-no-u2f-7609" "$yes2 --expect-max-msg 7609" \
    "$yes2 --expect-max-msg 7609 --expect-protocol 2" info register large:7000
card u2f-only "--personality u2f-only" "--expect-ctap2 no" "--expect-ctap2 no" info register
card "always-uv --pin" "--personality always-uv --pin $PIN" \
    "$yes2 --expect-max-msg 1200 --pin $PIN" \
    "$yes2 --expect-max-msg 1200 --expect-protocol 2 --pin $PIN" info register
card "needs-uv-mc --pin" "--personality needs-uv-mc --pin $PIN" \
    "$yes2 --expect-max-msg 1200 --pin $PIN" \
    "$yes2 --expect-max-msg 1200 --expect-protocol 1 --pin $PIN" info register
card "pin-blocked --pin" "--personality pin-blocked --pin $PIN" "--pin $PIN" "--pin $PIN" register
card "force-pin-change --pin" "--personality force-pin-change --pin $PIN" "--pin $PIN" \
    "--pin $PIN" register
card wrong-channel "--personality wrong-channel" "--timeout-ms 500" "--timeout 0.5" wrong-channel

# The simulator convention: the card replies to a fixed port. The client is
# bound there (unconnected, sendto/recvfrom); a client bound elsewhere hears
# nothing and must give up within its short read timeout.
reply_port=$(free_udp_port)
other_port=$(free_udp_port)
need_vcard "vcard --reply-port starts" --reply-port "$reply_port"
run_client libfido2 "kcard-2.1 --reply-port" "bound to reply port: info register" \
    $LIBFIDO2_DIR/libfido2_cards --local-port "$reply_port" 127.0.0.1 "$VCARD_PORT" info register
run_client libfido2 "kcard-2.1 --reply-port" "bound elsewhere: no-reply" \
    $LIBFIDO2_DIR/libfido2_cards --local-port "$other_port" --timeout-ms 700 \
    127.0.0.1 "$VCARD_PORT" no-reply
run_client python-fido2 "kcard-2.1 --reply-port" "bound to reply port: info register" \
    $PYCLIENT/python_fido2_cards.py --local-port "$reply_port" 127.0.0.1 "$VCARD_PORT" \
    info register
run_client python-fido2 "kcard-2.1 --reply-port" "bound elsewhere: no-reply" \
    $PYCLIENT/python_fido2_cards.py --local-port "$other_port" --timeout 0.7 \
    127.0.0.1 "$VCARD_PORT" no-reply
stop_vcard

interop_table
finish

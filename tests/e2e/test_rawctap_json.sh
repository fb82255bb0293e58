#!/bin/sh
# End-to-end: every rawctap command, failing with --json, prints one object
# with "ok": false, "error" (a sentence), "error_name" (UPPER_SNAKE) and
# "exit" (the exit status): usage errors (also when --json comes after the
# bad option), errors before the device opens, no device, a card that
# answers an error, a timeout, a failed verification.
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib.sh
tool_test "$BIN/rawctap"
RAWCTAP=$RUN_TOOL

jcheck_show() {
    show_head 5 "$T/out"
    show_head 5 "$T/jerr"
}

# jfail NAME WANT_EXIT [WANT_ERROR_NAME] -- ARGS...: one run; its JSON has
# the four fields, exit equal to the status, and (when given) that name
jfail() {
    _jn=$1
    _jw=$2
    _jname=""
    shift 2
    if [ "$1" != "--" ]; then
        _jname=$1
        shift
    fi
    shift # --
    run "$_jn: exit $_jw" "$_jw" "$@"
    jcheck "$_jn: ok, error, error_name, exit" \
        'j["ok"] is False and isinstance(j["error"], str) and len(j["error"]) > 10 and __import__("re").fullmatch("[A-Z][A-Z0-9_]*", j["error_name"]) is not None and j["exit"] == '"$_jw"
    if [ -n "$_jname" ]; then
        jcheck "$_jn: error_name $_jname" 'j["error_name"] == "'"$_jname"'"'
    fi
}

# the commands, as rawctap --help lists them (new ones are covered too)
CMDS=$("$RAWCTAP" --help | sed -n '/^Commands:/,/^$/p' | grep -E '^  [a-z]' | awk '{print $1}')
[ -n "$CMDS" ] && ok "command list read from --help" || not_ok "command list read from --help"

# ---- usage errors, whatever the place of --json ----
for c in $CMDS; do
    jfail "$c usage error" 2 USAGE -- --json "$c" --frobnicate
done
jfail "usage: --json after the bad option" 2 USAGE -- ping --size x --json
grep_out "usage: the message is the error" '"error":"ping: --size wants 0..7609, not '"'"'x'"'"'"'
jfail "usage: unknown global option" 2 USAGE -- --frob --json init
jfail "usage: unknown command" 2 USAGE -- --json frobnicate
jfail "usage: no command" 2 USAGE -- --json
jfail "usage: bad global value" 2 USAGE -- --json --timeout-ms 0 init
jfail "usage: malformed device URI" 2 -- --json --device bogus:x init
run "usage without --json prints no JSON" 2 ping --size x
[ ! -s "$T/out" ] && ok "usage without --json: stdout empty" || not_ok "usage without --json: stdout empty"

# ---- before the device opens ----
jfail "missing PIN file" 2 USAGE -- --json make-credential --rp-id x --pin-file "$T/nope"
grep_out "missing PIN file named" "cannot read PIN file $T/nope"
jfail "missing credential file" 2 -- --json get-assertion --cred-file "$T/nope.json"
jfail "missing key file" 2 -- --json u2f-authenticate --key-file "$T/nope.json"
jfail "pin change without the PIN" 2 USAGE -- --json pin change --new-pin 5678

# ---- no device: nothing listens at the address ----
GONE=$("$PY" -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ND="--device udp:127.0.0.1:$GONE --init-timeout-ms 1000"
for spec in "init" "ping" "wink" "info" "make-credential --rp-id x" "get-assertion --rp-id x" \
    "selection" "reset" "pin status" "u2f-register" "u2f-authenticate --key-handle AAAA" \
    "cancel" "doctor --no-presence-test"; do
    # shellcheck disable=SC2086 # spec is words
    jfail "no device: ${spec%% *}" 3 -- --json $ND $spec
done
KCARD_ANNOUNCE_DIR="$T/empty" KCARD_SYSFS_HIDRAW="$T/nosysfs" "$RAWCTAP" --json list >"$T/out" 2>"$T/err"
[ $? -eq 3 ] && ok "list finds nothing: exit 3" || not_ok "list finds nothing: exit 3"
jcheck "list finds nothing: the four fields" \
    'j["ok"] is False and "no FIDO devices found" in j["error"] and j["error_name"] == "NO_DEVICE" and j["exit"] == 3'

# ---- a card that answers errors ----
need_vcard "vcard starts" --presence no
D="--device $VCARD_URI"
jfail "make-credential denied" 4 CTAP2_ERR_OPERATION_DENIED -- --json $D make-credential --rp-id x
jfail "selection denied" 4 CTAP2_ERR_OPERATION_DENIED -- --json $D selection
jfail "get-assertion, no credential" 4 CTAP2_ERR_NO_CREDENTIALS -- --json $D get-assertion --rp-id nothing.example
jfail "u2f-authenticate, unknown key handle" 4 -- --json $D u2f-authenticate --app-id x --key-handle AAAAAAAA
run "pin set" 0 $D pin set --new-pin 1234
jfail "pin change, wrong PIN" 4 CTAP2_ERR_PIN_INVALID -- --json $D pin change --pin 9999 --new-pin 5678
ctl fault busy
jfail "ping on a busy card" 4 CHANNEL_BUSY -- --json $D $FAST ping
jfail "wink on a busy card" 4 CHANNEL_BUSY -- --json $D $FAST wink
jfail "info on a busy card" 4 CHANNEL_BUSY -- --json $D $FAST info
ctl clear
ctl fault ctap1-only
jfail "info, no CTAP2" 4 CTAP2_NOT_OFFERED -- --json $D info
jfail "reset, no CTAP2" 4 CTAP2_NOT_OFFERED -- --json $D reset
ctl clear
ctl presence yes
jfail "cancel after the card answered" 4 CANCEL_TOO_LATE -- --json $D cancel --after-ms 400
ctl fault bogus-signature
jfail "make-credential, bad attestation" 5 -- --json $D make-credential --rp-id x
jfail "u2f-register, bad attestation" 5 -- --json $D u2f-register
ctl clear

# ---- timeouts ----
ctl fault hang-before-up
jfail "make-credential hangs" 3 KC_ERR_TIMEOUT -- --json $D $FAST make-credential --rp-id x
ctl clear
ctl unplug
for spec in "init" "ping" "info" "cancel" "pin status" "u2f-register"; do
    # shellcheck disable=SC2086 # spec is words
    jfail "silent card: ${spec%% *}" 3 KC_ERR_TIMEOUT -- --json $D $FAST $spec
done
ctl clear
stop_vcard

finish

#!/bin/sh
# End-to-end: `rawctap doctor` names the right diagnosis for every fault
# profile of the virtual card (over udp), for the hardware-only cases on a
# fake sysfs tree (no hidraw, only a vendor interface, a vendor node named
# explicitly, permission denied as uid 65534), and for a card that
# re-enumerates under --device auto. Short timeouts keep it to seconds.
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib.sh
tool_test "$BIN/rawctap"
RAWCTAP=$RUN_TOOL

# An empty sysfs and announce dir: auto mode must not see this machine's devices.
EMPTY="$T/empty"
mkdir -p "$EMPTY/sysfs" "$EMPTY/announce" "$EMPTY/dev"
KCARD_SYSFS_HIDRAW="$EMPTY/sysfs"
KCARD_ANNOUNCE_DIR="$EMPTY/announce"
KCARD_DEV_DIR="$EMPTY/dev"
export KCARD_SYSFS_HIDRAW KCARD_ANNOUNCE_DIR KCARD_DEV_DIR
unset KCARD_DEVICE

# doc NAME EXIT CODE [args...]: runs `rawctap doctor --json ARGS`
# (global options work after the command too) and checks exit and code.
# Every run also checks that no reset is advised except for PIN_BLOCKED,
# and there with what it erases.
doc() {
    _name=$1
    _want=$2
    _code=$3
    shift 3
    "$RAWCTAP" doctor --json "$@" >"$T/out" 2>"$T/err"
    _got=$?
    _have=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["code"])' "$T/out" 2>/dev/null)
    if [ "$_got" -eq "$_want" ] && [ "$_have" = "$_code" ] && no_bad_reset "$T/out"; then
        ok "$_name"
    else
        not_ok "$_name" "exit $_got code '$_have', wanted $_want $_code: rawctap doctor --json $*"
        show_head 5 "$T/out"
        show_head 5 "$T/err"
    fi
}

# no_bad_reset FILE: the doctor JSON in FILE advises a reset only for
# PIN_BLOCKED (every fix: the diagnosis and each warning), with "erases".
no_bad_reset() {
    "$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
for f in [j] + j.get("warnings", []):
    fx = f.get("fix", "").lower()
    if "reset" in fx and (f.get("code") != "PIN_BLOCKED" or "erases" not in fx):
        sys.exit(1)
' "$1" 2>/dev/null
}

# ---- a healthy card ----
need_vcard "vcard starts" --presence yes
D="--device $VCARD_URI"
doc "healthy card: OK" 0 OK $D $FAST
jcheck "OK: JSON shape" 'j["ok"] is True and j["step"] == "all" and isinstance(j["evidence"], list) and j["fix"] and j["level"] == "ok"'
jcheck "OK: every step named with result and ms" \
    '[s["name"] for s in j["steps"]] == ["open","init","channel","getinfo","presence","verify","ctap1"] and all(s["result"] == "pass" and s["ms"] >= 0 and s["detail"] for s in j["steps"])'
"$RAWCTAP" $D $FAST doctor >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && grep -q "^diagnosis: OK$" "$T/out" && grep -q "^  pass  presence" "$T/out" &&
    ok "OK: text report" || not_ok "OK: text report"
grep -q "touch the card if it asks" "$T/err" && ok "presence test tells the person to touch" ||
    not_ok "presence test tells the person to touch"
doc "--no-presence-test skips makeCredential" 0 OK $D $FAST --no-presence-test
jcheck "--no-presence-test: presence and verify skipped" \
    '[s["result"] for s in j["steps"] if s["name"] in ("presence","verify")] == ["skip","skip"]'

# a saved credential is checked too (signature and signCount)
"$RAWCTAP" $D make-credential --rp-id roll.example --cred-file "$T/r.json" >/dev/null 2>&1
"$RAWCTAP" $D get-assertion --cred-file "$T/r.json" >/dev/null 2>&1
"$RAWCTAP" $D $FAST doctor --no-presence-test --cred-file "$T/r.json" --json >"$T/out" 2>"$T/err"
jcheck "--cred-file: verified against the saved count" \
    'j["code"] == "OK" and [s for s in j["steps"] if s["name"] == "verify"][0]["result"] == "pass"'

# ---- hang-before-up: the runbook's "no card prompt on makeCredential" ----
ctl fault hang-before-up
doc "hang-before-up: HANG_BEFORE_PROMPT" 4 HANG_BEFORE_PROMPT $D $FAST
jcheck "hang-before-up: step presence, evidence names PROCESSING" \
    'j["step"] == "presence" and "PROCESSING" in j["evidence"][0] and "power-cycle" in j["fix"]'
doc "hang-before-up with --no-presence-test passes" 0 OK $D $FAST --no-presence-test
ctl clear

# ---- no-pin-protocols: "No compatible PIN/UV protocols supported!" ----
ctl fault no-pin-protocols
doc "no-pin-protocols: warning, exit 0" 0 NO_PIN_PROTOCOLS $D $FAST
jcheck "no-pin-protocols: level warning, explains kcard proceeds" \
    'j["ok"] is True and j["level"] == "warning" and "without PIN" in j["fix"] and any("No compatible PIN/UV protocols supported!" in e for e in j["evidence"])'
ctl clear

# ---- ctap1-only ----
ctl fault ctap1-only
doc "ctap1-only: CTAP1_ONLY" 4 CTAP1_ONLY $D $FAST
jcheck "ctap1-only: step ctap1, getinfo failed" \
    'j["step"] == "ctap1" and [s for s in j["steps"] if s["name"] == "getinfo"][0]["result"] == "fail"'
# ---- slow-ctap1 on a CTAP1-only card: the fallback is too slow ----
ctl fault slow-ctap1:400
doc "ctap1-only + slow-ctap1:400: CTAP1_SLOW" 4 CTAP1_SLOW $D $FAST --slow-ms 1000
ctl clear
# ---- slow-ctap1 on a CTAP2 card: a warning, CTAP2 works ----
ctl fault slow-ctap1:600
doc "slow-ctap1:600 with CTAP2: warning CTAP1_SLOW" 0 CTAP1_SLOW $D $FAST --slow-ms 1000
jcheck "slow-ctap1: level warning" 'j["level"] == "warning" and j["step"] == "ctap1"'
doc "slow-ctap1:600 under a higher --slow-ms: OK" 0 OK $D --init-timeout-ms 300 --timeout-ms 2000 --slow-ms 5000
ctl clear

# ---- no-keepalive with a presence delay: silent while waiting ----
ctl fault no-keepalive
ctl presence delay:1500
doc "no-keepalive + delay:1500: KEEPALIVE_MISSING" 4 KEEPALIVE_MISSING $D --init-timeout-ms 300 --timeout-ms 3000
jcheck "no-keepalive: evidence gives the silence" 'j["step"] == "presence" and "no KEEPALIVE for" in j["evidence"][0]'
ctl clear
# (vcard's U2F REGISTER waits for presence too, where a real card answers
# CONDITIONS_NOT_SATISFIED at once: hence the higher --slow-ms)
doc "delay:1500 with keepalives: OK" 0 OK $D --init-timeout-ms 300 --timeout-ms 3000 --slow-ms 5000
jcheck "delay:1500: the person was asked to touch" '[s for s in j["steps"] if s["name"] == "presence"][0]["result"] == "pass"'
grep -q "touch the card now" "$T/err" && ok "UPNEEDED: doctor says touch now" || not_ok "UPNEEDED: doctor says touch now"
ctl presence yes

# ---- presence denied / timed out ----
ctl presence no
doc "presence no: PRESENCE_DENIED" 4 PRESENCE_DENIED $D $FAST
ctl presence timeout:300
doc "presence timeout: PRESENCE_TIMEOUT" 4 PRESENCE_TIMEOUT $D $FAST --presence-timeout-ms 2000
ctl presence yes

# ---- busy ----
ctl fault busy
doc "busy: BUSY" 4 BUSY $D $FAST
jcheck "busy: the JSON failure names its code as error_name, with a sentence" 'j["ok"] is False and j["error_name"] == "BUSY" and j["exit"] == 4 and "CHANNEL_BUSY" in j["error"]'
ctl clear

# ---- wrong-cid ----
ctl fault wrong-cid
doc "wrong-cid: WRONG_CHANNEL" 3 WRONG_CHANNEL $D $FAST
ctl clear

# ---- drop-every:2 ----
ctl fault drop-every:2
doc "drop-every:2: PACKET_LOSS" 3 PACKET_LOSS $D $FAST
ctl clear

# ---- duplicate-every:2 ----
ctl fault duplicate-every:2
doc "duplicate-every:2: DUPLICATE_PACKETS" 3 DUPLICATE_PACKETS $D $FAST
ctl clear

# ---- corrupt-seq ----
ctl fault corrupt-seq
doc "corrupt-seq: FRAMING" 3 FRAMING $D $FAST
jcheck "corrupt-seq: one-report fine, multi-report broken" \
    'any("multi-report" in e for e in j["evidence"]) and j["step"] == "channel"'
ctl clear

# ---- bogus-signature ----
ctl fault bogus-signature
doc "bogus-signature: BAD_SIGNATURE" 5 BAD_SIGNATURE $D $FAST
jcheck "bogus-signature: caught at makeCredential" 'j["step"] == "presence"'
ctl clear

# ---- counter-rollback: against a credential used before ----
ctl fault counter-rollback
doc "counter-rollback: COUNTER_ROLLBACK" 5 COUNTER_ROLLBACK $D $FAST --no-presence-test --cred-file "$T/r.json"
jcheck "counter-rollback: evidence names the counts" 'j["step"] == "verify" and "signCount went from" in j["evidence"][0]'
ctl clear

# ---- a PIN: doctor --pin / --pin-file / $RAWCTAP_PIN (issue 8, section 2) ----
PIN=482915
printf '%s\n' "$PIN" >"$T/pin"
"$RAWCTAP" $D pin set --new-pin "$PIN" >/dev/null 2>&1 || not_ok "pin set for the PIN tests"
# this card has makeCredUvNotRqd: it registers without the PIN
doc "PIN set, none given, makeCredUvNotRqd: OK" 0 OK $D $FAST
jcheck "PIN set, none given: retries read first, PIN not needed" \
    'j["pin_given"] is False and j["pin_retries"] == 8 and [s for s in j["steps"] if s["name"] == "pin"][0]["result"] == "pass"'
doc "--pin: OK with the PIN" 0 OK $D $FAST --pin "$PIN"
jcheck "--pin: token over protocol 2, makeCredential and getAssertion with the PIN" \
    'j["pin_given"] is True and "protocol 2" in [s for s in j["steps"] if s["name"] == "pin"][0]["detail"] and "with the PIN" in [s for s in j["steps"] if s["name"] == "presence"][0]["detail"] and "with the PIN" in [s for s in j["steps"] if s["name"] == "verify"][0]["detail"]'
doc "--pin-file: OK" 0 OK $D $FAST --pin-file "$T/pin"
RAWCTAP_PIN=$PIN doc "\$RAWCTAP_PIN: OK" 0 OK $D $FAST
jcheck "\$RAWCTAP_PIN is used" 'j["pin_given"] is True'
"$RAWCTAP" $D $FAST doctor --pin "$PIN" >"$T/out" 2>"$T/err"
if grep -q "$PIN" "$T/out" "$T/err"; then not_ok "the PIN is never printed"; else ok "the PIN is never printed"; fi
doc "a wrong PIN: PIN_INVALID (exit 4)" 4 PIN_INVALID $D $FAST --pin 000000
jcheck "PIN_INVALID: names the attempts left, no reset advice" \
    'j["step"] == "pin" and any("7 PIN attempt(s) left now" in e for e in j["evidence"]) and "reset" not in j["fix"].lower()'
doc "a second wrong PIN: PIN_INVALID" 4 PIN_INVALID $D $FAST --pin 000000 --no-presence-test
doc "a third wrong PIN: PIN_AUTH_BLOCKED" 4 PIN_AUTH_BLOCKED $D $FAST --pin 000000 --no-presence-test
doc "blocked until power cycle, even the right PIN is not sent" 4 PIN_AUTH_BLOCKED $D $FAST --pin "$PIN"
jcheck "PIN_AUTH_BLOCKED: the fix is a power cycle, not a reset" \
    '"power-cycle" in j["fix"] and "reset" not in j["fix"].lower() and any("powerCycleState true" in e for e in j["evidence"])'
"$RAWCTAP" doctor --pin-file "$T/nonexistent" >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && ok "unreadable --pin-file: usage error" || not_ok "unreadable --pin-file: usage error"
"$RAWCTAP" $D doctor --pin 12 >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && grep -q "at least 4 characters" "$T/err" && ok "a PIN too short to be right: usage error, not sent" ||
    not_ok "a PIN too short to be right: usage error, not sent"
stop_vcard
need_vcard "vcard restarts" --presence yes
D="--device $VCARD_URI"

# ---- the last attempt is never spent blindly ----
# 7 wrong PINs (a power cycle, i.e. a restart with the same state, after
# every 3) leave 1 attempt: doctor does not send even the right PIN without
# --pin-last-try, and with it the right PIN restores the count.
_left=""
for _boot in 1 2 3; do
    if [ "$_boot" -eq 1 ]; then
        start_vcard --presence yes --state "$T/state.json" --pin "$PIN" || not_ok "vcard --state starts"
    else
        start_vcard --presence yes --state "$T/state.json" || not_ok "vcard --state restarts"
    fi
    _n=3
    [ "$_boot" -eq 3 ] && _n=1
    while [ "$_n" -gt 0 ]; do
        "$RAWCTAP" --device "$VCARD_URI" $FAST doctor --json --no-presence-test --pin 000000 >"$T/out" 2>"$T/err"
        _n=$((_n - 1))
    done
    [ "$_boot" -eq 3 ] || stop_vcard
done
D="--device $VCARD_URI"
doc "1 attempt left, the right PIN: PIN_RETRIES_LOW, not sent" 0 PIN_RETRIES_LOW $D $FAST --pin "$PIN"
jcheck "PIN_RETRIES_LOW: warning, names the attempt and --pin-last-try" \
    'j["level"] == "warning" and j["pin_retries"] == 1 and "--pin-last-try" in j["fix"] and "not sent" in [s for s in j["steps"] if s["name"] == "pin"][0]["detail"]'
doc "--pin-last-try with the right PIN: OK" 0 OK $D $FAST --pin "$PIN" --pin-last-try
doc "the count is restored" 0 OK $D $FAST
jcheck "8 attempts again" 'j["pin_retries"] == 8'
stop_vcard
need_vcard "vcard restarts" --presence yes
D="--device $VCARD_URI"

# ---- a credential the card does not know (another card's, or wiped) ----
doc "--cred-file of another card: UNKNOWN_CREDENTIAL" 4 UNKNOWN_CREDENTIAL $D $FAST --no-presence-test --cred-file "$T/r.json"
jcheck "UNKNOWN_CREDENTIAL: make a new credential, no throwaway-rp text" \
    'j["step"] == "verify" and "make a new credential" in j["fix"] and "throwaway" not in j["fix"] and any("CTAP2_ERR_NO_CREDENTIALS" in e for e in j["evidence"])'

# ---- unplug: stops answering ----
ctl unplug
doc "unplug (explicit udp): INIT_NO_REPLY" 3 INIT_NO_REPLY $D $FAST
jcheck "INIT_NO_REPLY over udp: the wrong port and ?local= first, no power cycle" \
    'j["fix"].find("?local=7112") >= 0 and j["fix"].find("?local=7112") < j["fix"].find("restart") and "power-cycle the card" not in j["fix"]'
ctl clear
doc "after clear: OK again" 0 OK $D $FAST
stop_vcard

# ---- no-init-reply: the runbook's "manual INIT: no reply within 3s" ----
start_vcard --presence yes --fault no-init-reply || not_ok "vcard no-init-reply starts"
doc "no-init-reply: INIT_NO_REPLY" 3 INIT_NO_REPLY --device "$VCARD_URI" $FAST
jcheck "no-init-reply: evidence and power-cycle fix" \
    'j["step"] == "init" and "no reply to CTAPHID_INIT" in j["evidence"][0] and "?local=" in j["fix"] and "restart" in j["fix"]'
stop_vcard

# ---- a card that replies to a fixed port, used without ?local= ----
REPLY_PORT=$((20000 + $$ % 20000))
start_vcard --presence yes --reply-port "$REPLY_PORT" || not_ok "vcard --reply-port starts"
doc "replies to a fixed port, no ?local=: INIT_NO_REPLY" 3 INIT_NO_REPLY --device "$VCARD_URI" $FAST
jcheck "fixed reply port: names 7112 and ?local= before anything else, no power cycle" \
    'j["fix"].find("fixed host port (7112)") >= 0 and j["fix"].find("?local=7112") < j["fix"].find("wrong address") < j["fix"].find("restart") and "power-cycle the card" not in j["fix"] and any("UDP address" in e for e in j["evidence"])'
doc "the same card with ?local=: OK" 0 OK --device "$VCARD_URI?local=$REPLY_PORT" $FAST
stop_vcard

# ---- an explicit udp card that re-plugs mid-request: NO_REPLY, its fix ----
ANN="$T/announce"
mkdir -p "$ANN"
start_vcard --presence yes --announce "$ANN" --fault replug || not_ok "vcard replug starts"
KCARD_ANNOUNCE_DIR="$ANN" doc "replug, explicit udp: NO_REPLY (not KEEPALIVE_MISSING)" 3 NO_REPLY --device "$VCARD_URI" $FAST
jcheck "replug, explicit udp: the fix names the new address and --device auto, no firmware" \
    '"--device auto" in j["fix"] and "is now" not in j["fix"] and "firmware" not in j["fix"] and any("announce file now names udp:" in e for e in j["evidence"])'
stop_vcard
start_vcard --presence yes --fault replug || not_ok "vcard replug (no announce) starts"
doc "replug, explicit udp, nothing announced: NO_REPLY" 3 NO_REPLY --device "$VCARD_URI" $FAST
jcheck "replug, nothing announced: stopped answering at this address, --device auto" \
    '"stopped answering at this address" in j["fix"] and "--device auto" in j["fix"] and "firmware" not in j["fix"]'
stop_vcard

# ---- replug under --device auto: the card re-enumerates ----
start_vcard --presence yes --announce "$ANN" --fault replug || not_ok "vcard replug starts"
KCARD_ANNOUNCE_DIR="$ANN" doc "replug under auto: REENUMERATED" 3 REENUMERATED --device auto $FAST
jcheck "replug: old and new address named" \
    'j["step"] == "enumeration" and "is now udp:" in j["evidence"][0]'
KCARD_ANNOUNCE_DIR="$ANN" doc "after the replug, auto finds it: OK" 0 OK --device auto $FAST
ctl unplug
KCARD_ANNOUNCE_DIR="$ANN" doc "unplugged under auto: NO_HIDRAW (nothing attached)" 3 NO_HIDRAW --device auto $FAST
stop_vcard

# REENUMERATED within 1 s of the move, every run, with the default timeouts
# (5 s command phase): doctor watches the announce file while it waits.
_slow=""
_wrong=""
_max=0
_i=0
while [ $_i -lt 20 ]; do
    _i=$((_i + 1))
    rm -f "$ANN"/*
    start_vcard --presence yes --announce "$ANN" --fault replug || { _wrong="$_wrong start$_i"; continue; }
    _t0=$(date +%s%N)
    KCARD_ANNOUNCE_DIR="$ANN" "$RAWCTAP" --device auto doctor --json >"$T/out" 2>"$T/err"
    _ms=$((($(date +%s%N) - _t0) / 1000000))
    grep -q '"code":"REENUMERATED"' "$T/out" ||
        _wrong="$_wrong run$_i:$(grep -o '"code":"[A-Z_]*"' "$T/out")$(grep -o '"evidence":[^]]*' "$T/out")"
    [ "$_ms" -lt 1000 ] || _slow="$_slow run$_i:${_ms}ms"
    [ "$_ms" -gt "$_max" ] && _max=$_ms
    stop_vcard
done
echo "# replug under auto: the slowest of 20 doctor runs took ${_max} ms"
[ -z "$_wrong" ] && ok "replug under auto: REENUMERATED in 20 of 20 runs" || not_ok "REENUMERATED every run" "$_wrong"
[ -z "$_slow" ] && ok "replug under auto: named in < 1 s in 20 of 20 runs (default timeouts)" ||
    not_ok "REENUMERATED within 1 s" "$_slow"

# ---- every card personality: no PIN, a PIN set but not given, the PIN given ----
# want PERSONALITY MODE: "EXIT CODE" for doctor on that card (see TRIAGE.md,
# "Card families"). Modes: nopin (vcard without --pin), pinset (vcard --pin,
# doctor without), given (vcard --pin, doctor --pin; a card without clientPin
# gets no PIN on the card, only doctor's --pin).
want() {
    case "$1:$2" in
    kcard-2.1:* | ctap2.1-full:* | fido2-no-u2f-7609:*) echo "0 OK" ;;
    ctap2.0-pin:pinset | ctap2.1-pre:pinset | always-uv:pinset) echo "0 PIN_REQUIRED" ;;
    ctap2.0-pin:* | ctap2.1-pre:*) echo "0 OK" ;;
    ctap2.0-nopin:*) echo "0 NO_PIN_PROTOCOLS" ;;
    always-uv:nopin) echo "4 PIN_NOT_SET" ;;
    needs-uv-mc:*) echo "0 OK" ;; # built-in uv, asked for when no PIN is given
    always-uv:given) echo "0 OK" ;;
    u2f-only:*) echo "4 CTAP1_ONLY" ;;
    pin-blocked:*) echo "4 PIN_BLOCKED" ;;
    force-pin-change:*) echo "4 PIN_CHANGE_REQUIRED" ;;
    wrong-channel:*) echo "3 WRONG_CHANNEL" ;;
    *) echo "? ?" ;;
    esac
}
PERSONALITIES=$("$BIN/vcard" --list-personalities 2>/dev/null | awk '{print $1}')
[ "$(echo "$PERSONALITIES" | wc -w)" -ge 10 ] && ok "vcard lists its personalities" ||
    not_ok "vcard lists its personalities" "$PERSONALITIES"
printf '%-18s %-7s %-26s %s\n' personality pin "doctor says" exit
for _p in $PERSONALITIES; do
    for _m in nopin pinset given; do
        _vpin=""
        _dpin=""
        # cards without clientPin can have no PIN (vcard refuses --pin there)
        _no_client_pin=false
        case $_p in ctap2.0-nopin | u2f-only) _no_client_pin=true ;; esac
        [ "$_m" != nopin ] && [ "$_no_client_pin" = false ] && _vpin="--pin $PIN"
        [ "$_m" = given ] && _dpin="--pin $PIN"
        [ "$_m" = pinset ] && [ "$_no_client_pin" = true ] && continue # no PIN to set
        # shellcheck disable=SC2046 # want prints two words: exit and code
        set -- $(want "$_p" "$_m")
        start_vcard --presence yes --personality "$_p" $_vpin || {
            not_ok "$_p $_m: vcard starts"
            continue
        }
        _fast=$FAST
        # its PINGs time out by design: keep their bound short
        [ "$_p" = wrong-channel ] && _fast="--init-timeout-ms 300 --timeout-ms 300"
        doc "$_p, $_m: $2" "$1" "$2" --device "$VCARD_URI" $_fast $_dpin
        printf '%-18s %-7s %-26s %s\n' "$_p" "$_m" "$_have" "$_got"
        if [ "$_p" = pin-blocked ]; then
            jcheck "$_p, $_m: the one reset advice says what it erases" \
                '"rawctap reset" in j["fix"] and "erases every credential" in j["fix"] and "10 s of power-up" in j["fix"]'
        fi
        stop_vcard
    done
done

# Without the PIN, what needs none is still tested: getAssertion (up=false)
# on a saved credential passes on a CTAP 2.0 card, and on an alwaysUv card
# it wants the PIN too (named in the evidence); both end PIN_REQUIRED.
for _p in ctap2.0-pin always-uv; do
    start_vcard --presence yes --personality "$_p" --pin "$PIN" || {
        not_ok "$_p: vcard starts"
        continue
    }
    "$RAWCTAP" --device "$VCARD_URI" make-credential --rp-id pin.example --pin "$PIN" \
        --cred-file "$T/$_p.json" >/dev/null 2>&1 || not_ok "$_p: make-credential with the PIN"
    doc "$_p, PIN set, --cred-file, no PIN: PIN_REQUIRED" 0 PIN_REQUIRED --device "$VCARD_URI" $FAST \
        --cred-file "$T/$_p.json"
    if [ "$_p" = ctap2.0-pin ]; then
        jcheck "$_p: the getAssertion (up=false) on --cred-file ran and passed before the PIN stop" \
            '[s["result"] for s in j["steps"] if s["name"] == "verify"] == ["pass"] and j["level"] == "warning" and any("CTAP2_ERR_PUAT_REQUIRED" in e for e in j["evidence"])'
    else
        # CTAP 2.1 alwaysUv wants UV for up=true assertions; up=false needs
        # none, and where a card wants it anyway the evidence names it
        jcheck "$_p: getAssertion (up=false) ran; makeCredential wanted the PIN" \
            '([s["result"] for s in j["steps"] if s["name"] == "verify"] == ["pass"] or any("getAssertion (up=false) answered" in e for e in j["evidence"])) and any("alwaysUv true" in e for e in j["evidence"]) and [s["result"] for s in j["steps"] if s["name"] == "presence"] == ["warn"]'
    fi
    doc "$_p, --cred-file with the PIN: OK" 0 OK --device "$VCARD_URI" $FAST --cred-file "$T/$_p.json" --pin "$PIN"
    stop_vcard
done

# ---- hardware-only codes on a fake sysfs tree ----
doc "no hidraw at all: NO_HIDRAW" 3 NO_HIDRAW --device auto $FAST
jcheck "NO_HIDRAW: fix says attach the card (qvm-usb)" 'j["step"] == "discover" and "qvm-usb attach" in j["fix"]'
jcheck "NO_HIDRAW: the discover step is marked failed" '[(x["name"], x["result"]) for x in j["steps"]] == [("discover", "fail")]'

FAKE="$T/fake"
mkdir -p "$FAKE/sys/hidraw0/device" "$FAKE/sys/hidraw1/device" "$FAKE/dev"
# FIDO: usage page 0xF1D0, usage 1, 64-byte input and output reports
printf '\006\320\361\011\001\241\001\011\040\025\000\046\377\000\165\010\225\100\201\002\011\041\025\000\046\377\000\165\010\225\100\221\002\300' \
    >"$FAKE/sys/hidraw0/device/report_descriptor"
# vendor: usage page 0xFF00
printf '\006\000\377\011\001\241\001\011\001\025\000\046\377\000\165\010\225\100\201\002\300' \
    >"$FAKE/sys/hidraw1/device/report_descriptor"
printf 'HID_ID=0003:00001209:0000000A\nHID_NAME=kcard test card\nHID_UNIQ=KC-1\n' >"$FAKE/sys/hidraw0/device/uevent"
cp "$FAKE/sys/hidraw0/device/uevent" "$FAKE/sys/hidraw1/device/uevent"
: >"$FAKE/dev/hidraw0"
: >"$FAKE/dev/hidraw1"

# only the vendor interface reached the VM
mkdir -p "$T/vendoronly/hidraw1"
cp -r "$FAKE/sys/hidraw1/device" "$T/vendoronly/hidraw1/"
KCARD_SYSFS_HIDRAW="$T/vendoronly" KCARD_DEV_DIR="$FAKE/dev" \
    doc "only a vendor interface: NON_FIDO_ONLY" 3 NON_FIDO_ONLY --device auto $FAST
jcheck "NON_FIDO_ONLY: evidence lists the node" 'j["step"] == "discover" and "hidraw1 not-FIDO 1209:000a" in j["evidence"][0]'

# the runbook's /dev/hidraw1: a vendor node named explicitly
KCARD_SYSFS_HIDRAW="$FAKE/sys" KCARD_DEV_DIR="$FAKE/dev" \
    doc "vendor node named: NOT_FIDO_NODE" 3 NOT_FIDO_NODE --device-path "$FAKE/dev/hidraw1" $FAST
jcheck "NOT_FIDO_NODE: fix names the FIDO node" "'$FAKE/dev/hidraw0' in j['fix']"

KCARD_SYSFS_HIDRAW="$FAKE/sys" KCARD_DEV_DIR="$FAKE/dev" \
    doc "a node that does not exist: NO_DEVICE" 3 NO_DEVICE --device-path "$FAKE/dev/hidraw7" $FAST

# a node that answers EOF while enumeration finds the card where it was:
# not UNPLUGGED (the evidence contradicts it)
KCARD_SYSFS_HIDRAW="$FAKE/sys" KCARD_DEV_DIR="$FAKE/dev" \
    doc "EOF on a node still present: NO_REPLY, not UNPLUGGED" 3 NO_REPLY --device-path "$FAKE/dev/hidraw0" $FAST
jcheck "EOF node: evidence says the card is where it was" \
    'any("it was not unplugged" in e for e in j["evidence"]) and [s["result"] for s in j["steps"] if s["name"] == "enumeration"] == ["pass"] and "reads fail" in j["fix"]'
KCARD_SYSFS_HIDRAW="$FAKE/sys" KCARD_DEV_DIR="$FAKE/dev" \
    doc "EOF node under auto: NO_REPLY" 3 NO_REPLY --device auto $FAST

# permission denied: as uid 65534 on a mode 000 node (root would bypass it)
if command -v setpriv >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    chmod 755 "$T" "$FAKE" "$FAKE/dev" "$FAKE/sys"
    chmod 000 "$FAKE/dev/hidraw0"
    AS_NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
    KCARD_SYSFS_HIDRAW="$FAKE/sys" KCARD_DEV_DIR="$FAKE/dev" $AS_NOBODY "$RAWCTAP" --device auto $FAST \
        doctor --json >"$T/out" 2>"$T/err"
    _rc=$?
    [ "$_rc" -eq 3 ] && ok "permission (auto): exit 3" || not_ok "permission (auto): exit 3" "exit $_rc"
    jcheck "permission (auto): PERMISSION_DENIED with owner, group, mode" \
        'j["code"] == "PERMISSION_DENIED" and j["step"] == "open" and any("owner root, group root, mode 0000" in e for e in j["evidence"]) and any("uid 65534" in e for e in j["evidence"])'
    jcheck "permission: fix names the udev rule and uaccess" \
        '"70-kcard-fido.rules" in j["fix"] and "uaccess" in j["fix"] and "plugdev" in j["fix"]'
    KCARD_SYSFS_HIDRAW="$FAKE/sys" KCARD_DEV_DIR="$FAKE/dev" $AS_NOBODY "$RAWCTAP" \
        --device-path "$FAKE/dev/hidraw0" $FAST doctor >"$T/out" 2>"$T/err"
    _rc=$?
    [ "$_rc" -eq 3 ] && grep -q "^diagnosis: PERMISSION_DENIED (step open, exit 3)" "$T/out" &&
        ok "permission (explicit node): text diagnosis" ||
        not_ok "permission (explicit node): text diagnosis" "exit $_rc"
else
    echo "skip - permission tests need root and setpriv (not counted)"
fi

# ---- every code is documented ----
CODES=$(sed -n 's/^    {"\([A-Z0-9_]*\)", [0-9]},$/\1/p' triage/rawctap_doctor_tree.c)
[ "$(echo "$CODES" | wc -w)" -ge 34 ] && ok "code table found" || not_ok "code table found"
_missing=""
for _c in $CODES; do
    grep -q "^### $_c " docs/runbook/TRIAGE.md || _missing="$_missing TRIAGE.md:$_c"
    grep -q "$_c" docs/man/rawctap.1 || _missing="$_missing rawctap.1:$_c"
done
[ -z "$_missing" ] && ok "every code in TRIAGE.md and rawctap.1" || not_ok "every code documented" "$_missing"

# ---- usage ----
"$RAWCTAP" doctor --slow-ms x >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && ok "bad --slow-ms: usage error" || not_ok "bad --slow-ms: usage error"

finish

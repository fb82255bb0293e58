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
doc() {
    _name=$1
    _want=$2
    _code=$3
    shift 3
    "$RAWCTAP" doctor --json "$@" >"$T/out" 2>"$T/err"
    _got=$?
    _have=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["code"])' "$T/out" 2>/dev/null)
    if [ "$_got" -eq "$_want" ] && [ "$_have" = "$_code" ]; then
        ok "$_name"
    else
        not_ok "$_name" "exit $_got code '$_have', wanted $_want $_code: rawctap doctor --json $*"
        show_head 5 "$T/out"
        show_head 5 "$T/err"
    fi
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

# ---- unplug: stops answering ----
ctl unplug
doc "unplug (explicit udp): INIT_NO_REPLY" 3 INIT_NO_REPLY $D $FAST
ctl clear
doc "after clear: OK again" 0 OK $D $FAST
stop_vcard

# ---- no-init-reply: the runbook's "manual INIT: no reply within 3s" ----
start_vcard --presence yes --fault no-init-reply || not_ok "vcard no-init-reply starts"
doc "no-init-reply: INIT_NO_REPLY" 3 INIT_NO_REPLY --device "$VCARD_URI" $FAST
jcheck "no-init-reply: evidence and power-cycle fix" \
    'j["step"] == "init" and "no reply to CTAPHID_INIT" in j["evidence"][0] and "power-cycle" in j["fix"]'
stop_vcard

# ---- replug under --device auto: the card re-enumerates ----
ANN="$T/announce"
mkdir -p "$ANN"
start_vcard --presence yes --announce "$ANN" --fault replug || not_ok "vcard replug starts"
KCARD_ANNOUNCE_DIR="$ANN" doc "replug under auto: REENUMERATED" 3 REENUMERATED --device auto $FAST
jcheck "replug: old and new address named" \
    'j["step"] == "enumeration" and "is now udp:" in j["evidence"][0]'
KCARD_ANNOUNCE_DIR="$ANN" doc "after the replug, auto finds it: OK" 0 OK --device auto $FAST
ctl unplug
KCARD_ANNOUNCE_DIR="$ANN" doc "unplugged under auto: NO_HIDRAW (nothing attached)" 3 NO_HIDRAW --device auto $FAST
stop_vcard

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
CODES=$(sed -n 's/^    {"\([A-Z0-9_]*\)", [034]},$/\1/p' probe/rawctap_doctor_tree.c)
[ "$(echo "$CODES" | wc -w)" -ge 20 ] && ok "code table found" || not_ok "code table found"
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

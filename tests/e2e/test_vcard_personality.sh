#!/bin/sh
# vcard's card personalities over real UDP on loopback: --list-personalities,
# an unknown name, each personality's getInfo and INIT face through
# build/bin/rawctap, `vcard-ctl personality` as a replug (status, announce
# file), --pin, --reply-port with rawctap's ?local=, a personality composed
# with a fault, and Debian's python3-fido2 as an independent getInfo parser.
HERE=$(dirname "$0")
. "$HERE/lib.sh"
tool_test "$BIN/rawctap"

ANNOUNCE="$E2E_TMP/announce"
mkdir -p "$ANNOUNCE"

# ---- the list and a wrong name -------------------------------------------
"$BIN/vcard" --list-personalities >"$T/list" 2>"$T/list.err"
if [ $? -eq 0 ]; then ok "vcard --list-personalities exits 0"; else not_ok "vcard --list-personalities exits 0"; fi
for p in kcard-2.1 ctap2.0-pin ctap2.0-nopin ctap2.1-pre ctap2.1-full u2f-only \
    fido2-no-u2f-7609 always-uv needs-uv-mc pin-blocked force-pin-change wrong-channel; do
    if grep -q "^$p  *[A-Za-z0-9]" "$T/list"; then ok "listed with its family: $p"; else
        not_ok "listed with its family: $p"
        show_head 20 "$T/list"
    fi
done
check_exit "an unknown personality exits 2" 2 "$BIN/vcard" --personality ctap9
if grep -q "unknown personality 'ctap9'.*ctap2.1-pre.*wrong-channel" "$E2E_TMP/last.err"; then
    ok "the error names the known personalities"
else
    not_ok "the error names the known personalities" "$(cat "$E2E_TMP/last.err")"
fi
check_exit "a bad --reply-port exits 2" 2 "$BIN/vcard" --reply-port 70000
check_exit "a too short --pin exits 3" 3 "$BIN/vcard" --listen 127.0.0.1:0 --pin 12
check_exit "--pin on a card without clientPin exits 2" 2 "$BIN/vcard" --listen 127.0.0.1:0 \
    --personality ctap2.0-nopin --pin 1234
grep -q "ctap2.0-nopin offers no clientPin" "$E2E_TMP/last.err" &&
    ok "--pin on ctap2.0-nopin: the message names the personality" ||
    not_ok "--pin on ctap2.0-nopin: the message names the personality"
if "$BIN/vcard" --help | grep -q -- "--personality NAME"; then ok "--help names --personality"; else
    not_ok "--help names --personality"
fi

# ---- each personality's getInfo through rawctap ----------------------------
# NAME | python expression over rawctap's info JSON (j)
while IFS='|' read -r name expr; do
    [ -n "$name" ] || continue
    if ! start_vcard --personality "$name"; then
        not_ok "$name starts"
        continue
    fi
    run "$name: rawctap info" 0 --json $FAST --device "$VCARD_URI" info
    jcheck "$name: getInfo as the family publishes it" "$expr"
    stop_vcard
done <<'EOF'
kcard-2.1|j["versions"]==["U2F_V2","FIDO_2_0","FIDO_2_1"] and j["max_msg_size"]==1200 and j["pin_protocols"]==[2,1] and j["options"].get("makeCredUvNotRqd") is True and j["options"].get("clientPin") is False and "credMgmt" not in j["options"]
ctap2.0-pin|j["versions"]==["U2F_V2","FIDO_2_0"] and j["max_msg_size"]==4096 and j["pin_protocols"]==[1] and "makeCredUvNotRqd" not in j["options"] and "pinUvAuthToken" not in j["options"] and j["options"]["clientPin"] is False
ctap2.0-nopin|j["versions"]==["U2F_V2","FIDO_2_0"] and "clientPin" not in j["options"] and not j.get("pin_protocols")
ctap2.1-pre|j["versions"]==["U2F_V2","FIDO_2_0","FIDO_2_1_PRE"] and j["pin_protocols"]==[1] and "makeCredUvNotRqd" not in j["options"] and j["options"].get("credentialMgmtPreview") is True and "credMgmt" not in j["options"]
ctap2.1-full|j["versions"]==["U2F_V2","FIDO_2_0","FIDO_2_1"] and j["max_msg_size"]==2048 and j["pin_protocols"]==[2,1] and j["options"]["pinUvAuthToken"] is True and j["options"]["makeCredUvNotRqd"] is True and j.get("firmware_version")==0x20001 and j["options"].get("credMgmt") is True
fido2-no-u2f-7609|j["versions"]==["FIDO_2_0","FIDO_2_1"] and j["max_msg_size"]==7609 and j["pin_protocols"]==[2,1]
always-uv|j["options"]["alwaysUv"] is True and j["options"]["makeCredUvNotRqd"] is False and "U2F_V2" not in j["versions"]
needs-uv-mc|j["options"]["uv"] is True and "makeCredUvNotRqd" not in j["options"] and "FIDO_2_1_PRE" in j["versions"]
pin-blocked|j["options"]["clientPin"] is True and j["versions"][-1]=="FIDO_2_1"
force-pin-change|j["options"]["clientPin"] is True and j["versions"][-1]=="FIDO_2_1"
EOF

# ---- the CTAPHID face ----------------------------------------------------
need_vcard "u2f-only starts" --personality u2f-only
run "u2f-only: rawctap init" 0 --json $FAST --device "$VCARD_URI" init
jcheck "u2f-only: INIT without CBOR, with MSG" 'j["cbor"] is False and j["msg"] is True'
run "u2f-only: U2F register works" 0 --json $FAST --device "$VCARD_URI" u2f-register
stop_vcard
need_vcard "fido2-no-u2f-7609 starts" --personality fido2-no-u2f-7609
run "fido2-no-u2f-7609: rawctap init" 0 --json $FAST --device "$VCARD_URI" init
jcheck "fido2-no-u2f-7609: NMSG, no WINK" 'j["cbor"] is True and j["msg"] is False and j["wink"] is False'
run "fido2-no-u2f-7609: WINK is refused" 4 --json $FAST --device "$VCARD_URI" wink
stop_vcard
need_vcard "ctap2.1-pre starts" --personality ctap2.1-pre
run "ctap2.1-pre: rawctap init" 0 --json $FAST --device "$VCARD_URI" init
jcheck "ctap2.1-pre: its device version" 'j["device_version"]=="5.2.0" and j["wink"] is True'
stop_vcard
need_vcard "wrong-channel starts" --personality wrong-channel
run "wrong-channel: getInfo never arrives on the host's channel" 3 --json $FAST \
    --device "$VCARD_URI" info
jcheck "wrong-channel: rawctap notices replies on other channels" '"other channels" in j["error"]'
stop_vcard

# ---- composed with a fault ------------------------------------------------
need_vcard "ctap2.1-full with no-pin-protocols starts" --personality ctap2.1-full \
    --fault no-pin-protocols
run "ctap2.1-full + no-pin-protocols: info" 0 --json $FAST --device "$VCARD_URI" info
jcheck "the fault removes the PIN protocols, the personality stays" \
    'j["max_msg_size"]==2048 and not j.get("pin_protocols") and "clientPin" not in j["options"]'
stop_vcard

# ---- vcard-ctl personality: a replug with another card ---------------------
need_vcard "kcard-2.1 with an announce dir starts" --announce "$ANNOUNCE"
OLD_URI=$VCARD_URI
AFILE="$ANNOUNCE/vcard-$VCARD_PID.uri"
if [ "$(sed -n 1p "$AFILE")" = "$VCARD_URI" ] && [ "$(sed -n 2p "$AFILE")" = "personality kcard-2.1" ]; then
    ok "announce file: the URI alone, then the personality"
else
    not_ok "announce file: the URI alone, then the personality" "$(cat "$AFILE")"
fi
"$CTL" --control "$VCARD_CTL" --json personality ctap2.0-pin >"$T/out" 2>"$T/err"
jcheck "vcard-ctl personality answers the new URI" \
    'j["ok"] is True and j["personality"]=="ctap2.0-pin" and j["uri"]!="'"$OLD_URI"'"'
NEW_URI=$(json_get "$T/out" 'j["uri"]')
if [ "$(sed -n 1p "$AFILE")" = "$NEW_URI" ] && [ "$(sed -n 2p "$AFILE")" = "personality ctap2.0-pin" ]; then
    ok "announce file rewritten with the new personality"
else
    not_ok "announce file rewritten with the new personality" "$(cat "$AFILE")"
fi
"$CTL" --control "$VCARD_CTL" --json status >"$T/out" 2>"$T/err"
jcheck "status names the personality (and the card's)" \
    'j["personality"]=="ctap2.0-pin" and j["card"]["personality"]=="ctap2.0-pin" and j["replugs"]==1 and j["channels"]==0'
run "the old URI is silent" 3 --json $FAST --device "$OLD_URI" info
run "the new URI answers as the new card" 0 --json $FAST --device "$NEW_URI" info
jcheck "getInfo is the new personality's" 'j["versions"]==["U2F_V2","FIDO_2_0"]'
check_exit "vcard-ctl personality with an unknown name exits 1" 1 "$CTL" --control "$VCARD_CTL" \
    personality nope
stop_vcard

# ---- --pin ----------------------------------------------------------------
need_vcard "kcard-2.1 --pin starts" --pin 1234 --state "$E2E_TMP/pin.state"
run "--pin: rawctap pin status" 0 --json $FAST --device "$VCARD_URI" pin status
jcheck "--pin: the PIN is set, 8 retries" 'j["pin_set"] is True and j["retries"]==8'
run "--pin: the PIN works (pin change)" 0 --json $FAST --device "$VCARD_URI" pin change \
    --pin 1234 --new-pin 5678
stop_vcard
check_exit "--pin differing from the state file's PIN exits 3" 3 "$BIN/vcard" \
    --listen 127.0.0.1:0 --pin 1234 --state "$E2E_TMP/pin.state"
if grep -q -- "--pin differs" "$E2E_TMP/last.err"; then ok "the error says why"; else
    not_ok "the error says why" "$(cat "$E2E_TMP/last.err")"
fi
need_vcard "pin-blocked starts" --personality pin-blocked --pin 1234
run "pin-blocked: rawctap pin status" 0 --json $FAST --device "$VCARD_URI" pin status
jcheck "pin-blocked: set, 0 retries" 'j["pin_set"] is True and j["retries"]==0'
stop_vcard
need_vcard "force-pin-change starts" --personality force-pin-change
"$CTL" --control "$VCARD_CTL" --json status >"$T/out" 2>"$T/err"
jcheck "force-pin-change: status says a change is required" \
    'j["card"]["force_pin_change"] is True and j["card"]["pin_set"] is True'
run "force-pin-change: the default PIN 1234 changes" 0 --json $FAST --device "$VCARD_URI" \
    pin change --pin 1234 --new-pin 8642
"$CTL" --control "$VCARD_CTL" --json status >"$T/out" 2>"$T/err"
jcheck "force-pin-change: no longer required" 'j["card"]["force_pin_change"] is False'
stop_vcard

# ---- --reply-port ------------------------------------------------------------
LPORT=$("$PY" -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
need_vcard "vcard --reply-port starts" --reply-port "$LPORT"
run "--reply-port: rawctap bound to that port (?local=) gets the replies" 0 --json $FAST \
    --device "$VCARD_URI?local=$LPORT" info
run "--reply-port: without ?local= the replies never come" 3 --json $FAST \
    --device "$VCARD_URI" info
"$CTL" --control "$VCARD_CTL" --json status >"$T/out" 2>"$T/err"
jcheck "status shows the reply port" "j['reply_port']==$LPORT"
stop_vcard

# ---- python3-fido2 parses the same getInfo ----------------------------------
if "$PY" -c 'import fido2' 2>/dev/null; then
    for p in kcard-2.1 ctap2.0-pin ctap2.1-pre; do
        if ! start_vcard --personality "$p"; then
            not_ok "$p starts for python-fido2"
            continue
        fi
        run "$p: rawctap info for comparison" 0 --json $FAST --device "$VCARD_URI" info
        cp "$T/out" "$T/rawctap.json"
        if timeout -k 2 20 "$PY" - "$VCARD_PORT" "$T/rawctap.json" >"$T/py.out" 2>&1 <<'EOF'; then
import json, socket, sys
from fido2.ctap2 import Ctap2
from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor

class Udp(CtapHidConnection):
    def __init__(self, port):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(3.0)
        self.s.connect(("127.0.0.1", port))
    def write_packet(self, data):
        self.s.send(bytes(data).ljust(64, b"\0"))
    def read_packet(self):
        return self.s.recv(64)
    def close(self):
        self.s.close()

port = int(sys.argv[1])
raw = json.load(open(sys.argv[2]))
dev = CtapHidDevice(HidDescriptor("udp", 0, 0, 64, 64), Udp(port))
info = Ctap2(dev).info
assert list(info.versions) == raw["versions"], (info.versions, raw["versions"])
assert dict(info.options) == raw["options"], (info.options, raw["options"])
assert info.max_msg_size == raw["max_msg_size"], (info.max_msg_size, raw["max_msg_size"])
assert list(info.pin_uv_protocols or []) == raw.get("pin_protocols", []), info.pin_uv_protocols
print("versions=%s options=%s" % (info.versions, info.options))
EOF
            ok "$p: python-fido2 parses getInfo and agrees with rawctap"
        else
            not_ok "$p: python-fido2 parses getInfo and agrees with rawctap"
            show_head 10 "$T/py.out"
        fi
        stop_vcard
    done
else
    not_ok "python3-fido2 is installed (Debian's python3-fido2)"
fi

finish

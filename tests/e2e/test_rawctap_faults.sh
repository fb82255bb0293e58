#!/bin/sh
# End-to-end: rawctap against the virtual card's fault profiles, checking
# the exit code and the diagnosis printed for each field failure of the
# runbook. Short timeouts keep the whole script to a few seconds (plus the
# wait for the reset window at the end).
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib.sh
tool_test "$BIN/rawctap"
RAWCTAP=$RUN_TOOL

no_grep_err() {
    if grep -q -- "$2" "$T/err"; then not_ok "$1" "stderr has '$2'"; else ok "$1"; fi
}

now_ms() {
    "$PY" -c 'import time; print(int(time.monotonic() * 1000))'
}

# A card left alone until its reset window (shortened to 500 ms from the
# spec's 10 s) has passed; used at the very end.
need_vcard "vcard starts" --presence yes --reset-window-ms 500
WINDOW_PID=$VCARD_PID
WINDOW_URI=$VCARD_URI
WINDOW_START=$(now_ms)

# ---- no-init-reply: the runbook's "manual INIT gets no reply within 3s" ----
start_vcard --presence yes --fault no-init-reply || not_ok "vcard no-init-reply starts"
D="--device $VCARD_URI"
run "no-init-reply: init exits 3" 3 $D $FAST init --json
jcheck "no-init-reply: INIT phase in JSON" 'j["phase"] == "INIT" and j["error_name"] == "KC_ERR_TIMEOUT"'
grep_err "no-init-reply: diagnosis" "timeout in INIT phase after 0\.[0-9]*s: no reply to INIT"
# a udp card that listens and never answers INIT: the transport's causes,
# the wrong reply port and ?local= first, never a power cycle
grep_err "no-init-reply: ?local= named first" \
    "nothing answered at $VCARD_URI\. .*reply to a fixed host port, 7112: use $VCARD_URI?local=7112\. Otherwise: is the simulator running there"
no_grep_err "no-init-reply: no power-cycle advice for a udp card" "power-cycle"
jcheck "no-init-reply: transport cause in JSON" 'j["transport_cause"] == "UDP_NO_REPLY_WRONG_PORT_OR_GONE"'
run "no-init-reply: make-credential exits 3 too" 3 $D $FAST make-credential --rp-id localhost
stop_vcard

# ---- the udp transport: nothing listens, a fixed reply port, foreign senders ----
# A scripted simulator (python): answers INIT, then per MODE: "ok" answers a
# CBOR request CTAP2_OK at once, "ignore-cancel" sends KEEPALIVE UPNEEDED
# every 100 ms and ignores CANCEL, "mute" answers nothing after INIT. With
# REPLY_PORT it replies from another socket to that fixed port, as
# open-source simulators reply to 7112; with FOREIGN a host at 127.0.0.2
# first sends an INIT reply of its own (channel deadbeef).
cat >"$T/fakecard.py" <<'PYEOF'
import socket, sys, time, select
port_file, mode, reply_port, foreign = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
CID = bytes.fromhex("01020304")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
out = s
if reply_port:
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.bind(("127.0.0.1", 0))
fs = None
if foreign:
    fs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fs.bind(("127.0.0.2", 0))
with open(port_file + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os
os.rename(port_file + ".tmp", port_file)

def pkt(cid, cmd, data):
    return (cid + bytes([cmd]) + len(data).to_bytes(2, "big") + data).ljust(64, b"\0")

waiting = None  # (cid, dest) while "presence" is pending
end = time.monotonic() + 60
next_ka = 0.0
while time.monotonic() < end:
    r, _, _ = select.select([s], [], [], 0.05)
    now = time.monotonic()
    if waiting and now >= next_ka:
        out.sendto(pkt(waiting[0], 0xBB, b"\x02"), waiting[1])
        next_ka = now + 0.1
    if not r:
        continue
    d, src = s.recvfrom(2048)
    if len(d) != 64:
        continue
    dest = ("127.0.0.1", reply_port) if reply_port else src
    cid, cmd, n = d[0:4], d[4], int.from_bytes(d[5:7], "big")
    if cmd == 0x86:
        nonce = d[7:15]
        if fs:
            fs.sendto(pkt(b"\xff" * 4, 0x86, nonce + bytes.fromhex("deadbeef") + bytes([2, 1, 0, 0, 5])), dest)
            time.sleep(0.01)
        out.sendto(pkt(b"\xff" * 4, 0x86, nonce + CID + bytes([2, 1, 0, 0, 5])), dest)
    elif mode == "mute":
        continue
    elif cmd == 0x81 and n <= 57:
        out.sendto(pkt(cid, 0x81, d[7:7 + n]), dest)
    elif cmd == 0x90 and mode == "ok":
        out.sendto(pkt(cid, 0x90, b"\x00"), dest)
    elif cmd == 0x90 and mode == "ignore-cancel":
        waiting = (cid, dest)
        next_ka = 0.0
PYEOF

# start_fake MODE REPLY_PORT FOREIGN: sets FAKE_PID, FAKE_URI
start_fake() {
    rm -f "$T/fake.port"
    "$PY" "$T/fakecard.py" "$T/fake.port" "$1" "$2" "$3" 2>"$T/fake.err" &
    FAKE_PID=$!
    _E2E_PIDS="$_E2E_PIDS $FAKE_PID"
    _tries=100
    while [ ! -s "$T/fake.port" ] && [ "$_tries" -gt 0 ]; do
        sleep 0.05
        _tries=$((_tries - 1))
    done
    FAKE_URI="udp:127.0.0.1:$(cat "$T/fake.port" 2>/dev/null)"
}

stop_fake() {
    kill -KILL "$FAKE_PID" 2>/dev/null
    wait "$FAKE_PID" 2>/dev/null
}

# a free local port: bound once, then let go
free_port() {
    "$PY" -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# nothing listens: an ICMP port unreachable, told at once (not after a timeout)
GONE=$(free_port)
t0=$(now_ms)
run "nothing listens: init exits 3" 3 --device "udp:127.0.0.1:$GONE" --init-timeout-ms 3000 init --json
[ $(($(now_ms) - t0)) -lt 1500 ] && ok "nothing listens: told at once, not after the INIT timeout" ||
    not_ok "nothing listens: told at once, not after the INIT timeout"
jcheck "nothing listens: NO_DEVICE, not a timeout" 'j["error_name"] == "NO_DEVICE" and j["exit"] == 3'
grep_err "nothing listens: named" "nothing listens at udp:127.0.0.1:$GONE"
grep_err "nothing listens: the simulator may have moved" "is the simulator running there? it may have moved (re-plugged; see the announce dir / vcard-ctl status)"
LOCAL=$(free_port)
run "nothing listens, unconnected ?local= socket: exit 3" 3 \
    --device "udp:127.0.0.1:$GONE?local=$LOCAL" --init-timeout-ms 3000 init --json
jcheck "nothing listens with ?local=: NO_DEVICE too" 'j["error_name"] == "NO_DEVICE"'

# a simulator replying from another socket to a fixed port
REPLY=$(free_port)
start_fake ok "$REPLY" 0
run "fixed reply port, no ?local=: exit 3" 3 --device "$FAKE_URI" $FAST init --json
grep_err "fixed reply port: ?local= named" "use $FAKE_URI?local=7112"
no_grep_err "fixed reply port: no power-cycle advice" "power-cycle"
run "fixed reply port with ?local=: init" 0 --device "$FAKE_URI?local=$REPLY" $FAST init --json
jcheck "fixed reply port: the card's channel" 'j["channel"] == "01020304"'
run "fixed reply port with ?local=: ping" 0 --device "$FAKE_URI?local=$REPLY" $FAST ping --size 40
stop_fake

# replies from another address are ignored and traced
REPLY=$(free_port)
start_fake ok "$REPLY" 1
run "foreign sender: init through ?local=" 0 --device "$FAKE_URI?local=$REPLY" $FAST \
    --trace="$T/foreign.trace" init --json
jcheck "foreign sender: its INIT reply was not taken" 'j["channel"] == "01020304"'
grep -q "ignored a 64-byte datagram from 127.0.0.2:" "$T/foreign.trace" &&
    ok "foreign sender: the ignored datagram is traced" ||
    not_ok "foreign sender: the ignored datagram is traced" "$(head -n 5 "$T/foreign.trace")"
stop_fake

# an explicit udp card that answers INIT and then goes silent
start_fake mute 0 0
run "silent after INIT: make-credential exits 3" 3 --device "$FAKE_URI" $FAST \
    make-credential --rp-id localhost --json
grep_err "silent after INIT: the transport's causes" \
    "nothing answered at $FAKE_URI after the request: is the simulator running there? it may have moved"
jcheck "silent after INIT: a timeout in the command phase" \
    'j["error_name"] == "KC_ERR_TIMEOUT" and j["phase"] == "command" and j["transport_cause"] == "UDP_NO_REPLY"'
no_grep_err "silent after INIT: no firmware advice" "firmware"
stop_fake

# vcard replying to a fixed port (--reply-port), as open-source simulators
# reply to 7112, playing a CTAP 2.1-PRE key that offers PIN protocol 1 only
REPLY=$(free_port)
start_vcard --presence yes --personality ctap2.1-pre --reply-port "$REPLY" ||
    not_ok "vcard --personality ctap2.1-pre --reply-port starts"
run "vcard --reply-port, no ?local=: init exits 3" 3 --device "$VCARD_URI" $FAST init --json
jcheck "vcard --reply-port: INIT timeout with the udp cause" \
    'j["error_name"] == "KC_ERR_TIMEOUT" and j["phase"] == "INIT" and j["transport_cause"] == "UDP_NO_REPLY_WRONG_PORT_OR_GONE"'
grep_err "vcard --reply-port: ?local= named first" "use $VCARD_URI?local=7112\. Otherwise: is the simulator running there"
no_grep_err "vcard --reply-port: no power-cycle advice" "power-cycle"
D="--device $VCARD_URI?local=$REPLY"
run "vcard --reply-port with ?local=: info" 0 $D info --json
jcheck "ctap2.1-pre: offers PIN protocol 1 only" 'j["pin_protocols"] == [1]'
run "ctap2.1-pre: pin set --protocol 2 refused" 4 $D pin set --new-pin 1234 --protocol 2 --json
jcheck "ctap2.1-pre: PIN_PROTOCOL_NOT_OFFERED, the card's list" \
    'j["error_name"] == "PIN_PROTOCOL_NOT_OFFERED" and j["exit"] == 4 and j["pin_protocols"] == [1]'
grep_err "ctap2.1-pre: the refusal names what the card offers" \
    "the card offers PIN/UV auth protocols \[1\]; --protocol 2 is not among them; --force-protocol sends it anyway"
no_grep_err "ctap2.1-pre: refused before sending (no card status)" "the card answered"
run "ctap2.1-pre: pin set --protocol 2 --force-protocol: the card's answer" 4 $D \
    pin set --new-pin 1234 --protocol 2 --force-protocol --json
jcheck "ctap2.1-pre: forced, the card's status named" \
    'j["protocol_forced"] is True and j["error_name"].startswith("CTAP") and j["error_name"] != "PIN_PROTOCOL_NOT_OFFERED"'
run "ctap2.1-pre: pin set --protocol 1" 0 $D pin set --new-pin 1234 --protocol 1 --json
jcheck "ctap2.1-pre: used protocol 1" 'j["protocol"] == 1 and j["pin_protocols"] == [1]'
run "ctap2.1-pre: pin status shows what was used" 0 $D pin status --json
jcheck "ctap2.1-pre: status protocol 1, PIN set" 'j["protocol"] == 1 and j["pin_protocols"] == [1] and j["pin_set"] is True'
run "ctap2.1-pre: make-credential with the PIN through ?local=" 0 $D make-credential --rp-id localhost --pin 1234 --json
jcheck "ctap2.1-pre: PIN used" 'j["pin_used"] is True'
stop_vcard

# a CTAP 2.0 key without PIN support offers no protocol at all
start_vcard --presence yes --personality ctap2.0-nopin || not_ok "vcard ctap2.0-nopin starts"
run "ctap2.0-nopin: pin status --protocol 1 refused" 4 --device "$VCARD_URI" pin status --protocol 1 --json
jcheck "ctap2.0-nopin: PIN_PROTOCOL_NOT_OFFERED" 'j["error_name"] == "PIN_PROTOCOL_NOT_OFFERED" and j["pin_protocols"] == []'
stop_vcard

# cancel: too late (the card answered CTAP2_OK), and a card that ignores it
start_fake ok 0 0
run "cancel --after-ms 0 answered CTAP2_OK: exit 4" 4 --device "$FAKE_URI" cancel --after-ms 0 --json
jcheck "cancel too late: named" \
    'j["error_name"] == "CANCEL_TOO_LATE" and j["answer"] == "CTAP2_OK" and j["exit"] == 4 and j["ok"] is False'
grep_err "cancel too late: said so" "the cancel came too late"
stop_fake
start_fake ignore-cancel 0 0
run "card ignores CANCEL: exit 3" 3 --device "$FAKE_URI" cancel --after-ms 200 --json
jcheck "card ignores CANCEL: named" 'j["error_name"] == "CANCEL_NOT_ANSWERED" and j["exit"] == 3 and j["cancel_sent"] is True'
grep_err "card ignores CANCEL: said so" "it ignores CTAPHID_CANCEL"
stop_fake

# ---- one card for the rest, faults switched through the control socket ----
start_vcard --presence yes || not_ok "vcard starts"
D="--device $VCARD_URI"

# hang-before-up: the runbook's "no card prompt, hang before the firmware UI"
run "baseline credential" 0 $D make-credential --rp-id localhost --cred-file "$T/c.json"
ctl fault hang-before-up
run "hang-before-up: make-credential exits 3" 3 $D $FAST make-credential --rp-id localhost --json
jcheck "hang-before-up: command phase in JSON" 'j["phase"] == "command"'
grep_err "hang-before-up: phase and timeout named" "timeout in command phase after 0.70s"
grep_err "hang-before-up: last packet named" "last packet KEEPALIVE PROCESSING at +0\.[0-9]*s"
grep_err "hang-before-up: hang diagnosed" "the card never asked for presence (hang before the presence prompt)"
grep_err "hang-before-up: keepalives printed as they came" "^keepalive PROCESSING +0\.[0-9]*s$"
run "hang-before-up: get-assertion exits 3" 3 $D $FAST get-assertion --cred-file "$T/c.json"
grep_err "hang-before-up: get-assertion diagnosis" "hang before the presence prompt"
run "hang-before-up: ping still answers" 0 $D $FAST ping
ctl clear

# no-pin-protocols: the runbook's "No compatible PIN/UV protocols supported!"
ctl fault no-pin-protocols
run "no-pin-protocols: info" 0 $D info --json
jcheck "no-pin-protocols: info lists none" 'j["pin_protocols"] == []'
run "no-pin-protocols: make-credential succeeds without PIN" 0 $D -v make-credential \
    --rp-id localhost --cred-file "$T/np.json"
grep_err "no-pin-protocols: -v explains" "card advertises no PIN/UV auth protocol; proceeding without PIN"
no_grep_err "no-pin-protocols: never the python-fido2 message" "No compatible PIN/UV protocols supported"
run "no-pin-protocols: get-assertion succeeds without PIN" 0 $D get-assertion --cred-file "$T/np.json"
run "no-pin-protocols: --pin is refused" 4 $D make-credential --rp-id localhost --pin 1234 --json
jcheck "no-pin-protocols: --pin error names the advertised list" \
    'j["error_name"] == "KC_ERR_NO_PIN_PROTOCOL" and j["pin_protocols_advertised"] == "none"'
grep_err "no-pin-protocols: message names what the card advertised" "the card advertised pinUvAuthProtocols \[none\]"
no_grep_err "no-pin-protocols: --pin never the python-fido2 message" "No compatible PIN/UV protocols supported"
no_grep_err "no-pin-protocols: PIN not echoed" "1234"
RAWCTAP_PIN=1234 "$RAWCTAP" $D make-credential --rp-id localhost >"$T/out" 2>"$T/err"
[ $? -eq 4 ] && ok "no-pin-protocols: \$RAWCTAP_PIN refused too" || not_ok "no-pin-protocols: \$RAWCTAP_PIN refused too"
# pin --protocol N: only a protocol the card offers, unless --force-protocol
run "no-pin-protocols: pin set --protocol 2 refused" 4 $D pin set --new-pin 1234 --protocol 2 --json
jcheck "no-pin-protocols: PIN_PROTOCOL_NOT_OFFERED with the card's list" \
    'j["error_name"] == "PIN_PROTOCOL_NOT_OFFERED" and j["exit"] == 4 and j["pin_protocols"] == []'
grep_err "no-pin-protocols: --protocol refusal names the offer and the way out" \
    "pin set: the card offers PIN/UV auth protocols \[none\]; --protocol 2 is not among them; --force-protocol sends it anyway"
run "no-pin-protocols: pin status --protocol 1 refused" 4 $D pin status --protocol 1 --json
jcheck "no-pin-protocols: status refusal named" 'j["error_name"] == "PIN_PROTOCOL_NOT_OFFERED"'
run "no-pin-protocols: --force-protocol sends it; the card's answer named" 4 $D \
    pin set --new-pin 1234 --protocol 2 --force-protocol --json
jcheck "no-pin-protocols: forced, the card's own status" \
    'j["protocol_forced"] is True and j["error_name"].startswith("CTAP") and "the card answered" in j["error"]'
grep_err "no-pin-protocols: forcing is said" "sending PIN/UV auth protocol 2 although the card offers \[none\] (--force-protocol)"
ctl clear

# ctap1-only: CTAP2 not offered; the fallback is explicit and timed
ctl fault ctap1-only
run "ctap1-only: info exits 4" 4 $D info --json
jcheck "ctap1-only: info error named" 'j["error_name"] == "CTAP2_NOT_OFFERED"'
grep_err "ctap1-only: info says why" "does not offer CTAP2"
run "ctap1-only: make-credential without fallback exits 4" 4 $D make-credential --rp-id localhost
run "ctap1-only: info --ctap1-fallback" 0 $D --ctap1-fallback info --json
jcheck "ctap1-only: U2F version reported" 'j["u2f_version"] == "U2F_V2" and j["ctap1_seconds"] >= 0'
run "ctap1-only: make-credential --ctap1-fallback" 0 $D --ctap1-fallback make-credential \
    --rp-id localhost --cred-file "$T/u.json" --json
jcheck "ctap1-only: fallback registered" 'j["protocol"] == "ctap1" and j["attestation"].startswith("ok")'
grep_err "ctap1-only: fallback timed" "CTAP1 fallback succeeded after [0-9.]*s"
run "ctap1-only: get-assertion with the ctap1 file" 0 $D get-assertion --cred-file "$T/u.json" --json
jcheck "ctap1-only: ctap1 assertion verified" 'j["verified"].startswith("ok") and j["sign_count"] == 1'
ctl clear

# slow-ctap1: the runbook's "CTAP1 fallback did not complete quickly enough"
ctl fault slow-ctap1:600
run "slow-ctap1: u2f-register within a long timeout" 0 $D --timeout-ms 3000 u2f-register --json
jcheck "slow-ctap1: took the delay" 'j["seconds"] >= 0.5'
run "slow-ctap1: short timeout exits 3" 3 $D --timeout-ms 300 u2f-register
grep_err "slow-ctap1: diagnosis" "slow CTAP1"
ctl fault ctap1-only
run "slow-ctap1 + ctap1-only: fallback timed" 0 $D --timeout-ms 3000 --ctap1-fallback \
    make-credential --rp-id localhost --json
jcheck "slow-ctap1: fallback duration reported" 'j["ctap1_seconds"] >= 0.5'
ctl clear

# bogus-signature: verification must fail with exit 5
ctl fault bogus-signature
run "bogus-signature: make-credential exits 5" 5 $D make-credential --rp-id localhost --json
jcheck "bogus-signature: attestation failed" 'j["attestation"] == "FAILED" and j["exit"] == 5'
run "bogus-signature: get-assertion exits 5" 5 $D get-assertion --cred-file "$T/c.json"
grep_err "bogus-signature: says the signature failed" "signature"
run "bogus-signature: u2f-register exits 5" 5 $D u2f-register
ctl clear

# counter-rollback: the second assertion's counter goes down
run "counter-rollback: credential" 0 $D make-credential --rp-id roll.example --cred-file "$T/r.json"
run "counter-rollback: first assertion" 0 $D get-assertion --cred-file "$T/r.json" --json
jcheck "counter-rollback: first count 1" 'j["sign_count"] == 1'
ctl fault counter-rollback
run "counter-rollback: second assertion exits 5" 5 $D get-assertion --cred-file "$T/r.json" --json
jcheck "counter-rollback: verify failed" 'j["verified"] == "FAILED" and j["previous_sign_count"] == 1'
grep_err "counter-rollback: counter named" "signCount"
"$PY" -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["sign_count"] == 1 else 1)' \
    "$T/r.json" && ok "counter-rollback: file keeps the last good count" ||
    not_ok "counter-rollback: file keeps the last good count"
ctl clear

# busy: every command answered CHANNEL_BUSY
ctl fault busy
run "busy: ping exits 4" 4 $D $FAST ping --json
jcheck "busy: CHANNEL_BUSY named" 'j["error_name"] == "CHANNEL_BUSY"'
run "busy: make-credential exits 4" 4 $D $FAST make-credential --rp-id localhost
ctl clear

# wrong-cid: replies on a channel the host did not get
ctl fault wrong-cid
run "wrong-cid: ping exits 3" 3 $D $FAST ping
grep_err "wrong-cid: other-channel reports counted" "arrived on other channels"
ctl clear

# unplug while the card waits for presence: its keepalives stop, and the
# diagnosis says so (a card gone silent, not a person who did not confirm)
ctl presence ask
"$RAWCTAP" $D --presence-timeout-ms 1500 make-credential --rp-id localhost --json \
    >"$T/out" 2>"$T/err" &
MC_PID=$!
_E2E_PIDS="$_E2E_PIDS $MC_PID"
wait_for_line "$T/err" "keepalive UPNEEDED" 60 || not_ok "unplug mid-presence: the card asked first"
ctl unplug
wait "$MC_PID"
[ $? -eq 3 ] && ok "unplug mid-presence: exit 3" || not_ok "unplug mid-presence: exit 3"
grep_err "unplug mid-presence: keepalives stopped" "the card went silent at +0\.[0-9]*s (no KEEPALIVE since, though one is due every 100 ms)"
grep_err "unplug mid-presence: the udp causes" "nothing answered at $VCARD_URI since: is the simulator running there? it may have moved"
no_grep_err "unplug mid-presence: not a person who did not confirm" "nobody confirmed"
jcheck "unplug mid-presence: JSON" 'j["error_name"] == "KC_ERR_TIMEOUT" and j["keepalives_stopped"] is True and j["phase"] == "presence"'
ctl clear
ctl presence yes

# unplug: stops answering anything
ctl unplug
run "unplug: init exits 3" 3 $D $FAST init
grep_err "unplug: INIT timeout" "timeout in INIT phase"
ctl clear
run "after clear: card answers again" 0 $D $FAST init

# presence no: OPERATION_DENIED
ctl presence no
run "presence no: exit 4" 4 $D make-credential --rp-id localhost
grep_err "presence no: CTAP2_ERR_OPERATION_DENIED" "CTAP2_ERR_OPERATION_DENIED"
ctl presence yes
stop_vcard

# ---- reset after the window: CTAP2_ERR_NOT_ALLOWED ----
VCARD_PID=$WINDOW_PID
left=$((1000 - ($(now_ms) - WINDOW_START)))
[ "$left" -gt 0 ] && sleep "$("$PY" -c "print($left / 1000)")"
run "reset after the window exits 4" 4 --device "$WINDOW_URI" reset --json
jcheck "reset after the window: NOT_ALLOWED" 'j["error_name"] == "CTAP2_ERR_NOT_ALLOWED"'
stop_vcard

finish

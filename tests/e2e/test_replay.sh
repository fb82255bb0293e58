#!/bin/sh
# End-to-end: field captures as tests. The usbmon fixtures (fixtures/pcap,
# made with text2pcap from recorded traces) are imported with rawctap trace
# import and cross-checked against tshark; the traces are replayed with
# rawctap (--device replay:) and served by vcard --script to rawctap and to
# python-fido2. Divergence, requests after the end of a trace and damaged
# captures end as rawctap(1) says, at once.
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib.sh
tool_test "$BIN/rawctap"
FX=fixtures/pcap
SRC=$FX/src

jcheck_show() {
    show_head 5 "$T/out"
    show_head 5 "$T/jerr"
}

# Adds the "N passed, M failed" of a python run (file $1) to the totals.
merge_py() {
    grep -v '^[0-9]* passed, [0-9]* failed$' "$1"
    _p=$(tail -n 1 "$1" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    _f=$(tail -n 1 "$1" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$_p" ]; then
        not_ok "$2 ended with a summary line"
        show_head 10 "$1"
    else
        PASSED=$((PASSED + _p))
        FAILED=$((FAILED + _f))
    fi
}

# "out HEX" / "in HEX" lines: what tshark sees of bus 1 device 5
tshark_reports() {
    tshark -r "$1" -T fields -E separator=/t -e usb.bus_id -e usb.device_address \
        -e usb.urb_type -e usb.transfer_type -e usb.endpoint_address -e usb.urb_status \
        -e usb.setup.bRequest -e usb.capdata -e usb.data_fragment 2>/dev/null |
        "$PY" -c 'import sys
for line in sys.stdin:
    bus, dev, typ, xfer, ep, st, req, cap, frag = (line.rstrip("\n").split("\t") + [""] * 9)[:9]
    data = (cap or frag).replace(":", "")
    if bus != "1" or dev != "5" or not data:
        continue
    if typ == "\x27S\x27" and ((xfer == "0x01" and ep == "0x01") or (xfer == "0x02" and req == "9")):
        print("out", data)
    elif typ == "\x27C\x27" and xfer == "0x01" and ep == "0x81" and st == "0":
        print("in", data)'
}

# the same from a kcard trace
trace_reports() {
    "$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "dir" in r: print(r["dir"], r["hex"])' "$1"
}

secs_since() {
    "$PY" -c 'import sys,time; print("%.3f" % (time.time() - float(sys.argv[1])))' "$1"
}

fast() { # NAME SECONDS: ok when SECONDS < 1
    if "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 1.0 else 1)' "$2"; then
        ok "$1 (${2}s)"
    else
        not_ok "$1" "took ${2}s"
    fi
}

# ---- 1. trace import, cross-checked with tshark ----
for f in info.pcap info.pcapng mc.pcap mc.pcapng ga.pcap ga.pcapng info-setreport-noise.pcap; do
    case $f in *.pcapng) lt=220 ;; *) lt=189 ;; esac
    run "trace import $f" 0 --json trace import "$FX/$f" -o "$T/$f.jsonl"
    jcheck "$f: device 1.5, link type $lt" "j['device'] == '1.5' and j['link_type'] == $lt"
    tshark_reports "$FX/$f" >"$T/$f.tshark"
    trace_reports "$T/$f.jsonl" >"$T/$f.ours"
    if [ -s "$T/$f.tshark" ] && cmp -s "$T/$f.tshark" "$T/$f.ours"; then
        ok "$f: the imported reports are the $(wc -l <"$T/$f.ours") tshark reads, in order"
    else
        not_ok "$f: imported reports differ from tshark's"
        diff "$T/$f.tshark" "$T/$f.ours" | head -n 4 | sed 's/^/    | /'
    fi
    n_out=$(grep -c '^out ' "$T/$f.tshark")
    n_in=$(grep -c '^in ' "$T/$f.tshark")
    jcheck "$f: summary counts $n_out out, $n_in in" \
        "j['reports_out'] == $n_out and j['reports_in'] == $n_in and j['transactions'] >= 2"
done
if cmp -s "$T/info.pcap.tshark" "$T/info-setreport-noise.pcap.tshark"; then
    ok "SET_REPORT writes and a mouse beside the card import as the same exchange"
else
    not_ok "SET_REPORT capture differs from the interrupt one"
fi
run "trace import to stdout" 0 trace import "$FX/info.pcap"
grep_out "the trace goes to stdout" '"dir":"out","cid":"ffffffff","cmd":"INIT"'
grep_err "the summary goes to stderr" "transactions: 2"

run "two cards without --device: exit 2" 2 trace import "$FX/two-cards.pcapng"
grep_err "both cards are listed" "2 devices carry CTAPHID traffic: 1.5 2.7"
run "two cards, --device 2.7" 0 --json trace import "$FX/two-cards.pcapng" --device 2.7 \
    -o "$T/two.jsonl"
jcheck "the second card's exchange" "j['device'] == '2.7' and j['reports_out'] == 2"
run "--device naming no device: exit 2" 2 trace import "$FX/mc.pcap" --device 9.9
run "--device not BUS.DEV: usage" 2 trace import "$FX/mc.pcap" --device nine
head -c 3000 "$FX/mc.pcap" >"$T/cut.pcap"
run "truncated pcap: exit 3" 3 --json trace import "$T/cut.pcap" -o "$T/cut.jsonl"
jcheck "truncated pcap: the packet is named" \
    "j['exit'] == 3 and j['packet'] > 1 and 'packet %d: truncated' % j['packet'] in j['error']"
head -c 3000 "$FX/mc.pcapng" >"$T/cut.pcapng"
run "truncated pcapng: exit 3" 3 trace import "$T/cut.pcapng" -o "$T/cut.jsonl"
grep_err "truncated pcapng: the packet is named" "packet [0-9]*: truncated"
[ ! -e "$T/cut.jsonl" ] && ok "no trace is written from a damaged capture" ||
    not_ok "a trace was written from a damaged capture"
run "not a capture: exit 2" 2 trace import "$SRC/info.jsonl"
run "no such capture: exit 2" 2 trace import "$T/none.pcap"
run "trace without subcommand: usage" 2 trace
run "trace import --json without -o: usage" 2 --json trace import "$FX/info.pcap"

# ---- 2. replay with rawctap ----
run "recorded info" 0 --json --device "replay:$SRC/info.jsonl" info
cp "$T/out" "$T/info.recorded.json"
run "replay of the imported info capture" 0 --json --device "replay:$T/info.pcapng.jsonl" info
if "$PY" -c 'import json,sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for j in (a, b): j.pop("device", None); j.pop("seconds", None)
sys.exit(0 if a == b else 1)' "$T/info.recorded.json" "$T/out"; then
    ok "the imported capture replays the recorded getInfo"
else
    not_ok "imported info differs from the recorded trace"
fi

run "make-credential replay verifies (exit 0)" 0 -v --device "replay:$T/mc.pcap.jsonl" \
    make-credential --rp-id fixture.example --cred-file "$T/cred.json"
grep_err "verified against the recorded clientDataHash" \
    "replay: verifying against the recorded clientDataHash"
grep_out "attestation ok" "attestation: ok (packed"
grep_err "the recorded keepalives replay" "keepalive UPNEEDED"
if json_true "$T/cred.json" "j['cred_id'] == json.load(open('$SRC/cred.json'))['cred_id']"; then
    ok "the replayed credential is the recorded one"
else
    not_ok "the replayed credential differs from the recorded one"
fi
run "get-assertion replay verifies (exit 0)" 0 --json --device "replay:$T/ga.pcapng.jsonl" \
    get-assertion --rp-id fixture.example --cred-file "$T/cred.json"
jcheck "signCount checked against the cred file" \
    "j['ok'] and j['previous_sign_count'] == 0 and j['sign_count'] >= 1"
run "the same assertion again: the counter did not rise (exit 5)" 5 \
    --device "replay:$T/ga.pcapng.jsonl" get-assertion --rp-id fixture.example \
    --cred-file "$T/cred.json"

run "another rp id diverges (exit 6)" 6 --device "replay:$T/mc.pcap.jsonl" make-credential \
    --rp-id b.example
grep_err "the divergence is named" \
    'replay diverged at report [0-9]* (CTAP2 makeCredential): recorded rp.id "fixture.example", sent "b.example"'
run "another request shape diverges (exit 6)" 6 --json --device "replay:$T/mc.pcap.jsonl" \
    make-credential --rp-id fixture.example --rk
jcheck "JSON names the divergence" \
    "j['exit'] == 6 and j['error_name'] == 'REPLAY_DIVERGED' and 'recorded options (absent), sent {1 entry}' in j['error']"

t0=$(date +%s.%N)
run "an info trace replayed for ping: exit 6" 6 --device "replay:$T/info.pcap.jsonl" ping
fast "an info trace replayed for ping fails at once" "$(secs_since "$t0")"
grep_err "ping is named" "recorded CTAP2 getInfo, sent CTAPHID PING (64 bytes)"

head -n 2 "$T/info.pcap.jsonl" >"$T/init-only.jsonl"
t0=$(date +%s.%N)
run "a request after the end of the trace: exit 6" 6 --device "replay:$T/init-only.jsonl" info
fast "a request after the end fails at once" "$(secs_since "$t0")"
grep_err "after the end is named" \
    "replay diverged at report 3 (CTAP2 getInfo): the request comes after the end of the trace (2 reports recorded)"

# a PIN flow recorded live: clientPIN requests carry fresh keys and an
# encrypted PIN, and replay all the same
if "$BIN/vcard" --help 2>&1 | grep -q -- '--pin PIN'; then
    need_vcard "vcard with a PIN for a live recording" --pin 1234
    run "record make-credential with a PIN" 0 --device "$VCARD_URI" --trace="$T/pin.jsonl" \
        --trace-format json make-credential --rp-id pin.example --pin 1234
    stop_vcard
    run "replay make-credential with the PIN verifies (exit 0)" 0 --device "replay:$T/pin.jsonl" \
        make-credential --rp-id pin.example --pin 1234
    run "replay without the PIN diverges (exit 6)" 6 --device "replay:$T/pin.jsonl" \
        make-credential --rp-id pin.example
    grep_err "at the recorded clientPIN request" \
        "(CTAP2 clientPIN): recorded CTAP2 clientPIN, sent CTAP2 makeCredential"
else
    echo "# vcard has no --pin: the PIN replay checks are not run (not counted)"
fi

# ---- 3. vcard --script ----
check_exit "vcard --script with no such trace exits 3" 3 "$BIN/vcard" --listen 127.0.0.1:0 \
    --script "$T/none.jsonl"
need_vcard "vcard --script serves the info capture" --script "$T/info.pcapng.jsonl"
run "rawctap info from the scripted card" 0 --json --device "$VCARD_URI" info
if "$PY" -c 'import json,sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for j in (a, b): j.pop("device", None); j.pop("seconds", None)
sys.exit(0 if a == b else 1)' "$T/info.recorded.json" "$T/out"; then
    ok "the scripted card answers the recorded getInfo"
else
    not_ok "the scripted card's getInfo differs from the recorded one"
fi
"$CTL" --control "$VCARD_CTL" status >"$T/status.json" 2>&1
if json_true "$T/status.json" "j['script']['position'] == 2 and not j['script']['diverged']"; then
    ok "vcard-ctl status shows the script's position"
else
    not_ok "vcard-ctl status lacks the script position"
    show_head 3 "$T/status.json"
fi
t0=$(date +%s.%N)
run "a request after the end: CTAPHID_ERROR (exit 4)" 4 --device "$VCARD_URI" ping
fast "the scripted card refuses at once" "$(secs_since "$t0")"
grep_err "rawctap names the error" "CTAPHID_ERROR OTHER"
if wait_for_line "$VCARD_DIR/stderr" '"event":"script_diverged"' 40 &&
    grep -q 'after the end of the trace (7 reports recorded)' "$VCARD_DIR/stderr"; then
    ok "vcard logs the divergence as one JSON line"
else
    not_ok "vcard did not log script_diverged"
    show_head 5 "$VCARD_DIR/stderr"
fi
"$CTL" --control "$VCARD_CTL" status >"$T/status.json" 2>&1
if json_true "$T/status.json" "j['script']['diverged'] and 'PING' in j['script']['error']"; then
    ok "vcard-ctl status shows the divergence"
else
    not_ok "vcard-ctl status lacks the divergence"
fi
stop_vcard

need_vcard "vcard --script serves the info capture to python-fido2" --script "$T/info.pcap.jsonl"
timeout -k 2 30 "$PY" tests/e2e/test_replay_fido2.py info "$VCARD_PORT" "$T/info.pcap.jsonl" \
    >"$T/py.out" 2>&1
merge_py "$T/py.out" "python-fido2 info"
stop_vcard

need_vcard "vcard --script serves the makeCredential capture" --script "$T/mc.pcapng.jsonl"
run "rawctap make-credential from the scripted card: signed over the recorded hash (exit 5)" 5 \
    --device "$VCARD_URI" make-credential --rp-id fixture.example
grep_err "the scripted card replays its keepalives" "keepalive UPNEEDED"
grep_err "attestation checked against this run's clientDataHash" "did not verify"
stop_vcard

need_vcard "vcard --script serves the makeCredential capture to python-fido2" \
    --script "$T/mc.pcap.jsonl"
timeout -k 2 30 "$PY" tests/e2e/test_replay_fido2.py mc "$VCARD_PORT" "$T/mc.pcap.jsonl" \
    >"$T/py.out" 2>&1
merge_py "$T/py.out" "python-fido2 makeCredential"
stop_vcard

need_vcard "vcard --script, a diverging request" --script "$T/mc.pcap.jsonl"
run "another rp id from the scripted card: CTAPHID_ERROR (exit 4)" 4 --device "$VCARD_URI" \
    make-credential --rp-id b.example
if wait_for_line "$VCARD_DIR/stderr" 'recorded rp.id \\"fixture.example\\", sent \\"b.example\\"' 40; then
    ok "vcard names the diverging field"
else
    not_ok "vcard's divergence line lacks the field"
    show_head 5 "$VCARD_DIR/stderr"
fi
stop_vcard

finish

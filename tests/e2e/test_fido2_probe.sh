#!/bin/sh
# End-to-end: fido2-probe's list (empty machine, a captured-style sysfs
# tree, announced virtual cards) and its presence check against the virtual
# card: present, dead port, and the no-init-reply fault (INIT timeout).
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib.sh
tool_test "$BIN/fido2-probe"

# a failed run or jcheck shows stdout and stderr together
run_show() {
    show_head 15 "$T/out" "$T/err"
}
jcheck_show() {
    show_head 12 "$T/out" "$T/jerr"
}

out_is() {
    if [ "$(cat "$T/out")" = "$2" ]; then ok "$1"; else
        not_ok "$1" "stdout is '$(head -c 200 "$T/out")'"
    fi
}

# ---- options
run "--help exits 0" 0 --help
grep_out "--help names --list" "--list"
run "--version exits 0" 0 --version
grep_out "--version prints the version" "^fido2-probe [0-9]"
run "unknown option is a usage error" 2 --bogus
run "--timeout-ms 0 is a usage error" 2 --timeout-ms 0
run "--timeout-ms abc is a usage error" 2 --timeout-ms abc
run "--backend nope is a usage error" 2 --backend nope
run "--list with --device is a usage error" 2 --list --device udp:127.0.0.1:1
run "a stray argument is a usage error" 2 list

# ---- nothing attached, nothing announced
EMPTY="$T/empty"
mkdir -p "$EMPTY"
export KCARD_ANNOUNCE_DIR="$EMPTY"
KCARD_SYSFS_HIDRAW="$T/no-such-sysfs" run "--list with no /sys/class/hidraw exits 0" 0 --list
out_is "--list prints exactly the prototype's sentence" "No CTAP HID devices found."
KCARD_SYSFS_HIDRAW="$T/no-such-sysfs" run "--list --json with nothing exits 0" 0 --list --json
jcheck "--list --json with nothing is an empty array" 'j == []'
if ! ls /sys/class/hidraw 2>/dev/null | grep -q hidraw; then
    run "--list on this machine (no hidraw) exits 0" 0 --list
    out_is "--list on this machine says no devices" "No CTAP HID devices found."
    run "--list --backend hidapi on this machine exits 0" 0 --list --backend hidapi
    out_is "--list --backend hidapi says no devices" "No CTAP HID devices found."
else
    echo "# this machine has hidraw nodes: the real-sysfs list checks are not run"
fi
KCARD_SYSFS_HIDRAW="$T/no-such-sysfs" run "presence check with nothing exits 1" 1 --json
jcheck "presence check with nothing: present false, no-device" \
    'j["present"] is False and j["error_code"] == "no-device" and "no FIDO device" in j["error"] and j["fix"]'

# ---- a captured-style sysfs tree: FIDO + vendor interface of one USB card
SYS="$T/sys"
"$PY" - "$SYS" <<'EOF'
import os, sys
root = sys.argv[1]
fido = bytes.fromhex("06d0f10901a1010920150026ff007508954081020921150026ff00750895409102c0")
vendor = bytes.fromhex("0600ff0901a101750895208102952091 02c0".replace(" ", ""))
usb = os.path.join(root, "devices/pci0000:00/usb1/1-2")
for n, (iface, desc) in enumerate([("1-2:1.0", fido), ("1-2:1.1", vendor)]):
    idir = os.path.join(usb, iface)
    hid = os.path.join(idir, "0003:1209:000A.000%d" % (n + 1))
    os.makedirs(hid)
    open(os.path.join(idir, "bInterfaceNumber"), "w").write("%02x\n" % n)
    open(os.path.join(hid, "report_descriptor"), "wb").write(desc)
    open(os.path.join(hid, "uevent"), "w").write(
        "HID_ID=0003:00001209:0000000A\nHID_NAME=Test Card\nHID_UNIQ=E2E-1\n"
        "HID_PHYS=usb-0000:00:14.0-2/input%d\n" % n)
    node = os.path.join(root, "class/hidraw/hidraw%d" % n)
    os.makedirs(node)
    os.symlink(hid, os.path.join(node, "device"))
    os.makedirs(os.path.join(root, "dev"), exist_ok=True)
    open(os.path.join(root, "dev/hidraw%d" % n), "w").close()
EOF
export KCARD_SYSFS_HIDRAW="$SYS/class/hidraw" KCARD_DEV_DIR="$SYS/dev"
run "--list --json over a sysfs tree exits 0" 0 --list --json --all
jcheck "the tree lists two nodes" 'len(j) == 2'
jcheck "hidraw0 is the FIDO node with ids, serial, usage, sizes" \
    'j[0]["fido"] and j[0]["vendor_id"] == "1209" and j[0]["product_id"] == "000a" and j[0]["hid_uniq"] == "E2E-1" and j[0]["usage_page"] == "0xf1d0" and j[0]["in_report_len"] == 64 and j[0]["bus"] == "usb" and j[0]["interface"] == 0'
jcheck "hidraw1 is the vendor node, sibling of hidraw0" \
    'not j[1]["fido"] and j[1]["usage_page"] == "0xff00" and j[1]["siblings"] == [j[0]["path"]] and j[0]["siblings"] == [j[1]["path"]]'
jcheck "the physical device is the USB device, not the interface" \
    'j[0]["device"].endswith("/usb1/1-2") and j[0]["device"] == j[1]["device"]'
jcheck "root may open both" 'j[0]["permission"] is True and j[1]["permission"] is True'
run "--list hides the vendor node" 0 --list
grep_out "--list text names the FIDO node" "hidraw0  FIDO  hidraw  usb 1209:000a  \"Test Card\"  serial E2E-1"
grep_out "--list text names its sibling" "same device: $SYS/dev/hidraw1"
rm -r "$SYS/class/hidraw/hidraw0" # the FIDO interface gone, the vendor one left
run "only a vendor node visible: --list exits 0" 0 --list
out_is "only a vendor node visible: no CTAP HID devices" "No CTAP HID devices found."
if grep -q "1 HID node(s) without the FIDO usage page 0xF1D0 hidden; --all shows them" "$T/err"; then
    ok "only a vendor node visible: stderr points at --all"
else
    not_ok "only a vendor node visible: stderr points at --all" "$(cat "$T/err")"
fi
unset KCARD_SYSFS_HIDRAW KCARD_DEV_DIR
export KCARD_SYSFS_HIDRAW="$T/no-such-sysfs"

# ---- an announced virtual card
ANN="$T/announce"
mkdir -p "$ANN"
start_vcard --announce "$ANN" || exit 1
export KCARD_ANNOUNCE_DIR="$ANN"
run "--list with an announced vcard exits 0" 0 --list --json
jcheck "--list shows the announced card as kind udp" \
    'len(j) == 1 and j[0]["kind"] == "udp" and j[0]["uri"] == "'"$VCARD_URI"'" and j[0]["fido"] and j[0]["path"].startswith("'"$ANN"'/")'
run "--list text with an announced vcard" 0 --list
grep_out "--list text names the announced card" "announced virtual card: $VCARD_URI"

run "presence check (auto: the announced card) exits 0" 0 --json
jcheck "auto found the announced card, present" \
    'j["present"] is True and j["device"] == "'"$VCARD_URI"'" and j["error"] is None'
run "presence check --device exits 0" 0 --json --device "$VCARD_URI"
jcheck "present with timings" \
    'j["present"] and all(isinstance(j[k], (int, float)) and j[k] >= 0 for k in ("open_ms", "init_ms", "getinfo_ms", "total_ms")) and j["total_ms"] >= j["init_ms"]'
jcheck "getInfo fields: versions, aaguid, pin protocols, options" \
    '"FIDO_2_1" in j["versions"] and len(j["aaguid"]) == 36 and j["pin_protocols"] == [2, 1] and j["options"]["up"] is True and j["ctap2"] is True and j["ctaphid"]["cbor"] is True'
run "presence check as text exits 0" 0 --device "$VCARD_URI"
grep_out "text says present: yes" "^present: yes$"
grep_out "text gives the timings" "^timings: open [0-9.]* ms init [0-9.]* ms getInfo [0-9.]* ms"

# --follow: a udp card never hangs up, so the wait ends at its bound
run "--follow on a card that stays exits 1" 1 --json --device "$VCARD_URI" --follow 300
jcheck "--follow names why it ended, the first check is kept" \
    'j["present"] is True and j["follow"]["to"] is None and "did not go away within 300 ms" in j["follow"]["error"]'
run "--follow 0 is a usage error" 2 --follow 0
run "--follow with --list is a usage error" 2 --list --follow 100

# ---- a dead port
run "presence check on a dead port exits 1" 1 --json --device udp:127.0.0.1:1 --timeout-ms 500
jcheck "dead port: present false, nothing answers" \
    'j["present"] is False and j["error_code"] == "no-device" and "nothing listens" in j["error"] and j["fix"]'

# ---- INIT never answered
if "$CTL" --control "$VCARD_CTL" fault no-init-reply >/dev/null 2>&1; then
    ok "vcard-ctl sets fault no-init-reply"
else
    not_ok "vcard-ctl sets fault no-init-reply"
fi
start_s=$(date +%s)
run "presence check with no INIT reply exits 1" 1 --json --device "$VCARD_URI" --timeout-ms 400
end_s=$(date +%s)
jcheck "no INIT reply: present false, INIT timeout named" \
    'j["present"] is False and j["error_code"] == "init-timeout" and "INIT timeout" in j["error"] and "400 ms" in j["error"] and "power-cycle" in j["fix"]'
jcheck "no INIT reply: init_ms is the bound, getInfo not reached" \
    'j["init_ms"] >= 400 and j["getinfo_ms"] is None'
if [ $((end_s - start_s)) -le 3 ]; then ok "the check is bounded"; else
    not_ok "the check is bounded" "took $((end_s - start_s)) s"
fi
run "no INIT reply as text exits 1" 1 --device "$VCARD_URI" --timeout-ms 200
grep_out "text says present: no" "^present: no$"
grep_out "text names the INIT timeout" "^error: INIT timeout: .*\[init-timeout\]$"
stop_vcard

# the card gone: the announce file is removed with it
run "after the vcard stopped, --list exits 0" 0 --list
out_is "after the vcard stopped: no devices" "No CTAP HID devices found."

finish

# vcard --uhid: the virtual card as a real hidraw node, driven by rawctap
# and by an independent client (Debian's fido2-token).
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null
vcard --listen 127.0.0.1:0 --uhid=vendor --control /tmp/vc.sock -v >/tmp/vc.log 2>&1 &
vc_pid=$!
check "vcard --uhid starts" wait_for 10 log_has /tmp/vc.log "listening on udp"
cat /tmp/vc.log
node=""
for n in /sys/class/hidraw/hidraw*; do
    b=$(basename "$n")
    if is_fido "$b" && grep -q "HID_ID=.*00001209:0000000C" "$n/device/uevent" 2>/dev/null; then node=$b; fi
done
echo "# fido node: $node"
check "vcard --uhid makes a FIDO hidraw node" [ -n "$node" ]
rawctap --device /dev/$node init >/tmp/r1.out 2>&1
check "rawctap init through vcard's hidraw node" grep -q "protocol_version: 2" /tmp/r1.out
cat /tmp/r1.out
rawctap --device /dev/$node info >/tmp/r2.out 2>&1
check "rawctap info through vcard's hidraw node" grep -q "FIDO_2_1" /tmp/r2.out
rawctap --device /dev/$node make-credential --rp-id localhost >/tmp/r3.out 2>&1
check "rawctap make-credential through vcard's hidraw node" [ $? -eq 0 ]
tail -3 /tmp/r3.out
check "vcard logged a request from uhid" log_has /tmp/vc.log '"client":"uhid"'
fido2-token -L >/tmp/ft.out 2>&1
cat /tmp/ft.out
check "fido2-token -I on vcard's node" fido2-token -I /dev/$node
vcard-ctl --control /tmp/vc.sock status | grep -q '"uhid": true'
check "vcard-ctl status says uhid" [ $? -eq 0 ]

# unplug and replug: the UHID device is destroyed and re-created, so the
# hidraw node goes away (a descriptor held open on it then fails) and a new
# device comes back, which rawctap --device auto finds.
# fido_node: the name of vcard's FIDO hidraw node, empty when there is none
fido_node() {
    for n in /sys/class/hidraw/hidraw*; do
        [ -e "$n" ] || continue
        b=$(basename "$n")
        if is_fido "$b" && grep -q "HID_ID=.*00001209:0000000C" "$n/device/uevent" 2>/dev/null; then
            echo "$b"
            return 0
        fi
    done
}
# hid_dev NODE: the HID device behind a hidraw node (0003:1209:000C.NNNN)
hid_dev() { basename "$(readlink -f "/sys/class/hidraw/$1/device")"; }
# held_write: write one 64-byte report (after its report id) on descriptor 7
held_write() { dd if=/dev/zero bs=65 count=1 >&7 2>/dev/null; }
has_fido_node() { [ -n "$(fido_node)" ]; }
new_fido_dev() { n=$(fido_node) && [ -n "$n" ] && [ "$(hid_dev "$n")" != "$old_dev" ]; }
old_dev=$(hid_dev "$node")
echo "# before unplug: $node is $old_dev"
exec 7<>"/dev/$node"
check "a descriptor held on the node takes a report before unplug" held_write
check "vcard-ctl unplug" vcard-ctl --control /tmp/vc.sock unplug
check "unplug removes the FIDO hidraw node" wait_for 5 gone "/sys/class/hidraw/$node"
check "no FIDO hidraw node while unplugged" [ -z "$(fido_node)" ]
check "the held descriptor fails after unplug" sh -c '! dd if=/dev/zero bs=65 count=1 >&7 2>/dev/null'
vcard-ctl --control /tmp/vc.sock status | grep -q '"uhid": false'
check "vcard-ctl status says no uhid while unplugged" [ $? -eq 0 ]
check "vcard-ctl replug" vcard-ctl --control /tmp/vc.sock replug
check "replug brings a FIDO hidraw node back" wait_for 5 has_fido_node
node2=$(fido_node)
echo "# after replug: $node2 is $(hid_dev "$node2")"
check "the node after replug is a new HID device" new_fido_dev
check "the descriptor held on the old node still fails" sh -c '! dd if=/dev/zero bs=65 count=1 >&7 2>/dev/null'
exec 7>&-
rawctap --device auto init >/tmp/ra.out 2>&1
check "rawctap --device auto finds the replugged card" grep -q "protocol_version: 2" /tmp/ra.out
cat /tmp/ra.out
rawctap --device "/dev/$node2" info >/tmp/ri.out 2>&1
check "rawctap info through the new node" grep -q "FIDO_2_1" /tmp/ri.out
# replug without unplug: a new device first, then the old one goes
old_dev=$(hid_dev "$node2")
check "vcard-ctl replug while plugged in" vcard-ctl --control /tmp/vc.sock replug
check "replug while plugged in makes a new HID device" wait_for 5 new_fido_dev
check "...and leaves exactly one FIDO node" [ "$(for n in /sys/class/hidraw/hidraw*; do b=$(basename "$n"); is_fido "$b" && echo "$b"; done | wc -l)" -eq 1 ]
node=$(fido_node)

kill -TERM $vc_pid
check "vcard --uhid exits on SIGTERM" wait_for 5 stopped $vc_pid
check "its hidraw node is gone" wait_for 5 gone /dev/$node

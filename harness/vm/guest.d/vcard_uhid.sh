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
kill -TERM $vc_pid
check "vcard --uhid exits on SIGTERM" wait_for 5 stopped $vc_pid
check "its hidraw node is gone" wait_for 5 gone /dev/$node

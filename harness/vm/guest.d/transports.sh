# libctaphid's transports over a real kernel hidraw node (vcard --uhid):
# hidraw, hidapi by path and by VID:PID, auto; a credential made and used
# over hidraw; and rawctap's permission diagnosis for a non-root user.
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null
vcard --listen 127.0.0.1:0 --uhid --control /tmp/vt.sock >/tmp/vt.log 2>&1 &
vt_pid=$!
check "vcard --uhid starts (transports)" wait_for 10 log_has /tmp/vt.log "listening on udp"
node=""
wait_for 5 sh -c 'ls /sys/class/hidraw/ | grep -q hidraw'
for n in /sys/class/hidraw/hidraw*; do
    b=$(basename "$n")
    if is_fido "$b" && grep -q "HID_ID=.*00001209:0000000C" "$n/device/uevent" 2>/dev/null; then node=$b; fi
done
check "the card's FIDO node is found ($node)" [ -n "$node" ]

rawctap --device "hidapi:/dev/$node" init >/tmp/t1.out 2>&1
check "hidapi transport by path: init" grep -q "protocol_version: 2" /tmp/t1.out
rawctap --device hidapi:1209:000c info >/tmp/t2.out 2>&1
check "hidapi transport by VID:PID: info" grep -q "FIDO_2_1" /tmp/t2.out
rawctap --device auto init >/tmp/t3.out 2>&1
check "auto transport finds the hidraw card" grep -q "protocol_version: 2" /tmp/t3.out
# 1800 bytes = 31 reports each way. The kernel's uhid driver queues at most
# 32 output reports and drops the rest ("Output queue is full"): unlike a USB
# endpoint it cannot make the writer wait, so longer bursts to a uhid card can
# be lost. 7609-byte messages are tested over UDP in tests/e2e.
rawctap --device-path "/dev/$node" ping --size 1800 >/tmp/t4.out 2>&1
rc=$?
check "hidraw: 1800-byte ping (31 reports each way)" [ "$rc" -eq 0 ]

rawctap --device-path "/dev/$node" make-credential --rp-id localhost --cred-file /tmp/cred.json >/tmp/t5.out 2>&1
check "hidraw: make-credential, attestation verified" grep -q "^attestation: ok" /tmp/t5.out
rawctap --device-path "/dev/$node" get-assertion --rp-id localhost --cred-file /tmp/cred.json >/tmp/t6.out 2>&1
check "hidraw: get-assertion, signature verified" grep -q "^verified: ok" /tmp/t6.out

# a node the user may not open: exit 3, the path and the fix named
chmod 000 "/dev/$node"
su -s /bin/sh kuser -c "rawctap --device-path /dev/$node init" >/tmp/t7.out 2>&1
rc=$?
cat /tmp/t7.out
check "non-root on a mode 000 node: rawctap exits 3" [ "$rc" -eq 3 ]
check "the permission diagnosis names the node" grep -q "/dev/$node" /tmp/t7.out
check "the permission diagnosis names the fix (udev rule)" grep -qi "udev" /tmp/t7.out
chmod 600 "/dev/$node"

kill -TERM $vt_pid
check "vcard --uhid stops (transports)" wait_for 5 stopped $vt_pid

# The card re-enumerates in the middle of a command: rawctap --device auto
# follows it by identity to the new node, opens a channel there and sends the
# request again (the runbook's "auto-detect the working /dev/hidraw* node
# when the card re-enumerates").
vcard --listen 127.0.0.1:0 --uhid --presence delay:1500 --control /tmp/vf.sock >/tmp/vf.log 2>&1 &
vf_pid=$!
check "vcard --uhid starts (follow)" wait_for 10 log_has /tmp/vf.log "listening on udp"
rawctap --device auto make-credential --rp-id localhost >/tmp/f1.out 2>/tmp/f1.err &
rc_pid=$!
sleep 0.7
vcard-ctl --control /tmp/vf.sock replug >/dev/null
wait $rc_pid
rc=$?
tail -n 3 /tmp/f1.err
check "auto: make-credential survives a re-enumeration mid-command (exit $rc)" [ "$rc" -eq 0 ]
check "auto: rawctap says it followed the card to its new node" grep -q "re-enumerated during the command; followed it to hidraw:/dev/hidraw" /tmp/f1.err
kill -TERM $vf_pid
check "vcard --uhid stops (follow)" wait_for 5 stopped $vf_pid

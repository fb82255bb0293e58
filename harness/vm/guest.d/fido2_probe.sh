# fido2-probe on the real kernel (sourced by guest.sh; busybox sh, no
# python): the selftest's FIDO + vendor UHID pair must list as one FIDO and
# one non-FIDO node of the same device, with HID_UNIQ; a mode 000 node seen
# by uid 1000 shows permission false and the fix; the presence check runs
# INIT through hidraw and names the card by HID id and serial.
if [ -x /bin/fido2-probe ]; then
    FP_OUT=/tmp/fp.out
    # fp_line PATH: the JSON object of that node (one object per line)
    fp_line() { grep "\"path\":\"$1\"" "$FP_OUT"; }
    fp_has() { fp_line "$1" | grep -q "$2"; }

    start_serve
    if wait_for 5 log_has "$SERVE_LOG" '^ready' &&
        wait_for 5 exists /dev/hidraw0 && wait_for 5 exists /dev/hidraw1; then
        ok "fido2-probe: selftest pair is up"
    else
        not_ok "fido2-probe: selftest pair is up"
    fi

    fido2-probe --list --json --all >"$FP_OUT" 2>/tmp/fp.err
    check "fido2-probe --list --json --all exits 0" [ $? = 0 ]
    sed 's/^/#   /' "$FP_OUT"
    check "fido2-probe: hidraw0 is FIDO (usage page 0xf1d0)" \
        fp_has /dev/hidraw0 '"fido":true,.*"usage_page":"0xf1d0","usage":"0x0001"'
    check "fido2-probe: hidraw1 is not FIDO (vendor page 0xff00)" \
        fp_has /dev/hidraw1 '"fido":false,.*"usage_page":"0xff00"'
    check "fido2-probe: HID_UNIQ and ids of hidraw0" \
        fp_has /dev/hidraw0 '"bus":"usb","bus_id":3,"vendor_id":"1209","product_id":"000a","hid_name":"kcard selftest card","hid_uniq":"KC-SELFTEST-1"'
    check "fido2-probe: 64-byte reports from the descriptor" \
        fp_has /dev/hidraw0 '"in_report_len":64,"out_report_len":64'
    check "fido2-probe: hidraw0's sibling is hidraw1" fp_has /dev/hidraw0 '"siblings":\["/dev/hidraw1"\]'
    check "fido2-probe: hidraw1's sibling is hidraw0" fp_has /dev/hidraw1 '"siblings":\["/dev/hidraw0"\]'
    check "fido2-probe: parent is virtual/misc/uhid" \
        fp_has /dev/hidraw0 '"virtual":true,.*"device":"/sys/devices/virtual/misc/uhid"'
    check "fido2-probe: root may open both" fp_has /dev/hidraw1 '"permission":true'

    fido2-probe --list --json >"$FP_OUT" 2>/dev/null
    if fp_line /dev/hidraw0 >/dev/null && ! fp_line /dev/hidraw1 >/dev/null &&
        fp_has /dev/hidraw0 '"siblings":\["/dev/hidraw1"\]'; then
        ok "fido2-probe --list hides the vendor node but names it as sibling"
    else
        not_ok "fido2-probe --list hides the vendor node but names it as sibling"
    fi
    fido2-probe --list >"$FP_OUT" 2>&1
    check "fido2-probe --list (text) shows the sibling" grep -q 'same device: /dev/hidraw1' "$FP_OUT"

    # permission: mode 000 seen by uid 1000
    chmod 000 /dev/hidraw0
    su -s /bin/sh kuser -c 'fido2-probe --list --json --all' >"$FP_OUT" 2>&1
    if fp_has /dev/hidraw0 '"permission":false,"access":"denied","owner":"root","group":"root","mode":"0000"' &&
        fp_has /dev/hidraw0 '"fix":"install the udev rule fixtures/udev/70-kcard-fido.rules'; then
        ok "fido2-probe: uid 1000 sees permission false, owner, mode and the fix"
    else
        not_ok "fido2-probe: uid 1000 sees permission false, owner, mode and the fix"
        sed 's/^/#   /' "$FP_OUT"
    fi
    check "fido2-probe: the vendor node's fix says it is not needed" \
        fp_has /dev/hidraw1 '"fix":"none needed: not a FIDO interface'
    su -s /bin/sh kuser -c 'fido2-probe --json --device /dev/hidraw0' >"$FP_OUT" 2>&1
    rc=$?
    if [ "$rc" = 1 ] && grep -q '"present": false' "$FP_OUT" &&
        grep -q '"error_code": "permission"' "$FP_OUT" &&
        grep -q 'permission denied (owner root:root mode 0000)' "$FP_OUT"; then
        ok "fido2-probe presence check as uid 1000: permission, exit 1"
    else
        not_ok "fido2-probe presence check as uid 1000: permission, exit 1 (rc $rc)"
        sed 's/^/#   /' "$FP_OUT"
    fi
    chmod 600 /dev/hidraw0

    # presence check through hidraw as root: the selftest answers INIT only
    fido2-probe --json --timeout-ms 2000 >"$FP_OUT" 2>&1
    rc=$?
    if grep -q '"device": "hidraw:/dev/hidraw0"' "$FP_OUT" &&
        grep -q '"hid_uniq": "KC-SELFTEST-1"' "$FP_OUT" &&
        grep -q '"init_ms": [0-9]' "$FP_OUT" && grep -q '"protocol": 2' "$FP_OUT"; then
        ok "fido2-probe auto: INIT through hidraw, card named by id and serial"
    else
        not_ok "fido2-probe auto: INIT through hidraw, card named by id and serial (rc $rc)"
        sed 's/^/#   /' "$FP_OUT"
    fi
    if [ "$rc" = 1 ] && grep -q '"error_code": "getinfo-failed"' "$FP_OUT"; then
        ok "fido2-probe: the INIT-only selftest is not a present card (getInfo failed), exit 1"
    else
        not_ok "fido2-probe: the INIT-only selftest is not a present card (rc $rc)"
    fi

    stop_serve
    wait_for 3 gone /dev/hidraw0
    wait_for 3 gone /dev/hidraw1

    # --follow: fido2-probe holds hidraw0; the card re-plugs while it does,
    # so it comes back as hidraw1; kc_transport_reopen finds it by HID id
    # and serial (the stale descriptor must read as "unplugged")
    start_serve --no-vendor
    wait_for 5 log_has "$SERVE_LOG" '^ready'
    wait_for 5 exists /dev/hidraw0
    fido2-probe --json --follow 15000 --timeout-ms 2000 >/tmp/fpf.out 2>/tmp/fpf.err &
    fp_pid=$!
    if wait_for 5 log_has /tmp/fpf.err 'holding hidraw:/dev/hidraw0'; then
        ok "fido2-probe --follow holds hidraw0"
    else
        not_ok "fido2-probe --follow holds hidraw0 ($(cat /tmp/fpf.err))"
    fi
    stop_serve
    wait_for 3 gone /dev/hidraw0
    start_serve --no-vendor
    wait_for 5 log_has "$SERVE_LOG" '^ready'
    wait_for 10 log_has /tmp/fpf.out '^}'
    wait "$fp_pid"
    rc=$?
    sed 's/^/#   /' /tmp/fpf.out /tmp/fpf.err
    if grep -q '"from": "hidraw:/dev/hidraw0"' /tmp/fpf.out &&
        grep -q '"to": "hidraw:/dev/hidraw1"' /tmp/fpf.out &&
        grep -q '^  "device": "hidraw:/dev/hidraw1"' /tmp/fpf.out; then
        ok "fido2-probe --follow finds the re-enumerated card at hidraw1"
    else
        not_ok "fido2-probe --follow finds the re-enumerated card at hidraw1 (rc $rc)"
    fi
    if grep -q '^  "hid_uniq": "KC-SELFTEST-1"' /tmp/fpf.out &&
        grep -q '^    "protocol": 2' /tmp/fpf.out; then
        ok "fido2-probe --follow: INIT answers at the new node, same serial"
    else
        not_ok "fido2-probe --follow: INIT answers at the new node, same serial"
    fi
    stop_serve
    wait_for 3 gone /dev/hidraw1

    fido2-probe --list >"$FP_OUT" 2>&1
    check "fido2-probe --list after unplug: No CTAP HID devices found." \
        grep -qx 'No CTAP HID devices found.' "$FP_OUT"

    # a whole card on hidraw (vcard --uhid with its vendor interface):
    # the presence check succeeds end to end through the kernel
    if [ -x /bin/vcard ] && vcard --help 2>&1 | grep -q -- '--uhid'; then
        ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null
        vcard --listen 127.0.0.1:0 --uhid=vendor --control /tmp/fpv.sock >/tmp/fpv.log 2>&1 &
        fpv_pid=$!
        wait_for 10 log_has /tmp/fpv.log "listening on udp"
        wait_for 5 sh -c 'ls /sys/class/hidraw | grep -q hidraw'
        fido2-probe --json --timeout-ms 3000 >"$FP_OUT" 2>&1
        rc=$?
        if [ "$rc" = 0 ] && grep -q '"present": true' "$FP_OUT" &&
            grep -q '"device": "hidraw:/dev/hidraw' "$FP_OUT" &&
            grep -q '"FIDO_2_1"' "$FP_OUT" && grep -q '"getinfo_ms": [0-9]' "$FP_OUT"; then
            ok "fido2-probe: vcard --uhid is present through hidraw (INIT + getInfo)"
        else
            not_ok "fido2-probe: vcard --uhid is present through hidraw (rc $rc)"
            sed 's/^/#   /' "$FP_OUT" /tmp/fpv.log
        fi
        fido2-probe --list --json --all >"$FP_OUT" 2>&1
        if [ "$(grep -c '"fido":true' "$FP_OUT")" = 1 ] &&
            [ "$(grep -c '"fido":false' "$FP_OUT")" = 1 ] &&
            grep '"fido":true' "$FP_OUT" | grep -q '"siblings":\["/dev/hidraw[0-9]*"\]'; then
            ok "fido2-probe: vcard's FIDO and vendor interfaces are siblings"
        else
            not_ok "fido2-probe: vcard's FIDO and vendor interfaces are siblings"
            sed 's/^/#   /' "$FP_OUT"
        fi
        fido2-probe --list --json --backend hidapi >"$FP_OUT" 2>&1
        if grep '"kind":"hidapi"' "$FP_OUT" | grep '"fido":true' |
            grep -q '"uri":"hidapi:/dev/hidraw[0-9]*",.*"vendor_id":"1209".*"usage_page":"0xf1d0"'; then
            ok "fido2-probe --backend hidapi lists the FIDO node"
        else
            not_ok "fido2-probe --backend hidapi lists the FIDO node"
            sed 's/^/#   /' "$FP_OUT"
        fi
        fido2-probe --json --backend hidapi >"$FP_OUT" 2>&1
        if grep -q '"present": true' "$FP_OUT" && grep -q '"device": "hidapi:/dev/hidraw' "$FP_OUT"; then
            ok "fido2-probe --backend hidapi: present through hidapi"
        else
            not_ok "fido2-probe --backend hidapi: present through hidapi"
            sed 's/^/#   /' "$FP_OUT"
        fi
        kill -TERM "$fpv_pid" 2>/dev/null
        wait "$fpv_pid" 2>/dev/null
        wait_for 3 sh -c '! ls /sys/class/hidraw | grep -q hidraw'
    fi
fi

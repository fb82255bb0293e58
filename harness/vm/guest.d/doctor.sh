# rawctap doctor on real hidraw (sourced by guest.sh; busybox sh, no
# python): vcard --uhid=vendor is a FIDO node plus a vendor sibling made by
# the kernel's HID stack. Each transport diagnosis that needs a real node is
# provoked and its exact code, exit status and fix asserted from --json:
# OK (by path and auto), NOT_FIDO_NODE (the vendor sibling),
# PERMISSION_DENIED (mode 000 as uid 1000, by path and auto), UNPLUGGED
# (unplug while the makeCredential waits for presence) and REENUMERATED
# (replug while it waits, --device auto). The "touch the card now" line
# doctor prints on KEEPALIVE UPNEEDED is the synchronisation point: no sleeps.
if [ -x /bin/rawctap ] && [ -x /bin/vcard ] && [ -x /bin/vcard-ctl ] &&
    vcard --help 2>&1 | grep -q -- '--uhid'; then
    DR_SOCK=/tmp/dr.sock
    DR_OUT=/tmp/dr.json
    DR_ERR=/tmp/dr.err

    # dr_node fido|vendor: vcard's hidraw node of that kind (1209:000c)
    dr_node() {
        for dr_n in /sys/class/hidraw/hidraw*; do
            [ -e "$dr_n" ] || continue
            dr_b=$(basename "$dr_n")
            grep -q 'HID_ID=.*00001209:0000000C' "$dr_n/device/uevent" 2>/dev/null || continue
            if is_fido "$dr_b"; then
                [ "$1" = fido ] && echo "$dr_b" && return 0
            else
                [ "$1" = vendor ] && echo "$dr_b" && return 0
            fi
        done
        return 1
    }
    dr_has_pair() { dr_node fido >/dev/null && dr_node vendor >/dev/null; }
    dr_no_hidraw() {
        for dr_n in /sys/class/hidraw/hidraw*; do
            [ -e "$dr_n" ] && return 1
        done
        return 0
    }
    # dr_moved OLD: vcard's FIDO node exists and is not OLD
    dr_moved() {
        dr_m=$(dr_node fido) && [ "$dr_m" != "$1" ]
    }
    # the first "KEY":value of the --json object (top level: keys are
    # sorted, "code" and "exit" come before steps and warnings)
    dr_field() { grep -oE "\"$2\":(\"[^\"]*\"|[0-9]+)" "$1" | head -n 1 | sed 's/^"[^"]*"://; s/"//g'; }
    # every "fix" text (the diagnosis and each warning), escapes kept
    dr_fixes() { grep -oE '"fix":"([^"\\]|\\.)*"' "$1"; }
    # dr_fix_has TEXT: the diagnosis's own fix (the first) contains TEXT
    dr_fix_has() { dr_fixes "$DR_OUT" | head -n 1 | grep -qF "$1"; }
    # dr_evidence_has TEXT: the diagnosis's evidence list contains TEXT
    dr_evidence_has() { grep -oE '"evidence":\[([^]"]|"([^"\\]|\\.)*")*\]' "$DR_OUT" | head -n 1 | grep -qF "$1"; }
    dr_out_has() { grep -qF "$1" "$DR_OUT"; }
    # a fix that advises resetting the card ("a USB reset" describes a cause)
    dr_advises_reset() { dr_fixes "$1" | sed 's/USB reset//g' | grep -qi 'reset'; }
    dr_now_cs() {
        read -r dr_up _ </proc/uptime
        echo "${dr_up%.*}${dr_up#*.}"
    }
    dr_secs() { echo "$(($1 / 100)).$(printf %02d $(($1 % 100)))"; }

    # dr_expect LABEL CODE EXIT RC: the code, the exit field and the status
    # agree, and no fix advises a reset; on failure the doctor's answer is
    # printed (code, evidence, fix)
    dr_expect() {
        echo "# doctor $1: $(dr_secs $(($(dr_now_cs) - dr_t0))) s"
        dr_code=$(dr_field "$DR_OUT" code)
        dr_exit=$(dr_field "$DR_OUT" exit)
        if [ "$dr_code" = "$2" ] && [ "$dr_exit" = "$3" ] && [ "$4" = "$3" ]; then
            ok "doctor $1: $2, exit $3"
        else
            not_ok "doctor $1: want $2 exit $3, got ${dr_code:-no code} exit ${dr_exit:-?} (status $4)"
            sed 's/^/#   json: /' "$DR_OUT"
            sed 's/^/#   stderr: /' "$DR_ERR"
        fi
        if [ -s "$DR_OUT" ] && ! dr_advises_reset "$DR_OUT"; then
            ok "doctor $1: no fix advises a reset"
        else
            not_ok "doctor $1: no fix advises a reset"
            dr_fixes "$DR_OUT" | sed 's/^/#   /'
        fi
    }
    # dr_bg ARGS...: doctor in the background (pid in dr_pid)
    dr_bg() {
        : >"$DR_OUT"
        : >"$DR_ERR"
        rawctap --json "$@" doctor >"$DR_OUT" 2>"$DR_ERR" &
        dr_pid=$!
    }
    # dr_reap: waits (bounded) for the background doctor; status in dr_rc
    dr_reap() {
        wait_for 15 stopped "$dr_pid" || kill "$dr_pid" 2>/dev/null
        wait "$dr_pid"
        dr_rc=$?
    }

    dr_start=$(dr_now_cs)
    ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null
    vcard --listen 127.0.0.1:0 --uhid=vendor --control "$DR_SOCK" >/tmp/dr.vcard.log 2>&1 &
    dr_vcard=$!
    if wait_for 10 log_has /tmp/dr.vcard.log 'listening on udp' && wait_for 5 dr_has_pair; then
        ok "doctor: vcard --uhid=vendor gives a FIDO node and its vendor sibling"
    else
        not_ok "doctor: vcard --uhid=vendor gives a FIDO node and its vendor sibling"
        sed 's/^/#   vcard: /' /tmp/dr.vcard.log
    fi
    dr_fido=$(dr_node fido)
    dr_vendor=$(dr_node vendor)
    echo "# doctor: FIDO node $dr_fido, vendor node $dr_vendor"

    # --- OK on the healthy node, by path and by auto
    dr_t0=$(dr_now_cs)
    rawctap --json --device-path "/dev/$dr_fido" doctor >"$DR_OUT" 2>"$DR_ERR"
    dr_expect "on the FIDO node by path" OK 0 $?
    dr_t0=$(dr_now_cs)
    rawctap --json --device auto doctor >"$DR_OUT" 2>"$DR_ERR"
    dr_expect "--device auto" OK 0 $?
    check "doctor --device auto opened the FIDO node, not its sibling" \
        dr_out_has "\"opened hidraw:/dev/$dr_fido\""

    # --- NOT_FIDO_NODE: the vendor sibling, the fix names the FIDO node
    dr_t0=$(dr_now_cs)
    rawctap --json --device-path "/dev/$dr_vendor" doctor >"$DR_OUT" 2>"$DR_ERR"
    dr_expect "on the vendor sibling" NOT_FIDO_NODE 3 $?
    check "NOT_FIDO_NODE's fix names /dev/$dr_fido" dr_fix_has "/dev/$dr_fido"

    # --- PERMISSION_DENIED: mode 000, uid 1000, by path and by auto
    chmod 000 "/dev/$dr_fido"
    dr_t0=$(dr_now_cs)
    su -s /bin/sh kuser -c "rawctap --json --device-path /dev/$dr_fido doctor" >"$DR_OUT" 2>"$DR_ERR"
    dr_expect "as uid 1000 on a mode 000 node" PERMISSION_DENIED 3 $?
    check "PERMISSION_DENIED's evidence: mode 0000" dr_out_has 'mode 0000'
    check "PERMISSION_DENIED's evidence: uid 1000" dr_out_has 'you are uid 1000'
    check "PERMISSION_DENIED's fix is the udev rule" dr_fix_has '70-kcard-fido.rules'
    dr_t0=$(dr_now_cs)
    su -s /bin/sh kuser -c 'rawctap --json --device auto doctor' >"$DR_OUT" 2>"$DR_ERR"
    dr_expect "--device auto as uid 1000 on a mode 000 node" PERMISSION_DENIED 3 $?
    chmod 600 "/dev/$dr_fido"

    # --- UNPLUGGED: the node vanishes while makeCredential waits for presence
    check "vcard-ctl presence ask" vcard-ctl --control "$DR_SOCK" presence ask
    dr_bg --device-path "/dev/$dr_fido"
    if wait_for 10 log_has "$DR_ERR" 'touch the card now'; then
        ok "doctor waits for presence on /dev/$dr_fido (KEEPALIVE UPNEEDED)"
    else
        not_ok "doctor waits for presence on /dev/$dr_fido (KEEPALIVE UPNEEDED)"
    fi
    dr_t0=$(dr_now_cs)
    check "vcard-ctl unplug while doctor waits" vcard-ctl --control "$DR_SOCK" unplug
    dr_reap
    echo "# doctor: named $(dr_field "$DR_OUT" code) $(dr_secs $(($(dr_now_cs) - dr_t0))) s after the unplug"
    dr_expect "when the card is unplugged mid-request" UNPLUGGED 3 "$dr_rc"
    check "UNPLUGGED is named at step enumeration or presence" \
        grep -qE '"step":"(enumeration|presence)"' "$DR_OUT"
    check "UNPLUGGED's evidence names /dev/$dr_fido" dr_evidence_has "/dev/$dr_fido"

    # --- REENUMERATED: replug while --device auto waits for presence
    check "vcard-ctl replug after the unplug" vcard-ctl --control "$DR_SOCK" replug
    check "the card is back with a FIDO node" wait_for 5 dr_node fido
    dr_old=$(dr_node fido)
    dr_bg --device auto
    if wait_for 10 log_has "$DR_ERR" 'touch the card now'; then
        ok "doctor --device auto waits for presence on /dev/$dr_old"
    else
        not_ok "doctor --device auto waits for presence on /dev/$dr_old"
    fi
    dr_t0=$(dr_now_cs)
    check "vcard-ctl replug while doctor waits" vcard-ctl --control "$DR_SOCK" replug
    dr_reap
    echo "# doctor: named $(dr_field "$DR_OUT" code) $(dr_secs $(($(dr_now_cs) - dr_t0))) s after the replug"
    dr_expect "--device auto when the card re-enumerates mid-request" REENUMERATED 3 "$dr_rc"
    check "the card moved to a new node" wait_for 5 dr_moved "$dr_old"
    dr_new=$(dr_node fido)
    if dr_evidence_has "hidraw:/dev/$dr_old" && dr_evidence_has "hidraw:/dev/$dr_new"; then
        ok "REENUMERATED's evidence: hidraw:/dev/$dr_old -> hidraw:/dev/$dr_new"
    else
        not_ok "REENUMERATED's evidence: hidraw:/dev/$dr_old -> hidraw:/dev/$dr_new"
        sed 's/^/#   json: /' "$DR_OUT"
    fi

    kill -TERM "$dr_vcard" 2>/dev/null
    check "vcard --uhid stops (doctor)" wait_for 5 stopped "$dr_vcard"
    wait "$dr_vcard" 2>/dev/null
    check "no hidraw node is left (doctor)" wait_for 5 dr_no_hidraw
    echo "# doctor.sh: $(dr_secs $(($(dr_now_cs) - dr_start))) s in the guest"
fi

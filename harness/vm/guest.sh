#!/bin/sh
# The VM test's guest side (busybox sh), run by /init as root. Checks the
# real kernel path of harness/vcard/uhid.c: hidraw nodes, report
# descriptors in sysfs, CTAPHID INIT through hidraw, permissions, destroy
# and re-create. Then sources /tests/guest.d/*.sh, which may use ok,
# not_ok, check, wait_for and hexof. Last line: "N passed, M failed".
export PATH=/bin:/sbin

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok - $*"
}
not_ok() {
    failed=$((failed + 1))
    echo "not ok - $*"
}
# check NAME CMD...: one test from a command's exit status
check() {
    name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}
# wait_for SECONDS CMD...: polls CMD every 0.1 s
wait_for() {
    tries=$(($1 * 10))
    shift
    while [ "$tries" -gt 0 ]; do
        "$@" && return 0
        usleep 100000
        tries=$((tries - 1))
    done
    return 1
}
# hexof FILE: the file as one lowercase hex string
hexof() {
    hexdump -v -e '/1 "%02x"' "$1"
}
exists() { [ -e "$1" ]; }
gone() { [ ! -e "$1" ]; }
log_has() { grep -q "$2" "$1"; }
stopped() { ! kill -0 "$1" 2>/dev/null; }

SERVE_LOG=/tmp/serve.log
serve_pid=""
start_serve() {
    : >"$SERVE_LOG"
    uhid_selftest serve "$@" >"$SERVE_LOG" 2>&1 &
    serve_pid=$!
}
stop_serve() {
    [ -n "$serve_pid" ] || return 0
    kill -TERM "$serve_pid" 2>/dev/null
    wait "$serve_pid" 2>/dev/null
    serve_pid=""
}
desc_of() { hexof "/sys/class/hidraw/$1/device/report_descriptor"; }
is_fido() { desc_of "$1" | grep -q '^06d0f1'; }

echo "# kernel $(uname -r)"
check "uhid module gives /dev/uhid" exists /dev/uhid
check "hid-generic is loaded" exists /sys/bus/hid/drivers/hid-generic

# --- a FIDO interface and a vendor interface, as on the runbook's card
start_serve
if wait_for 5 log_has "$SERVE_LOG" '^ready' &&
    wait_for 5 exists /dev/hidraw0 && wait_for 5 exists /dev/hidraw1; then
    ok "UHID device makes /dev/hidraw0 and /dev/hidraw1"
else
    not_ok "UHID device makes /dev/hidraw0 and /dev/hidraw1"
    sed 's/^/#   serve: /' "$SERVE_LOG"
fi
check "hidraw0 report descriptor is on usage page F1D0" is_fido hidraw0
if [ -e /dev/hidraw1 ] && ! is_fido hidraw1 && desc_of hidraw1 | grep -q '^0600ff'; then
    ok "hidraw1 report descriptor is vendor-defined (FF00), not FIDO"
else
    not_ok "hidraw1 report descriptor is vendor-defined (FF00), not FIDO"
fi
uevent=/sys/class/hidraw/hidraw0/device/uevent
check "HID_UNIQ carries the serial" grep -qx 'HID_UNIQ=KC-SELFTEST-1' "$uevent"
check "HID_ID is BUS_USB with the configured ids" grep -qx 'HID_ID=0003:00001209:0000000A' "$uevent"
check "HID_NAME is the configured name" grep -qx 'HID_NAME=kcard selftest card' "$uevent"
case $(readlink -f /sys/class/hidraw/hidraw0/device) in
*/virtual/misc/uhid/*) ok "sysfs parent is virtual/misc/uhid" ;;
*) not_ok "sysfs parent is virtual/misc/uhid ($(readlink -f /sys/class/hidraw/hidraw0/device))" ;;
esac

# --- CTAPHID INIT written by the shell: report id 0 + 64 bytes
{
    printf '\000\377\377\377\377\206\000\010kcardsh1'
    dd if=/dev/zero bs=49 count=1 2>/dev/null
} >/tmp/init.req
rm -f /tmp/init.rsp
# not `timeout dd`: busybox's timeout leaves a watchdog process holding the
# node open for its whole timeout, which keeps the hidraw minor in use
(
    exec 3<>/dev/hidraw0
    dd bs=64 count=1 <&3 >/tmp/init.rsp 2>/dev/null &
    reader=$!
    dd if=/tmp/init.req bs=65 count=1 >&3 2>/dev/null
    exec 3>&-
    wait_for 5 stopped "$reader" || kill "$reader"
) 2>/dev/null
rsp=$(hexof /tmp/init.rsp 2>/dev/null)
case $rsp in
ffffffff8600116b63617264736831*)
    if [ ${#rsp} = 128 ]; then
        ok "CTAPHID INIT on hidraw0 echoes the nonce in a 17-byte reply"
    else
        not_ok "CTAPHID INIT reply is ${#rsp} hex digits, want 128"
    fi
    ;;
*) not_ok "CTAPHID INIT on hidraw0 echoes the nonce (got '${rsp:-nothing}')" ;;
esac
check "CTAPHID INIT through the C client" uhid_selftest init /dev/hidraw0
check "uhid saw 65-byte outputs with the report id stripped" log_has "$SERVE_LOG" 'event output cmd=86'

# the kernel does not check the length of a hidraw write: uhid.c must
dd if=/tmp/init.req bs=33 count=1 of=/dev/hidraw0 2>/dev/null
check "a 33-byte hidraw write is dropped as a bad output" \
    wait_for 3 log_has "$SERVE_LOG" 'event bad-output total=1'

out=$(uhid_selftest feature /dev/hidraw0)
check "a feature-report ioctl is refused at once ($out)" [ $? = 0 ]
check "uhid.c answered the FIDO interface's GET_REPORT" \
    wait_for 3 log_has "$SERVE_LOG" 'event refused total=1'
out=$(uhid_selftest feature /dev/hidraw1)
check "the vendor interface refuses it too ($out)" [ $? = 0 ]
check "uhid.c answered the vendor interface's GET_REPORT" \
    wait_for 3 log_has "$SERVE_LOG" 'event refused total=2'

# --- permissions: a non-root user and a node of mode 000
chmod 666 /dev/hidraw0
out=$(su -s /bin/sh kuser -c 'uhid_selftest open /dev/hidraw0' 2>&1)
case $out in
"open ok uid=1000") ok "uid 1000 opens a mode 666 node" ;;
*) not_ok "uid 1000 opens a mode 666 node ($out)" ;;
esac
chmod 000 /dev/hidraw1
out=$(su -s /bin/sh kuser -c 'uhid_selftest open /dev/hidraw1' 2>&1)
rc=$?
if [ "$rc" = 2 ] && echo "$out" | grep -q 'uid=1000: Permission denied'; then
    ok "uid 1000 gets permission denied on a mode 000 node"
else
    not_ok "uid 1000 gets permission denied on a mode 000 node (rc $rc: $out)"
fi
chmod 600 /dev/hidraw0 /dev/hidraw1

# --- destroy: the nodes go away
stop_serve
check "UHID_DESTROY on exit" log_has "$SERVE_LOG" '^destroyed'
if wait_for 3 gone /dev/hidraw0 && wait_for 3 gone /dev/hidraw1; then
    ok "destroying the UHID devices removes both hidraw nodes"
else
    not_ok "destroying the UHID devices removes both hidraw nodes"
fi

# --- re-create (a replug) with the FIDO interface alone
start_serve --no-vendor
if wait_for 5 log_has "$SERVE_LOG" '^ready' && wait_for 5 exists /dev/hidraw0; then
    ok "re-created device gets a hidraw node again"
else
    not_ok "re-created device gets a hidraw node again"
    sed 's/^/#   serve: /' "$SERVE_LOG"
    ls -l /dev/hidraw* /sys/class/hidraw 2>&1 | sed 's/^/#   /'
fi
check "re-created node answers INIT" uhid_selftest init /dev/hidraw0
check "no vendor node without the vendor interface" gone /dev/hidraw1

# --- replug while a client holds the node open (the runbook's
# re-enumeration): the old minor stays taken, the card comes back elsewhere
exec 4<>/dev/hidraw0
stop_serve
wait_for 3 gone /dev/hidraw0
start_serve --no-vendor
if wait_for 5 log_has "$SERVE_LOG" '^ready' && wait_for 5 exists /dev/hidraw1 &&
    is_fido hidraw1 && gone /dev/hidraw0; then
    ok "replug with a held descriptor re-enumerates as hidraw1"
else
    not_ok "replug with a held descriptor re-enumerates as hidraw1 ($(ls /sys/class/hidraw))"
fi
if dd bs=64 count=1 <&4 >/dev/null 2>/tmp/stale.err; then
    not_ok "the stale descriptor fails to read"
else
    ok "the stale descriptor fails to read ($(head -n 1 /tmp/stale.err))"
fi
exec 4>&-
check "the re-enumerated node answers INIT" uhid_selftest init /dev/hidraw1
stop_serve
wait_for 3 gone /dev/hidraw1

# --- the other programs in the image load (all their libraries are here);
# 126/127 is the shell's "cannot execute"/"not found", also for a missing
# library or loader
for prog in fido2-token vcard vcard-ctl rawctap fido2-probe; do
    [ -x "/bin/$prog" ] || continue
    case $prog in
    fido2-token) "$prog" -V >/dev/null 2>&1 ;;
    *) "$prog" --help >/dev/null 2>&1 </dev/null ;;
    esac
    rc=$?
    if [ "$rc" -lt 126 ]; then
        ok "$prog runs in the guest"
    else
        not_ok "$prog runs in the guest (exit $rc)"
    fi
done

# --- more checks: kcard's own programs (added by other files)
for f in /tests/guest.d/*.sh; do
    [ -f "$f" ] || continue
    echo "# $f"
    # shellcheck disable=SC1090
    . "$f"
done

echo "$passed passed, $failed failed"

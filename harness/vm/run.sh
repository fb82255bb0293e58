#!/bin/sh
# `make vm-test`: boots Debian's cloud kernel under qemu with an initramfs
# of busybox, kcard's binaries and the guest tests, and checks the guest's
# "N passed, M failed" line. Works as root on a bare Debian machine; the
# kernel .deb is cached in build/vm/cache across runs.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

OUT=build/vm
TIMEOUT=${VM_TIMEOUT:-120}
CC=${CC:-cc}
mkdir -p "$OUT"

start=$(date +%s)
kdir=$(sh "$here/fetch-kernel.sh" "$OUT/cache" | tail -n 1)
[ -f "$kdir/vmlinuz" ] || {
    echo "vm-test: no kernel (fetch-kernel.sh failed)" >&2
    exit 1
}

# the guest helper that exercises harness/vcard/uhid.c on the real kernel
$CC -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 -I. -O2 \
    -o "$OUT/uhid_selftest" "$here/uhid_selftest.c" harness/vcard/uhid.c util/clock.c util/err.c

bins="$OUT/uhid_selftest"
# kcard's programs when they are built, and an independent FIDO client
for b in build/bin/vcard build/bin/vcard-ctl build/bin/rawctap build/bin/fido2-probe \
    /usr/bin/fido2-token; do
    [ -x "$b" ] && bins="$bins $b"
done

# shellcheck disable=SC2086 # $bins and $accel are lists of words
sh "$here/build-initramfs.sh" -o "$OUT/initramfs.cpio.gz" -k "$kdir" -i "$here/init" \
    -g "$here/guest.sh" -d "$here/guest.d" $bins

# KVM only with hardware virtualisation visible: a nested /dev/kvm without
# vmx/svm exists on these machines and fails to boot
accel="-accel tcg"
if grep -Eqw 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
    accel="-accel kvm -cpu host"
fi

echo "vm-test: booting $(cat "$kdir/package" 2>/dev/null || echo kernel) ($accel)"
boot=$(date +%s)
rc=0
# shellcheck disable=SC2086
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 $accel -m 256 -nic none -nographic -no-reboot \
    -kernel "$kdir/vmlinuz" -initrd "$OUT/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet kcard.timeout=$((TIMEOUT - 15))" </dev/null >"$OUT/console.raw" 2>&1 || rc=$?
end=$(date +%s)
# serial consoles end lines with \r and the firmware sends escape codes
esc=$(printf '\033')
tr -d '\r' <"$OUT/console.raw" | sed "s/${esc}\[[0-9;?]*[A-Za-z]//g; s/${esc}c//g" >"$OUT/console.log"
rm -f "$OUT/console.raw"

# the guest's own lines, without the kernel's
grep -E '^(ok|not ok|#|kcard-vm:) ' "$OUT/console.log" || true
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$OUT/console.log" | tail -n 1 || true)
echo "vm-test: qemu exited $rc after $((end - boot)) s (total $((end - start)) s), console in $OUT/console.log"
if [ -z "$summary" ]; then
    [ "$rc" = 124 ] && echo "vm-test: qemu killed after ${TIMEOUT} s"
    echo "vm-test: no 'N passed, M failed' line from the guest; console tail:"
    tail -n 30 "$OUT/console.log"
    echo "vm: 0 passed, 1 failed"
    exit 1
fi
echo "vm: $summary"
failed=$(echo "$summary" | sed 's/.* passed, \([0-9]*\) failed/\1/')
[ "$failed" = 0 ]

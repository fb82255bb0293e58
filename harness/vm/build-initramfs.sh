#!/bin/sh
# Builds the VM test's initramfs (cpio newc, gzip): static busybox (its
# applets are linked by /init), the kernel modules, the guest tests, the given binaries and every
# shared library they load.
#
# usage: build-initramfs.sh -o OUT.cpio.gz -k KERNEL_DIR -i INIT -g GUEST.sh
#                           [-d GUEST_DIR] [BINARY ...]
#   KERNEL_DIR  holds hid.ko hid-generic.ko uhid.ko (fetch-kernel.sh)
#   INIT        becomes /init; GUEST.sh becomes /tests/guest.sh
#   GUEST_DIR   its *.sh files go to /tests/guest.d/ (sourced by guest.sh)
#   BINARY      each goes to /bin/<name>, its libraries to their own paths
set -eu

die() {
    echo "build-initramfs: $*" >&2
    exit 1
}

out="" kdir="" init="" guest="" gdir=""
while getopts o:k:i:g:d: opt; do
    case $opt in
    o) out=$OPTARG ;;
    k) kdir=$OPTARG ;;
    i) init=$OPTARG ;;
    g) guest=$OPTARG ;;
    d) gdir=$OPTARG ;;
    *) die "bad option" ;;
    esac
done
shift $((OPTIND - 1))
[ -n "$out" ] && [ -n "$kdir" ] && [ -n "$init" ] && [ -n "$guest" ] ||
    die "usage: -o OUT -k KERNEL_DIR -i INIT -g GUEST.sh [-d DIR] [BINARY ...]"
command -v cpio >/dev/null 2>&1 || die "cpio missing (apt-get install cpio)"
ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' || die "/bin/busybox must be busybox-static"

stage=$(mktemp -d "${TMPDIR:-/tmp}/kcard-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM
# mktemp makes it 0700; as the guest's / that would deny every non-root
# lookup and make permission tests fail for the wrong reason
chmod 755 "$stage"

mkdir -p "$stage/bin" "$stage/sbin" "$stage/etc" "$stage/proc" "$stage/sys" "$stage/dev" \
    "$stage/tmp" "$stage/root" "$stage/home/kuser" "$stage/lib/modules" "$stage/tests/guest.d"
chmod 1777 "$stage/tmp"

cp /bin/busybox "$stage/bin/busybox"
# /init links the other applets with `busybox --install -s /bin`: hundreds
# of `ln` processes here cost seconds on a loaded machine
ln -s busybox "$stage/bin/sh"

for m in hid hid-generic uhid; do
    [ -f "$kdir/$m.ko" ] || die "$kdir/$m.ko missing"
    cp "$kdir/$m.ko" "$stage/lib/modules/$m.ko"
done

cp "$init" "$stage/init"
chmod 755 "$stage/init"
cp "$guest" "$stage/tests/guest.sh"
if [ -n "$gdir" ] && [ -d "$gdir" ]; then
    for f in "$gdir"/*.sh; do
        [ -f "$f" ] && cp "$f" "$stage/tests/guest.d/"
    done
fi

cat >"$stage/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
kuser:x:1000:1000:kcard test user:/home/kuser:/bin/sh
EOF
cat >"$stage/etc/group" <<'EOF'
root:x:0:
kuser:x:1000:
EOF
# busybox su as root asks for no password; the empty hashes keep it so
printf 'root::0:0:99999:7:::\nkuser::0:0:99999:7:::\n' >"$stage/etc/shadow"
chmod 600 "$stage/etc/shadow"
chown 1000:1000 "$stage/home/kuser"

# Copies a file to the same path inside the stage, following symlinks.
copy_same_path() {
    [ -e "$stage$1" ] && return 0
    mkdir -p "$stage$(dirname "$1")"
    cp -L "$1" "$stage$1"
}

for bin in "$@"; do
    [ -f "$bin" ] || die "binary $bin missing"
    cp -L "$bin" "$stage/bin/$(basename "$bin")"
    chmod 755 "$stage/bin/$(basename "$bin")"
    # "lib => /path (addr)" and "/lib64/ld-linux-x86-64.so.2 (addr)";
    # a static binary has none
    libs=$(ldd "$bin" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }') || true
    if ldd "$bin" 2>&1 | grep -q 'not found'; then
        die "$bin: a library is missing on the host: $(ldd "$bin" | grep 'not found')"
    fi
    for lib in $libs; do
        copy_same_path "$lib"
    done
done

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
echo "build-initramfs: $out ($(wc -c <"$out") bytes, $# binaries)" >&2

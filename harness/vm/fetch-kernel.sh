#!/bin/sh
# Fetches Debian's cloud kernel for the hidraw VM test and makes sure qemu
# and busybox-static are present. The kernel .deb is downloaded and
# extracted, never installed: the host keeps its own kernel.
#
# usage: fetch-kernel.sh [CACHE_DIR]      (default build/vm/cache)
# Prints, on its last line, the directory that holds:
#   vmlinuz  hid.ko  hid-generic.ko  uhid.ko
set -eu

CACHE=${1:-build/vm/cache}
META=linux-image-cloud-amd64

die() {
    echo "fetch-kernel: $*" >&2
    exit 1
}

is_root() { [ "$(id -u)" = 0 ]; }

apt_updated=0
apt_update_once() {
    [ "$apt_updated" = 1 ] && return 0
    is_root || die "need root for apt-get update (or install: $*)"
    echo "fetch-kernel: apt-get update" >&2
    apt-get update -qq >&2 || die "apt-get update failed"
    apt_updated=1
}

# Host tools: qemu and busybox-static are not in ci/install-deps.sh.
need_pkgs=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_pkgs="$need_pkgs qemu-system-x86"
# the guest needs a static busybox; Debian's plain busybox is dynamic
ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' || need_pkgs="$need_pkgs busybox-static"
command -v cpio >/dev/null 2>&1 || need_pkgs="$need_pkgs cpio"
command -v xz >/dev/null 2>&1 || need_pkgs="$need_pkgs xz-utils"
if [ -n "$need_pkgs" ]; then
    if ! is_root; then
        die "missing:$need_pkgs -- run as root or: sudo apt-get install$need_pkgs"
    fi
    apt_update_once "$need_pkgs"
    echo "fetch-kernel: installing$need_pkgs" >&2
    log=${TMPDIR:-/tmp}/kcard-vm-apt.log
    # shellcheck disable=SC2086 # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        $need_pkgs >"$log" 2>&1 || {
        tail -n 20 "$log" >&2
        die "apt-get install$need_pkgs failed"
    }
fi
ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' ||
    die "/bin/busybox is not static after installing busybox-static"

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
OUT="$CACHE/kernel"

# A finished extraction is reused as it is: no network on warm runs.
if [ -f "$OUT/.done" ]; then
    echo "$OUT"
    exit 0
fi

# Resolve the versioned image package (linux-image-6.1.0-NN-cloud-amd64)
# through the metapackage; apt-cache needs fresh lists to know it.
resolve() {
    apt-cache depends "$META" 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\).*/\1/p' | head -n 1
}
pkg=$(resolve || true)
if [ -z "$pkg" ]; then
    apt_update_once "$META"
    pkg=$(resolve || true)
fi
[ -n "$pkg" ] || die "cannot resolve $META to a versioned kernel package"

deb=$(ls "$CACHE"/"${pkg}"_*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
    echo "fetch-kernel: downloading $pkg" >&2
    (cd "$CACHE" && apt-get download -qq "$pkg" >&2) || {
        # a stale list names a version the mirror no longer has
        apt_update_once "$pkg"
        (cd "$CACHE" && apt-get download -qq "$pkg" >&2)
    } || die "apt-get download $pkg failed"
    deb=$(ls "$CACHE"/"${pkg}"_*.deb 2>/dev/null | head -n 1 || true)
    [ -n "$deb" ] || die "download of $pkg left no .deb in $CACHE"
fi

rm -rf "$OUT" "$CACHE/x"
mkdir -p "$OUT" "$CACHE/x"
dpkg-deb -x "$deb" "$CACHE/x" || die "dpkg-deb -x $deb failed"

vmlinuz=$(ls "$CACHE"/x/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
[ -n "$vmlinuz" ] || die "no vmlinuz in $deb"
cp "$vmlinuz" "$OUT/vmlinuz"

# Modules may be plain .ko or .ko.xz depending on the kernel packaging.
for m in hid hid-generic uhid; do
    f=$(find "$CACHE/x/lib/modules" -name "$m.ko" -o -name "$m.ko.xz" 2>/dev/null | head -n 1)
    [ -n "$f" ] || die "module $m not found in $deb"
    case "$f" in
    *.xz) xz -dc "$f" >"$OUT/$m.ko" || die "xz -d $f failed" ;;
    *) cp "$f" "$OUT/$m.ko" ;;
    esac
done
basename "$deb" >"$OUT/package"
rm -rf "$CACHE/x"
touch "$OUT/.done"
echo "$OUT"

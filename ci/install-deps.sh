#!/bin/sh
# Installs the Debian packages kcard needs that this machine lacks.
# Libraries are checked with pkg-config, tools with `command -v`; only the
# missing ones are installed, so a ready machine costs nothing.
set -u

# pkg-config name -> Debian package
LIBS="libcbor:libcbor-dev libcrypto:libssl-dev hidapi-hidraw:libhidapi-dev jansson:libjansson-dev
cmocka:libcmocka-dev libfido2:libfido2-dev libmicrohttpd:libmicrohttpd-dev gnutls:libgnutls28-dev
libcurl:libcurl4-openssl-dev sqlite3:libsqlite3-dev libpcap:libpcap-dev zlib:zlib1g-dev"
# command -> Debian package
TOOLS="cc:gcc make:make pkg-config:pkg-config clang:clang python3:python3 timeout:coreutils
fido2-token:fido2-tools clang-format:clang-format curl:curl openssl:openssl ip:iproute2
chromium:chromium node:nodejs npm:npm
tshark:tshark text2pcap:wireshark-common
ssh:openssh-client ssh-keygen:openssh-client sshd:openssh-server"
# python modules used by test-vector generators and the interop test -> package
PYMODS="cryptography:python3-cryptography fido2:python3-fido2"

missing=""
for pair in $LIBS; do
    pc=${pair%%:*}
    pkg=${pair#*:}
    pkg-config --exists "$pc" 2>/dev/null || missing="$missing $pkg"
done
for pair in $TOOLS; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
# libFuzzer's runtime ships with clang's runtime package
if command -v clang >/dev/null 2>&1; then
    rt=$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null)
    if [ ! -f "$rt" ] && ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
        major=$(clang -dumpversion | cut -d. -f1)
        missing="$missing libclang-rt-$major-dev"
    fi
fi
for pair in $PYMODS; do
    mod=${pair%%:*}
    pkg=${pair#*:}
    # Debian's python modules live in /usr/lib/python3/dist-packages: ask Debian's python3
    /usr/bin/python3 -c "import $mod" >/dev/null 2>&1 || missing="$missing $pkg"
done

[ -z "$missing" ] && exit 0

echo "install-deps: missing Debian packages:$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: not root; run as root, or: sudo apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || { echo "install-deps: apt-get update failed" >&2; exit 1; }
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
    { echo "install-deps: apt-get install$missing failed" >&2; exit 1; }
echo "install-deps: installed$missing"

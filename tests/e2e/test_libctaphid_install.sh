#!/bin/sh
# libctaphid as another program sees it: `make install` into a DESTDIR, the
# two examples/ programs built through `pkg-config libctaphid` alone (shared,
# and static against libctaphid.a and the packages it requires) and run
# against a vcard, and the shared library's face: SONAME, only kc_ symbols
# exported, exactly those the version script lists, all versioned.
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

DEST=$E2E_TMP/dest
PFX=/usr/local
LIBDIR=$DEST$PFX/lib
UMBRELLA=ctaphid/include/kcard/ctaphid.h
MAJOR=$(sed -n 's/^#define KC_VERSION_MAJOR \([0-9]*\)$/\1/p' "$UMBRELLA")
VERSION=$(sed -n 's/^#define KC_VERSION "\(.*\)"$/\1/p' "$UMBRELLA")
# the sanitizer build's libraries need the sanitizer runtime in the program
SAN=""
MAKE_SAN=""
case $BUILD in
*/san) SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" MAKE_SAN="SANITIZE=1" ;;
esac

# shellcheck disable=SC2086 # MAKE_SAN is empty or one word
if make --no-print-directory -s -j2 install $MAKE_SAN BUILD="$BUILD" DESTDIR="$DEST" PREFIX="$PFX" \
    >"$T/install.log" 2>&1; then
    ok "make install DESTDIR=... PREFIX=$PFX"
else
    not_ok "make install" "see below"
    show_head 20 "$T/install.log"
    finish
    exit 1
fi
missing=""
for f in lib/libctaphid.a lib/libctaphid.so.$MAJOR lib/libctaphid.so lib/pkgconfig/libctaphid.pc \
    include/kcard/ctaphid.h include/kcard/ctaphid/ctap2.h share/man/man3/libctaphid.3; do
    [ -e "$DEST$PFX/$f" ] || missing="$missing $f"
done
[ "$(readlink "$LIBDIR/libctaphid.so")" = "libctaphid.so.$MAJOR" ] || missing="$missing libctaphid.so->so.$MAJOR"
if [ -z "$missing" ]; then ok "libraries, headers, pkg-config file and man page installed"; else
    not_ok "installed files" "missing:$missing"
fi
if grep -rq '^#include "ctaphid/' "$DEST$PFX/include/kcard"; then
    not_ok "installed headers include kcard/ctaphid/x.h only" \
        "$(grep -rl '^#include "ctaphid/' "$DEST$PFX/include/kcard")"
else
    ok "installed headers include kcard/ctaphid/x.h only"
fi

PKG_CONFIG_PATH=$LIBDIR/pkgconfig
PKG_CONFIG_SYSROOT_DIR=$DEST
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
got=$(pkg-config --modversion libctaphid 2>&1)
if [ "$got" = "$VERSION" ]; then ok "pkg-config libctaphid is version $VERSION"; else
    not_ok "pkg-config --modversion" "got '$got', wanted '$VERSION'"
fi

# build each example shared and static
PC=$(pkg-config --cflags --libs libctaphid) || PC=""
PC_CFLAGS=$(pkg-config --cflags libctaphid) || PC_CFLAGS=""
# shellcheck disable=SC2046 # one package name a word
PC_DEPS=$(pkg-config --libs $(pkg-config --print-requires-private libctaphid)) || PC_DEPS=""
for ex in list_cards info_and_make_credential; do
    # shellcheck disable=SC2086
    check "$ex builds with pkg-config --cflags --libs libctaphid alone" \
        cc -std=c11 -Wall -Wextra -Werror $SAN -o "$T/$ex" "examples/$ex.c" $PC
    # shellcheck disable=SC2086
    check "$ex links statically: libctaphid.a and the packages libctaphid.pc requires" \
        cc -std=c11 -Wall -Wextra -Werror $SAN -o "$T/$ex.static" "examples/$ex.c" $PC_CFLAGS \
        "$LIBDIR/libctaphid.a" $PC_DEPS -lpthread
done
if readelf -d "$T/list_cards" 2>/dev/null | grep -q "NEEDED.*\[libctaphid.so.$MAJOR\]" &&
    ! readelf -d "$T/list_cards.static" 2>/dev/null | grep -q 'libctaphid'; then
    ok "the shared build needs libctaphid.so.$MAJOR, the static one does not"
else
    not_ok "dynamic dependencies" "$(readelf -d "$T/list_cards" 2>&1 | grep NEEDED)"
fi

# run them against a vcard announced in a directory of our own
ANN=$E2E_TMP/announce
mkdir -p "$ANN"
need_vcard "vcard starts" --announce "$ANN"
LD_LIBRARY_PATH=$LIBDIR
export LD_LIBRARY_PATH
for v in "" .static; do
    check "list_cards$v exits 0" env KCARD_ANNOUNCE_DIR="$ANN" "$T/list_cards$v"
    if grep -q "^$VCARD_URI	udp	" "$E2E_TMP/last.out" && grep -q "^libctaphid $VERSION: 1 card" "$E2E_TMP/last.out"; then
        ok "list_cards$v lists the announced card $VCARD_URI"
    else
        not_ok "list_cards$v lists $VCARD_URI" "$(head -n 3 "$E2E_TMP/last.out")"
    fi
    check "info_and_make_credential$v $VCARD_URI exits 0" "$T/info_and_make_credential$v" "$VCARD_URI"
    cp "$E2E_TMP/last.out" "$T/imc$v.out"
    # vcard's default AAGUID is "kcard-vcard-0001" (harness/vcard/personality.c)
    if grep -q '^aaguid: 6b636172642d76636172642d30303031$' "$T/imc$v.out" &&
        grep -q '^version: FIDO_2_1$' "$T/imc$v.out" &&
        grep -q '^fmt: packed$' "$T/imc$v.out" &&
        grep -Eq '^credential id: ([0-9a-f]{2}){16,}$' "$T/imc$v.out"; then
        ok "info_and_make_credential$v prints the vcard's AAGUID, versions and a credential id"
    else
        not_ok "info_and_make_credential$v output" "$(head -n 8 "$T/imc$v.out")"
    fi
done
check_exit "info_and_make_credential on a bad URI exits 1" 1 "$T/info_and_make_credential" "nosuch:x"
if grep -q 'cannot open nosuch:x: .*unknown device URI' "$E2E_TMP/last.err"; then
    ok "the bad URI's error names it"
else
    not_ok "bad URI error" "$(head -n 2 "$E2E_TMP/last.err")"
fi

# the shared library's face
SO=$LIBDIR/libctaphid.so.$MAJOR
soname=$(readelf -d "$SO" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" = "libctaphid.so.$MAJOR" ]; then ok "SONAME is libctaphid.so.$MAJOR"; else
    not_ok "SONAME" "got '$soname'"
fi
nm -D --defined-only "$SO" >"$T/nm" 2>&1 || not_ok "nm -D" "$(head -n 2 "$T/nm")"
# the version node is an absolute symbol; every other one must be a kc_ function
awk '$2 != "A" { print $3 }' "$T/nm" | sed 's/@.*//' | LC_ALL=C sort >"$T/exported"
n=$(wc -l <"$T/exported")
if [ "$n" -gt 50 ] && ! grep -v '^kc_' "$T/exported" >"$T/foreign"; then
    ok "the .so exports $n symbols, every one kc_"
else
    not_ok "only kc_ symbols exported" "$n symbols; others: $(head -n 5 "$T/foreign" | tr '\n' ' ')"
fi
if grep -Eq '^kc_(mem_|reassembly_|frag_)' "$T/exported"; then
    not_ok "test hooks not exported" "$(grep -E '^kc_(mem_|reassembly_|frag_)' "$T/exported" | head -n 3)"
else
    ok "test hooks (kc_mem_*, kc_reassembly_*, kc_frag_*) not exported"
fi
sed -n 's/^    \(kc_[a-z0-9_]*\);$/\1/p' ctaphid/libctaphid.map | LC_ALL=C sort >"$T/listed"
if cmp -s "$T/listed" "$T/exported"; then ok "exports are exactly ctaphid/libctaphid.map's list"; else
    not_ok "exports match the map" "$(diff "$T/listed" "$T/exported" | head -n 5 | tr '\n' ' ')"
fi
if [ "$(grep -c "@@KCARD_CTAPHID_$MAJOR\$" "$T/nm")" -eq "$n" ]; then
    ok "every export is versioned KCARD_CTAPHID_$MAJOR"
else
    not_ok "symbol versions" "$(grep -v "@@KCARD_CTAPHID_$MAJOR\$" "$T/nm" | head -n 3 | tr '\n' ' ')"
fi
# the map lists what the umbrella declares (gcc -aux-info), nothing more
check "ctaphid/libctaphid.map matches the umbrella header" \
    make --no-print-directory -s libctaphid-map-check BUILD="$BUILD"

finish

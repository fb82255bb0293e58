#!/bin/sh
# The body of `make check` (after deps and the build): the format check, unit tests, the same
# unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, end-to-end
# tests against the virtual card, the portal's Playwright regression in the
# system Chromium, the real-kernel hidraw test in a qemu VM,
# and a short run of every fuzzer.
# Prints each stage's totals and, last, the overall "N passed, M failed".
set -u
MAKE=${MAKE:-make}
FUZZ_SECONDS=${FUZZ_SECONDS:-5}
log=$(mktemp -d)
status=0
stage() {
    name=$1
    shift
    echo "==== $name"
    start=$(date +%s)
    "$@" 2>&1 | tee "$log/$name.log"
    rc=$(cat "$log/rc" 2>/dev/null || echo 0)
    echo "==== $name done in $(($(date +%s) - start))s"
}
run() {
    "$@"
    echo $? >"$log/rc"
}
count() {
    # sum "X: N passed, M failed" lines of a stage
    sed -n 's/^\([a-z0-9-]*: \)\{0,1\}\([0-9]*\) passed, \([0-9]*\) failed$/\2 \3/p' "$log/$1.log" | tail -n 1
}

total_pass=0
total_fail=0
for s in format layers unit unit-san e2e e2e-san browser vm-test fuzz; do
    case $s in
        format) stage format run $MAKE --no-print-directory format-check ;;
        layers) stage layers run sh ci/include-graph.sh ;;
        unit) stage unit run $MAKE --no-print-directory unit ;;
        unit-san) stage unit-san run $MAKE --no-print-directory unit-san ;;
        e2e) stage e2e run $MAKE --no-print-directory e2e ;;
        e2e-san) stage e2e-san run sh ci/e2e-san.sh ;;
        browser) stage browser run $MAKE --no-print-directory browser-test ;;
        vm-test) stage vm-test run $MAKE --no-print-directory vm-test ;;
        fuzz) stage fuzz run $MAKE --no-print-directory fuzz FUZZ_SECONDS="$FUZZ_SECONDS" ;;
    esac
    rc=$(cat "$log/rc")
    c=$(count "$s")
    if [ -z "$c" ]; then
        echo "check: stage $s printed no totals (exit $rc)"
        total_fail=$((total_fail + 1))
        status=1
        continue
    fi
    set -- $c
    total_pass=$((total_pass + $1))
    total_fail=$((total_fail + $2))
    [ "$rc" -ne 0 ] && status=1
    [ "$2" -ne 0 ] && status=1
done
rm -rf "$log"
echo "check: $total_pass passed, $total_fail failed"
exit $status

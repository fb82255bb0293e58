#!/bin/sh
# Runs every tests/e2e/test_*.sh (or the scripts given after BUILD) with
# BUILD set, each bounded to 5 minutes, and prints the totals as
# "e2e: N passed, M failed".
BUILD=${1:-build}
export BUILD
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- tests/e2e/test_*.sh
total_pass=0
total_fail=0
for t in "$@"; do
    [ -e "$t" ] || continue
    echo "== $t"
    out=$(mktemp)
    timeout -k 5 300 sh "$t" 2>&1 | tee "$out"
    rc=$(tail -n 1 "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
    if [ -z "$rc" ]; then
        echo "not ok - $t ended without a summary line"
        total_fail=$((total_fail + 1))
    else
        set -- $rc
        total_pass=$((total_pass + $1))
        total_fail=$((total_fail + $2))
    fi
    rm -f "$out"
done
echo "e2e: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]

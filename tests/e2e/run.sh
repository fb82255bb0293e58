#!/bin/sh
# Runs every tests/e2e/test_*.sh (or the scripts given after BUILD) with
# BUILD set, each bounded to 5 minutes, E2E_JOBS at a time (default 2: most
# scripts wait on sockets and timers, not the CPU), the longest first. Each
# script's output prints whole, in the order given, with its wall time; last
# the totals as "e2e: N passed, M failed".
BUILD=${1:-build}
export BUILD
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- tests/e2e/test_*.sh
jobs=${E2E_JOBS:-2}
# started first so that none of them ends the stage alone (10-40 s each)
LONG="test_doctor_matrix test_chain_ssh test_rawctap_doctor test_chain_replay test_interop_faults
test_http_limits test_rawctap_faults test_chain_limits test_interop_cards test_vcard_udp"
results=$(mktemp -d)
i=0
for t in "$@"; do
    i=$((i + 1))
    rank=99
    r=0
    for l in $LONG; do
        r=$((r + 1))
        [ "$(basename "$t" .sh)" = "$l" ] && rank=$r
    done
    printf '%s %s %s\n' "$rank" "$i" "$t"
done | sort -k1,1n -k2,2n | while read -r _rank i t; do
    printf '%s %s %s\n' "$i" "$t" "$results"
done | xargs -P "$jobs" -L 1 sh tests/e2e/run-one.sh
total_pass=0
total_fail=0
i=0
for t in "$@"; do
    i=$((i + 1))
    [ -e "$t" ] || continue
    echo "== $t ($(cat "$results/$i.secs" 2>/dev/null || echo '?') s)"
    cat "$results/$i.out" 2>/dev/null
    rc=$(tail -n 1 "$results/$i.out" 2>/dev/null | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
    if [ -z "$rc" ]; then
        echo "not ok - $t ended without a summary line"
        total_fail=$((total_fail + 1))
    else
        set -- $rc
        total_pass=$((total_pass + $1))
        total_fail=$((total_fail + $2))
    fi
done
rm -rf "$results"
echo "e2e: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]

#!/bin/sh
# Runs every cmocka unit-test program given, from the repo root, and prints
# the totals as "unit: N passed, M failed" (counting cmocka test cases).
pass=0
fail=0
bad_programs=""
for t in "$@"; do
    out=$(mktemp)
    timeout -k 5 120 "$t" >"$out" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    pass=$((pass + p))
    fail=$((fail + f))
    if [ "$rc" -ne 0 ] || [ "$p" -eq 0 ]; then
        [ "$f" -eq 0 ] && fail=$((fail + 1))
        bad_programs="$bad_programs $t"
        echo "FAIL $t (exit $rc)"
        tail -n 40 "$out"
    else
        echo "ok   $t ($p tests)"
    fi
    rm -f "$out"
done
[ -n "$bad_programs" ] && echo "failing programs:$bad_programs"
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]

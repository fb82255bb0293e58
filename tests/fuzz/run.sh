#!/bin/sh
# Runs each libFuzzer target for SECONDS, seeded from tests/fuzz/corpus/NAME,
# new inputs kept in a scratch copy (the committed corpus is not modified).
secs=$1
shift
fail=0
pass=0
for f in "$@"; do
    name=$(basename "$f")
    work=$(mktemp -d)
    [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
    if "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "$work" >"$work.log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log")
        echo "ok   $name: $execs runs in ${secs}s"
        pass=$((pass + 1))
    else
        echo "FAIL $name"
        tail -n 30 "$work.log"
        fail=$((fail + 1))
    fi
    rm -rf "$work" "$work.log"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

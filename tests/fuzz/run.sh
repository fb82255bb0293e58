#!/bin/sh
# Runs each libFuzzer target for SECONDS, seeded from tests/fuzz/corpus/NAME,
# new inputs kept in a scratch copy (the committed corpus is not modified).
# FUZZ_JOBS targets run at once (default: the number of cores), so the stage
# takes about SECONDS x targets / cores; results print in the order given.
secs=$1
shift
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
results=$(mktemp -d)
i=0
for f in "$@"; do
    i=$((i + 1))
    printf '%s %s\n' "$i" "$f"
done | xargs -P "$jobs" -L 1 sh tests/fuzz/run-one.sh "$secs" "$results"
fail=0
pass=0
i=0
for f in "$@"; do
    i=$((i + 1))
    if [ -f "$results/$i.ok" ]; then
        cat "$results/$i.ok"
        pass=$((pass + 1))
    else
        echo "FAIL $(basename "$f")"
        cat "$results/$i.fail" 2>/dev/null || echo "    (no result: the run was killed)"
        fail=$((fail + 1))
    fi
done
rm -rf "$results"
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

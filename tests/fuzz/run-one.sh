#!/bin/sh
# One fuzzer run for tests/fuzz/run.sh: SECONDS RESULTS_DIR INDEX PROGRAM.
# Writes RESULTS_DIR/INDEX.ok (one summary line) or INDEX.fail (the log's tail).
secs=$1
results=$2
idx=$3
f=$4
name=$(basename "$f")
work=$(mktemp -d)
[ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
if "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$work" >"$work.log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log")
    echo "ok   $name: $execs runs in ${secs}s" >"$results/$idx.ok"
else
    tail -n 30 "$work.log" >"$results/$idx.fail"
fi
rm -rf "$work" "$work.log"

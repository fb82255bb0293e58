#!/bin/sh
# One end-to-end script for tests/e2e/run.sh: INDEX SCRIPT RESULTS. Its
# output goes to RESULTS/INDEX.out and its wall time in seconds to
# RESULTS/INDEX.secs; bounded to 5 minutes.
i=$1
t=$2
results=$3
start=$(date +%s)
timeout -k 5 300 sh "$t" >"$results/$i.out" 2>&1
echo $(($(date +%s) - start)) >"$results/$i.secs"

#!/bin/sh
# `make bench`: starts a virtual card on a free loopback port and runs every
# benchmark against it. Prints figures and ratios; not a gate.
BUILD=${1:-build}
. tests/e2e/lib.sh
trap cleanup EXIT
start_vcard --presence yes || exit 1
echo "== bench_ctaphid"
"$BUILD/bench/bench_ctaphid" "$VCARD_URI" || exit 1
echo "== bench_vcard"
"$BUILD/bench/bench_vcard" "$VCARD_URI" || exit 1
stop_vcard

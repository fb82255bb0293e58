#!/bin/sh
# The network-facing programs under AddressSanitizer and
# UndefinedBehaviorSanitizer: the session-chain end-to-end tests run against
# the SANITIZE=1 build of vcard, k_server, k_proxy, chain-regress and
# kc-forward. Every sanitizer report (a leak at exit included) is written to
# a log file, and any such file is one more failure.
set -u
MAKE=${MAKE:-make}
$MAKE --no-print-directory SANITIZE=1 all interop >/dev/null || { echo "e2e-san: build failed"; echo "0 passed, 1 failed"; exit 1; }
logs=$(mktemp -d "${TMPDIR:-/tmp}/kcard-san.XXXXXX")
ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:abort_on_error=0"
UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1"
export ASAN_OPTIONS UBSAN_OPTIONS
out=$(mktemp)
sh tests/e2e/run.sh build/san tests/e2e/test_chain.sh tests/e2e/test_chain_fido2.sh tests/e2e/test_chain_faults.sh \
    tests/e2e/test_chain_regress.sh tests/e2e/test_split_chain.sh tests/e2e/test_vcard_personality.sh \
    tests/e2e/test_replay.sh tests/e2e/test_interop.sh tests/e2e/test_interop_cards.sh \
    tests/e2e/test_chain_replay.sh tests/e2e/test_chain_sessions.sh tests/e2e/test_http_limits.sh \
    tests/e2e/test_service_metrics.sh tests/e2e/test_tls_answers.sh tests/e2e/test_chain_ssh.sh \
    tests/e2e/test_chain_limits.sh tests/e2e/test_cross_site.sh \
    tests/e2e/test_rawctap_cred.sh tests/e2e/test_rawctap_config.sh tests/e2e/test_rawctap_largeblob.sh \
    tests/e2e/test_rawctap_largeblob_zlib.sh tests/e2e/test_kpx_wal.sh tests/e2e/test_doctor_capacity.sh \
    tests/e2e/test_libctaphid_install.sh | tee "$out"
set -- $(sed -n 's/^e2e: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$out" | tail -n 1)
pass=${1:-0}
fail=${2:-1}
reports=$(ls "$logs" 2>/dev/null | wc -l)
if [ "$reports" -gt 0 ]; then
    echo "not ok - sanitizer reports: $reports"
    for f in "$logs"/*; do
        echo "== $f"
        head -n 40 "$f"
    done
    fail=$((fail + 1))
else
    echo "ok - no sanitizer report from any program"
    pass=$((pass + 1))
fi
rm -rf "$logs" "$out"
echo "e2e-san: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/bin/sh
# `make bench`: starts a virtual card on a free loopback port and runs every
# benchmark against it, then the chain load bench (bench/chain_load.sh).
# Prints figures and ratios; not a gate.
BUILD=${1:-build}
. tests/e2e/lib.sh
trap cleanup EXIT
start_vcard --presence yes || exit 1
echo "== bench_ctaphid"
"$BUILD/bench/bench_ctaphid" "$VCARD_URI" || exit 1
echo "== bench_vcard"
"$BUILD/bench/bench_vcard" "$VCARD_URI" || exit 1

# The session chain: counter requests through k_proxy to k_server (one login,
# then N requests at parallelism P), over plain HTTP and over TLS.
BIN=$BUILD/bin
N=${CHAIN_REQUESTS:-4000}
for par in 1 16; do
    for mode in http https; do
        if [ "$mode" = https ]; then
            sh fixtures/tls/gen.sh "$E2E_TMP/tls" >/dev/null || exit 1
            S="--tls-certfile $E2E_TMP/tls/k_server.crt --tls-keyfile $E2E_TMP/tls/k_server.key"
            P="--tls-certfile $E2E_TMP/tls/k_proxy.crt --tls-keyfile $E2E_TMP/tls/k_proxy.key --server-ca-file $E2E_TMP/tls/ca.crt"
            CA="--cacert $E2E_TMP/tls/ca.crt"
        else
            S=""
            P=""
            CA=""
        fi
        # shellcheck disable=SC2086
        start_k_server $S || exit 1
        # shellcheck disable=SC2086
        start_k_proxy --server-base-url "$mode://127.0.0.1:$KS_PORT" --device "$VCARD_URI" $P || exit 1
        echo "== chain over $mode, $N counter requests at parallelism $par"
        # shellcheck disable=SC2086
        "$BIN/chain-regress" --base-url "$mode://127.0.0.1:$KP_PORT" $CA --requests "$N" \
            --parallelism "$par" --json >"$E2E_TMP/chain.json" || exit 1
        "$PY" - "$E2E_TMP/chain.json" <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))
l = j["latency_ms"]
print("  %.0f requests/s; latency ms median %.2f p95 %.2f max %.2f; %d new connections in the burst; %s"
      % (j["throughput_rps"], l["median"], l["p95"], l["max"], j["connections"],
         "unique and gap-free" if j["analysis"]["ok"] else "COUNTER CHECK FAILED"))
PYEOF
        stop_pid "$KP_PID"
        stop_pid "$KS_PID"
    done
done
stop_vcard

# Issue 9's load targets, side by side with an nginx ceiling (nginx and wrk
# from Debian, installed here when missing; `make check` needs neither).
sh bench/install-deps.sh || echo "bench: nginx or wrk could not be installed; the load bench skips what needs them"
sh bench/chain_load.sh "$BUILD"

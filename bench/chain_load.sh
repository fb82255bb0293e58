#!/bin/sh
# Issue 9's load benchmarks of the session chain, with an nginx ceiling run
# side by side on the same machine, printed as figures, ratios and MET/MISSED
# per target. Not a gate: exits 0 whatever the figures (1 only for bad usage).
#
# usage: sh bench/chain_load.sh [BUILD]     (make bench runs it from run.sh)
#
#   nginx ceiling   nginx (Debian) in a temporary prefix on loopback: a trivial
#                   upstream answering {"counter":1}, nginx proxying to it with
#                   keepalive, plain, with TLS in front (nginx_tls; TLS material
#                   from fixtures/tls/gen.sh) and with TLS on both hops
#                   (nginx_tls2); 3 rounds before each chain run and 2 after
#                   it (the median)
#   library floor   bench/floor/: libmicrohttpd + libcurl multi in the chain's
#                   shape doing nothing else, plain, TLS in front, TLS on both
#                   hops (floor_plain, floor_tls, floor_tls2, 3 rounds each)
#   chain           vcard + k_server + k_proxy as tests/e2e/lib.sh starts them,
#                   one login, then wrk -t2 -c32 POSTing /resource/counter with
#                   the bearer token (bench/wrk/counter.lua records every status
#                   and every counter value; afterwards the values are checked
#                   unique and gap-free): plain (chain_plain), TLS in front
#                   with k_server over plain HTTP (chain_tls, like nginx_tls),
#                   TLS on both hops (chain_tls2, like nginx_tls2)
#   pairs           after chain_plain and chain_tls, 5 pairs of 5 s rounds
#                   in turn, the chain's then nginx's: a ratio per pair,
#                   which the machine's drift over a minute barely moves
#   CPU             utime+stime (/proc/PID/stat) and context switches
#                   (/proc/PID/task/*/status) of k_proxy + k_server vs nginx's
#                   workers over each run, per request
#   chain-regress   its own CPU (rusage) per request at parallelism 32
#   logins          logins/s (probe mode, vcard --presence yes) on a fresh
#                   k_proxy and on one with 100k sessions preloaded into its
#                   state database (benchtool.py preload), in turns, 3 rounds
#   trickle         10,000 connections from 127.0.0.2 trickling header bytes
#                   at k_proxy while 10 counter calls from 127.0.0.1 are timed
#
# Environment: BENCH_SECONDS (each chain run, default 60), BENCH_NGINX_SECONDS
# (3 nginx rounds' worth, each round a third of it; default the smaller of BENCH_SECONDS and 21),
# BENCH_LOGIN_SECONDS (default 5), BENCH_CR_REQUESTS (default 20000),
# BENCH_TRICKLE_CONNS (default 10000), BENCH_RESULTS (where the raw results
# are kept, default BUILD/bench/chain_load), BENCH_PARTS (which parts run, of
# "plain tls regress logins trickle"; default all of them), BENCH_PAIRS
# (default 5; 0: none) and BENCH_PAIR_SECONDS (default 5).
case ${1:-} in
-h | --help)
    sed -n '2,43p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
-*)
    echo "usage: sh bench/chain_load.sh [BUILD] (see --help)" >&2
    exit 1
    ;;
esac
BUILD=${1:-build}
. tests/e2e/lib.sh

for n in "${BENCH_SECONDS:-60}" "${BENCH_NGINX_SECONDS:-0}" "${BENCH_LOGIN_SECONDS:-5}" \
    "${BENCH_CR_REQUESTS:-1}" "${BENCH_TRICKLE_CONNS:-1}" "${BENCH_PAIRS:-0}" "${BENCH_PAIR_SECONDS:-1}"; do
    case $n in
    '' | *[!0-9]*)
        echo "chain_load: BENCH_* settings must be whole numbers (got '$n')" >&2
        exit 1
        ;;
    esac
done
SECS=${BENCH_SECONDS:-60}
NGINX_SECS=${BENCH_NGINX_SECONDS:-$((SECS < 21 ? SECS : 21))}
LOGIN_SECS=${BENCH_LOGIN_SECONDS:-5}
PARTS=${BENCH_PARTS:-plain tls regress logins trickle}
for _part in $PARTS; do
    case $_part in
    plain | tls | regress | logins | trickle) ;;
    *)
        echo "chain_load: BENCH_PARTS: unknown part '$_part' (of: plain tls regress logins trickle)" >&2
        exit 1
        ;;
    esac
done
# part NAME: whether BENCH_PARTS asks for part NAME
part() {
    case " $PARTS " in
    *" $1 "*) return 0 ;;
    esac
    return 1
}
CR_N=${BENCH_CR_REQUESTS:-20000}
TRICKLE_CONNS=${BENCH_TRICKLE_CONNS:-10000}
PAIRS=${BENCH_PAIRS:-5}
PAIR_SECS=${BENCH_PAIR_SECONDS:-5}
[ "$PAIR_SECS" -ge 1 ] || PAIR_SECS=1
R=${BENCH_RESULTS:-$BUILD/bench/chain_load}
BT=bench/benchtool.py
# the logins/s runs measure the login path itself, one user from one address:
# k_proxy's per-user and per-address login limits (issue 10) would measure
# the limiter instead, so they are off for the bench
KP_BENCH_OPTS="--login-limit-user 0 --login-limit-address 0"
# the ceiling: the median of 5 rounds, 3 before the chain run and 2 after
# it (other work on the machine comes and goes, and its speed drifts)
NGINX_ROUND=$(((NGINX_SECS + 2) / 3))
rm -rf "$R"
mkdir -p "$R" || exit 1

NG_PID=""
bench_cleanup() {
    stop_nginx
    cleanup
}
trap bench_cleanup EXIT
trap 'exit 1' INT TERM

note() { echo "  $*" | tee -a "$R/notes"; }

# ---- nginx -----------------------------------------------------------------
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

stop_nginx() {
    [ -n "$NG_PID" ] || return 0
    _workers=$($PY -c 'import sys; sys.path.insert(0, "bench"); import benchtool; print(" ".join(map(str, benchtool.children(int(sys.argv[1])))))' "$NG_PID" 2>/dev/null)
    kill -TERM "$NG_PID" 2>/dev/null
    wait_exit "$NG_PID"
    kill -KILL "$NG_PID" 2>/dev/null
    for _w in $_workers; do kill -KILL "$_w" 2>/dev/null; done
    wait "$NG_PID" 2>/dev/null
    NG_PID=""
}

# Waits (bounded, 5 s) for URL to answer 200.
wait_http() {
    _tries=100
    while [ "$_tries" -gt 0 ]; do
        [ "$(curl -sk -m 1 -o /dev/null -w '%{http_code}' -X POST "$1" 2>/dev/null)" = 200 ] && return 0
        sleep 0.05
        _tries=$((_tries - 1))
    done
    return 1
}

start_nginx() {
    NG=$E2E_TMP/nginx
    mkdir -p "$NG/tmp" || return 1
    # shellcheck disable=SC2046
    set -- $("$PY" "$BT" freeport 5)
    NG_UP=$1
    NG_PLAIN=$2
    NG_TLS=$3
    NG_UP_TLS=$4
    NG_TLS2=$5
    sed -e "s#@PREFIX@#$NG#g" -e "s#@UP_PORT@#$NG_UP#g" -e "s#@PLAIN_PORT@#$NG_PLAIN#g" \
        -e "s#@TLS_PORT@#$NG_TLS#g" -e "s#@CERT@#$TLS/k_proxy.crt#g" -e "s#@KEY@#$TLS/k_proxy.key#g" \
        -e "s#@UP_TLS_PORT@#$NG_UP_TLS#g" -e "s#@TLS2_PORT@#$NG_TLS2#g" \
        -e "s#@UP_CERT@#$TLS/k_server.crt#g" -e "s#@UP_KEY@#$TLS/k_server.key#g" -e "s#@CA@#$TLS/ca.crt#g" \
        bench/nginx/ceiling.conf.in >"$NG/nginx.conf" || return 1
    "$NGINX" -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" 2>>"$NG/error.log" &
    NG_PID=$!
    if ! wait_http "http://127.0.0.1:$NG_PLAIN/resource/counter" ||
        ! wait_http "https://127.0.0.1:$NG_TLS/resource/counter" ||
        ! wait_http "https://127.0.0.1:$NG_TLS2/resource/counter"; then
        note "nginx did not answer within 5 s; its error log:"
        sed 's/^/    | /' "$NG/error.log" | head -n 10
        stop_nginx
        return 1
    fi
}

# ---- wrk -------------------------------------------------------------------
# run_wrk NAME URL SECONDS CONNS [measure options...]: wrk with
# bench/wrk/counter.lua, its output in $R/NAME.wrk, the CPU of the processes
# named by the measure options in $R/NAME.cpu.json. $TOKEN, $VALUES,
# $WRK_PATH and $WRK_BODY go to the script.
run_wrk() {
    _name=$1
    _url=$2
    _secs=$3
    _conns=$4
    shift 4
    _threads=2
    [ "$_conns" -lt 2 ] && _threads=1
    env BENCH_TOKEN="${TOKEN:-}" BENCH_VALUES="${VALUES:-}" BENCH_PATH="${WRK_PATH:-/resource/counter}" \
        BENCH_BODY="${WRK_BODY:-}" timeout -k 5 $((_secs + 60)) "$PY" "$BT" measure --out "$R/$_name.cpu.json" "$@" -- \
        wrk -t"$_threads" -c"$_conns" -d"${_secs}s" -s bench/wrk/counter.lua "$_url" \
        >"$R/$_name.wrk" 2>&1
    _rc=$?
    [ "$_rc" -eq 0 ] || note "$_name: wrk exited $_rc"
    grep -q '^BENCH ' "$R/$_name.wrk" || {
        note "$_name: no BENCH line from wrk:"
        sed 's/^/    | /' "$R/$_name.wrk" | head -n 10
    }
}

# ---- the chain ---------------------------------------------------------------
# chain_up plain|tls|tls2: a fresh k_server and k_proxy, one login; sets
# TOKEN, KP_URL, KS_SCHEME. tls: TLS in front of k_proxy, k_server over plain
# HTTP (as nginx_tls); tls2: TLS on both hops (as nginx_tls2).
chain_up() {
    TOKEN=""
    S=""
    P=""
    CURL_CA=""
    _kp_scheme=http
    KS_SCHEME=http
    if [ "$1" != plain ]; then
        _kp_scheme=https
        P="--tls-certfile $TLS/k_proxy.crt --tls-keyfile $TLS/k_proxy.key"
        CURL_CA="--cacert $TLS/ca.crt"
    fi
    if [ "$1" = tls2 ]; then
        KS_SCHEME=https
        S="--tls-certfile $TLS/k_server.crt --tls-keyfile $TLS/k_server.key"
        P="$P --server-ca-file $TLS/ca.crt"
    fi
    # shellcheck disable=SC2086
    start_k_server $S || return 1
    # shellcheck disable=SC2086
    start_k_proxy --server-base-url "$KS_SCHEME://127.0.0.1:$KS_PORT" --device "$VCARD_URI" $P $KP_BENCH_OPTS ||
        return 1
    KP_URL="$_kp_scheme://127.0.0.1:$KP_PORT"
    login || return 1
}

login() {
    # shellcheck disable=SC2086
    _code=$(curl -sS -m 30 $CURL_CA -o "$E2E_TMP/login.json" -w '%{http_code}' -X POST \
        "$KP_URL/session/login" -H 'Content-Type: application/json' -d '{"username":"bench"}' \
        2>"$E2E_TMP/login.err")
    if [ "$_code" != 200 ]; then
        note "login answered HTTP $_code: $(head -c 300 "$E2E_TMP/login.json" "$E2E_TMP/login.err" 2>/dev/null)"
        return 1
    fi
    TOKEN=$(json_get "$E2E_TMP/login.json" "j['session_token']")
    [ -n "$TOKEN" ]
}

chain_down() {
    [ -n "${KP_PID:-}" ] && stop_pid "$KP_PID"
    [ -n "${KS_PID:-}" ] && stop_pid "$KS_PID"
    KP_PID=""
    KS_PID=""
}

# pair_rounds NAME NGINX_URL: right after a chain run, PAIRS pairs of short
# rounds taken in turn, the chain's then nginx's, seconds apart: a ratio
# per pair, which the machine's drift over a minute barely moves
pair_rounds() {
    [ "$PAIRS" -gt 0 ] && [ -n "$2" ] && [ "$HAVE_NGINX" -eq 1 ] || return 0
    echo "== $1: $PAIRS pairs of ${PAIR_SECS} s rounds in turn, the chain's then nginx's"
    VALUES=""
    _pair=1
    while [ "$_pair" -le "$PAIRS" ]; do
        run_wrk "pair_$1.chain.r$_pair" "$KP_URL/resource/counter" "$PAIR_SECS" 32 \
            --pid "k_proxy=$KP_PID" --pid "k_server=$KS_PID"
        _tok=$TOKEN
        TOKEN=""
        run_wrk "pair_$1.nginx.r$_pair" "$2" "$PAIR_SECS" 32 --tree "nginx=$NG_PID"
        TOKEN=$_tok
        echo "  pair $_pair: chain $(sed -n 's/^Requests\/sec: *//p' "$R/pair_$1.chain.r$_pair.wrk") req/s, nginx $(sed -n 's/^Requests\/sec: *//p' "$R/pair_$1.nginx.r$_pair.wrk") req/s"
        _pair=$((_pair + 1))
    done
}

# chain_run NAME plain|tls|tls2 [NGINX_URL]: the sustained counter load on a
# fresh chain; with NGINX_URL, paired rounds against that ceiling after it.
chain_run() {
    echo "== $1: wrk -t2 -c32 -d${SECS}s POST /resource/counter through k_proxy -> k_server ($(hops "$2"))"
    if chain_up "$2"; then
        VALUES="$R/$1.values"
        WRK_PATH=""
        WRK_BODY=""
        run_wrk "$1" "$KP_URL/resource/counter" "$SECS" 32 \
            --pid "k_proxy=$KP_PID" --pid "k_server=$KS_PID"
        # what k_server handed out last, once the requests wrk left in flight are done
        sleep 1
        # shellcheck disable=SC2086
        _issued=$(curl -sS -m 5 $CURL_CA "$KS_SCHEME://127.0.0.1:$KS_PORT/healthz" 2>/dev/null |
            "$PY" -c 'import json,sys; print(int(json.load(sys.stdin)["counter"]))' 2>/dev/null)
        "$PY" "$BT" values "$R/$1.values" --issued "${_issued:-none}" --allow-missing 32 >"$R/$1.values.json"
        grep -h 'Requests/sec\|Non-2xx\|Socket errors' "$R/$1.wrk" | sed 's/^/  /'
        pair_rounds "$1" "${3:-}"
    else
        note "$1: the chain did not come up; not measured"
    fi
    chain_down
}

# hops plain|tls|tls2: the words for a run's transports
hops() {
    case $1 in
    plain) echo "plain HTTP on both hops" ;;
    tls) echo "TLS in front, plain HTTP upstream" ;;
    tls2) echo "TLS on both hops" ;;
    esac
}

# floor_run plain|tls|tls2: the library floor (bench/floor/), 3 rounds like
# the ceiling: wrk -> floor_proxy -> floor_upstream, libmicrohttpd and
# libcurl's multi interface built as kcard's front is, doing nothing else.
# What the chain could reach with the libraries issue 9 prescribes, were its
# own work free. The TLS modes are chain_up's, with the chain's certificates.
floor_run() {
    if [ ! -x "$BUILD/bench/floor_proxy" ] || [ ! -x "$BUILD/bench/floor_upstream" ]; then
        note "floor_$1: $BUILD/bench/floor_proxy or floor_upstream is not built (make bench builds them); not measured"
        return 0
    fi
    _fname=floor_$1
    _fscheme=http
    _fup_scheme=http
    _fup_tls=""
    _fpx_tls=""
    if [ "$1" != plain ]; then
        _fscheme=https
        _fpx_tls="--tls-certfile $TLS/k_proxy.crt --tls-keyfile $TLS/k_proxy.key"
    fi
    if [ "$1" = tls2 ]; then
        _fup_scheme=https
        _fup_tls="--tls-certfile $TLS/k_server.crt --tls-keyfile $TLS/k_server.key"
        _fpx_tls="$_fpx_tls --ca-file $TLS/ca.crt"
    fi
    _fd=$(mktemp -d "$E2E_TMP/floor.XXXXXX") || return 0
    # shellcheck disable=SC2086
    "$BUILD/bench/floor_upstream" --port 0 --port-file "$_fd/up.port" $_fup_tls 2>>"$_fd/up.log" &
    _up_pid=$!
    _E2E_PIDS="$_E2E_PIDS $_up_pid"
    if ! _wait_port_file "$_fd/up.port" "$_up_pid"; then
        note "$_fname: floor_upstream did not start; not measured: $(head -c 300 "$_fd/up.log")"
        stop_pid "$_up_pid"
        return 0
    fi
    # shellcheck disable=SC2086
    "$BUILD/bench/floor_proxy" --port 0 --port-file "$_fd/px.port" $_fpx_tls \
        --upstream "$_fup_scheme://127.0.0.1:$(cat "$_fd/up.port")/counter/next" 2>>"$_fd/px.log" &
    _px_pid=$!
    _E2E_PIDS="$_E2E_PIDS $_px_pid"
    if _wait_port_file "$_fd/px.port" "$_px_pid"; then
        echo "== $_fname: 3 rounds of wrk -t2 -c32 -d${NGINX_ROUND}s through floor_proxy -> floor_upstream, $(hops "$1") (libmicrohttpd + libcurl multi alone)"
        TOKEN=""
        VALUES=""
        WRK_PATH=""
        WRK_BODY=""
        for _round in 1 2 3; do
            run_wrk "$_fname.r$_round" "$_fscheme://127.0.0.1:$(cat "$_fd/px.port")/resource/counter" \
                "$NGINX_ROUND" 32 --pid "floor_proxy=$_px_pid" --pid "floor_upstream=$_up_pid"
            grep -h 'Requests/sec' "$R/$_fname.r$_round.wrk" | sed 's/^/  /'
        done
    else
        note "$_fname: floor_proxy did not start; not measured: $(head -c 300 "$_fd/px.log")"
    fi
    stop_pid "$_px_pid"
    stop_pid "$_up_pid"
}

if ! command -v wrk >/dev/null 2>&1; then
    echo "chain_load: wrk is not installed (bench/install-deps.sh installs it); skipped"
    exit 0
fi
if ! command -v curl >/dev/null 2>&1; then
    echo "chain_load: curl is not installed; skipped"
    exit 0
fi
TLS=$E2E_TMP/tls
sh fixtures/tls/gen.sh --quiet "$TLS" >/dev/null || {
    echo "chain_load: fixtures/tls/gen.sh failed; skipped"
    exit 0
}
echo "== chain load bench: chain runs ${SECS} s, nginx runs ${NGINX_SECS} s, wrk -t2 -c32; $(nproc) cores; results in $R"

# 1. the nginx ceiling and 2. the chain, each chain run right after its
# nginx run, so that other work on the machine weighs on both alike
HAVE_NGINX=0
if [ ! -x "$NGINX" ]; then
    note "nginx is not installed (bench/install-deps.sh installs it): no ceiling, no ratios"
elif start_nginx; then
    HAVE_NGINX=1
else
    note "nginx did not start (its error log is above): no ceiling, no ratios"
fi
start_vcard --presence yes || {
    echo "chain_load: vcard did not start; chain not measured"
    "$PY" "$BT" report "$R"
    exit 0
}
# nginx_rounds NAME URL FIRST LAST WHAT: ceiling rounds FIRST..LAST of run
# NAME (rounds after the chain run continue the numbering: the median takes all)
nginx_rounds() {
    echo "== $1: rounds $3-$4 of wrk -t2 -c32 -d${NGINX_ROUND}s through nginx -> nginx upstream, $5"
    TOKEN=""
    VALUES=""
    WRK_PATH=""
    WRK_BODY=""
    _round=$3
    while [ "$_round" -le "$4" ]; do
        run_wrk "$1.r$_round" "$2" "$NGINX_ROUND" 32 --tree "nginx=$NG_PID"
        grep -h 'Requests/sec' "$R/$1.r$_round.wrk" | sed 's/^/  /'
        _round=$((_round + 1))
    done
}

# each chain run bracketed by its nginx ceiling: plain; TLS in front (the
# issue's TLS target); TLS on both hops (like for like for that deployment)
for mode in plain tls tls2; do
    part "${mode%2}" || continue
    case $mode in
    plain) _ng_url="http://127.0.0.1:$NG_PLAIN/resource/counter" ;;
    tls) _ng_url="https://127.0.0.1:$NG_TLS/resource/counter" ;;
    tls2) _ng_url="https://127.0.0.1:$NG_TLS2/resource/counter" ;;
    esac
    [ "$HAVE_NGINX" -eq 1 ] && nginx_rounds "nginx_$mode" "$_ng_url" 1 3 "$(hops $mode) (the ceiling, before the chain run)"
    floor_run "$mode"
    # the paired rounds for the targets' modes (plain, TLS in front)
    _pair_url=""
    [ "$mode" != tls2 ] && _pair_url=$_ng_url
    chain_run "chain_$mode" "$mode" "$_pair_url"
    # the machine's speed drifts over a minute (nginx's rounds have ranged
    # 58k-121k/s in one bench): rounds after the chain run bracket it
    [ "$HAVE_NGINX" -eq 1 ] && nginx_rounds "nginx_$mode" "$_ng_url" 4 5 "$(hops $mode) (the ceiling, after the chain run)"
done
stop_nginx

if part regress; then
    # 3. chain-regress's own CPU per request at parallelism 32
    echo "== chain-regress --requests $CR_N --parallelism 32 over http (its own CPU)"
    if chain_up plain; then
        echo "$CR_N" >"$R/chain_regress.n"
        timeout -k 5 120 "$PY" "$BT" measure --out "$R/chain_regress.cpu.json" \
            --pid "k_proxy=$KP_PID" --pid "k_server=$KS_PID" -- \
            "$BIN/chain-regress" --base-url "$KP_URL" --requests "$CR_N" --parallelism 32 \
            --username bench >"$R/chain_regress.out" 2>&1
        tail -n 1 "$R/chain_regress.out" | cut -c 1-200 | sed 's/^/  /'
    else
        note "chain-regress: the chain did not come up; not measured"
    fi
    chain_down
fi

if part logins; then
    # 4. logins/s: a fresh k_proxy and one whose database holds 100k sessions,
    # both up at once and measured in turns (3 rounds each, medians compared),
    # so that other work on the machine weighs on both alike
    echo "== logins/s (probe mode, wrk -t1 -c4): a fresh k_proxy and one with 100k sessions, 3 rounds of ${LOGIN_SECS} s each in turn"
    if chain_up plain; then
        FRESH_PID=$KP_PID
        FRESH_URL=$KP_URL
        # the second k_proxy: made with its database and one login (preload
        # copies its session row), stopped, preloaded, started again
        # shellcheck disable=SC2086
        start_k_proxy --server-base-url "http://127.0.0.1:$KS_PORT" --device "$VCARD_URI" $KP_BENCH_OPTS &&
            KP_URL="http://127.0.0.1:$KP_PORT" && login
        stop_pid "$KP_PID"
        KP_PID=""
        if "$PY" "$BT" preload "$KP_DIR/k_proxy.db" 100000 >"$R/preload.json" 2>"$R/preload.err"; then
            echo "  preloaded: $(json_get "$R/preload.json" "'%d sessions (columns made afresh: %s)' % (j['sessions'], ', '.join(j['fresh_columns']))")"
            # lib.sh's way, on the same directory and so the preloaded database;
            # loading 100k sessions may take longer than the 5 s lib.sh waits
            rm -f "$KP_DIR/port"
            _t0=$(date +%s.%N)
            # shellcheck disable=SC2086
            _start_service k_proxy "$KP_DIR" --server-base-url "http://127.0.0.1:$KS_PORT" $KP_BENCH_OPTS \
                --device "$VCARD_URI" 2>/dev/null
            # shellcheck disable=SC2154 # _pid: set by lib.sh's _start_service
            FULL_PID=$_pid
            _tries=1100 # 55 s more
            while [ ! -s "$KP_DIR/port" ] && kill -0 "$FULL_PID" 2>/dev/null && [ "$_tries" -gt 0 ]; do
                sleep 0.05
                _tries=$((_tries - 1))
            done
            if [ -s "$KP_DIR/port" ]; then
                echo "  k_proxy with 100k sessions ready in $($PY -c "import sys,time; print('%.2f s' % (time.time() - float(sys.argv[1])))" "$_t0")"
                FULL_URL="http://127.0.0.1:$(cat "$KP_DIR/port")"
                _active=$(curl -sS -m 5 "$FULL_URL/metrics" 2>/dev/null | sed -n 's/^kcard_k_proxy_sessions_active \([0-9]*\).*/\1/p')
                echo "  its /metrics: kcard_k_proxy_sessions_active ${_active:-(not reported)}"
                WRK_PATH=/session/login
                WRK_BODY='{"username":"bench"}'
                VALUES=""
                TOKEN=""
                for _round in 1 2 3; do
                    run_wrk "login_fresh.r$_round" "$FRESH_URL/session/login" "$LOGIN_SECS" 4 --pid "k_proxy=$FRESH_PID" --pid "vcard=$VCARD_PID"
                    grep -h 'Requests/sec' "$R/login_fresh.r$_round.wrk" | sed 's/^/  fresh:     /'
                    run_wrk "login_100k.r$_round" "$FULL_URL/session/login" "$LOGIN_SECS" 4 --pid "k_proxy=$FULL_PID" --pid "vcard=$VCARD_PID"
                    grep -h 'Requests/sec' "$R/login_100k.r$_round.wrk" | sed 's/^/  100k:      /'
                done
            else
                note "k_proxy did not start on the preloaded database within 60 s; its log:"
                sed 's/^/    | /' "$KP_DIR/log" | head -n 10
            fi
            stop_pid "$FULL_PID"
        else
            note "preloading 100k sessions failed: $(head -c 300 "$R/preload.err")"
        fi
        KP_PID=$FRESH_PID
    else
        note "logins: the chain did not come up; not measured"
    fi
    chain_down
fi

if part trickle; then
    # 5. a counter call while 10,000 connections from 127.0.0.2 trickle headers
    echo "== $TRICKLE_CONNS connections from 127.0.0.2 trickling headers at k_proxy; 10 counter calls from 127.0.0.1"
    if chain_up plain; then
        timeout -k 5 120 "$PY" "$BT" trickle --port "$KP_PORT" --url "$KP_URL" --token "$TOKEN" \
            --conns "$TRICKLE_CONNS" --tries 10 --out "$R/trickle.json" || note "trickle: exit $?"
        kill -0 "$KP_PID" 2>/dev/null || note "trickle: k_proxy DIED under the trickling connections"
    else
        note "trickle: the chain did not come up; not measured"
    fi
    chain_down
fi
stop_vcard

"$PY" "$BT" report "$R"
if [ -s "$R/notes" ]; then
    echo "notes:"
    cat "$R/notes"
fi
exit 0

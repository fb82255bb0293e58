# Shared by tests/e2e/test_interop*.sh (POSIX sh; source it after
# tests/e2e/lib.sh). Runs one interop client program against the card,
# folds its "N passed, M failed" into the script's own counts, and keeps one
# row per run for the table printed at the end:
#
#   run_client CLIENT CARD WHAT CMD...        CMD's checks count as ours; a run
#                                             that prints no summary, runs no
#                                             check or exits non-zero with no
#                                             failure is one more failure
#   run_client_fails CLIENT CARD WHAT RE CMD...  the run must fail exactly one
#                                             check, whose "not ok" line matches
#                                             RE (proves a check bites): one check
#   free_udp_port                             a UDP port free on 127.0.0.1 now
#   interop_table                             prints the table of runs
#
# $LIBFIDO2_DIR holds the libfido2 programs, $PYCLIENT runs a python one.
# shellcheck disable=SC2034 # used by the scripts that source this file
LIBFIDO2_DIR="$BUILD/interop"
# shellcheck disable=SC2034 # "python3 tests/interop", split on purpose
PYCLIENT="$PY tests/interop"
INTEROP_ROWS="$E2E_TMP/interop.rows"
INTEROP_TIMEOUT=${INTEROP_TIMEOUT:-25}
: >"$INTEROP_ROWS"

_now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

_row() {
    printf '%-13s %-28s %-34s %s\n' "$1" "$2" "$3" "$4" >>"$INTEROP_ROWS"
}

# Runs CMD bounded, its output indented; sets _out, _rc, _took (ms), _p, _f.
_run_bounded() {
    _out="$E2E_TMP/client.out"
    _t0=$(_now_ms)
    timeout -k 2 "$INTEROP_TIMEOUT" "$@" >"$_out" 2>&1
    _rc=$?
    _took=$(($(_now_ms) - _t0))
    sed 's/^/    /' "$_out"
    _p=""
    _f=""
    _counts=$(tail -n 1 "$_out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
    [ -n "$_counts" ] || return 0
    _p=${_counts% *}
    _f=${_counts#* }
}

run_client() {
    _client=$1
    _card=$2
    _what=$3
    shift 3
    _run_bounded "$@"
    _secs=$(printf '%d.%d s' $((_took / 1000)) $((_took % 1000 / 100)))
    if [ -z "$_p" ]; then
        not_ok "$_client vs $_card ($_what) ran to completion" "exit $_rc, no summary"
        _row "$_client" "$_card" "$_what" "NO SUMMARY (exit $_rc) $_secs"
        return
    fi
    PASSED=$((PASSED + _p))
    FAILED=$((FAILED + _f))
    [ "$_p" -gt 0 ] || [ "$_f" -gt 0 ] || not_ok "$_client vs $_card ($_what) ran a check"
    [ "$_rc" -eq 0 ] || [ "$_f" -gt 0 ] || not_ok "$_client vs $_card ($_what) exit status" "exit $_rc"
    _row "$_client" "$_card" "$_what" "$_p ok, $_f failed, $_secs"
}

run_client_fails() {
    _client=$1
    _card=$2
    _what=$3
    _re=$4
    shift 4
    _run_bounded "$@"
    _name="$_client vs $_card: $_what fails as it must"
    if [ "$_rc" -eq 1 ] && [ "$_f" = 1 ] && grep -q "^not ok - .*$_re" "$_out"; then
        ok "$_name"
        _row "$_client" "$_card" "$_what" "fails as it must ($_p ok)"
    else
        not_ok "$_name" "exit $_rc, ${_f:-no} failed, no 'not ok' line matching '$_re'"
        _row "$_client" "$_card" "$_what" "DID NOT FAIL AS IT MUST"
    fi
}

free_udp_port() {
    "$PY" -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

interop_table() {
    echo "# interop runs:"
    printf '# %-13s %-28s %-34s %s\n' client "card (personality/fault)" what result
    sed 's/^/# /' "$INTEROP_ROWS"
}

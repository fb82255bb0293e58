#!/bin/sh
# The Phase 5 runbook's same-VM quickstart, word for word with the program
# names changed (docs/runbook/PHASE5_RUNBOOK.md): k_server on 8780 and
# k_proxy on 8770 with the runbook's flags and default state paths, then the
# runbook's curl test flow. It runs in a network namespace of its own
# (unshare -n, as root) so the fixed ports cannot clash with anything.
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" -ne 0 ]; then
    not_ok "runbook quickstart" "needs root for a private network namespace (unshare -n)"
    finish
    exit 1
fi
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
export BIN PY T

# the body runs inside the namespace; it prints one "ok -"/"not ok -" line per check
cat >"$T/inside.sh" <<'INSIDE'
set -u
ip link set lo up
export HOME=$T/home XDG_STATE_HOME= KCARD_ANNOUNCE_DIR=$T/announce
mkdir -p "$HOME" "$KCARD_ANNOUNCE_DIR"
"$BIN/vcard" --listen 127.0.0.1:8111 --announce "$KCARD_ANNOUNCE_DIR" --presence yes 2>"$T/vcard.log" &
V=$!
"$BIN/k_server" --host 127.0.0.1 --port 8780 --proxy-token dev-proxy-token 2>"$T/ks.log" &
S=$!
"$BIN/k_proxy" \
    --host 127.0.0.1 \
    --port 8770 \
    --session-ttl 300 \
    --server-base-url http://127.0.0.1:8780 \
    --proxy-token dev-proxy-token 2>"$T/kp.log" &
P=$!
n=100
while [ $n -gt 0 ] && ! curl -s -o /dev/null http://127.0.0.1:8770/healthz; do sleep 0.05; n=$((n - 1)); done
r() { # NAME WANT curl-args...
    name=$1 want=$2
    shift 2
    got=$(curl -sS -o "$T/o" -w '%{http_code}' "$@")
    if [ "$got" = "$want" ]; then echo "ok - $name"; else echo "not ok - $name: HTTP $got, wanted $want"; sed 's/^/    | /' "$T/o"; fi
}
r "runbook: create a session" 200 -X POST http://127.0.0.1:8770/session/login \
    -H 'Content-Type: application/json' \
    -d '{"username":"alice"}'
TOKEN=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["session_token"])' "$T/o")
r "runbook: check session" 200 -X POST http://127.0.0.1:8770/session/status \
    -H "Authorization: Bearer $TOKEN"
r "runbook: protected resource" 200 -X POST http://127.0.0.1:8770/resource/counter \
    -H "Authorization: Bearer $TOKEN"
r "runbook: protected resource again, no new login" 200 -X POST http://127.0.0.1:8770/resource/counter \
    -H "Authorization: Bearer $TOKEN"
grep -q '"counter":2' "$T/o" && echo "ok - the counter is 2" || echo "not ok - the counter is 2"
r "runbook: logout" 200 -X POST http://127.0.0.1:8770/session/logout \
    -H "Authorization: Bearer $TOKEN"
r "runbook: re-check after logout fails with 401" 401 -X POST http://127.0.0.1:8770/resource/counter \
    -H "Authorization: Bearer $TOKEN"
[ -f "$HOME/.local/state/kcard/k_server.db" ] && [ -f "$HOME/.local/state/kcard/k_proxy.db" ] &&
    echo "ok - state in the default paths under ~/.local/state/kcard" || echo "not ok - default state paths"
"$BIN/chain-regress" --base-url http://127.0.0.1:8770 >"$T/cr" 2>&1 &&
    echo "ok - chain-regress against the quickstart passes" || { echo "not ok - chain-regress"; sed 's/^/    | /' "$T/cr"; }
kill -TERM $P $S $V 2>/dev/null
wait $P $S $V 2>/dev/null
INSIDE
timeout 60 unshare -n sh "$T/inside.sh" >"$T/inside.out" 2>&1
cat "$T/inside.out"
PASSED=$(grep -c '^ok - ' "$T/inside.out")
FAILED=$(grep -c '^not ok - ' "$T/inside.out")
[ "$PASSED" -eq 9 ] || { not_ok "all nine checks ran" "$PASSED passed"; }
finish

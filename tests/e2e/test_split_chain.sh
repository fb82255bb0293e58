#!/bin/sh
# The runbook's split-VM chain in three network namespaces
# (harness/chain/split.sh): from the k_client namespace, through
# kc-forward 9771 -> k_proxy 8771 -> kc-forward 9780 -> k_server 8780, with TLS
# verified against the run's CA at each hop, the runbook's test flow: login
# alice, status, counter twice (increasing), logout, counter -> 401; a refused
# touch (401 card_denied); the runbook's regression (chain-regress, 20 counters
# at parallelism 8) from k_client; TLS verification end to end; the isolation
# of the namespaces; and that `down` leaves no namespace or process behind.
# Needs root (ip netns); otherwise it fails, saying so.
# shellcheck source=tests/e2e/lib.sh
. tests/e2e/lib.sh

SPLIT=harness/chain/split.sh
DIR="$T/split"
UP=0

teardown() {
    if [ "$UP" -eq 1 ]; then
        sh "$SPLIT" down "$DIR" >/dev/null 2>&1
        UP=0
    fi
}
trap 'teardown; cleanup' EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" -ne 0 ]; then
    not_ok "split chain e2e needs root to create network namespaces (ip netns); running as uid $(id -u)"
    finish
    exit 1
fi
for b in vcard vcard-ctl k_server k_proxy kc-forward; do
    if [ ! -x "$BIN/$b" ]; then
        not_ok "split chain binaries" "$BIN/$b missing"
        finish
        exit 1
    fi
done

# ---- up ----
UP=1
if BIN="$BIN" sh "$SPLIT" up "$DIR" >"$T/up.out" 2>"$T/up.err"; then
    ok "split.sh up: whole path healthy"
else
    not_ok "split.sh up: whole path healthy"
    show_head 40 "$T/up.err"
    finish
    exit 1
fi
# shellcheck disable=SC1091
. "$DIR/env"
for v in SPLIT_ID NS_CLIENT NS_PROXY NS_SERVER PID_k_server PID_k_proxy PID_fwd_server \
    PID_fwd_proxy PID_vcard CA_FILE VCARD_CTL; do
    eval "_v=\${$v:-}"
    [ -n "$_v" ] || not_ok "env names $v"
done
if ip netns list | grep -q "^$NS_CLIENT" && ip netns list | grep -q "^$NS_PROXY" &&
    ip netns list | grep -q "^$NS_SERVER"; then
    ok "three namespaces exist, prefixed with the run id $SPLIT_ID"
else
    not_ok "three namespaces exist, prefixed with the run id $SPLIT_ID"
fi

# ---- the run's TLS material (fixtures/tls/gen.sh) ----
TLS="$DIR/tls"
GEN=fixtures/tls/gen.sh
modes=$(stat -c '%a' "$TLS/ca.key" "$TLS/k_server.key" "$TLS/k_proxy.key" 2>/dev/null | sort -u)
if [ "$modes" = 600 ]; then ok "TLS keys are mode 0600"; else not_ok "TLS keys are mode 0600" "modes: $modes"; fi
check "k_server.crt and k_proxy.crt verify against ca.crt for TLS servers" \
    openssl verify -CAfile "$TLS/ca.crt" -purpose sslserver "$TLS/k_server.crt" "$TLS/k_proxy.crt"
san_ok=1
for leaf in k_server k_proxy; do
    openssl x509 -in "$TLS/$leaf.crt" -noout -ext subjectAltName 2>/dev/null >"$T/san"
    grep -q 'DNS:localhost' "$T/san" && grep -q 'IP Address:127.0.0.1' "$T/san" || san_ok=0
    openssl pkey -in "$TLS/$leaf.key" -noout -text 2>/dev/null | grep -q 'prime256v1' || san_ok=0
done
openssl pkey -in "$TLS/ca.key" -noout -text 2>/dev/null | grep -q 'prime256v1' || san_ok=0
if [ "$san_ok" -eq 1 ]; then
    ok "leaves carry SAN DNS:localhost, IP:127.0.0.1; every key is EC P-256"
else
    not_ok "leaves carry SAN DNS:localhost, IP:127.0.0.1; every key is EC P-256"
fi
# lifetimes: the CA 10 years, the leaves 825 days
days() { openssl x509 -in "$1" -noout -checkend $(($2 * 86400)) >/dev/null 2>&1; }
if days "$TLS/ca.crt" 3640 && ! days "$TLS/ca.crt" 3660 && days "$TLS/k_proxy.crt" 824 &&
    ! days "$TLS/k_proxy.crt" 826; then
    ok "CA valid 10 years, leaves 825 days"
else
    not_ok "CA valid 10 years, leaves 825 days"
fi
sums() { cat "$1"/ca.crt "$1"/ca.key "$1"/k_server.* "$1"/k_proxy.* | sha256sum; }
before=$(sums "$TLS")
sh "$GEN" --quiet "$TLS" >/dev/null 2>&1
if [ "$(sums "$TLS")" = "$before" ]; then
    ok "gen.sh again keeps valid material unchanged"
else
    not_ok "gen.sh again keeps valid material unchanged"
fi
cp -Rp "$TLS" "$T/tls2"
echo damaged >"$T/tls2/k_proxy.crt"
ca_before=$(sha256sum <"$T/tls2/ca.crt")
srv_before=$(sha256sum <"$T/tls2/k_server.crt")
if sh "$GEN" --quiet "$T/tls2" >/dev/null 2>&1 &&
    openssl verify -CAfile "$T/tls2/ca.crt" "$T/tls2/k_proxy.crt" >/dev/null 2>&1 &&
    [ "$(sha256sum <"$T/tls2/ca.crt")" = "$ca_before" ] &&
    [ "$(sha256sum <"$T/tls2/k_server.crt")" = "$srv_before" ]; then
    ok "gen.sh remakes only a damaged leaf"
else
    not_ok "gen.sh remakes only a damaged leaf"
fi
if sh "$GEN" --quiet --force "$T/tls2" >/dev/null 2>&1 &&
    [ "$(sha256sum <"$T/tls2/ca.crt")" != "$ca_before" ] &&
    openssl verify -CAfile "$T/tls2/ca.crt" "$T/tls2/k_server.crt" >/dev/null 2>&1; then
    ok "gen.sh --force makes a new CA and leaves"
else
    not_ok "gen.sh --force makes a new CA and leaves"
fi

# api NAME WANT_STATUS PATH [TOKEN] [BODY]: POST from the k_client namespace to
# https://127.0.0.1:9771 with the run's CA; body in $T/out
api() {
    _name=$1
    _want=$2
    _path=$3
    _tok=${4:-}
    _body=${5:-}
    set -- -sS --max-time 20 --cacert "$CA_FILE" -o "$T/out" -w '%{http_code}' -X POST
    [ -n "$_tok" ] && set -- "$@" -H "Authorization: Bearer $_tok"
    [ -n "$_body" ] && set -- "$@" -H 'Content-Type: application/json' -d "$_body"
    _code=$(sh "$SPLIT" exec "$DIR" k_client curl "$@" "https://127.0.0.1:9771$_path" 2>"$T/err")
    if [ "$_code" = "$_want" ]; then
        ok "$_name"
    else
        not_ok "$_name" "HTTP $_code, wanted $_want"
        show_head 5 "$T/out" "$T/err"
    fi
}

# ---- the runbook's test flow ----
api "login alice: 200" 200 /session/login "" '{"username":"alice"}'
jcheck "login answer has a 43-character session token for alice" \
    'len(j["session_token"]) == 43 and j["username"] == "alice"'
TOKEN=$(json_get "$T/out" 'j["session_token"]' 2>/dev/null)

api "status: 200" 200 /session/status "$TOKEN"
jcheck "status: active session of alice" 'j["active"] is True and j["username"] == "alice"'

api "counter 1: 200" 200 /resource/counter "$TOKEN"
jcheck "counter 1 is a number" 'isinstance(j["counter"], int)'
C1=$(json_get "$T/out" 'j["counter"]' 2>/dev/null)
api "counter 2: 200" 200 /resource/counter "$TOKEN"
C2=$(json_get "$T/out" 'j["counter"]' 2>/dev/null)
if [ -n "$C1" ] && [ -n "$C2" ] && [ "$C2" -gt "$C1" ]; then
    ok "counter values increase ($C1 then $C2)"
else
    not_ok "counter values increase" "got '$C1' then '$C2'"
fi

api "logout: 200" 200 /session/logout "$TOKEN"
jcheck "logout answer says logged_out" 'j["logged_out"] is True'
api "counter after logout: 401" 401 /resource/counter "$TOKEN"
jcheck "401 names invalid_session" 'j["error"] == "invalid_session"'

# ---- a refused touch: 401 card_denied, k_server not called ----
if "$CTL" --control "$VCARD_CTL" presence no >/dev/null 2>"$T/ctl.err"; then
    api "card refuses: login 401" 401 /session/login "" '{"username":"alice"}'
    jcheck "401 names card_denied" 'j["error"] == "card_denied"'
    "$CTL" --control "$VCARD_CTL" presence yes >/dev/null 2>&1
else
    not_ok "vcard-ctl presence no" "$(cat "$T/ctl.err")"
fi

# ---- the runbook's regression from k_client: 20 counters at parallelism 8 ----
if [ -x "$BIN/chain-regress" ]; then
    check "chain-regress from k_client: unique, gap-free counters, 401 after logout" \
        sh "$SPLIT" exec "$DIR" k_client "$BIN/chain-regress" --base-url https://127.0.0.1:9771 \
        --cacert "$CA_FILE" --requests 20 --parallelism 8 --expect-auth-mode card_probe
else
    not_ok "chain-regress from k_client" "$BIN/chain-regress missing"
fi

# ---- TLS is end to end through the forwards ----
check_exit "without the run's CA the client refuses k_proxy's certificate (curl 60)" 60 \
    sh "$SPLIT" exec "$DIR" k_client curl -sS --max-time 10 https://127.0.0.1:9771/healthz

# ---- isolation: the k_client namespace reaches only its forward ----
TOOL=harness/chain/tcptool.py
check "k_server's 8780 not reachable from k_client" \
    sh "$SPLIT" exec "$DIR" k_client "$PY" "$TOOL" connect_fails 8780
check "k_server's forward 9780 not reachable from k_client" \
    sh "$SPLIT" exec "$DIR" k_client "$PY" "$TOOL" connect_fails 9780
check "k_proxy's own 8771 not reachable from k_client" \
    sh "$SPLIT" exec "$DIR" k_client "$PY" "$TOOL" connect_fails 8771
check "k_proxy's 8771 not reachable from k_server" \
    sh "$SPLIT" exec "$DIR" k_server "$PY" "$TOOL" connect_fails 8771
check "split.sh status: every process running" sh "$SPLIT" status "$DIR"

# ---- down ----
if sh "$SPLIT" down "$DIR" >"$T/down.out" 2>"$T/down.err"; then
    ok "split.sh down"
else
    not_ok "split.sh down"
    show_head 10 "$T/down.err"
fi
UP=0
if ip netns list | grep -q "^$SPLIT_ID"; then
    not_ok "no namespace left behind" "$(ip netns list | grep "^$SPLIT_ID" | tr '\n' ' ')"
else
    ok "no namespace left behind"
fi
left=""
# shellcheck disable=SC2154 # the PIDs come from $DIR/env
for p in $PID_k_server $PID_k_proxy $PID_fwd_server $PID_fwd_proxy $PID_vcard; do
    # a zombie waiting for init to reap it has exited
    st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$p/stat" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ] && left="$left $p"
done
if [ -z "$left" ]; then
    ok "no process left behind"
else
    not_ok "no process left behind" "still running:$left"
fi
finish

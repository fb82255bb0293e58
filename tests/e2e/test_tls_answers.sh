#!/bin/sh
# How the services' HTTP front writes answers over TLS (services/common/http.c,
# tls_answer_begin/flush): a small answer leaves as one TLS record, not
# libmicrohttpd's two (headers, then body), whatever ends the exchange:
# keep-alive, HTTP/1.0, Connection: close, HEAD, pipelining, 404s; and no
# answer waits for the kernel's TCP cork timer. tls_probe.py reads the raw
# records itself, so it sees how each answer was cut.
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM
HERE=$(dirname "$0")
TLS=$E2E_TMP/tls
sh fixtures/tls/gen.sh --quiet "$TLS" >/dev/null || { not_ok "fixtures/tls/gen.sh makes TLS material"; finish; exit 1; }

start_k_server --tls-certfile "$TLS/k_server.crt" --tls-keyfile "$TLS/k_server.key" ||
    { not_ok "k_server starts with TLS"; finish; exit 1; }
ok "k_server starts with TLS"
probe() { # CASE PORT
    timeout 30 "$PY" "$HERE/tls_probe.py" "$1" 127.0.0.1 "$2" "$TLS/ca.crt" >"$T/out" 2>"$T/err" ||
        { echo "  tls_probe $1:"; sed 's/^/    | /' "$T/err" | tail -n 5; }
}

probe records "$KS_PORT"
jcheck "three answers on one kept-alive connection: 200, each one TLS record" \
    "[a['status'] for a in j['answers']] == [200] * 3 and [a['records'] for a in j['answers']] == [1] * 3"
jcheck "and the second and third arrive at once (well under the 200 ms TCP cork timer)" \
    "max(a['seconds'] for a in j['answers'][1:]) < 0.15"
probe http10 "$KS_PORT"
jcheck "HTTP/1.0 without keep-alive: the whole answer in one record, then the server closes" \
    "j['answers'][0]['status'] == 200 and j['answers'][0]['body_len'] > 0 and j['answers'][0]['records'] == 1 and j['closed']"
probe close "$KS_PORT"
jcheck "Connection: close: the whole answer in one record, then the server closes" \
    "j['answers'][0]['status'] == 200 and j['answers'][0]['body_len'] > 0 and j['answers'][0]['records'] == 1 and j['closed']"
probe head "$KS_PORT"
jcheck "HEAD: headers alone, and the connection goes on to answer a GET in one record" \
    "j['answers'][0]['body_len'] == 0 and j['answers'][1]['status'] == 200 and j['answers'][1]['body_len'] > 0 and j['answers'][1]['records'] == 1"
probe pipelined "$KS_PORT"
jcheck "two pipelined requests: two whole answers, one record each" \
    "[a['status'] for a in j['answers']] == [200, 200] and [a['records'] for a in j['answers']] == [1, 1]"
probe missing "$KS_PORT"
jcheck "a 404 is one record too" "j['answers'][0]['status'] == 404 and j['answers'][0]['records'] == 1"
probe mixed "$KS_PORT"
jcheck "a large first answer (/metrics), then small ones: whole, one record each, none waits" \
    "[a['status'] for a in j['answers']] == [200] * 3 and j['answers'][0]['body_len'] > 1400 and [a['records'] for a in j['answers']] == [1] * 3 and max(a['seconds'] for a in j['answers'][1:]) < 0.15"
# TLS 1.3 ends with the client's Finished, which the server answers with
# nothing: unless the server acknowledges it at once, a client with Nagle on
# holds its first request for the kernel's delayed ACK (40 ms or more)
probe fresh "$KS_PORT"
jcheck "TLS 1.3, a client with Nagle on: each fresh connection's first answer comes at once (median of 5 under 25 ms)" \
    "len(j['answers']) == 5 and all(a['status'] == 200 for a in j['answers']) and sorted(a['seconds'] for a in j['answers'])[2] < 0.025"
curl -sS -m 5 --cacert "$TLS/ca.crt" "https://127.0.0.1:$KS_PORT/metrics" >"$T/metrics" 2>"$T/curl.err"
check "/metrics counts connections closed because an answer could not be sent (0 here)" \
    grep -q '^kcard_k_server_connections_closed_total{reason="answer_unsent"} 0$' "$T/metrics"

# the deferred path: k_proxy answers a counter call after its upstream call
need_vcard "vcard starts" --presence yes
start_k_proxy --server-base-url "https://127.0.0.1:$KS_PORT" --server-ca-file "$TLS/ca.crt" \
    --device "$VCARD_URI" --tls-certfile "$TLS/k_proxy.crt" --tls-keyfile "$TLS/k_proxy.key" ||
    { not_ok "k_proxy starts with TLS"; finish; exit 1; }
ok "k_proxy starts with TLS in front of k_server over TLS"
probe records "$KP_PORT"
jcheck "k_proxy: three answers, one record each, none waits" \
    "[a['records'] for a in j['answers']] == [1] * 3 and max(a['seconds'] for a in j['answers'][1:]) < 0.15"
KP_URL="https://127.0.0.1:$KP_PORT"
kp /session/login --cacert "$TLS/ca.crt" -H 'Content-Type: application/json' -d '{"username":"tls"}' >"$T/code"
TOKEN=$(json_get "$T/out" "j['session_token']" 2>/dev/null)
check "a login over TLS" test "$(cat "$T/code")" = 200 -a -n "$TOKEN"
: >"$T/values"
_i=0
while [ "$_i" -lt 20 ]; do
    _code=$(kp /resource/counter --cacert "$TLS/ca.crt" -H "Authorization: Bearer $TOKEN")
    echo "$_code $(json_get "$T/out" "j['counter']" 2>/dev/null)" >>"$T/values"
    _i=$((_i + 1))
done
check "20 counter calls over TLS through both hops: 200 and 20 distinct values" \
    "$PY" -c 'import sys; v = open(sys.argv[1]).read().split(); codes = v[0::2]; vals = v[1::2]; sys.exit(not (codes == ["200"] * 20 and len(set(vals)) == 20))' "$T/values"
finish

#!/bin/sh
# Metrics never lose a real event (issue 10, point 6): thousands of requests
# to junk paths and with junk methods share one bounded label, and a card
# denial after them is still counted, with nothing dropped from the table.
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

H='Content-Type: application/json'
JUNK=${JUNK:-3000}

need_vcard "vcard starts" --presence yes
start_k_server || { not_ok "k_server starts"; finish; exit 1; }
start_k_proxy --server-base-url "http://127.0.0.1:$KS_PORT" --device "$VCARD_URI" \
    --card-timeout-ms 1500 || { not_ok "k_proxy starts"; finish; exit 1; }
KP_URL="http://127.0.0.1:$KP_PORT"
ok "the chain starts"

# junk: random paths and methods over keep-alive connections (bounded: 60 s)
junk() {
    timeout -k 2 60 "$PY" - "$1" "$JUNK" <<'EOF'
import http.client, os, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "FROB", "X" * 20]
codes = {}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
for i in range(n):
    path = "/" + os.urandom(6).hex() + "/" + str(i)
    try:
        c.request(methods[i % len(methods)], path, body=b"{}" if i % 2 else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        codes[r.status] = codes.get(r.status, 0) + 1
        if r.getheader("Connection", "").lower() == "close":
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    except (OSError, http.client.HTTPException):
        codes["error"] = codes.get("error", 0) + 1
        c.close()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
print(" ".join("%s:%d" % kv for kv in sorted(codes.items(), key=str)))
EOF
}

for svc in k_proxy k_server; do
    port=$KP_PORT
    [ "$svc" = k_server ] && port=$KS_PORT
    codes=$(junk "$port")
    case $codes in
    *error*) not_ok "$svc: $JUNK junk requests answered" "$codes" ;;
    *) ok "$svc: $JUNK junk requests answered ($codes)" ;;
    esac
    curl -sS -m 5 "http://127.0.0.1:$port/metrics" >"$T/metrics.$svc"
    series=$(grep -c '^kcard_'"$svc"'_http_requests_total' "$T/metrics.$svc")
    if [ "$series" -gt 0 ] && [ "$series" -le 64 ]; then
        ok "$svc: the junk shares bounded labels ($series request series)"
    else not_ok "$svc: bounded request series" "$series"; fi
done

# a real event after the junk: a denied login is counted
ctl presence timeout
want "a denied login after the junk" 401 /session/login -H "$H" -d '{"username":"alice"}'
jcheck "it is card_denied" "j['error'] == 'card_denied'"
ctl presence yes
want "an approved login" 200 /session/login -H "$H" -d '{"username":"alice"}'
curl -sS -m 5 "$KP_URL/metrics" >"$T/metrics.after"
if grep -q '^kcard_k_proxy_logins_total{outcome="card_denied"} 1' "$T/metrics.after" &&
    grep -q '^kcard_k_proxy_logins_total{outcome="ok"} 1' "$T/metrics.after"; then
    ok "the denial and the login are counted after $JUNK junk requests"
else
    not_ok "the denial is counted"
    grep '^kcard_k_proxy_logins' "$T/metrics.after" | sed 's/^/    | /'
fi
for f in "$T/metrics.k_server" "$T/metrics.after"; do
    if grep -q '^kcard_k_[a-z_]*_metrics_dropped_total 0$' "$f"; then
        ok "nothing dropped from the metrics table ($(basename "$f"))"
    else
        not_ok "metrics dropped ($(basename "$f"))" "$(grep metrics_dropped_total "$f" | tail -n 1)"
    fi
done
finish

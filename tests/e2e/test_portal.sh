#!/bin/sh
# k_client_portal over HTTPS in front of a TLS k_proxy, driven with curl: the
# page, the cookie (HttpOnly, SameSite=Strict, Secure), the API through
# k_proxy, the refusals of cross-origin and foreign-Host requests; and the
# programs as `make install` lays them out (the portal finds its page there).
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

TLS=$E2E_TMP/tls
sh fixtures/tls/gen.sh "$TLS" >/dev/null 2>&1 || { not_ok "TLS material"; finish; exit 1; }
need_vcard "vcard starts" --presence yes
start_k_server --tls-certfile "$TLS/k_server.crt" --tls-keyfile "$TLS/k_server.key" ||
    { not_ok "k_server starts"; finish; exit 1; }
start_k_proxy --server-base-url "https://127.0.0.1:$KS_PORT" --server-ca-file "$TLS/ca.crt" \
    --tls-certfile "$TLS/k_proxy.crt" --tls-keyfile "$TLS/k_proxy.key" --device "$VCARD_URI" ||
    { not_ok "k_proxy starts"; finish; exit 1; }

# the programs from `make install`
INST=$E2E_TMP/inst
if make --no-print-directory -s install BUILD="$BUILD" PREFIX="$INST" >"$T/install.log" 2>&1 &&
    [ -x "$INST/bin/k_client_portal" ] && [ -f "$INST/share/kcard/portal/index.html" ] &&
    [ -f "$INST/share/man/man1/k_proxy.1" ] && [ -x "$INST/bin/phase5_chain_regression.sh" ]; then
    ok "make install lays out programs, the page, the wrapper and man pages"
else
    not_ok "make install"
    show_head 10 "$T/install.log"
fi
PORTAL_DIR=$E2E_TMP/portal
mkdir -p "$PORTAL_DIR"
"$INST/bin/k_client_portal" --port 0 --port-file "$PORTAL_DIR/port" \
    --proxy-base-url "https://127.0.0.1:$KP_PORT" --proxy-ca-file "$TLS/ca.crt" \
    --tls-certfile "$TLS/k_proxy.crt" --tls-keyfile "$TLS/k_proxy.key" 2>"$PORTAL_DIR/log" &
_E2E_PIDS="$_E2E_PIDS $!"
if _wait_port_file "$PORTAL_DIR/port" $!; then ok "the installed portal starts over HTTPS and finds its page"; else
    not_ok "portal starts"
    show_head 10 "$PORTAL_DIR/log"
    finish
    exit 1
fi
U=https://127.0.0.1:$(cat "$PORTAL_DIR/port")
C="curl -sS -m 30 --cacert $TLS/ca.crt"

$C -D "$T/h" -o "$T/page" "$U/"
if grep -qi '^content-type: text/html' "$T/h" && grep -qi '^x-content-type-options: nosniff' "$T/h" &&
    grep -qi '<html' "$T/page"; then ok "GET / serves the page (text/html, nosniff)"; else not_ok "GET /"; show_head 8 "$T/h"; fi

$C -D "$T/h" -o "$T/out" -X POST "$U/api/register" -H 'Content-Type: application/json' -d '{"username":"webuser"}'
grep -q '^HTTP/[0-9.]* 201' "$T/h" && ok "register through the portal" || { not_ok "register"; show_head 3 "$T/out"; }
$C -D "$T/h" -o "$T/out" -X POST "$U/api/login" -H 'Content-Type: application/json' -d '{"username":"webuser"}'
cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: \(kcp_session=[^;]*\);.*/\1/p' "$T/h" | tr -d '\r')
if grep -i '^set-cookie: kcp_session=' "$T/h" | grep -i 'HttpOnly' | grep -i 'SameSite=Strict' | grep -qi 'Secure'; then
    ok "login sets an HttpOnly, SameSite=Strict, Secure cookie"
else not_ok "cookie attributes"; show_head 8 "$T/h"; fi
if ! grep -q session_token "$T/out" && [ -n "$cookie" ]; then ok "the k_proxy token never reaches the browser"; else not_ok "token leaked"; fi
code=$($C -o "$T/out" -w '%{http_code}' -X POST "$U/api/counter" -H "Cookie: $cookie")
[ "$code" = 200 ] && json_true "$T/out" "j['counter'] >= 1" && ok "counter with the cookie" || not_ok "counter" "HTTP $code"
code=$($C -o "$T/out" -w '%{http_code}' -X POST "$U/api/counter" -H "Cookie: $cookie" -H 'Origin: https://evil.example')
[ "$code" = 403 ] && ok "a cross-origin POST is 403" || not_ok "cross-origin" "HTTP $code"
code=$($C -o "$T/out" -w '%{http_code}' "$U/api/users" -H 'Host: evil.example')
[ "$code" = 421 ] && ok "a foreign Host is 421 (DNS rebinding)" || not_ok "foreign host" "HTTP $code"
code=$($C -o "$T/out" -w '%{http_code}' -X POST "$U/api/logout" -H "Cookie: $cookie")
[ "$code" = 200 ] && ok "logout" || not_ok "logout" "HTTP $code"
code=$($C -o "$T/out" -w '%{http_code}' -X POST "$U/api/counter" -H "Cookie: $cookie")
[ "$code" = 401 ] && ok "the counter after logout is refused" || not_ok "after logout" "HTTP $code"
code=$($C -o "$T/out" -w '%{http_code}' "$U/healthz")
[ "$code" = 200 ] && json_true "$T/out" "j['tls'] is True and j['service'] == 'k_client_portal'" &&
    ok "portal /healthz says tls" || not_ok "healthz" "HTTP $code"
check_exit "--tls-certfile without --tls-keyfile exits 2" 2 "$INST/bin/k_client_portal" --tls-certfile x
finish

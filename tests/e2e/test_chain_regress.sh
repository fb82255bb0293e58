#!/bin/sh
# End-to-end: chain-regress and phase5_chain_regression.sh against the real
# chain on loopback: vcard (the card) -> k_proxy -> k_server, plain HTTP.
# Passing runs (JSON and lines), the wrapper with REQUESTS/PARALLELISM, the
# ssh path through a stand-in ssh, an interactive login approved on the
# card, and each failure's exit code: card denied 4, nothing listening 3,
# unreadable CA file 3, wrong auth mode 1, bad option 2.
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib.sh
tool_test "$BIN/chain-regress"
WRAPPER=regression/phase5_chain_regression.sh
# the checks assume the defaults: nothing inherited
unset REQUESTS PARALLELISM KCARD_CA CHAIN_REGRESS CHAIN_REGRESS_REMOTE SSH

run_show() {
    show_head 15 "$T/out" "$T/err"
}
jcheck_show() {
    show_head 12 "$T/out" "$T/jerr"
}

# ---- command line, nothing running
run "--help exits 0" 0 --help
grep_out "--help documents exit 4" "4  login refused"
run "--version exits 0" 0 --version
grep_out "--version prints the version" "^chain-regress [0-9]"
run "--requests abc is a usage error" 2 --requests abc
grep_err "the message names --requests" "--requests"
run "--parallelism 0 is a usage error" 2 --parallelism 0
run "--insecure is not offered" 2 --insecure
# (export and unset: an assignment before a function call may outlive it)
export REQUESTS=many
run "REQUESTS=many is a usage error" 2
unset REQUESTS
grep_err "the message names REQUESTS" "REQUESTS"
run "nothing listening: exit 3" 3 --base-url http://127.0.0.1:1 --requests 2
grep_out "nothing listening names the curl error" "curl error 7"

# ---- the chain
need_vcard "vcard starts" --presence yes

# wait_port FILE: until a service wrote its port (5 s)
wait_port() {
    _tries=100
    while [ ! -s "$1" ] && [ "$_tries" -gt 0 ]; do
        sleep 0.05
        _tries=$((_tries - 1))
    done
    [ -s "$1" ] && cat "$1"
}

# wait_healthz URL: until GET URL/healthz answers 200 (5 s)
wait_healthz() {
    _tries=50
    while [ "$_tries" -gt 0 ]; do
        curl -fsS -m 1 -o /dev/null "$1/healthz" 2>/dev/null && return 0
        sleep 0.1
        _tries=$((_tries - 1))
    done
    return 1
}

TOKEN=e2e-proxy-token-$$
"$BIN/k_server" --port 0 --port-file "$T/server.port" --proxy-token "$TOKEN" \
    --state-db "$T/k_server.db" 2>"$T/k_server.log" &
_E2E_PIDS="$_E2E_PIDS $!"
SERVER_PORT=$(wait_port "$T/server.port")
if [ -z "$SERVER_PORT" ] || ! wait_healthz "http://127.0.0.1:$SERVER_PORT"; then
    not_ok "k_server starts and answers /healthz"
    show_head 20 "$T/k_server.log"
    finish
    exit 1
fi
ok "k_server starts and answers /healthz"

"$BIN/k_proxy" --port 0 --port-file "$T/proxy.port" --proxy-token "$TOKEN" \
    --device "$VCARD_URI" --server-base-url "http://127.0.0.1:$SERVER_PORT" \
    --state-db "$T/k_proxy.db" --card-timeout-ms 15000 2>"$T/k_proxy.log" &
_E2E_PIDS="$_E2E_PIDS $!"
PROXY_PORT=$(wait_port "$T/proxy.port")
if [ -z "$PROXY_PORT" ] || ! wait_healthz "http://127.0.0.1:$PROXY_PORT"; then
    not_ok "k_proxy starts and answers /healthz"
    show_head 20 "$T/k_proxy.log"
    finish
    exit 1
fi
ok "k_proxy starts and answers /healthz"
URL=http://127.0.0.1:$PROXY_PORT

# ---- passing runs
run "the default run passes (--json)" 0 --base-url "$URL" --json
jcheck "JSON: pass, exit 0" 'j["ok"] is True and j["verdict"] == "pass" and j["exit"] == 0'
jcheck "JSON: 20 requests at parallelism 8" 'j["requests"] == 20 and j["parallelism"] == 8'
jcheck "JSON: 20 unique gap-free values" \
    'len(j["counters"]) == 20 and len(set(j["counters"])) == 20 and max(j["counters"]) - min(j["counters"]) == 19'
jcheck "JSON: the analysis agrees" \
    'j["analysis"]["unique"] and j["analysis"]["gap_free"] and j["analysis"]["duplicates"] == 0 and j["analysis"]["gaps"] == 0 and j["analysis"]["min"] == min(j["counters"])'
jcheck "JSON: every step ran and passed" \
    '[s["step"] for s in j["steps"]] == ["login", "status", "counter", "logout", "after_logout"] and all(s["ran"] and s["ok"] for s in j["steps"])'
jcheck "JSON: logout 200, then 401 for the old token" \
    'j["steps"][3]["status"] == 200 and j["steps"][4]["status"] == 401'
jcheck "JSON: auth_mode card_probe" 'j["auth_mode"] == "card_probe"'
jcheck "JSON: latency figures are ordered" \
    'j["latency_ms"]["n"] == 20 and 0 < j["latency_ms"]["min"] <= j["latency_ms"]["median"] <= j["latency_ms"]["p95"] <= j["latency_ms"]["max"]'
jcheck "JSON: at most 8 connections for 8 in flight" '1 <= j["connections"] <= 8'
FIRST_MAX=$(json_get "$T/out" 'max(j["counters"])')

run "lines: the run passes" 0 --base-url "$URL" --requests 10 --parallelism 4 -v
grep_out "lines: a login line" "^login  *ok  *200"
grep_out "lines: a counter line with the figures" "^counter  *ok .*unique and gap-free; latency ms min"
grep_out "lines: after logout 401" "^after_logout  *ok  *401"
if [ "$(tail -n 1 "$T/out" | cut -c1-5)" = "PASS:" ]; then ok "lines: the last line is the verdict"; else
    not_ok "lines: the last line is the verdict" "$(tail -n 1 "$T/out")"
fi
grep_out "lines: the values continue the first run's" "values $((FIRST_MAX + 1))\.\.$((FIRST_MAX + 10))"
grep_err "-v: one line per request" "POST /resource/counter #10 -> 200"

run "--expect-auth-mode card_probe passes" 0 --base-url "$URL" --requests 3 \
    --expect-auth-mode card_probe
run "--expect-auth-mode fido2_assertion fails with 1" 1 --base-url "$URL" --requests 3 \
    --expect-auth-mode fido2_assertion
grep_out "the wrong auth mode is named" "auth_mode is card_probe, expected fido2_assertion"

# ---- the wrapper
REQUESTS=50 PARALLELISM=12 CHAIN_REGRESS="$RUN_TOOL" "$WRAPPER" --client-host local \
    --base-url "$URL" --json >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ]; then ok "wrapper: REQUESTS=50 PARALLELISM=12 passes"; else
    not_ok "wrapper: REQUESTS=50 PARALLELISM=12 passes" "exit $rc"
    run_show
fi
jcheck "wrapper: 50 requests at parallelism 12" 'j["requests"] == 50 and j["parallelism"] == 12'
jcheck "wrapper: 50 unique gap-free values" \
    'len(set(j["counters"])) == 50 and max(j["counters"]) - min(j["counters"]) == 49'
jcheck "wrapper: the runbook's CA path is the default" \
    'j["cacert"] == "/home/user/chromecard/tls/phase2/ca.crt"'

# the ssh path, through a stand-in that runs the remote command here
cat >"$T/ssh" <<'EOF'
#!/bin/sh
while [ "$#" -gt 0 ]; do
    case $1 in
    -n) shift ;;
    -o) shift 2 ;;
    --) shift && break ;;
    *) break ;;
    esac
done
echo "$1" >"$SSH_LOG"
shift
exec sh -c "$1"
EOF
chmod +x "$T/ssh"
SSH="$T/ssh" SSH_LOG="$T/ssh.log" CHAIN_REGRESS_REMOTE="$RUN_TOOL" REQUESTS=5 \
    KCARD_CA="$T/it's ca.crt" "$WRAPPER" --base-url "$URL" --username "bob" --json \
    >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ]; then ok "wrapper over ssh passes"; else
    not_ok "wrapper over ssh passes" "exit $rc"
    run_show
fi
if [ "$(cat "$T/ssh.log" 2>/dev/null)" = k_client ]; then ok "wrapper: ssh goes to k_client by default"; else
    not_ok "wrapper: ssh goes to k_client by default" "host '$(cat "$T/ssh.log" 2>/dev/null)'"
fi
jcheck "wrapper over ssh: quoting kept the arguments" \
    'j["username"] == "bob" and j["requests"] == 5 and j["cacert"].endswith("/it'"'"'s ca.crt")'
SSH=false "$WRAPPER" --base-url "$URL" >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 1 ]; then ok "wrapper: the remote exit code is passed through"; else
    not_ok "wrapper: the remote exit code is passed through" "exit $rc"
fi
# --remote curl: plain curl through the stand-in ssh, judged here
SSH="$T/ssh" SSH_LOG="$T/ssh.log" CHAIN_REGRESS="$RUN_TOOL" REQUESTS=9 PARALLELISM=3 \
    "$WRAPPER" --remote curl --base-url "$URL" --json >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ]; then ok "wrapper --remote curl over ssh passes"; else
    not_ok "wrapper --remote curl over ssh passes" "exit $rc"
    run_show
fi
jcheck "--remote curl: 9 unique gap-free values at parallelism 3, 401 after logout" \
    'j["requests"] == 9 and j["parallelism"] == 3 and len(set(j["counters"])) == 9 and max(j["counters"]) - min(j["counters"]) == 8 and j["steps"][4]["status"] == 401'
CHAIN_REGRESS="$RUN_TOOL" REQUESTS=4 "$WRAPPER" --client-host local --remote curl \
    --base-url http://127.0.0.1:1 >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 3 ]; then ok "wrapper --remote curl: nothing listening gives 3"; else
    not_ok "wrapper --remote curl: nothing listening gives 3" "exit $rc"
    run_show
fi
grep_out "--remote curl: curl's own error is named" "login .*curl error 7: curl: (7)"
CHAIN_REGRESS="$RUN_TOOL" "$WRAPPER" --client-host local --base-url http://127.0.0.1:1 \
    >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 3 ]; then ok "wrapper: nothing listening gives 3"; else
    not_ok "wrapper: nothing listening gives 3" "exit $rc"
fi
"$WRAPPER" --bogus >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 2 ]; then ok "wrapper: an unknown option gives 2"; else
    not_ok "wrapper: an unknown option gives 2" "exit $rc"
fi

# ---- TLS: a CA file that cannot be read, then k_proxy over HTTPS
run "an unreadable CA file gives 3" 3 --base-url "https://127.0.0.1:$PROXY_PORT" \
    --cacert "$T/no-such-ca.crt" --requests 2
grep_out "the CA problem is named" "curl error 77: .*no-such-ca.crt"

# a CA and a certificate for 127.0.0.1, made with the openssl CLI
mk_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=$1 test CA" -keyout "$T/$1.key" -out "$T/$1.crt" 2>/dev/null
}
if mk_cert ca && mk_cert other &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
        -keyout "$T/proxy.key" -out "$T/proxy.csr" 2>/dev/null &&
    printf 'subjectAltName=IP:127.0.0.1\n' >"$T/san.ext" &&
    openssl x509 -req -in "$T/proxy.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" \
        -CAcreateserial -days 2 -extfile "$T/san.ext" -out "$T/proxy.crt" 2>/dev/null; then
    "$BIN/k_proxy" --port 0 --port-file "$T/tls.port" --proxy-token "$TOKEN" \
        --device "$VCARD_URI" --server-base-url "http://127.0.0.1:$SERVER_PORT" \
        --state-db "$T/k_proxy_tls.db" --tls-certfile "$T/proxy.crt" \
        --tls-keyfile "$T/proxy.key" 2>"$T/k_proxy_tls.log" &
    _E2E_PIDS="$_E2E_PIDS $!"
    TLS_PORT=$(wait_port "$T/tls.port")
    if [ -n "$TLS_PORT" ]; then
        export KCARD_CA="$T/ca.crt"
        run "https: KCARD_CA trusts k_proxy, the run passes" 0 \
            --base-url "https://127.0.0.1:$TLS_PORT" --requests 12 --parallelism 4 --json
        unset KCARD_CA
        jcheck "https: 12 unique gap-free values" \
            'len(set(j["counters"])) == 12 and max(j["counters"]) - min(j["counters"]) == 11'
        jcheck "https: connections reused (at most 4)" '1 <= j["connections"] <= 4'
        run "https: a CA that did not sign k_proxy's certificate gives 3" 3 \
            --base-url "https://127.0.0.1:$TLS_PORT" --cacert "$T/other.crt" --requests 2
        grep_out "https: the verification failure is named" "curl error 60"
        run "https: plain http to the TLS port gives 3" 3 \
            --base-url "http://127.0.0.1:$TLS_PORT" --requests 2
    else
        not_ok "k_proxy starts with TLS"
        show_head 10 "$T/k_proxy_tls.log"
    fi
else
    not_ok "openssl makes the test certificates"
fi

# ---- the card
if ctl presence no; then
    run "card presence denied: exit 4" 4 --base-url "$URL" --requests 2 --json
    jcheck "denied: login step 401 card_denied" \
        'j["steps"][0]["status"] == 401 and j["steps"][0]["error"] == "card_denied" and j["exit"] == 4'
    jcheck "denied: nothing after the login ran" 'not any(s["ran"] for s in j["steps"][1:])'
else
    not_ok "vcard-ctl presence no"
fi

if ctl presence ask; then
    "$RUN_TOOL" --base-url "$URL" --requests 4 --interactive-card --card-timeout 20 \
        >"$T/iout" 2>"$T/ierr" &
    ipid=$!
    if wait_for_line "$T/ierr" "touch the card to approve login for alice" 100; then
        ok "interactive: the prompt names the user"
    else
        not_ok "interactive: the prompt names the user"
    fi
    ctl approve || not_ok "vcard-ctl approve"
    _tries=200 # 10 s
    while kill -0 "$ipid" 2>/dev/null && [ "$_tries" -gt 0 ]; do
        sleep 0.05
        _tries=$((_tries - 1))
    done
    kill -KILL "$ipid" 2>/dev/null
    wait "$ipid"
    rc=$?
    if [ "$rc" -eq 0 ]; then ok "interactive: approved on the card, the run passes"; else
        not_ok "interactive: approved on the card, the run passes" "exit $rc"
        show_head 10 "$T/iout" "$T/ierr"
    fi
else
    not_ok "vcard-ctl presence ask"
fi

# a login that waits for a touch nobody gives: no answer within --timeout-ms
if ctl presence ask; then
    run "a login waiting for a touch times out: exit 3" 3 --base-url "$URL" --requests 2 \
        --timeout-ms 400
    grep_out "the timeout suggests --interactive-card" "waiting for a touch: --interactive-card"
else
    not_ok "vcard-ctl presence ask (timeout)"
fi

finish

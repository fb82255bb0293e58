#!/bin/sh
# The host-side regression over a real SSH hop, as operators run it: the
# split chain (harness/chain/split.sh) with Debian's sshd in the k_client
# namespace, and regression/phase5_chain_regression.sh run from the host
# namespace through it (ssh -F DIR/ssh_config). The chain runs
# --auth-mode fido2-direct with alice enrolled, over TLS. Checks: the wrapper's
# defaults pass over the hop (client's CA, 127.0.0.1:9771, alice), --json comes
# back intact, REQUESTS/PARALLELISM are honoured remotely, an interactive login
# approved through vcard-ctl passes with --expect-auth-mode fido2_assertion;
# and each failure an operator meets exits 3 with a one-line cause: refused
# connection, unknown host, unknown and changed host key (known_hosts never
# written), key refused (no prompt, no hang), chain-regress missing on the
# client, the CA file missing on the client, the connection dropped mid-run
# (within a bound). The curl-only mode (--remote curl) over the same hop:
# passes with the defaults (--json intact, unique and gap-free, 401 after
# logout), REQUESTS/PARALLELISM honoured, the lines report, an interactive
# login approved through vcard-ctl (the prompt over the hop), a client whose
# PATH holds only sh, curl and a few POSIX tools (no chain-regress) passes,
# the CA file missing there exits 3 naming it, a malformed recorded line
# exits 2, and k_proxy stopped mid-burst exits 3 naming curl's error. Needs
# root (ip netns) and openssh-server; otherwise it fails, saying so.
# shellcheck source=tests/e2e/lib.sh
. tests/e2e/lib.sh

SPLIT=harness/chain/split.sh
WRAPPER=regression/phase5_chain_regression.sh
DIR="$T/split"
UP=0
# the checks assume the wrapper's defaults: nothing inherited
unset REQUESTS PARALLELISM KCARD_CA CHAIN_REGRESS CHAIN_REGRESS_REMOTE SSH

teardown() {
    if [ "$UP" -eq 1 ]; then
        # a dropped link left down by an interrupted run
        [ -n "${VETH_HOST:-}" ] && ip link set "$VETH_HOST" up 2>/dev/null
        sh "$SPLIT" down "$DIR" >/dev/null 2>&1
        UP=0
    fi
}
trap 'teardown; cleanup' EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" -ne 0 ]; then
    not_ok "ssh hop e2e needs root to create network namespaces (ip netns); running as uid $(id -u)"
    finish
    exit 1
fi
for b in "$BIN/vcard" "$BIN/vcard-ctl" "$BIN/k_server" "$BIN/k_proxy" "$BIN/kc-forward" \
    "$BIN/chain-regress" /usr/sbin/sshd; do
    if [ ! -x "$b" ]; then
        not_ok "ssh hop binaries" "$b missing (make; sh ci/install-deps.sh for openssh-server)"
        finish
        exit 1
    fi
done

# wrapper NAME... : the wrapper from the host namespace, bounded (a hang is a
# failure, not a stuck test); stdout in $T/out, stderr in $T/err, exit in $RC,
# seconds taken in $SECS
wrapper() {
    _t0=$(date +%s)
    timeout -k 2 40 sh "$WRAPPER" "$@" >"$T/out" 2>"$T/err" </dev/null
    RC=$?
    SECS=$(($(date +%s) - _t0))
}

# want_rc NAME CODE: one check on $RC
want_rc() {
    if [ "$RC" -eq "$2" ]; then ok "$1"; else
        not_ok "$1" "exit $RC, wanted $2"
        show_head 12 "$T/out" "$T/err"
    fi
}

# one_line NAME RE: the wrapper's own cause is one line on stderr matching RE
one_line() {
    _n=$(grep -c "^phase5_chain_regression.sh: " "$T/err")
    if [ "$_n" -eq 1 ] && grep "^phase5_chain_regression.sh: " "$T/err" | grep -Eiq -- "$2"; then
        ok "$1"
    else
        not_ok "$1" "$_n cause line(s), wanted one matching '$2'"
        show_head 12 "$T/err"
    fi
}

kh_sum() {
    if [ -f "$HOME/.ssh/known_hosts" ]; then sha256sum <"$HOME/.ssh/known_hosts"; else echo none; fi
}
KH_BEFORE=$(kh_sum)

# ---- up, with the SSH hop ----
UP=1
if BIN="$BIN" SPLIT_PROXY_ARGS="--auth-mode fido2-direct --card-timeout-ms 20000" \
    sh "$SPLIT" up "$DIR" >"$T/up.out" 2>"$T/up.err"; then
    ok "split.sh up: chain and sshd in k_client"
else
    not_ok "split.sh up: chain and sshd in k_client"
    show_head 40 "$T/up.err"
    finish
    exit 1
fi
# shellcheck disable=SC1091
. "$DIR/env"
CFG=$SSH_CONFIG
for v in SSH_CONFIG SSH_ADDR SSH_DIR PID_sshd VETH_HOST; do
    eval "_v=\${$v:-}"
    [ -n "$_v" ] || not_ok "env names $v"
done

# sshd listens on the k_client address only, port 22
listen=$(ip netns exec "$NS_CLIENT" ss -Hltn 2>/dev/null | awk '{print $4}' | grep ':22$' | sort -u)
if [ "$listen" = "$SSH_ADDR:22" ]; then ok "sshd listens on $SSH_ADDR:22 only"; else
    not_ok "sshd listens on $SSH_ADDR:22 only" "listening: $(echo "$listen" | tr '\n' ' ')"
fi
modes=$(stat -c '%a' "$SSH_DIR" "$SSH_DIR/host_ed25519_key" "$SSH_DIR/id_ed25519" | tr '\n' ' ')
if [ "$modes" = "700 600 600 " ]; then ok "ssh state folder 0700, private keys 0600"; else
    not_ok "ssh state folder 0700, private keys 0600" "modes: $modes"
fi
check "ssh -F DIR/ssh_config k_client runs a command in the k_client namespace" \
    sh -c "ssh -F '$CFG' k_client 'ip -4 -o addr show' | grep -q ' $SSH_ADDR/30'"

# alice enrolled (makeCredential on the card), from the k_client namespace
code=$(sh "$SPLIT" exec "$DIR" k_client curl -sS --max-time 20 --cacert "$CA_FILE" \
    -o "$T/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"username":"alice"}' https://127.0.0.1:9771/enroll/register 2>"$T/err")
if [ "$code" = 201 ]; then ok "alice enrolled (fido2-direct)"; else
    not_ok "alice enrolled (fido2-direct)" "HTTP $code"
    show_head 5 "$T/out" "$T/err"
fi

# ---- passing runs over the hop ----
wrapper --ssh-config "$CFG" --json
want_rc "defaults over ssh: the run passes (--json)" 0
jcheck "--json intact over the hop: pass, exit 0" \
    'j["ok"] is True and j["verdict"] == "pass" and j["exit"] == 0'
jcheck "defaults: alice, https://127.0.0.1:9771, the client's CA, 20 at parallelism 8" \
    'j["username"] == "alice" and j["base_url"] == "https://127.0.0.1:9771" and j["cacert"] == "'"$CA_FILE"'" and j["requests"] == 20 and j["parallelism"] == 8'
jcheck "defaults: 20 unique gap-free values, 401 after logout, fido2_assertion" \
    'len(set(j["counters"])) == 20 and max(j["counters"]) - min(j["counters"]) == 19 and j["steps"][4]["status"] == 401 and j["auth_mode"] == "fido2_assertion"'

SSH="ssh -F $CFG" wrapper
want_rc "SSH=\"ssh -F ...\": the run passes (lines)" 0
if [ "$(tail -n 1 "$T/out" | cut -c1-5)" = "PASS:" ]; then ok "lines: the verdict line came back"; else
    not_ok "lines: the verdict line came back" "$(tail -n 1 "$T/out")"
fi

REQUESTS=37 PARALLELISM=5 wrapper --ssh-config "$CFG" --json
want_rc "REQUESTS=37 PARALLELISM=5 over ssh passes" 0
jcheck "REQUESTS and PARALLELISM honoured on the client" \
    'j["requests"] == 37 and j["parallelism"] == 5 and len(set(j["counters"])) == 37 and max(j["counters"]) - min(j["counters"]) == 36 and j["connections"] <= 5'

# interactive: the prompt comes back over the hop, the touch is given on the card
if "$CTL" --control "$VCARD_CTL" presence ask >/dev/null 2>"$T/ctl.err"; then
    timeout -k 2 40 sh "$WRAPPER" --ssh-config "$CFG" --interactive-card \
        --expect-auth-mode fido2_assertion --json >"$T/iout" 2>"$T/ierr" </dev/null &
    ipid=$!
    if wait_for_line "$T/ierr" "touch the card to approve login for alice" 200; then
        ok "interactive: the card prompt comes back over ssh"
    else
        not_ok "interactive: the card prompt comes back over ssh"
    fi
    "$CTL" --control "$VCARD_CTL" approve >/dev/null 2>&1 || not_ok "vcard-ctl approve"
    wait "$ipid"
    rc=$?
    if [ "$rc" -eq 0 ]; then ok "interactive --expect-auth-mode fido2_assertion: approved, passes"; else
        not_ok "interactive --expect-auth-mode fido2_assertion: approved, passes" "exit $rc"
        show_head 10 "$T/iout" "$T/ierr"
    fi
    if json_true "$T/iout" 'j["ok"] is True and j["auth_mode"] == "fido2_assertion"'; then
        ok "interactive: JSON says fido2_assertion"
    else
        not_ok "interactive: JSON says fido2_assertion"
    fi
    "$CTL" --control "$VCARD_CTL" presence yes >/dev/null 2>&1
else
    not_ok "vcard-ctl presence ask" "$(cat "$T/ctl.err")"
fi

# ---- --remote curl: plain curl on the client, judged here ----
wrapper --ssh-config "$CFG" --remote curl --json
want_rc "--remote curl, defaults over ssh: the run passes (--json)" 0
jcheck "--remote curl: --json intact, pass, exit 0" \
    'j["ok"] is True and j["verdict"] == "pass" and j["exit"] == 0 and j["tool"] == "chain-regress"'
jcheck "--remote curl: alice, https://127.0.0.1:9771, the client's CA, 20 at parallelism 8" \
    'j["username"] == "alice" and j["base_url"] == "https://127.0.0.1:9771" and j["cacert"] == "'"$CA_FILE"'" and j["requests"] == 20 and j["parallelism"] == 8'
jcheck "--remote curl: 20 unique gap-free values, 401 after logout, fido2_assertion" \
    'len(j["counters"]) == 20 and len(set(j["counters"])) == 20 and max(j["counters"]) - min(j["counters"]) == 19 and j["analysis"]["unique"] and j["analysis"]["gap_free"] and j["steps"][3]["status"] == 200 and j["steps"][4]["status"] == 401 and j["auth_mode"] == "fido2_assertion"'
jcheck "--remote curl: latency of 20 answers, a burst time, one connection each" \
    'j["latency_ms"]["n"] == 20 and 0 < j["latency_ms"]["min"] <= j["latency_ms"]["max"] and j["burst_ms"] > 0 and j["connections"] == 20'

REQUESTS=37 PARALLELISM=5 wrapper --ssh-config "$CFG" --remote curl --json
want_rc "--remote curl: REQUESTS=37 PARALLELISM=5 passes" 0
jcheck "--remote curl: REQUESTS and PARALLELISM honoured on the client" \
    'j["requests"] == 37 and j["parallelism"] == 5 and len(set(j["counters"])) == 37 and max(j["counters"]) - min(j["counters"]) == 36'

wrapper --ssh-config "$CFG" --remote curl
want_rc "--remote curl: the lines report passes" 0
if grep -q "^counter  *ok  *20 x 200 of 20 at parallelism 8.*unique and gap-free" "$T/out" &&
    [ "$(tail -n 1 "$T/out" | cut -c1-5)" = "PASS:" ]; then
    ok "--remote curl: the same lines, ending in the verdict"
else
    not_ok "--remote curl: the same lines, ending in the verdict"
    show_head 8 "$T/out"
fi

# interactive in curl mode: the client's prompt comes back on stderr
if "$CTL" --control "$VCARD_CTL" presence ask >/dev/null 2>"$T/ctl.err"; then
    timeout -k 2 40 sh "$WRAPPER" --ssh-config "$CFG" --remote curl --interactive-card \
        --expect-auth-mode fido2_assertion --json >"$T/iout" 2>"$T/ierr" </dev/null &
    ipid=$!
    if wait_for_line "$T/ierr" "touch the card to approve login for alice" 200; then
        ok "--remote curl --interactive-card: the prompt comes back over ssh"
    else
        not_ok "--remote curl --interactive-card: the prompt comes back over ssh"
    fi
    "$CTL" --control "$VCARD_CTL" approve >/dev/null 2>&1 || not_ok "vcard-ctl approve (curl)"
    wait "$ipid"
    rc=$?
    if [ "$rc" -eq 0 ] && json_true "$T/iout" 'j["ok"] is True and j["auth_mode"] == "fido2_assertion"'; then
        ok "--remote curl --interactive-card --expect-auth-mode fido2_assertion: approved, passes"
    else
        not_ok "--remote curl --interactive-card --expect-auth-mode fido2_assertion: approved, passes" "exit $rc"
        show_head 10 "$T/iout" "$T/ierr"
    fi
    "$CTL" --control "$VCARD_CTL" presence yes >/dev/null 2>&1
else
    not_ok "vcard-ctl presence ask (curl)" "$(cat "$T/ctl.err")"
fi

# a client without kcard: its ssh session's PATH holds sh, curl and the few
# POSIX tools the run uses, nothing else (real ssh; the remote command, not
# ssh -G, gets $REMOTE_PREFIX in front)
cat >"$T/ssh-prefix" <<'EOF'
#!/bin/sh
for a in "$@"; do
    [ "$a" = -G ] && exec ssh "$@"
done
n=$#
for a in "$@"; do
    n=$((n - 1))
    if [ "$n" -eq 0 ]; then set -- "$@" "$REMOTE_PREFIX $a"; else set -- "$@" "$a"; fi
    shift
done
exec ssh "$@"
EOF
mkdir -p "$T/curlonly" "$T/rtmp"
for tool in sh curl mktemp dd tr sed date cat rm; do
    ln -sf "$(command -v "$tool")" "$T/curlonly/$tool"
done
export REMOTE_PREFIX="PATH=$T/curlonly; export PATH;"
SSH="sh $T/ssh-prefix" wrapper --ssh-config "$CFG" --remote curl --json
want_rc "no chain-regress on the client's PATH: --remote curl passes" 0
jcheck "no chain-regress on the client: 20 unique gap-free values" \
    'j["ok"] is True and len(set(j["counters"])) == 20 and max(j["counters"]) - min(j["counters"]) == 19'
SSH="sh $T/ssh-prefix" wrapper --ssh-config "$CFG"
want_rc "no chain-regress on the client's PATH: the default mode exits 3" 3
one_line "no chain-regress on the client: the cause offers --remote curl" \
    "chain-regress not found on k_client.*--remote curl"
unset REMOTE_PREFIX

wrapper --ssh-config "$CFG" --remote curl --cacert /home/user/no-such/ca.crt
want_rc "--remote curl: the CA file missing on the client: exit 3" 3
grep_out "--remote curl: the CA path as seen from the client is named" \
    "curl error 77: .*/home/user/no-such/ca.crt"

printf 'login 0 2x0 0.1 1 {}\n' >"$T/bad.lines"
timeout 10 "$BIN/chain-regress" --analyze "$T/bad.lines" >"$T/out" 2>"$T/err"
RC=$?
want_rc "--analyze: a malformed line exits 2" 2
if grep -q "line 1: HTTP_CODE" "$T/err"; then ok "--analyze: the bad line and field are named"; else
    not_ok "--analyze: the bad line and field are named"
    show_head 4 "$T/err"
fi

# ---- failures an operator meets: exit 3, one line naming the cause ----
sed 's/^\( *Port \).*/\12222/' "$CFG" >"$T/cfg_refused"
wrapper --ssh-config "$T/cfg_refused"
want_rc "connection refused: exit 3" 3
one_line "connection refused: names ssh and the host" "ssh cannot reach k_client: .*Connection refused"

wrapper --ssh-config "$CFG" --client-host no-such-client.invalid
want_rc "unknown host name: exit 3" 3
one_line "unknown host name: names ssh and the host" "ssh cannot reach no-such-client.invalid"

: >"$T/kh_empty"
sed "s#^\( *UserKnownHostsFile \).*#\1$T/kh_empty#" "$CFG" >"$T/cfg_unknown"
wrapper --ssh-config "$T/cfg_unknown"
want_rc "unknown host key: exit 3" 3
one_line "unknown host key: names the known_hosts file to fix" "host key of k_client is not known.*$T/kh_empty"
if [ ! -s "$T/kh_empty" ]; then ok "unknown host key: nothing accepted"; else
    not_ok "unknown host key: nothing accepted" "$T/kh_empty was written"
fi

ssh-keygen -q -t ed25519 -N '' -C other -f "$T/other_key" </dev/null >/dev/null 2>&1
printf 'k_client,%s %s\n' "$SSH_ADDR" "$(cut -d' ' -f1,2 "$T/other_key.pub")" >"$T/kh_changed"
KH_CHANGED=$(sha256sum <"$T/kh_changed")
sed "s#^\( *UserKnownHostsFile \).*#\1$T/kh_changed#" "$CFG" >"$T/cfg_changed"
wrapper --ssh-config "$T/cfg_changed"
want_rc "changed host key: exit 3" 3
one_line "changed host key: names the file and line to fix" "host key of k_client has CHANGED.*$T/kh_changed:1"
if [ "$(sha256sum <"$T/kh_changed")" = "$KH_CHANGED" ]; then ok "changed host key: nothing accepted"; else
    not_ok "changed host key: nothing accepted" "$T/kh_changed was rewritten"
fi

sed "s#^\( *IdentityFile \).*#\1$T/other_key#" "$CFG" >"$T/cfg_key"
wrapper --ssh-config "$T/cfg_key"
want_rc "key refused: exit 3" 3
one_line "key refused: Permission denied (publickey)" "refused our key: Permission denied \(publickey\)"
if [ "$SECS" -le 10 ] && ! grep -qi "password:" "$T/err"; then ok "key refused: no password prompt, no hang (${SECS}s)"; else
    not_ok "key refused: no password prompt, no hang" "${SECS}s"
fi

CHAIN_REGRESS_REMOTE=kcard-no-such-chain-regress wrapper --ssh-config "$CFG"
want_rc "chain-regress missing on the client: exit 3" 3
one_line "chain-regress missing: its own message, install kcard on the client" \
    "kcard-no-such-chain-regress not found on k_client.*install kcard on the client"

wrapper --ssh-config "$CFG" --cacert /home/user/no-such/ca.crt
want_rc "CA file missing on the client: exit 3" 3
grep_out "the CA path as seen from the client is named" "curl error 77: .*/home/user/no-such/ca.crt"

# a client without KCARD_CA in its session: the runbook's path there, which
# this client lacks (ssh through a stand-in that unsets it remotely)
cat >"$T/ssh-no-ca" <<'EOF'
#!/bin/sh
# real ssh; the last argument (the remote command) runs without KCARD_CA
n=$#
for a in "$@"; do
    n=$((n - 1))
    if [ "$n" -eq 0 ]; then set -- "$@" "unset KCARD_CA; $a"; else set -- "$@" "$a"; fi
    shift
done
exec ssh "$@"
EOF
if [ -e /home/user/chromecard/tls/phase2/ca.crt ]; then
    # a machine that has the runbook's CA: this check cannot tell (not counted)
    echo "# not run: /home/user/chromecard/tls/phase2/ca.crt exists on this machine"
else
    SSH="sh $T/ssh-no-ca" wrapper --ssh-config "$CFG"
    want_rc "no KCARD_CA on the client, the runbook's CA path missing there: exit 3" 3
    grep_out "the client's default CA path is named" \
        "curl error 77: .*/home/user/chromecard/tls/phase2/ca.crt"
fi

# the connection dropped mid-run: a login waiting for a touch nobody gives,
# then the link between the host and k_client goes down
if "$CTL" --control "$VCARD_CTL" presence ask >/dev/null 2>"$T/ctl.err"; then
    t0=$(date +%s)
    timeout -k 2 40 sh "$WRAPPER" --ssh-config "$CFG" --interactive-card \
        >"$T/out" 2>"$T/err" </dev/null &
    dpid=$!
    wait_for_line "$T/err" "touch the card" 200 || not_ok "drop: the run started" "no prompt"
    ip link set "$VETH_HOST" down
    wait "$dpid"
    RC=$?
    SECS=$(($(date +%s) - t0))
    ip link set "$VETH_HOST" up
    want_rc "connection dropped mid-run: exit 3" 3
    one_line "connection dropped: says the connection was lost" "connection to k_client was lost"
    # ServerAliveInterval 2 x ServerAliveCountMax 3 in DIR/ssh_config
    if [ "$SECS" -le 15 ]; then ok "connection dropped: the run ended within 15 s (${SECS}s)"; else
        not_ok "connection dropped: the run ended within 15 s" "${SECS}s"
    fi
    "$CTL" --control "$VCARD_CTL" deny >/dev/null 2>&1
    "$CTL" --control "$VCARD_CTL" presence yes >/dev/null 2>&1
else
    not_ok "vcard-ctl presence ask (drop)" "$(cat "$T/ctl.err")"
fi

# --remote curl, k_proxy stopped in the middle of the burst: the counter
# requests lose their answers, the run fails with 3 naming curl's error (the
# client's temporary files in $T/rtmp show when the burst has begun)
REMOTE_PREFIX="TMPDIR=$T/rtmp; export TMPDIR;" REQUESTS=600 PARALLELISM=2 SSH="sh $T/ssh-prefix" \
    timeout -k 2 40 sh "$WRAPPER" --ssh-config "$CFG" --remote curl >"$T/out" 2>"$T/err" </dev/null &
bpid=$!
# burst_begun: a counter answer is recorded on the client
burst_begun() {
    for _f in "$T"/rtmp/kcr-curl.*/o0; do
        [ -s "$_f" ] && return 0
    done
    return 1
}
_tries=200 # 10 s
while [ "$_tries" -gt 0 ] && ! burst_begun; do
    sleep 0.05
    _tries=$((_tries - 1))
done
# shellcheck disable=SC2154 # from $DIR/env
kill -TERM "$PID_k_proxy" 2>/dev/null
wait "$bpid"
RC=$?
want_rc "--remote curl, k_proxy stopped mid-burst: exit 3" 3
if tail -n 1 "$T/out" | grep -q "^FAIL: counter: .*no answer [1-9].*first failure: no answer: curl error [0-9]"; then
    ok "--remote curl, k_proxy stopped: the verdict names the burst and curl's error"
else
    not_ok "--remote curl, k_proxy stopped: the verdict names the burst and curl's error"
    show_head 8 "$T/out" "$T/err"
fi
if [ -z "$(ls "$T/rtmp")" ]; then ok "--remote curl: the client's temporary files are removed"; else
    not_ok "--remote curl: the client's temporary files are removed" "$(ls "$T/rtmp")"
fi

# ---- nothing of the machine's own touched; down stops sshd ----
if [ "$(kh_sum)" = "$KH_BEFORE" ]; then ok "$HOME/.ssh/known_hosts untouched"; else
    not_ok "$HOME/.ssh/known_hosts untouched"
fi
if sh "$SPLIT" down "$DIR" >"$T/down.out" 2>"$T/down.err"; then ok "split.sh down"; else
    not_ok "split.sh down"
    show_head 10 "$T/down.err"
fi
UP=0
# shellcheck disable=SC2154 # from $DIR/env
st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$PID_sshd/stat" 2>/dev/null)
if [ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]; then ok "down stopped sshd"; else
    not_ok "down stopped sshd" "pid $PID_sshd still running"
fi
if ip link show "$VETH_HOST" >/dev/null 2>&1; then not_ok "down removed the veth pair"; else
    ok "down removed the veth pair"
fi
if [ ! -e "$SSH_DIR" ] && [ ! -e "$CFG" ]; then ok "down removed the run's keys and ssh_config"; else
    not_ok "down removed the run's keys and ssh_config"
fi
finish

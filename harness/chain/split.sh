#!/bin/sh
# shellcheck disable=SC2086 # SPLIT_*_ARGS are split on blanks on purpose
# The runbook's split-VM chain (docs/runbook/PHASE5_RUNBOOK.md, "Split-VM
# chain") simulated with three network namespaces standing in for the Qubes
# VMs k_client, k_proxy and k_server, and kc-forward standing in for
# qvm-connect-tcp:
#
#   k_client ns:  kc-forward 9771:<k_proxy ns>:8771
#   k_proxy ns:   vcard (UDP 127.0.0.1:8111)
#                 kc-forward 9780:<k_server ns>:8780
#                 k_proxy --port 8771 --server-base-url https://127.0.0.1:9780 ...
#   k_server ns:  k_server --port 8780 ...
#   host <-veth-> k_client ns: /usr/sbin/sshd on the k_client address, port 22
#
# usage:
#   split.sh up DIR                 start everything; DIR/env names the
#                                   namespaces, PIDs, URLs and the CA file
#   split.sh exec DIR ROLE CMD...   run CMD in ROLE's namespace
#                                   (ROLE: k_client, k_proxy or k_server)
#   split.sh status DIR             which processes are alive
#   split.sh down DIR               stop everything, delete the namespaces
#
# Namespace names start with a random run id, so parallel runs do not collide.
# Needs root (ip netns). Binaries come from $BIN (default $BUILD/bin, BUILD
# default build); TLS material is made in DIR/tls by fixtures/tls/gen.sh;
# logs are in DIR/logs, state databases in DIR/state. Extra arguments, split
# on blanks: SPLIT_VCARD_ARGS, SPLIT_SERVER_ARGS, SPLIT_PROXY_ARGS (for example
# SPLIT_PROXY_ARGS="--auth-mode fido2-direct"); SPLIT_UP_TIMEOUT (seconds, 20).
#
# The SSH hop (as operators reach the client VM): a veth pair joins the host
# namespace to k_client (a /30 out of 198.18.0.0/15, RFC 2544's test range),
# and Debian's sshd listens only on the k_client end, with its own host key,
# client key and sshd_config in DIR/ssh. DIR/ssh_config names the host
# k_client (ssh -F DIR/ssh_config k_client; phase5_chain_regression.sh
# --ssh-config DIR/ssh_config). The remote PATH starts with $BIN and KCARD_CA
# is the run's CA, as on a client VM with kcard installed. SPLIT_SSH=0 leaves
# the hop out; SPLIT_SSHD names the server (default /usr/sbin/sshd). The
# machine's own sshd, its config, users and ~/.ssh are not touched.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-build}
BIN=${BIN:-$BUILD/bin}
case $BIN in
/*) ;;
*) BIN=$(pwd)/$BIN ;;
esac
UP_TIMEOUT=${SPLIT_UP_TIMEOUT:-20} # seconds to wait for the whole path

die() {
    echo "split.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '15,21p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

abs_dir() {
    case $1 in
    *"'"*) die "DIR must not contain a quote" ;;
    esac
    if [ "$2" = up ]; then
        mkdir -p "$1" || die "cannot create $1"
    fi
    [ -d "$1" ] || die "$1 is not a directory"
    (cd "$1" && pwd)
}

# ---- env file: written step by step so that `down` can undo a failed `up` ----

env_set() {
    printf "%s='%s'\n" "$1" "$2" >>"$DIR/env"
    eval "$1='$2'"
}

load_env() {
    [ -f "$DIR/env" ] || die "$DIR/env not found (not up?)"
    # shellcheck disable=SC1091
    . "$DIR/env"
}

ns_of() {
    case $1 in
    k_client | client) echo "$NS_CLIENT" ;;
    k_proxy | proxy) echo "$NS_PROXY" ;;
    k_server | server) echo "$NS_SERVER" ;;
    *) return 1 ;;
    esac
}

# start NAME NS CMD...: in the background, detached from our stdio; records PID_NAME
start() {
    _name=$1
    _ns=$2
    shift 2
    ip netns exec "$_ns" "$@" </dev/null >"$DIR/logs/$_name.log" 2>&1 &
    env_set "PID_$_name" "$!"
}

# wait_until SECONDS CMD...: retries CMD every 0.1 s
wait_until() {
    _tries=$(($1 * 10))
    shift
    while [ "$_tries" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        _tries=$((_tries - 1))
    done
    return 1
}

# running PID: exists and is not a zombie (an orphan's exit is reaped late by
# some init processes, and a zombie still answers kill -0)
running() {
    kill -0 "$1" 2>/dev/null || return 1
    _st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
    [ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

alive() {
    eval "_p=\${PID_$1:-}"
    [ -n "$_p" ] && running "$_p"
}

must_live() {
    alive "$1" || {
        echo "split.sh: $1 exited during start-up; its log:" >&2
        tail -n 15 "$DIR/logs/$1.log" | sed 's/^/    | /' >&2
        return 1
    }
}

https_ok() {
    # $1 ns, $2 url
    ip netns exec "$1" curl -fsS --max-time 3 --cacert "$CA_FILE" "$2"
}

# wait_healthy NS URL PROC...: until URL answers from NS (at most UP_TIMEOUT
# seconds); gives up at once when one of PROC has exited
wait_healthy() {
    _ns=$1
    _url=$2
    shift 2
    _end=$(($(date +%s) + UP_TIMEOUT))
    while [ "$(date +%s)" -lt "$_end" ]; do
        https_ok "$_ns" "$_url" >/dev/null 2>&1 && return 0
        for _proc in "$@"; do
            must_live "$_proc" || return 1
        done
        sleep 0.1
    done
    return 1
}

fail_up() {
    # finish the clean-up even when whoever reads our stderr has gone
    trap '' PIPE
    echo "split.sh: up failed: $*" >&2
    for _f in "$DIR"/logs/*.log; do
        [ -s "$_f" ] || continue
        echo "--- ${_f##*/}" >&2
        tail -n 8 "$_f" | sed 's/^/    | /' >&2
    done
    do_down >/dev/null 2>&1
    exit 1
}

do_up() {
    [ "$(id -u)" -eq 0 ] || die "needs root to create network namespaces (ip netns)"
    command -v ip >/dev/null 2>&1 || die "ip (iproute2) not found"
    command -v curl >/dev/null 2>&1 || die "curl not found"
    for b in vcard k_server k_proxy kc-forward; do
        [ -x "$BIN/$b" ] || die "$BIN/$b missing (make $BUILD/bin/$b)"
    done
    if [ "${SPLIT_SSH:-1}" != 0 ] && [ ! -x "${SPLIT_SSHD:-/usr/sbin/sshd}" ]; then
        die "${SPLIT_SSHD:-/usr/sbin/sshd} missing: install openssh-server (ci/install-deps.sh), or SPLIT_SSH=0 to leave the SSH hop out"
    fi
    if [ -f "$DIR/env" ]; then
        load_env
        if alive k_proxy || alive k_server; then
            die "$DIR is already up (split.sh down $DIR first)"
        fi
        do_down >/dev/null 2>&1
    fi
    # interrupted half way: undo what was started
    trap 'fail_up interrupted' INT TERM HUP
    mkdir -p "$DIR/logs" "$DIR/state" || die "cannot create $DIR"
    : >"$DIR/env" || die "cannot write $DIR/env"
    chmod 600 "$DIR/env"

    id="kcs$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
    env_set SPLIT_ID "$id"
    env_set SPLIT_DIR "$DIR"
    env_set BIN "$BIN"

    sh "$ROOT/fixtures/tls/gen.sh" --quiet "$DIR/tls" || fail_up "TLS material"
    env_set CA_FILE "$DIR/tls/ca.crt"

    # the proxy token of this run: random, only in DIR (mode 0600)
    token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077 && printf '%s\n' "$token" >"$DIR/proxy-token")

    for role in client proxy server; do
        ns="$id-k_$role"
        ip netns add "$ns" || fail_up "ip netns add $ns"
        case $role in
        client) env_set NS_CLIENT "$ns" ;;
        proxy) env_set NS_PROXY "$ns" ;;
        server) env_set NS_SERVER "$ns" ;;
        esac
        ip netns exec "$ns" ip link set lo up || fail_up "lo up in $ns"
    done

    # k_proxy VM: the card
    start vcard "$NS_PROXY" "$BIN/vcard" --listen 127.0.0.1:8111 \
        --control "$DIR/vcard.sock" ${SPLIT_VCARD_ARGS:-}
    env_set VCARD_URI "udp:127.0.0.1:8111"
    env_set VCARD_CTL "$DIR/vcard.sock"
    wait_until 5 grep -q "vcard: listening on" "$DIR/logs/vcard.log" || {
        must_live vcard
        fail_up "vcard not ready within 5 s"
    }

    # k_server VM (the runbook's command, with this run's TLS material)
    start k_server "$NS_SERVER" "$BIN/k_server" \
        --host 127.0.0.1 \
        --port 8780 \
        --proxy-token "$token" \
        --tls-certfile "$DIR/tls/k_server.crt" \
        --tls-keyfile "$DIR/tls/k_server.key" \
        --state-db "$DIR/state/k_server.db" ${SPLIT_SERVER_ARGS:-}

    # k_proxy VM: qvm-connect-tcp 9780:k_server:8780
    start fwd_server "$NS_PROXY" "$BIN/kc-forward" -v --ready-file "$DIR/fwd_server.ready" \
        "9780:$NS_SERVER:8780"

    # k_proxy VM: the proxy, with the card
    start k_proxy "$NS_PROXY" "$BIN/k_proxy" \
        --host 127.0.0.1 \
        --port 8771 \
        --session-ttl 300 \
        --server-base-url https://127.0.0.1:9780 \
        --server-ca-file "$DIR/tls/ca.crt" \
        --proxy-token "$token" \
        --tls-certfile "$DIR/tls/k_proxy.crt" \
        --tls-keyfile "$DIR/tls/k_proxy.key" \
        --device "$VCARD_URI" \
        --state-db "$DIR/state/k_proxy.db" ${SPLIT_PROXY_ARGS:-}

    # k_client VM: qvm-connect-tcp 9771:k_proxy:8771
    start fwd_proxy "$NS_CLIENT" "$BIN/kc-forward" -v --ready-file "$DIR/fwd_proxy.ready" \
        "9771:$NS_PROXY:8771"

    env_set CLIENT_URL "https://127.0.0.1:9771"
    env_set PROXY_URL "https://127.0.0.1:8771"
    env_set SERVER_URL "https://127.0.0.1:9780"

    # the whole path: k_server through its forward from the k_proxy VM, and
    # k_proxy through its forward from the k_client VM
    wait_healthy "$NS_PROXY" https://127.0.0.1:9780/healthz k_server fwd_server ||
        fail_up "k_server /healthz not reachable through 9780 within ${UP_TIMEOUT}s"
    wait_healthy "$NS_CLIENT" https://127.0.0.1:9771/healthz k_proxy fwd_proxy ||
        fail_up "k_proxy /healthz not reachable through 9771 within ${UP_TIMEOUT}s"
    start_ssh_hop
    trap - INT TERM HUP
    env_set SPLIT_UP 1
    echo "split.sh: up: $NS_CLIENT -> $NS_PROXY -> $NS_SERVER; env in $DIR/env"
}

# ---- the SSH hop: host namespace -> sshd in k_client ----

# pick_ssh_net: a free /30 in 198.18.0.0/15; sets SSH_NET (its first address, x.y.z.N)
pick_ssh_net() {
    _tries=8
    while [ "$_tries" -gt 0 ]; do
        # shellcheck disable=SC2046 # three numbers, split on purpose
        set -- $(od -An -N3 -tu1 /dev/urandom)
        _net="198.$((18 + $1 % 2)).$2.$(($3 / 4 * 4))"
        _pre=${_net%.*}
        _last=${_net##*.}
        # taken when any address of the /30 is already on this machine
        if ! ip -4 -o addr show | grep -Eq "inet $_pre\.($_last|$((_last + 1))|$((_last + 2))|$((_last + 3)))/"; then
            SSH_NET=$_net
            return 0
        fi
        _tries=$((_tries - 1))
    done
    return 1
}

write_sshd_config() {
    cat <<EOF
# sshd of the k_client namespace of split chain $SPLIT_ID (harness/chain/split.sh)
ListenAddress $SSH_ADDR:22
HostKey $SSH_DIR/host_ed25519_key
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
AllowUsers $1
PermitRootLogin prohibit-password
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# DIR may lie below /tmp (mode 1777), which StrictModes refuses: split.sh
# keeps DIR/ssh at 0700 and the keys at 0600 itself
StrictModes no
PermitUserEnvironment no
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
# a dropped client ends its session (and the run) within about 6 s
ClientAliveInterval 2
ClientAliveCountMax 3
LogLevel VERBOSE
# sanitizer settings of a test run reach the remote chain-regress
AcceptEnv ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
# kcard installed on the client: chain-regress on the PATH, the CA in KCARD_CA
SetEnv PATH=$BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin KCARD_CA=$CA_FILE
EOF
}

write_ssh_config() {
    cat <<EOF
# ssh_config for split chain $SPLIT_ID (harness/chain/split.sh):
#   ssh -F $DIR/ssh_config k_client
Host k_client
    HostName $SSH_ADDR
    Port 22
    User $1
    IdentityFile $SSH_DIR/id_ed25519
    IdentitiesOnly yes
    IdentityAgent none
    UserKnownHostsFile $SSH_DIR/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
    BatchMode yes
    PreferredAuthentications publickey
    ConnectTimeout 5
    ServerAliveInterval 2
    ServerAliveCountMax 3
    SendEnv ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
EOF
}

start_ssh_hop() {
    [ "${SPLIT_SSH:-1}" = 0 ] && return 0
    sshd=${SPLIT_SSHD:-/usr/sbin/sshd}
    [ -x "$sshd" ] || fail_up "$sshd missing: install openssh-server (ci/install-deps.sh), or SPLIT_SSH=0 to leave the SSH hop out"
    for t in ssh ssh-keygen; do
        command -v "$t" >/dev/null 2>&1 || fail_up "$t missing: install openssh-client"
    done
    case $DIR$BIN in
    *[[:space:]]*) fail_up "DIR and BIN must not contain blanks (sshd_config, ssh_config)" ;;
    esac
    user=$(id -un) || fail_up "id -un"

    pick_ssh_net || fail_up "no free /30 in 198.18.0.0/15 for the SSH hop"
    env_set VETH_HOST "${SPLIT_ID}h"
    env_set SSH_HOST_ADDR "${SSH_NET%.*}.$((${SSH_NET##*.} + 1))"
    env_set SSH_ADDR "${SSH_NET%.*}.$((${SSH_NET##*.} + 2))"
    ip link add "$VETH_HOST" type veth peer name "${SPLIT_ID}c" netns "$NS_CLIENT" ||
        fail_up "ip link add $VETH_HOST (veth to $NS_CLIENT)"
    if ! { ip addr add "$SSH_HOST_ADDR/30" dev "$VETH_HOST" &&
        ip link set "$VETH_HOST" up &&
        ip netns exec "$NS_CLIENT" ip addr add "$SSH_ADDR/30" dev "${SPLIT_ID}c" &&
        ip netns exec "$NS_CLIENT" ip link set "${SPLIT_ID}c" up; }; then
        fail_up "addresses on the veth pair $VETH_HOST"
    fi

    env_set SSH_DIR "$DIR/ssh"
    rm -rf "$SSH_DIR"
    (umask 077 && mkdir -p "$SSH_DIR") || fail_up "cannot create $SSH_DIR"
    for key in host_ed25519_key id_ed25519; do
        ssh-keygen -q -t ed25519 -N '' -C "$key, split chain $SPLIT_ID" -f "$SSH_DIR/$key" \
            </dev/null >/dev/null 2>>"$DIR/logs/ssh-keygen.log" || fail_up "ssh-keygen $key"
    done
    (umask 077 && cp "$SSH_DIR/id_ed25519.pub" "$SSH_DIR/authorized_keys" &&
        printf 'k_client,%s %s\n' "$SSH_ADDR" "$(cut -d' ' -f1,2 "$SSH_DIR/host_ed25519_key.pub")" \
            >"$SSH_DIR/known_hosts" &&
        write_sshd_config "$user" >"$SSH_DIR/sshd_config" &&
        write_ssh_config "$user" >"$DIR/ssh_config") || fail_up "cannot write $SSH_DIR"
    env_set SSH_CONFIG "$DIR/ssh_config"

    # Debian's sshd wants its privilege separation directory
    if [ ! -d /run/sshd ]; then
        (umask 022 && mkdir -p /run/sshd) || fail_up "cannot create /run/sshd"
    fi
    "$sshd" -t -f "$SSH_DIR/sshd_config" >"$DIR/logs/sshd.log" 2>&1 ||
        fail_up "sshd -t: $SSH_DIR/sshd_config refused"
    start sshd "$NS_CLIENT" "$sshd" -D -e -f "$SSH_DIR/sshd_config"
    wait_until 5 grep -q "Server listening on $SSH_ADDR port 22" "$DIR/logs/sshd.log" || {
        must_live sshd
        fail_up "sshd not listening on $SSH_ADDR:22 within 5 s"
    }
    # the whole hop, as the wrapper will use it
    ssh -F "$DIR/ssh_config" -n k_client true >"$DIR/logs/ssh-check.log" 2>&1 ||
        fail_up "ssh -F $DIR/ssh_config k_client true failed: $(tail -n 1 "$DIR/logs/ssh-check.log")"
}

# stop PID NAME: TERM, then KILL after 3 s; only a PID that still runs NAME
stop_pid() {
    _pid=$1
    _prog=$2
    [ -n "$_pid" ] || return 0
    running "$_pid" || return 0
    # the PID may have been reused since: check what it runs
    tr '\0' ' ' <"/proc/$_pid/cmdline" 2>/dev/null | grep -q "$_prog" || return 0
    kill -TERM "$_pid" 2>/dev/null
    _tries=30
    while running "$_pid" && [ "$_tries" -gt 0 ]; do
        sleep 0.1
        _tries=$((_tries - 1))
    done
    kill -KILL "$_pid" 2>/dev/null
    return 0
}

do_down() {
    [ -f "$DIR/env" ] || return 0
    load_env
    # front to back, so nothing is left waiting on a dead upstream
    stop_pid "${PID_sshd:-}" sshd
    stop_pid "${PID_fwd_proxy:-}" kc-forward
    stop_pid "${PID_k_proxy:-}" k_proxy
    stop_pid "${PID_fwd_server:-}" kc-forward
    stop_pid "${PID_k_server:-}" k_server
    stop_pid "${PID_vcard:-}" vcard
    rc=0
    for ns in ${NS_CLIENT:-} ${NS_PROXY:-} ${NS_SERVER:-}; do
        ip netns list | grep -q "^$ns\( \|\$\)" || continue
        # anything still running in this run's namespaces (an `exec` left over)
        for p in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$p" 2>/dev/null
        done
        ip netns del "$ns" || rc=1
    done
    # the veth pair goes with the k_client namespace; a half-made one may not
    if [ -n "${VETH_HOST:-}" ] && ip link show "$VETH_HOST" >/dev/null 2>&1; then
        ip link del "$VETH_HOST" || rc=1
    fi
    rm -f "$DIR/env" "$DIR/proxy-token" "$DIR/vcard.sock" "$DIR/ssh_config"
    rm -rf "$DIR/ssh"
    [ "$rc" -eq 0 ] && echo "split.sh: down: ${SPLIT_ID:-?} stopped, namespaces deleted"
    return "$rc"
}

do_status() {
    load_env
    rc=0
    for p in vcard k_server fwd_server k_proxy fwd_proxy sshd; do
        eval "_pid=\${PID_$p:-}"
        [ "$p" = sshd ] && [ -z "$_pid" ] && continue # SPLIT_SSH=0
        if alive "$p"; then
            echo "$p: running (pid $_pid)"
        else
            echo "$p: not running"
            rc=1
        fi
    done
    return "$rc"
}

[ $# -ge 2 ] || usage
cmd=$1
DIR=$(abs_dir "$2" "$cmd") || exit 1
shift 2
case $cmd in
up)
    [ $# -eq 0 ] || usage
    do_up
    ;;
down)
    [ $# -eq 0 ] || usage
    do_down
    ;;
status)
    do_status
    ;;
exec)
    [ $# -ge 2 ] || usage
    load_env
    ns=$(ns_of "$1") || die "unknown role '$1' (k_client, k_proxy or k_server)"
    shift
    exec ip netns exec "$ns" "$@"
    ;;
*) usage ;;
esac

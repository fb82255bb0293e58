#!/bin/sh
# phase5_chain_regression.sh: the Phase 5 prototype's regression helper,
# now a thin wrapper over chain-regress (docs/man/chain-regress.1).
#
# Drives the run from the client host over SSH (default k_client), against
# https://127.0.0.1:9771 with the client's CA (--cacert, else KCARD_CA, else
# the client's own default: KCARD_CA there or
# /home/user/chromecard/tls/phase2/ca.crt), as alice, 20 requests at
# parallelism 8 (env REQUESTS, PARALLELISM). The exit code is chain-regress's:
# 0 pass, 1 a check failed, 2 usage, 3 no HTTP answer (connect, TLS, CA file),
# ssh failed (one line names the cause: unreachable, host key, key refused,
# connection lost) or chain-regress is missing on the client, 4 login refused.
#
#   REQUESTS=50 PARALLELISM=12 phase5_chain_regression.sh
#   phase5_chain_regression.sh --username alice --client-host k_client
#   phase5_chain_regression.sh --interactive-card --expect-auth-mode fido2_assertion
#   phase5_chain_regression.sh --client-host local --base-url http://127.0.0.1:8770
#   phase5_chain_regression.sh --remote curl   # a client without kcard
#
# --remote curl: the client needs only POSIX sh and curl. The run (login,
# status, the burst at PARALLELISM, logout, the old token after logout) is
# made with plain curl there, one line per answer comes back over ssh, and
# chain-regress --analyze judges them here, with the same report and codes.

PROG=phase5_chain_regression.sh
DEFAULT_CA=/home/user/chromecard/tls/phase2/ca.crt

usage() {
    cat <<EOF
usage: $PROG [options] [-- chain-regress options]

  --username U            user to log in (default alice)
  --client-host H         run chain-regress on H over ssh (default k_client);
                          'local' runs it here
  --base-url URL          k_proxy as seen from the client
                          (default https://127.0.0.1:9771)
  --cacert FILE           CA certificate, a path on the client (default
                          \$KCARD_CA here; over ssh, else the client's own:
                          \$KCARD_CA there, else
                          $DEFAULT_CA)
  --ssh-config FILE       ssh -F FILE (e.g. the split chain's DIR/ssh_config)
  --remote MODE           what runs on the client: chain-regress (default),
                          or curl (plain curl and sh; the answers are
                          judged here by chain-regress --analyze)
  --interactive-card      say when to touch the card; login waits longer
  --expect-auth-mode M    the login's auth_mode must be M (e.g. fido2_assertion)
  --json                  chain-regress's JSON report on stdout
  -v, --verbose           each request on stderr
  -h, --help              this text

environment: REQUESTS (20), PARALLELISM (8), KCARD_CA, CHAIN_REGRESS (the
local program; with --remote curl the one that judges), CHAIN_REGRESS_REMOTE (the program on the client host,
default chain-regress), SSH (default ssh; BatchMode=yes is added, and
ConnectTimeout=10, ServerAliveInterval=5, ServerAliveCountMax=3 when the ssh
configuration sets none).
exit status: that of chain-regress (0 pass, 1 check failed, 2 usage,
3 no HTTP answer, 4 login refused); 3 also when ssh fails (unreachable or
refused, unknown or changed host key, key refused, connection lost; one line
says which), when chain-regress is missing on the client, and with
--remote curl when curl is missing there; 2 also when the lines that came
back are malformed (chain-regress --analyze names the line).
EOF
}

die_usage() {
    echo "$PROG: $1 (see --help)" >&2
    exit 2
}

# one word for a remote shell: 'it'\''s'
quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

username=alice
client_host=k_client
base_url=https://127.0.0.1:9771
cacert=${KCARD_CA:-}
ssh_config=
interactive=
expect=
json=
verbose=
remote_mode=chain-regress

need() {
    [ "$#" -ge 2 ] || die_usage "option '$1' needs a value"
}

while [ "$#" -gt 0 ]; do
    case $1 in
    --username | --client-host | --base-url | --cacert | --expect-auth-mode | --ssh-config | --remote)
        need "$@"
        case $1 in
        --remote) remote_mode=$2 ;;
        --ssh-config) ssh_config=$2 ;;
        --username) username=$2 ;;
        --client-host) client_host=$2 ;;
        --base-url) base_url=$2 ;;
        --cacert) cacert=$2 ;;
        --expect-auth-mode) expect=$2 ;;
        esac
        shift 2
        ;;
    --username=*) username=${1#*=} && shift ;;
    --client-host=*) client_host=${1#*=} && shift ;;
    --base-url=*) base_url=${1#*=} && shift ;;
    --cacert=*) cacert=${1#*=} && shift ;;
    --expect-auth-mode=*) expect=${1#*=} && shift ;;
    --ssh-config=*) ssh_config=${1#*=} && shift ;;
    --remote=*) remote_mode=${1#*=} && shift ;;
    --interactive-card) interactive=1 && shift ;;
    --json) json=1 && shift ;;
    -v | --verbose) verbose=1 && shift ;;
    -h | --help)
        usage
        exit 0
        ;;
    --)
        shift
        break
        ;;
    *) die_usage "unknown option '$1'" ;;
    esac
done

[ -n "$client_host" ] || die_usage "--client-host is empty"
case $client_host in
-*) die_usage "--client-host: '$client_host' is not a host name" ;;
esac
if [ -n "$ssh_config" ] && [ ! -r "$ssh_config" ]; then
    die_usage "--ssh-config: cannot read '$ssh_config'"
fi
case $remote_mode in
chain-regress | curl) ;;
*) die_usage "--remote: '$remote_mode' is not chain-regress or curl" ;;
esac

# the local chain-regress: CHAIN_REGRESS, else the PATH, else next to us
find_local() {
    prog=${CHAIN_REGRESS:-}
    if [ -z "$prog" ]; then
        prog=$(command -v chain-regress 2>/dev/null)
    fi
    if [ -z "$prog" ]; then
        here=$(cd "$(dirname "$0")" && pwd)
        for cand in "$here/chain-regress" "$here/../build/bin/chain-regress"; do
            if [ -x "$cand" ]; then
                prog=$cand
                break
            fi
        done
    fi
    if [ -z "$prog" ] || [ ! -x "$prog" ]; then
        echo "$PROG: chain-regress not found (set CHAIN_REGRESS, add it to PATH, or run make)" >&2
        exit 2
    fi
}

# the arguments for chain-regress, rebuilt as "$@" (extra ones after --)
set -- --username "$username" --base-url "$base_url" "$@"
[ -n "$cacert" ] && set -- "$@" --cacert "$cacert"
[ -n "${REQUESTS:-}" ] && set -- "$@" --requests "$REQUESTS"
[ -n "${PARALLELISM:-}" ] && set -- "$@" --parallelism "$PARALLELISM"
[ -n "$interactive" ] && set -- "$@" --interactive-card
[ -n "$expect" ] && set -- "$@" --expect-auth-mode "$expect"
[ -n "$json" ] && set -- "$@" --json
[ -n "$verbose" ] && set -- "$@" -v

if [ "$client_host" = local ] && [ "$remote_mode" = chain-regress ]; then
    # chain-regress's own default CA here
    [ -z "$cacert" ] && set -- "$@" --cacert "$DEFAULT_CA"
    find_local
    exec "$prog" "$@"
fi

# The curl-only run on the client, in POSIX sh: one line per answer on
# stdout, "STEP CURL_EXIT HTTP_CODE SECONDS CONNECTS BODY" (chain-regress(1),
# --analyze); the token stays in a 0600 header file, never on a command line.
# Arguments: base URL, CA file ("" = KCARD_CA there, else the runbook's),
# username, requests, parallelism, per-request and login timeouts (s),
# interactive (1 or "").
# shellcheck disable=SC2016 # expanded by the client's shell
CURL_SCRIPT='set -u
base=$1 ca=$2 user=$3 n=$4 p=$5 tmo=$6 ltmo=$7 interactive=$8
command -v curl >/dev/null 2>&1 || { echo "curl not found on the client" >&2; exit 127; }
[ -n "$ca" ] || ca=${KCARD_CA:-'"$DEFAULT_CA"'}
umask 077
d=$(mktemp -d "${TMPDIR:-/tmp}/kcr-curl.XXXXXX") || { echo "mktemp failed on the client" >&2; exit 3; }
trap '"'"'rm -rf "$d"'"'"' EXIT
trap '"'"'exit 130'"'"' INT
trap '"'"'exit 143'"'"' TERM HUP PIPE
case $ca in *"
"*) ca=? ;; esac
printf "cacert 0 000 0 0 %s\n" "$ca"
req() {
    s=$1 path=$2 t=$3 k=$4
    shift 4
    w=$(curl -sS -m "$t" --cacert "$ca" -X POST -o "$d/b$k" -w "%{http_code} %{time_total} %{num_connects}" "$@" "$base$path" 2>"$d/e$k")
    rc=$?
    case $w in *[!0-9.\ ]* | "") w="000 0 0" ;; esac
    if [ "$rc" -ne 0 ]; then f="$d/e$k"; else f="$d/b$k"; fi
    body=$(dd if="$f" bs=65537 count=1 2>/dev/null | tr "\r\n" "  ")
    printf "%s %s %s %s\n" "$s" "$rc" "$w" "$body"
    return "$rc"
}
if [ -n "$interactive" ]; then
    echo "touch the card to approve login for $user (waiting up to $ltmo s)" >&2
fi
req login /session/login "$ltmo" 0 -H "Content-Type: application/json" --data-binary "{\"username\":\"$user\"}" || exit 0
tok=$(tr -d "\r\n" <"$d/b0" | sed -n "s|.*\"session_token\"[[:space:]]*:[[:space:]]*\"\([A-Za-z0-9._~+/=-]*\)\".*|\1|p")
[ -n "$tok" ] || exit 0
printf "Authorization: Bearer %s\n" "$tok" >"$d/auth"
req status /session/status "$tmo" 0 -H "@$d/auth" || exit 0
[ "$p" -le "$n" ] || p=$n
t0=$(date +%s%N 2>/dev/null)
k=0
while [ "$k" -lt "$p" ]; do
    (
        i=$k
        : >"$d/o$k"
        while [ "$i" -lt "$n" ]; do
            req counter /resource/counter "$tmo" "$k" -H "@$d/auth" >>"$d/o$k"
            i=$((i + p))
        done
    ) &
    k=$((k + 1))
done
wait
t1=$(date +%s%N 2>/dev/null)
k=0
while [ "$k" -lt "$p" ]; do
    cat "$d/o$k"
    k=$((k + 1))
done
case $t0$t1 in
*[!0-9]* | "") ;;
*)
    e=$((t1 - t0))
    printf "burst 0 000 %d.%09d 0\n" $((e / 1000000000)) $((e % 1000000000))
    ;;
esac
req logout /session/logout "$tmo" 0 -H "@$d/auth" || exit 0
req after_logout /resource/counter "$tmo" 0 -H "@$d/auth"
exit 0'

tmp=$(mktemp -d "${TMPDIR:-/tmp}/phase5-regress.XXXXXX") || exit 3
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$remote_mode" = curl ]; then
    case $username in
    "" | *[!A-Za-z0-9._-]*) die_usage "--username: '$username' is not A-Z a-z 0-9 . _ -" ;;
    esac
    [ "${#username}" -le 64 ] || die_usage "--username: longer than 64 characters"
    find_local
    n=${REQUESTS:-20}
    p=${PARALLELISM:-8}
    case $n$p in *[!0-9]* | "") die_usage "REQUESTS and PARALLELISM must be whole numbers" ;; esac
    # no leading zeros: the client's shell would read 08 as octal
    n=$(printf '%s\n' "$n" | sed 's/^0*\(.\)/\1/')
    p=$(printf '%s\n' "$p" | sed 's/^0*\(.\)/\1/')
    if [ "${#n}" -gt 6 ] || [ "$n" -lt 1 ] || [ "$n" -gt 100000 ]; then
        die_usage "REQUESTS: '$n' is not a whole number from 1 to 100000"
    fi
    if [ "${#p}" -gt 6 ] || [ "$p" -lt 1 ] || [ "$p" -gt 1000 ]; then
        die_usage "PARALLELISM: '$p' is not a whole number from 1 to 1000"
    fi
    ltmo=10
    [ -n "$interactive" ] && ltmo=60
    # the judge here gets the same options, and the recorded lines
    set -- --analyze "$tmp/lines" "$@"
    curl_args="'$n' '$p' 10 '$ltmo' '$interactive'"
    remote="sh -c $(quote "$CURL_SCRIPT") kcr-curl $(quote "$base_url") $(quote "$cacert") $(quote "$username") $curl_args"
    remote_prog=curl
    if [ "$client_host" = local ]; then
        sh -c "$CURL_SCRIPT" kcr-curl "$base_url" "$cacert" "$username" "$n" "$p" 10 "$ltmo" \
            "$interactive" >"$tmp/lines" </dev/null
        rc=$?
        [ "$rc" -eq 0 ] || exit 3
        "$prog" "$@"
        exit $?
    fi
else
    remote_prog=${CHAIN_REGRESS_REMOTE:-chain-regress}
    remote=$(quote "$remote_prog")
    for a in "$@"; do
        remote="$remote $(quote "$a")"
    done
    # no CA named here: the client's own, KCARD_CA in its ssh session, else the
    # runbook's path (expanded by the client's shell)
    if [ -z "$cacert" ]; then
        remote="$remote --cacert \"\${KCARD_CA:-$DEFAULT_CA}\""
    fi
fi
# the analysis's arguments, kept while "$@" becomes the ssh command
i=0
for a in "$@"; do
    i=$((i + 1))
    eval "judge_$i=\$a"
done
judge_n=$i

# the ssh command as words: $SSH split on blanks, then -F
# shellcheck disable=SC2086
set -- ${SSH:-ssh}
[ -n "$ssh_config" ] && set -- "$@" -F "$ssh_config"

# what the ssh configuration says for this host (OpenSSH's -G): bound the
# connect and a dead connection unless the configuration already does
known_hosts="the known_hosts file"
if "$@" -G -- "$client_host" >"$tmp/config" 2>/dev/null; then
    grep -qi '^connecttimeout none' "$tmp/config" && set -- "$@" -o ConnectTimeout=10
    grep -qi '^serveraliveinterval 0$' "$tmp/config" &&
        set -- "$@" -o ServerAliveInterval=5 -o ServerAliveCountMax=3
    kh=$(sed -n 's/^userknownhostsfile \([^ ]*\).*/\1/p' "$tmp/config" | head -n 1)
    [ -n "$kh" ] && known_hosts=$kh
fi

# ssh's stderr (and the remote's) goes on to ours as it comes, and into a
# file for the diagnosis; stdout (--json) is passed through untouched
if [ "$remote_mode" = curl ]; then
    exec 4>"$tmp/lines"
else
    exec 4>&1
fi
{ { "$@" -n -o BatchMode=yes -- "$client_host" "$remote" 2>&1 1>&3 3>&- 4>&-; echo "$?" >"$tmp/rc"; } |
    tee "$tmp/err" >&2 3>&- 4>&-; } 3>&4
exec 4>&-
rc=$(cat "$tmp/rc" 2>/dev/null)
[ -n "$rc" ] || rc=3

# has LINE-PATTERN: ssh said so (case-insensitive)
has() {
    tr -d '\r' <"$tmp/err" | grep -qi -- "$1"
}
said() {
    tr -d '\r' <"$tmp/err" | grep -i -- "$1" | head -n 1
}
fail3() {
    echo "$PROG: $*" >&2
    exit 3
}

case $rc in
255)
    last=$(tr -d '\r' <"$tmp/err" | grep -v '^[[:space:]]*$' | tail -n 1)
    if has 'REMOTE HOST IDENTIFICATION HAS CHANGED'; then
        where=$(said 'Offending .* key in ' | sed 's/.*Offending .* key in //')
        fail3 "ssh: the host key of $client_host has CHANGED from the one in ${where:-$known_hosts}; nothing was accepted: check the new key, then fix that entry (ssh-keygen -R)"
    elif has 'host key is known for' || has 'Host key verification failed'; then
        fail3 "ssh: the host key of $client_host is not known (strict checking, nothing was accepted): check its fingerprint and add it to $known_hosts"
    elif has 'Permission denied ('; then
        fail3 "ssh: $client_host refused our key: $(said "Permission denied (" | sed "s/.*\(Permission denied ([^)]*)\).*/\1/") (BatchMode: no password is tried; authorize the key there)"
    elif has 'not responding' || has 'closed by remote host' || has 'Broken pipe' ||
        has 'Connection reset'; then
        fail3 "ssh: the connection to $client_host was lost during the run: $last"
    elif has 'Could not resolve' || has 'Connection refused' || has 'timed out' ||
        has 'No route to host' || has 'Network is unreachable' || has 'Connection closed by'; then
        fail3 "ssh cannot reach $client_host: $last"
    fi
    fail3 "ssh to $client_host failed (exit 255): ${last:-no message}"
    ;;
127)
    if [ "$remote_mode" = curl ]; then
        fail3 "curl not found on $client_host (not on the PATH of its ssh session): install curl there"
    fi
    fail3 "$remote_prog not found on $client_host (not on the PATH of its ssh session): install kcard on the client (make install there), name it with CHAIN_REGRESS_REMOTE, or use --remote curl"
    ;;
126)
    fail3 "$remote_prog on $client_host cannot be run (exit 126): install kcard on the client again"
    ;;
esac
if [ "$remote_mode" = curl ]; then
    [ "$rc" -eq 0 ] || fail3 "the curl run on $client_host failed (exit $rc)"
    # "$@" back to the analysis's arguments
    set --
    i=1
    while [ "$i" -le "$judge_n" ]; do
        eval "set -- \"\$@\" \"\$judge_$i\""
        i=$((i + 1))
    done
    "$prog" "$@"
    exit $?
fi
exit "$rc"

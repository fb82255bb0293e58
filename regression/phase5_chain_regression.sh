#!/bin/sh
# phase5_chain_regression.sh: the Phase 5 prototype's regression helper,
# now a thin wrapper over chain-regress (docs/man/chain-regress.1).
#
# Drives the run from the client host over SSH (default k_client), against
# https://127.0.0.1:9771 with the CA /home/user/chromecard/tls/phase2/ca.crt
# inside the client, as alice, 20 requests at parallelism 8 (env REQUESTS,
# PARALLELISM). The exit code is chain-regress's: 0 pass, 1 a check failed,
# 2 usage, 3 no HTTP answer (connect, TLS, CA file) or ssh failed, 4 login
# refused.
#
#   REQUESTS=50 PARALLELISM=12 phase5_chain_regression.sh
#   phase5_chain_regression.sh --username alice --client-host k_client
#   phase5_chain_regression.sh --interactive-card --expect-auth-mode fido2_assertion
#   phase5_chain_regression.sh --client-host local --base-url http://127.0.0.1:8770

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
  --cacert FILE           CA certificate on the client (default \$KCARD_CA,
                          else $DEFAULT_CA)
  --interactive-card      say when to touch the card; login waits longer
  --expect-auth-mode M    the login's auth_mode must be M (e.g. fido2_assertion)
  --json                  chain-regress's JSON report on stdout
  -v, --verbose           each request on stderr
  -h, --help              this text

environment: REQUESTS (20), PARALLELISM (8), KCARD_CA, CHAIN_REGRESS (the
local program), CHAIN_REGRESS_REMOTE (the program on the client host,
default chain-regress), SSH (default ssh).
exit status: that of chain-regress (0 pass, 1 check failed, 2 usage,
3 no HTTP answer, 4 login refused); 3 also when ssh cannot reach the host.
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
cacert=${KCARD_CA:-$DEFAULT_CA}
interactive=
expect=
json=
verbose=

need() {
    [ "$#" -ge 2 ] || die_usage "option '$1' needs a value"
}

while [ "$#" -gt 0 ]; do
    case $1 in
    --username | --client-host | --base-url | --cacert | --expect-auth-mode)
        need "$@"
        case $1 in
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

# the arguments for chain-regress, rebuilt as "$@" (extra ones after --)
set -- --username "$username" --base-url "$base_url" "$@"
[ -n "$cacert" ] && set -- "$@" --cacert "$cacert"
[ -n "${REQUESTS:-}" ] && set -- "$@" --requests "$REQUESTS"
[ -n "${PARALLELISM:-}" ] && set -- "$@" --parallelism "$PARALLELISM"
[ -n "$interactive" ] && set -- "$@" --interactive-card
[ -n "$expect" ] && set -- "$@" --expect-auth-mode "$expect"
[ -n "$json" ] && set -- "$@" --json
[ -n "$verbose" ] && set -- "$@" -v

if [ "$client_host" = local ]; then
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
    exec "$prog" "$@"
fi

remote=$(quote "${CHAIN_REGRESS_REMOTE:-chain-regress}")
for a in "$@"; do
    remote="$remote $(quote "$a")"
done
${SSH:-ssh} -n -o BatchMode=yes -- "$client_host" "$remote"
rc=$?
if [ "$rc" -eq 255 ]; then
    echo "$PROG: ssh to $client_host failed (exit 255)" >&2
    exit 3
fi
exit "$rc"

#!/bin/sh
# Installs what `make bench` needs beyond `make check`'s packages: nginx (the
# ceiling the chain is measured against) and wrk (the load generator), from
# Debian, when missing. A ready machine costs nothing. Installing nginx must
# not start the system's nginx: when no /usr/sbin/policy-rc.d forbids service
# starts already, one is put in place for the install and removed after. The
# bench itself never reads or writes nginx's system configuration.
# Exit 0 when both are there afterwards, 1 otherwise (the bench then skips
# what needs them and says so).
set -u

have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }
have_wrk() { command -v wrk >/dev/null 2>&1; }

if have_nginx && have_wrk; then
    exit 0
fi
missing=""
have_nginx || missing="$missing nginx"
have_wrk || missing="$missing wrk"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "bench/install-deps.sh: missing:$missing (install them as root with apt-get)" >&2
    exit 1
fi
echo "bench/install-deps.sh: installing$missing"
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# put here by kcard bench/install-deps.sh for one install\nexit 101\n' >"$policy" &&
        chmod 0755 "$policy" && made_policy=1
    trap '[ "$made_policy" -eq 1 ] && rm -f "$policy"' EXIT
    trap 'exit 1' INT TERM
fi
export DEBIAN_FRONTEND=noninteractive
# nginx is the binary package on Debian 12 and later; nginx-light is the
# older name of the small build
pkgs=""
for m in $missing; do
    if [ "$m" = nginx ] && ! apt-cache show nginx >/dev/null 2>&1; then
        pkgs="$pkgs nginx-light"
    else
        pkgs="$pkgs $m"
    fi
done
# shellcheck disable=SC2086
if ! apt-get install -y --no-install-recommends $pkgs >/dev/null 2>&1; then
    apt-get update >/dev/null 2>&1
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $pkgs >/dev/null 2>&1
fi
if have_nginx && have_wrk; then
    exit 0
fi
echo "bench/install-deps.sh: could not install$missing" >&2
exit 1

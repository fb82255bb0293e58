/* kc-forward's command line: the qvm-connect-tcp style spec and the options.
 * Parsed by hand (no getopt) so that it has no global state and tests can call
 * it repeatedly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/chain/forward.h"
#include "util/err.h"
#include "util/num.h"

static const char usage_text[] =
    "usage: kc-forward [options] [LOCALPORT]:[TARGET]:TARGETPORT\n"
    "Listens on 127.0.0.1:LOCALPORT and forwards each connection to\n"
    "127.0.0.1:TARGETPORT in the network namespace TARGET (/run/netns/TARGET),\n"
    "like Qubes' qvm-connect-tcp. An empty LOCALPORT means TARGETPORT, 0 any free\n"
    "port; an empty TARGET means the namespace kc-forward listens in.\n"
    "\n"
    "  --listen-netns NAME      listen inside /run/netns/NAME (default: the\n"
    "                           namespace kc-forward was started in)\n"
    "  --target-netns NAME      connect inside /run/netns/NAME (default: TARGET)\n"
    "  --ready-file PATH        write \"127.0.0.1:PORT\" to PATH once listening\n"
    "  --idle-timeout-ms MS     close a connection idle this long (default 300000)\n"
    "  --connect-timeout-ms MS  give up connecting to the target (default 5000)\n"
    "  --max-conns N            connections served at once (default 64); more\n"
    "                           are accepted and closed at once\n"
    "  -v, --verbose            one JSON line per connection event on stderr\n"
    "  -h, --help               this text\n"
    "\n"
    "Exit status: 0 stopped by SIGINT/SIGTERM, 1 runtime error, 2 usage error,\n"
    "3 cannot enter a namespace or listen.\n";

const char *kcf_usage(void)
{
    return usage_text;
}

int kcf_parse_port(const char *s, size_t len, int allow_zero, uint16_t *out)
{
    unsigned long v = 0;

    if (s == NULL || len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535 || (v == 0 && !allow_zero))
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int kcf_netns_name_ok(const char *name)
{
    size_t n;

    if (name == NULL)
        return 0;
    n = strlen(name);
    if (n == 0 || n > KCF_NETNS_MAX)
        return 0;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int kcf_spec_parse(const char *s, struct kcf_spec *out, char *err, size_t errlen)
{
    const char *c1, *c2;
    size_t target_len;
    struct kcf_spec spec;

    memset(&spec, 0, sizeof(spec));
    if (s == NULL || (c1 = strchr(s, ':')) == NULL || (c2 = strchr(c1 + 1, ':')) == NULL ||
        strchr(c2 + 1, ':') != NULL) {
        kcu_set_err(err, errlen, "spec '%s' is not LOCALPORT:TARGET:TARGETPORT", s ? s : "");
        return -1;
    }
    if (kcf_parse_port(c2 + 1, strlen(c2 + 1), 0, &spec.target_port) != 0) {
        kcu_set_err(err, errlen, "target port '%s' is not a number 1..65535", c2 + 1);
        return -1;
    }
    if (c1 == s) {
        spec.local_port = spec.target_port;
    } else if (kcf_parse_port(s, (size_t)(c1 - s), 1, &spec.local_port) != 0) {
        kcu_set_err(err, errlen, "local port in '%s' is not a number 0..65535", s);
        return -1;
    }
    target_len = (size_t)(c2 - c1 - 1);
    if (target_len > KCF_NETNS_MAX) {
        kcu_set_err(err, errlen, "target in '%s' is longer than 64 characters", s);
        return -1;
    }
    memcpy(spec.target, c1 + 1, target_len);
    spec.target[target_len] = '\0';
    if (target_len > 0 && !kcf_netns_name_ok(spec.target)) {
        kcu_set_err(err, errlen, "target in '%s' is not a namespace name ([A-Za-z0-9._-])", s);
        return -1;
    }
    *out = spec;
    return 0;
}

/* Parses a decimal unsigned in [lo, hi]. */
static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    uint64_t v;

    if (kcu_parse_u64(s, lo, hi, &v) != 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* Matches "--name VALUE" and "--name=VALUE"; advances *i past what it used.
 * Returns 1 when matched (value set, or NULL when VALUE is missing), else 0. */
static int take_value(int argc, char *const argv[], int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    *value = (*i + 1 < argc) ? argv[*i + 1] : NULL;
    if (*value != NULL)
        (*i)++;
    return 1;
}

static int copy_netns(const char *opt, const char *v, char *dst, char *err, size_t errlen)
{
    if (!kcf_netns_name_ok(v)) {
        kcu_set_err(err, errlen, "%s '%s' is not a namespace name ([A-Za-z0-9._-], 1..64)", opt, v);
        return -1;
    }
    snprintf(dst, KCF_NETNS_MAX + 1, "%s", v);
    return 0;
}

enum kcf_parse_result kcf_options_parse(int argc, char *const argv[], struct kcf_options *opts,
                                        char *err, size_t errlen)
{
    const char *spec = NULL;
    int target_given = 0;
    int only_positional = 0;

    memset(opts, 0, sizeof(*opts));
    opts->idle_timeout_ms = KCF_DEFAULT_IDLE_TIMEOUT_MS;
    opts->connect_timeout_ms = KCF_DEFAULT_CONNECT_TIMEOUT_MS;
    opts->max_conns = KCF_DEFAULT_MAX_CONNS;
    if (err != NULL && errlen > 0)
        err[0] = '\0';

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;

        if (only_positional || a[0] != '-' || a[1] == '\0') {
            if (spec != NULL) {
                kcu_set_err(err, errlen, "unexpected argument '%s' (one spec only)", a);
                return KCF_PARSE_USAGE;
            }
            spec = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return KCF_PARSE_HELP;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            opts->verbose = 1;
        } else if (take_value(argc, argv, &i, "--listen-netns", &v)) {
            if (v == NULL)
                goto missing;
            if (copy_netns("--listen-netns", v, opts->listen_netns, err, errlen) != 0)
                return KCF_PARSE_USAGE;
        } else if (take_value(argc, argv, &i, "--target-netns", &v)) {
            if (v == NULL)
                goto missing;
            if (copy_netns("--target-netns", v, opts->target_netns, err, errlen) != 0)
                return KCF_PARSE_USAGE;
            target_given = 1;
        } else if (take_value(argc, argv, &i, "--ready-file", &v)) {
            if (v == NULL)
                goto missing;
            if (*v == '\0') {
                kcu_set_err(err, errlen, "%s needs a path", "--ready-file");
                return KCF_PARSE_USAGE;
            }
            opts->ready_file = v;
        } else if (take_value(argc, argv, &i, "--idle-timeout-ms", &v)) {
            if (v == NULL)
                goto missing;
            if (parse_uint(v, 1, 86400000u, &opts->idle_timeout_ms) != 0) {
                kcu_set_err(err, errlen, "--idle-timeout-ms '%s' is not 1..86400000", v);
                return KCF_PARSE_USAGE;
            }
        } else if (take_value(argc, argv, &i, "--connect-timeout-ms", &v)) {
            if (v == NULL)
                goto missing;
            if (parse_uint(v, 1, 600000u, &opts->connect_timeout_ms) != 0) {
                kcu_set_err(err, errlen, "--connect-timeout-ms '%s' is not 1..600000", v);
                return KCF_PARSE_USAGE;
            }
        } else if (take_value(argc, argv, &i, "--max-conns", &v)) {
            if (v == NULL)
                goto missing;
            if (parse_uint(v, 1, KCF_MAX_CONNS_LIMIT, &opts->max_conns) != 0) {
                kcu_set_err(err, errlen, "--max-conns '%s' is not 1..1024", v);
                return KCF_PARSE_USAGE;
            }
        } else {
            kcu_set_err(err, errlen, "unknown option '%s'", a);
            return KCF_PARSE_USAGE;
        }
        continue;
    missing:
        kcu_set_err(err, errlen, "%s needs a value", a);
        return KCF_PARSE_USAGE;
    }

    if (spec == NULL) {
        kcu_set_err(err, errlen, "%s", "missing LOCALPORT:TARGET:TARGETPORT");
        return KCF_PARSE_USAGE;
    }
    if (kcf_spec_parse(spec, &opts->spec, err, errlen) != 0)
        return KCF_PARSE_USAGE;
    /* Like qvm-connect-tcp, the middle field names where to connect, unless
     * --target-netns says it explicitly (then the field is only a label). */
    if (!target_given)
        snprintf(opts->target_netns, sizeof(opts->target_netns), "%s", opts->spec.target);
    return KCF_PARSE_OK;
}

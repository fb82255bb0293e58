/* chain-regress options: defaults, environment (REQUESTS, PARALLELISM,
 * KCARD_CA) and the command line, every value validated. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "regression/chain_regress.h"
#include "util/err.h"
#include "util/num.h"

bool kcr_parse_number(const char *s, unsigned long long lo, unsigned long long hi,
                      unsigned long long *out)
{
    uint64_t v;

    if (kcu_parse_u64(s, lo, hi, &v) != 0)
        return false;
    *out = v;
    return true;
}

bool kcr_valid_username(const char *s)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strlen(s);
    if (n < 1 || n > KCR_USERNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}

/* http:// or https://, a host, no blanks or control characters */
static bool valid_base_url(const char *s)
{
    size_t skip;

    if (strncmp(s, "http://", 7) == 0)
        skip = 7;
    else if (strncmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    if (s[skip] == '\0' || s[skip] == '/')
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

/* auth modes as the answers name them; k_proxy's --auth-mode names are aliases */
static bool normalise_auth_mode(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);

    if (strcmp(in, "probe") == 0)
        in = "card_probe";
    else if (strcmp(in, "fido2-direct") == 0)
        in = "fido2_assertion";
    n = strlen(in);
    if (n == 0 || n >= outlen)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!isalnum(c) && c != '_' && c != '-' && c != '.')
            return false;
    }
    memcpy(out, in, n + 1);
    return true;
}

static bool copy_str(char *dst, size_t dstlen, const char *src)
{
    size_t n = strlen(src);

    if (n >= dstlen)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static void set_defaults(struct kcr_opts *o)
{
    memset(o, 0, sizeof(*o));
    (void)copy_str(o->base_url, sizeof(o->base_url), KCR_DEFAULT_BASE_URL);
    (void)copy_str(o->username, sizeof(o->username), KCR_DEFAULT_USERNAME);
    o->requests = KCR_DEFAULT_REQUESTS;
    o->parallelism = KCR_DEFAULT_PARALLELISM;
    o->timeout_ms = KCR_DEFAULT_TIMEOUT_MS;
    o->card_timeout_s = KCR_DEFAULT_CARD_TIMEOUT_S;
}

static int apply_env(const struct kcr_env *env, struct kcr_opts *o, char *err, size_t errlen)
{
    unsigned long long v;

    if (env == NULL)
        return KCR_OPTS_RUN;
    if (env->requests != NULL && *env->requests != '\0') {
        if (!kcr_parse_number(env->requests, 1, KCR_MAX_REQUESTS, &v))
            return kcu_set_err_rc(err, errlen, KCR_OPTS_USAGE,
                                  "REQUESTS (environment): '%s' is not a whole number from 1 to %u",
                                  env->requests, KCR_MAX_REQUESTS);
        o->requests = (unsigned)v;
    }
    if (env->parallelism != NULL && *env->parallelism != '\0') {
        if (!kcr_parse_number(env->parallelism, 1, KCR_MAX_PARALLELISM, &v))
            return kcu_set_err_rc(
                err, errlen, KCR_OPTS_USAGE,
                "PARALLELISM (environment): '%s' is not a whole number from 1 to %u",
                env->parallelism, KCR_MAX_PARALLELISM);
        o->parallelism = (unsigned)v;
    }
    if (env->ca != NULL && *env->ca != '\0' && !copy_str(o->cacert, sizeof(o->cacert), env->ca))
        return kcu_set_err_rc(err, errlen, KCR_OPTS_USAGE,
                              "KCARD_CA (environment): the path is too long");
    return KCR_OPTS_RUN;
}

enum {
    OPT_BASE_URL = 256,
    OPT_CACERT,
    OPT_USERNAME,
    OPT_REQUESTS,
    OPT_PARALLELISM,
    OPT_TIMEOUT_MS,
    OPT_CARD_TIMEOUT,
    OPT_EXPECT_AUTH_MODE,
    OPT_INTERACTIVE_CARD,
    OPT_JSON,
    OPT_VERSION,
    OPT_ANALYZE,
};

static const struct option long_opts[] = {
    {"base-url", required_argument, NULL, OPT_BASE_URL},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"username", required_argument, NULL, OPT_USERNAME},
    {"requests", required_argument, NULL, OPT_REQUESTS},
    {"parallelism", required_argument, NULL, OPT_PARALLELISM},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS},
    {"card-timeout", required_argument, NULL, OPT_CARD_TIMEOUT},
    {"expect-auth-mode", required_argument, NULL, OPT_EXPECT_AUTH_MODE},
    {"interactive-card", no_argument, NULL, OPT_INTERACTIVE_CARD},
    {"json", no_argument, NULL, OPT_JSON},
    {"analyze", required_argument, NULL, OPT_ANALYZE},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int number_opt(const char *name, const char *arg, unsigned long long lo,
                      unsigned long long hi, unsigned long long *out, char *err, size_t errlen)
{
    if (!kcr_parse_number(arg, lo, hi, out))
        return kcu_set_err_rc(err, errlen, KCR_OPTS_USAGE,
                              "%s: '%s' is not a whole number from %llu to %llu", name, arg, lo,
                              hi);
    return KCR_OPTS_RUN;
}

static int one_opt(int c, const char *arg, struct kcr_opts *o, char *err, size_t errlen)
{
    unsigned long long v = 0;
    int rc = KCR_OPTS_RUN;

    switch (c) {
    case OPT_BASE_URL:
        if (!valid_base_url(arg) || !copy_str(o->base_url, sizeof(o->base_url), arg))
            return kcu_set_err_rc(err, errlen, KCR_OPTS_USAGE,
                                  "--base-url: '%s' is not an http:// or https:// URL with a host",
                                  arg);
        /* paths are appended: drop a trailing slash */
        for (size_t n = strlen(o->base_url); n > 0 && o->base_url[n - 1] == '/'; n--)
            o->base_url[n - 1] = '\0';
        break;
    case OPT_CACERT:
        if (*arg == '\0' || !copy_str(o->cacert, sizeof(o->cacert), arg))
            return kcu_set_err_rc(err, errlen, KCR_OPTS_USAGE,
                                  "--cacert: the file name is empty or too long");
        break;
    case OPT_USERNAME:
        if (!kcr_valid_username(arg))
            return kcu_set_err_rc(err, errlen, KCR_OPTS_USAGE,
                                  "--username: '%s' is not 1 to 64 characters of A-Z a-z 0-9 . _ -",
                                  arg);
        (void)copy_str(o->username, sizeof(o->username), arg);
        break;
    case OPT_REQUESTS:
        rc = number_opt("--requests", arg, 1, KCR_MAX_REQUESTS, &v, err, errlen);
        o->requests = (unsigned)v;
        break;
    case OPT_PARALLELISM:
        rc = number_opt("--parallelism", arg, 1, KCR_MAX_PARALLELISM, &v, err, errlen);
        o->parallelism = (unsigned)v;
        break;
    case OPT_TIMEOUT_MS:
        rc = number_opt("--timeout-ms", arg, 1, KCR_MAX_TIMEOUT_MS, &v, err, errlen);
        o->timeout_ms = (long)v;
        break;
    case OPT_CARD_TIMEOUT:
        rc = number_opt("--card-timeout", arg, 1, KCR_MAX_CARD_TIMEOUT_S, &v, err, errlen);
        o->card_timeout_s = (long)v;
        o->card_timeout_set = true;
        break;
    case OPT_EXPECT_AUTH_MODE:
        if (!normalise_auth_mode(arg, o->expect_auth_mode, sizeof(o->expect_auth_mode)))
            return kcu_set_err_rc(err, errlen, KCR_OPTS_USAGE,
                                  "--expect-auth-mode: '%s' is not an auth mode name "
                                  "(card_probe, fido2_assertion, probe, fido2-direct)",
                                  arg);
        break;
    case OPT_INTERACTIVE_CARD:
        o->interactive_card = true;
        break;
    case OPT_JSON:
        o->json = true;
        break;
    case OPT_ANALYZE:
        if (*arg == '\0' || !copy_str(o->analyze, sizeof(o->analyze), arg))
            return kcu_set_err_rc(err, errlen, KCR_OPTS_USAGE,
                                  "--analyze: the file name is empty or too long");
        break;
    case 'v':
        o->verbose = true;
        break;
    default:
        return kcu_set_err_rc(err, errlen, KCR_OPTS_USAGE, "unknown option");
    }
    return rc;
}

int kcr_opts_parse(int argc, char **argv, const struct kcr_env *env, struct kcr_opts *o, char *err,
                   size_t errlen)
{
    int c, rc, idx;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    set_defaults(o);
    if ((rc = apply_env(env, o, err, errlen)) != KCR_OPTS_RUN)
        return rc;
    optind = 0; /* glibc: start over, so the parser can be called again */
    opterr = 0;
    for (;;) {
        idx = -1;
        c = getopt_long(argc, argv, ":vh", long_opts, &idx);
        if (c == -1)
            break;
        if (c == 'h')
            return KCR_OPTS_HELP;
        if (c == OPT_VERSION)
            return KCR_OPTS_VERSION;
        if (c == '?')
            return kcu_set_err_rc(err, errlen, KCR_OPTS_USAGE, "unknown option '%s'",
                                  optind > 0 && optind <= argc ? argv[optind - 1] : "?");
        if (c == ':')
            return kcu_set_err_rc(err, errlen, KCR_OPTS_USAGE, "option '%s' needs a value",
                                  optind > 0 && optind <= argc ? argv[optind - 1] : "?");
        rc = one_opt(c, optarg, o, err, errlen);
        if (rc != KCR_OPTS_RUN)
            return rc;
    }
    if (optind < argc)
        return kcu_set_err_rc(err, errlen, KCR_OPTS_USAGE, "unexpected argument '%s'",
                              argv[optind]);
    return KCR_OPTS_RUN;
}

void kcr_usage(FILE *f)
{
    fprintf(f,
            "usage: chain-regress [options]\n"
            "\n"
            "Logs in to k_proxy once, checks the session, sends N POST /resource/counter\n"
            "requests at parallelism P over one libcurl multi handle, checks the counter\n"
            "values are unique and gap-free, logs out and checks the old token gets 401.\n"
            "\n"
            "options:\n"
            "  --base-url URL           k_proxy (default %s)\n"
            "  --cacert FILE            CA certificate for https (default $KCARD_CA,\n"
            "                           else the system trust store)\n"
            "  --username U             user to log in (default %s)\n"
            "  --requests N             counter requests, 1..%u (default $REQUESTS, else %u)\n"
            "  --parallelism P          requests in flight, 1..%u (default $PARALLELISM, else "
            "%u)\n"
            "  --timeout-ms MS          per request (default %d)\n"
            "  --expect-auth-mode MODE  the login's auth_mode must be MODE\n"
            "                           (card_probe, fido2_assertion; probe, fido2-direct)\n"
            "  --interactive-card       say when to touch the card; login waits --card-timeout\n"
            "  --card-timeout S         seconds the login may wait for the card (default %d)\n"
            "  --json                   one JSON document on stdout\n"
            "  --analyze FILE           judge a run recorded with plain curl (one line per\n"
            "                           answer, '-' for stdin; see chain-regress(1)) instead\n"
            "                           of running one; the options describe that run\n"
            "  -v, --verbose            each request on stderr\n"
            "  -h, --help               this text\n"
            "  --version                print the version\n"
            "\n"
            "exit status:\n"
            "  0  every check passed\n"
            "  1  a check failed (duplicates, gaps, a wrong status, the auth mode)\n"
            "  2  usage error, or a malformed --analyze line (named)\n"
            "  3  no HTTP answer: could not connect, TLS or CA file failure, timeout\n"
            "  4  login refused (401 or 403 from /session/login, e.g. the card denied)\n",
            KCR_DEFAULT_BASE_URL, KCR_DEFAULT_USERNAME, KCR_MAX_REQUESTS, KCR_DEFAULT_REQUESTS,
            KCR_MAX_PARALLELISM, KCR_DEFAULT_PARALLELISM, KCR_DEFAULT_TIMEOUT_MS,
            KCR_DEFAULT_CARD_TIMEOUT_S);
}

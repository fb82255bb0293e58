/* Start-up helpers shared by the services (see svc_util.h). */
#include "services/common/svc_util.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "services/common/http.h"
#include "services/common/log.h"
#include "util/num.h"

int ksvc_load_token(const char *prog, const char *arg, const char *file, char *out, size_t cap)
{
    char err[512];
    out[0] = '\0';
    if (arg != NULL && file != NULL) {
        fprintf(stderr, "%s: give --proxy-token or --proxy-token-file, not both\n", prog);
        return -1;
    }
    if (file != NULL) {
        char *text = ksvc_read_file(file, 4096, NULL, err, sizeof(err));
        if (text == NULL) {
            fprintf(stderr, "%s: --proxy-token-file: %s\n", prog, err);
            return -1;
        }
        text[strcspn(text, "\r\n")] = '\0';
        snprintf(out, cap, "%s", text);
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    } else if (arg != NULL) {
        snprintf(out, cap, "%s", arg);
    } else if (getenv("KCARD_PROXY_TOKEN") != NULL) {
        snprintf(out, cap, "%s", getenv("KCARD_PROXY_TOKEN"));
    }
    if (out[0] == '\0') {
        fprintf(stderr,
                "%s: a proxy token is required (--proxy-token, --proxy-token-file or "
                "KCARD_PROXY_TOKEN)\n",
                prog);
        return -1;
    }
    return 0;
}

int ksvc_default_state_path(const char *name, char *out, size_t cap)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    int n = -1;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(out, cap, "%s/kcard/%s", xdg, name);
    else if (home != NULL && home[0] == '/')
        n = snprintf(out, cap, "%s/.local/state/kcard/%s", home, name);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int ksvc_make_parent_dirs(const char *path, char *err, size_t errlen)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        snprintf(err, errlen, "state path too long");
        return -1;
    }
    char *dir = dirname(buf);
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            goto fail;
        *p = '/';
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "cannot create the state folder %s: %s", dir, strerror(errno));
    return -1;
}

static int write_port_file(const char *path, int port)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int bad = fprintf(f, "%d\n", port) < 0;
    return fclose(f) != 0 || bad ? -1 : 0;
}

int ksvc_parse_int_option(const char *prog, const char *opt, const char *s, long lo, long hi,
                          int *out)
{
    long v;
    if (kcu_parse_long(s, lo, hi, &v) != 0) {
        fprintf(stderr, "%s: %s %s: want a whole number from %ld to %ld\n", prog, opt, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int ksvc_limit_option(const char *prog, int c, const char *arg, struct ksvc_limits *limits)
{
    int v = 0;
    switch (c) {
    case KSVC_OPT_MAX_CONNECTIONS:
        if (ksvc_parse_int_option(prog, "--max-connections", arg, 1, 1000000, &v) != 0)
            return -1;
        limits->max_connections = (unsigned)v;
        return 1;
    case KSVC_OPT_MAX_PER_ADDRESS:
        if (ksvc_parse_int_option(prog, "--max-connections-per-address", arg, 1, 1000000, &v) != 0)
            return -1;
        limits->max_per_address = (unsigned)v;
        return 1;
    case KSVC_OPT_REQUEST_TIMEOUT:
        if (ksvc_parse_int_option(prog, "--request-timeout", arg, 1, 3600, &v) != 0)
            return -1;
        limits->request_timeout_s = (unsigned)v;
        return 1;
    default:
        return 0;
    }
}

int ksvc_listen_option(const char *prog, int c, const char *arg, struct ksvc_listen_opts *l)
{
    switch (c) {
    case KSVC_OPT_HOST:
        l->host = arg;
        return 1;
    case KSVC_OPT_PORT:
        return ksvc_parse_int_option(prog, "--port", arg, 0, 65535, &l->port) != 0 ? -1 : 1;
    case KSVC_OPT_TLS_CERT:
        l->cert_file = arg;
        return 1;
    case KSVC_OPT_TLS_KEY:
        l->key_file = arg;
        return 1;
    case KSVC_OPT_PORT_FILE:
        l->port_file = arg;
        return 1;
    case KSVC_OPT_CPU_SCHEDULING:
        if (strcmp(arg, "batch") == 0) {
            l->cpu_scheduling = KSVC_CPU_BATCH;
        } else if (strcmp(arg, "inherit") == 0) {
            l->cpu_scheduling = KSVC_CPU_INHERIT;
        } else {
            fprintf(stderr, "%s: --cpu-scheduling %s: want batch or inherit\n", prog, arg);
            return -1;
        }
        return 1;
    default:
        return ksvc_limit_option(prog, c, arg, &l->limits);
    }
}

int ksvc_listen_check(const char *prog, const struct ksvc_listen_opts *l)
{
    if ((l->cert_file == NULL) != (l->key_file == NULL)) {
        fprintf(stderr, "%s: --tls-certfile and --tls-keyfile go together\n", prog);
        return -1;
    }
    return 0;
}

int ksvc_serve_until_stopped(const char *prog, struct ksvc_server *server, const char *port_file)
{
    if (port_file != NULL && write_port_file(port_file, ksvc_server_port(server)) != 0) {
        fprintf(stderr, "%s: cannot write --port-file %s\n", prog, port_file);
        return -1;
    }
    int sig = ksvc_wait_for_stop_signal();
    ksvc_log("info", "stop", json_pack("{s:i}", "signal", sig));
    return 0;
}

char *ksvc_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int failed = buf == NULL || ferror(f);
    fclose(f);
    if (failed || n > max) {
        snprintf(err, errlen, "%s: %s", path, failed ? "read failed" : "file too large");
        if (buf != NULL)
            OPENSSL_cleanse(buf, max + 1);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

void ksvc_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int ksvc_wait_for_stop_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}

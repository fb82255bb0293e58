/* The command line both floor programs share (cli.h). */
#include "bench/floor/cli.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/num.h"

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

static int number(const char *prog, const char *name, const char *v, int lo, int hi, unsigned *out)
{
    int n = 0;
    if (v == NULL || kcu_parse_int(v, lo, hi, &n) != 0) {
        fprintf(stderr, "%s: %s needs a whole number %d..%d (got '%s')\n", prog, name, lo, hi,
                v != NULL ? v : "");
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

static int text(const char *prog, const char *name, const char *v, const char **out)
{
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "%s: %s needs a value\n", prog, name);
        return -1;
    }
    *out = v;
    return 0;
}

/* path's whole contents, NUL-terminated (libmicrohttpd takes PEM as a
 * string); NULL (said on stderr) when unreadable, empty or over 256 KiB. */
static char *read_pem(const char *prog, const char *path)
{
    enum { PEM_MAX = 256 * 1024 };
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: cannot open %s: %s\n", prog, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf != NULL ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    bool bad = buf == NULL || ferror(f) || n == 0 || n > PEM_MAX;
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: %s is %s\n", prog, path,
                buf == NULL ? "not readable (out of memory)"
                : n == 0    ? "empty or unreadable"
                            : "over 256 KiB: not a PEM file");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

void floor_free_options(struct floor_options *o)
{
    free(o->cert_pem);
    free(o->key_pem);
    o->cert_pem = o->key_pem = NULL;
}

static int check_upstream(const char *prog, const struct floor_options *o)
{
    if (o->upstream == NULL) {
        fprintf(stderr, "%s: --upstream URL is required\n", prog);
        return -1;
    }
    bool https = strncmp(o->upstream, "https://", 8) == 0;
    if (!https && strncmp(o->upstream, "http://", 7) != 0) {
        fprintf(stderr, "%s: --upstream must be an http:// or https:// URL, not '%s'\n", prog,
                o->upstream);
        return -1;
    }
    if (https && o->ca_file == NULL) {
        fprintf(stderr, "%s: an https:// upstream needs --ca-file (its CA certificate)\n", prog);
        return -1;
    }
    return 0;
}

int floor_parse_args(const char *prog, void (*usage)(FILE *), bool want_upstream, int argc,
                     char **argv, struct floor_options *o)
{
    memset(o, 0, sizeof(*o));
    o->threads = online_cpus();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--port") == 0) {
            rc = number(prog, a, v, 0, 65535, &o->port);
        } else if (strcmp(a, "--threads") == 0) {
            rc = number(prog, a, v, 1, 256, &o->threads);
        } else if (strcmp(a, "--port-file") == 0) {
            rc = text(prog, a, v, &o->port_file);
        } else if (want_upstream && strcmp(a, "--upstream") == 0) {
            rc = text(prog, a, v, &o->upstream);
        } else if (want_upstream && strcmp(a, "--ca-file") == 0) {
            rc = text(prog, a, v, &o->ca_file);
        } else if (strcmp(a, "--tls-certfile") == 0) {
            rc = text(prog, a, v, &o->tls_cert);
        } else if (strcmp(a, "--tls-keyfile") == 0) {
            rc = text(prog, a, v, &o->tls_key);
        } else {
            fprintf(stderr, "%s: unknown option '%s'\n", prog, a);
            usage(stderr);
            return -1;
        }
        if (rc != 0)
            return -1;
        i++;
    }
    if (want_upstream && check_upstream(prog, o) != 0)
        return -1;
    if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
        fprintf(stderr, "%s: --tls-certfile and --tls-keyfile go together\n", prog);
        return -1;
    }
    if (o->tls_cert == NULL)
        return 0;
    o->cert_pem = read_pem(prog, o->tls_cert);
    o->key_pem = o->cert_pem != NULL ? read_pem(prog, o->tls_key) : NULL;
    if (o->key_pem == NULL) {
        floor_free_options(o);
        return -1;
    }
    return 0;
}

int floor_write_port_file(const char *prog, const char *path, unsigned port)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "%s: cannot open %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    int wrote = fprintf(f, "%u\n", port);
    if (fclose(f) != 0 || wrote < 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    return 0;
}

int floor_block_stop_signals(const char *prog, sigset_t *set)
{
    if (sigemptyset(set) != 0 || sigaddset(set, SIGTERM) != 0 || sigaddset(set, SIGINT) != 0 ||
        signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "%s: cannot set up the signals\n", prog);
        return -1;
    }
    int rc = pthread_sigmask(SIG_BLOCK, set, NULL); /* threads started later inherit it */
    if (rc != 0) {
        fprintf(stderr, "%s: pthread_sigmask: %s\n", prog, strerror(rc));
        return -1;
    }
    return 0;
}

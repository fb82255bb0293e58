/* rawctap helpers: integer parsing, PIN sources, atomic file writes,
 * SHA-256 through OpenSSL, and the note of the last usage problem (for the
 * --json error object). Hex, base64url and random bytes are util/'s. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "triage/rawctap.h"
#include "util/num.h"

static char rc_usage_msg[512];

void rc_usage_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rc_usage_msg, sizeof(rc_usage_msg), fmt, ap);
    va_end(ap);
}

const char *rc_usage_last(void)
{
    return rc_usage_msg[0] ? rc_usage_msg : NULL;
}

/* A PIN source that cannot be used: said on stderr and noted. */
static int rc_pin_problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int rc_pin_problem(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rc_usage_msg, sizeof(rc_usage_msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "rawctap: %s\n", rc_usage_msg);
    return RC_EXIT_USAGE;
}

int rc_pin_get(const char *pin_arg, const char *pin_file, char *buf, size_t cap)
{
    const char *src = NULL;
    if (cap < 2)
        return RC_EXIT_USAGE;
    if (pin_arg) {
        src = pin_arg;
    } else if (pin_file) {
        FILE *fp = fopen(pin_file, "r");
        if (fp == NULL) {
            return rc_pin_problem("cannot read PIN file %s: %s", pin_file, strerror(errno));
        }
        size_t n = fread(buf, 1, cap - 1, fp);
        int bad = ferror(fp);
        fclose(fp);
        if (bad) {
            OPENSSL_cleanse(buf, cap);
            return rc_pin_problem("cannot read PIN file %s", pin_file);
        }
        buf[n] = '\0';
        size_t line = strcspn(buf, "\r\n");
        if (line == cap - 1) {
            OPENSSL_cleanse(buf, cap);
            return rc_pin_problem("PIN in %s longer than %zu bytes", pin_file, cap - 2);
        }
        buf[line] = '\0'; /* first line only */
        if (buf[0] == '\0') {
            return rc_pin_problem("PIN file %s is empty", pin_file);
        }
        return 1;
    } else {
        src = getenv("RAWCTAP_PIN");
        if (src == NULL || *src == '\0')
            return 0;
    }
    size_t n = strlen(src);
    if (n >= cap) {
        return rc_pin_problem("PIN longer than %zu bytes", cap - 1);
    }
    memcpy(buf, src, n + 1);
    /* a PIN from the command line is wiped from argv so that ps and
     * /proc/PID/cmdline stop showing it (argv is writable) */
    if (pin_arg)
        OPENSSL_cleanse((char *)pin_arg, n);
    return 1;
}

int rc_write_atomic(const char *path, const char *data, size_t len)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -1;
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return -1;
}

int rc_sha256(const void *buf, size_t len, uint8_t out[32])
{
    unsigned int n = 0;
    if (EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return -1;
    return 0;
}

char *rc_pubkey_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio == NULL)
        return NULL;
    if (PEM_write_bio_PUBKEY(bio, pkey) == 1) {
        char *p = NULL;
        long n = BIO_get_mem_data(bio, &p);
        if (n > 0 && (out = malloc((size_t)n + 1)) != NULL) {
            memcpy(out, p, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(bio);
    return out;
}

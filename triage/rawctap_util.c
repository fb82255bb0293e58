/* rawctap helpers: base64url and hex, integer parsing, PIN sources, atomic
 * file writes, SHA-256 and randomness through OpenSSL, and the note of the
 * last usage problem (for the --json error object). */
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
#include <openssl/rand.h>

#include "triage/rawctap.h"

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

char *rc_b64url_encode(const uint8_t *buf, size_t len)
{
    if (len > INT_MAX / 2)
        return NULL;
    size_t cap = 4 * ((len + 2) / 3) + 1;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)out, buf, (int)len);
    if (n < 0) {
        free(out);
        return NULL;
    }
    /* base64 -> base64url without padding */
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return out;
}

int rc_b64url_decode(const char *s, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(s);
    if (n == 0 || n > 65536)
        return -1;
    size_t padded = (n + 3) / 4 * 4;
    char *tmp = malloc(padded + 1);
    uint8_t *bin = malloc(padded / 4 * 3 + 1);
    if (tmp == NULL || bin == NULL) {
        free(tmp);
        free(bin);
        return -1;
    }
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=') {
        n--;
        pad++;
    }
    if (pad > 2 || n == 0 || n % 4 == 1)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        /* base64url, and standard base64 too */
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (c == '=')
            goto fail;
        tmp[i] = c;
    }
    padded = (n + 3) / 4 * 4;
    for (size_t i = n; i < padded; i++)
        tmp[i] = '=';
    tmp[padded] = '\0';
    int m = EVP_DecodeBlock(bin, (const unsigned char *)tmp, (int)padded);
    if (m < 0)
        goto fail;
    /* EVP_DecodeBlock counts padding bytes as output zeros: drop them */
    m -= (int)(padded - n);
    if (m <= 0)
        goto fail;
    free(tmp);
    *out = bin;
    *out_len = (size_t)m;
    return 0;
fail:
    free(tmp);
    free(bin);
    return -1;
}

char *rc_hex_encode(const uint8_t *buf, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *out = malloc(2 * len + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[buf[i] >> 4];
        out[2 * i + 1] = digits[buf[i] & 0x0f];
    }
    out[2 * len] = '\0';
    return out;
}

static int rc_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int rc_hex_decode(const char *s, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(s);
    if (n == 0 || n % 2 != 0 || n > 131072)
        return -1;
    uint8_t *bin = malloc(n / 2);
    if (bin == NULL)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = rc_hexval(s[2 * i]), lo = rc_hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(bin);
            return -1;
        }
        bin[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = bin;
    *out_len = n / 2;
    return 0;
}

int rc_parse_int(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
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

int rc_random(uint8_t *buf, size_t len)
{
    if (len > INT_MAX)
        return -1;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

/* A growable byte buffer with a hard cap (see capbuf.h). */
#include "util/capbuf.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define CAPBUF_FIRST 256

void kcu_capbuf_init(struct kcu_capbuf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max < SIZE_MAX ? max : SIZE_MAX - 1;
}

/* Room for want bytes and a NUL: doubles, at most max+1; the old memory is
 * wiped before it is freed, as it may hold a token. */
static int grow(struct kcu_capbuf *b, size_t want)
{
    size_t cap = b->alloc < CAPBUF_FIRST ? CAPBUF_FIRST : b->alloc;
    char *p;

    while (cap < want + 1 && cap <= SIZE_MAX / 2)
        cap *= 2;
    if (cap < want + 1)
        cap = want + 1;
    if (cap > b->max + 1)
        cap = b->max + 1;
    if ((p = malloc(cap)) == NULL)
        return -1;
    if (b->data != NULL) {
        memcpy(p, b->data, b->len + 1);
        OPENSSL_cleanse(b->data, b->alloc);
        free(b->data);
    }
    b->data = p;
    b->alloc = cap;
    return 0;
}

int kcu_capbuf_reserve(struct kcu_capbuf *b, size_t n)
{
    if (n > b->max)
        n = b->max;
    if (b->data != NULL && n + 1 <= b->alloc)
        return 0;
    if (grow(b, n) != 0)
        return -1;
    b->data[b->len] = '\0';
    return 0;
}

int kcu_capbuf_append(struct kcu_capbuf *b, const void *p, size_t n)
{
    if (n > b->max - b->len) {
        b->over = true;
        return -1;
    }
    if ((b->data == NULL || b->len + n + 1 > b->alloc) && grow(b, b->len + n) != 0)
        return -1;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void kcu_capbuf_reset(struct kcu_capbuf *b)
{
    b->len = 0;
    b->over = false;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void kcu_capbuf_free(struct kcu_capbuf *b)
{
    if (b->data != NULL) {
        OPENSSL_cleanse(b->data, b->alloc);
        free(b->data);
    }
    b->data = NULL;
    b->len = b->alloc = 0;
    b->over = false;
}

/* A growable byte buffer with a hard cap: what an answer from the network
 * is read into. An append that would pass the cap is refused whole, the
 * buffer left as it was and `over` set, so the caller can fail cleanly. */
#ifndef KCARD_UTIL_CAPBUF_H
#define KCARD_UTIL_CAPBUF_H

#include <stdbool.h>
#include <stddef.h>

struct kcu_capbuf {
    char *data;   /* NUL-terminated after every append; NULL before the first */
    size_t len;   /* bytes held, without the NUL */
    size_t alloc; /* bytes allocated */
    size_t max;   /* len never passes it */
    bool over;    /* an append was refused for passing max */
};

/* An empty buffer holding at most max bytes (no allocation yet). */
void kcu_capbuf_init(struct kcu_capbuf *b, size_t max);
/* Room for n bytes (at most max) allocated now, so that the appends up to
 * it allocate nothing and data is a valid (empty) string: 0, or -1 when out
 * of memory. */
int kcu_capbuf_reserve(struct kcu_capbuf *b, size_t n);
/* Appends p[0..n): 0, or -1 when len + n would pass max (over set) or when
 * out of memory; on -1 the buffer is unchanged. */
int kcu_capbuf_append(struct kcu_capbuf *b, const void *p, size_t n);
/* Empties the buffer for reuse (keeps its memory, clears over). */
void kcu_capbuf_reset(struct kcu_capbuf *b);
/* Wipes (OPENSSL_cleanse: answers carry tokens) and frees the memory. */
void kcu_capbuf_free(struct kcu_capbuf *b);

#endif

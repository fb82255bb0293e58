/* chain-regress: a block cache in front of malloc for libcurl's own
 * allocations (curl_global_init_mem).
 *
 * Why: libcurl 7.x allocates and frees a few dozen blocks for every
 * transfer (a connection struct of over 1 KiB that glibc's tcache does not
 * hold, URL parts, header strings), which cost the driver more CPU per
 * request than anything it does itself. Freed blocks are kept on a free
 * list per size class and handed out again; nothing is returned to malloc
 * until kcr_alloc_release. Sanitizer builds do not install it, so that
 * AddressSanitizer keeps seeing every allocation libcurl makes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "regression/chain_regress.h"

#if defined(__SANITIZE_ADDRESS__)
#define KCR_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KCR_SANITIZED 1
#endif
#endif

/* classes: 16-byte steps up to 128 bytes, then powers of two up to 32 KiB */
#define STEP_CLASSES 8
#define STEP 16
#define POW_MIN_SHIFT 8  /* 256 */
#define POW_MAX_SHIFT 15 /* 32768 */
#define N_CLASSES (STEP_CLASSES + POW_MAX_SHIFT - POW_MIN_SHIFT + 1)
#define BIG ((size_t)-1) /* a block straight from malloc, never cached */

/* in front of every block: 16 bytes keep the block 16-aligned, as malloc's */
struct hdr {
    size_t cls;  /* class index, or BIG */
    size_t size; /* usable bytes */
};

struct free_block {
    struct free_block *next;
};

/* Only the thread that bound itself keeps a cache, so no lock is needed:
 * libcurl's resolver threads get plain malloc'd blocks (with the same
 * header), and a block freed on another thread goes back to free(). */
static struct free_block *free_lists[N_CLASSES];
static __thread bool cache_here;

void kcr_alloc_bind_thread(void)
{
    cache_here = true;
}

/* the class for n bytes (n >= 1), BIG when none holds it */
static size_t class_of(size_t n, size_t *usable)
{
    size_t shift;

    if (n <= STEP * STEP_CLASSES) {
        *usable = (n + STEP - 1) / STEP * STEP;
        return *usable / STEP - 1;
    }
    /* the smallest power of two >= n (n > 128 here, so n - 1 > 0) */
    shift = (size_t)(64 - __builtin_clzll((unsigned long long)(n - 1)));
    if (shift < POW_MIN_SHIFT)
        shift = POW_MIN_SHIFT;
    if (shift > POW_MAX_SHIFT) {
        *usable = n;
        return BIG;
    }
    *usable = (size_t)1 << shift;
    return STEP_CLASSES + (shift - POW_MIN_SHIFT);
}

bool kcr_alloc_enabled(void)
{
#ifdef KCR_SANITIZED
    return false;
#else
    return true;
#endif
}

void *kcr_alloc_malloc(size_t n)
{
    size_t usable, cls = class_of(n == 0 ? 1 : n, &usable);
    struct hdr *h;

    if (cls != BIG && cache_here && free_lists[cls] != NULL) {
        struct free_block *b = free_lists[cls];
        free_lists[cls] = b->next;
        return b;
    }
    if (usable > SIZE_MAX - sizeof(*h) || (h = malloc(sizeof(*h) + usable)) == NULL)
        return NULL;
    h->cls = cls;
    h->size = usable;
    return h + 1;
}

void kcr_alloc_free(void *p)
{
    struct hdr *h;
    struct free_block *b = p;

    if (p == NULL)
        return;
    h = (struct hdr *)p - 1;
    if (h->cls == BIG || !cache_here) {
        free(h);
        return;
    }
    b->next = free_lists[h->cls];
    free_lists[h->cls] = b;
}

void *kcr_alloc_realloc(void *p, size_t n)
{
    const struct hdr *h;
    void *q;

    if (p == NULL)
        return kcr_alloc_malloc(n);
    h = (const struct hdr *)p - 1;
    if (n <= h->size)
        return p;
    if ((q = kcr_alloc_malloc(n)) == NULL)
        return NULL; /* p stays valid, as with realloc */
    memcpy(q, p, h->size);
    kcr_alloc_free(p);
    return q;
}

void *kcr_alloc_calloc(size_t count, size_t size)
{
    void *p;

    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    if ((p = kcr_alloc_malloc(count * size)) != NULL)
        memset(p, 0, count * size);
    return p;
}

char *kcr_alloc_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = kcr_alloc_malloc(n);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

void kcr_alloc_release(void)
{
    if (!cache_here)
        return;
    for (size_t c = 0; c < N_CLASSES; c++) {
        while (free_lists[c] != NULL) {
            struct free_block *b = free_lists[c];
            free_lists[c] = b->next;
            free((struct hdr *)b - 1);
        }
    }
}

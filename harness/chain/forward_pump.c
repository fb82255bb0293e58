/* One direction of a relayed connection: opaque bytes from src to dst through
 * a fixed buffer, without blocking. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "harness/chain/forward.h"

/* A few rounds per call so that one busy connection cannot starve the rest. */
#define PUMP_ROUNDS 4

static int would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

enum kcf_pump_result kcf_half_pump(struct kcf_half *h, int src, int dst)
{
    enum kcf_pump_result res = KCF_PUMP_IDLE;

    if (h == NULL || h->buf == NULL || h->off > h->len || h->len > KCF_HALF_BUF)
        return KCF_PUMP_ERROR;
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        int progress = 0;
        ssize_t n;

        if (!h->eof && h->len < KCF_HALF_BUF) {
            if (h->off > 0) {
                /* keep the free room at the end */
                memmove(h->buf, h->buf + h->off, h->len - h->off);
                h->len -= h->off;
                h->off = 0;
            }
            n = read(src, h->buf + h->len, KCF_HALF_BUF - h->len);
            if (n > 0) {
                h->len += (size_t)n;
                progress = 1;
            } else if (n == 0) {
                h->eof = 1;
                progress = 1;
            } else if (!would_block(errno)) {
                return KCF_PUMP_ERROR;
            }
        }
        if (h->len > h->off) {
            n = write(dst, h->buf + h->off, h->len - h->off);
            if (n > 0) {
                h->off += (size_t)n;
                h->bytes += (uint64_t)n;
                if (h->off == h->len)
                    h->off = h->len = 0;
                progress = 1;
            } else if (n < 0 && !would_block(errno)) {
                return KCF_PUMP_ERROR;
            }
        }
        if (!progress)
            break;
        res = KCF_PUMP_MOVED;
    }
    return res;
}

int kcf_half_drained(const struct kcf_half *h)
{
    return h->eof && h->len == h->off;
}

/* The CTAPHID framing layer's pure halves, test hooks: unit tests and the
 * fuzzer check reassembly and fragmentation without a device. Included by
 * ctaphid/io.c and by tests only; not installed, not exported by
 * libctaphid.so. */
#ifndef KCARD_CTAPHID_IO_INT_H
#define KCARD_CTAPHID_IO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Pure reassembly: feed the reports of
 * one reply (already filtered to one channel) and get the message back. */
struct kc_reassembly {
    uint32_t cid;
    uint8_t cmd;
    size_t expected;
    size_t have;
    uint8_t next_seq;
    bool started;
    uint8_t *buf;
    size_t cap;
};
void kc_reassembly_init(struct kc_reassembly *r, uint32_t cid, uint8_t *buf, size_t cap);
/* Returns 1 when complete, 0 when more reports are needed, or a KC_ERR_*
 * (KC_ERR_PROTOCOL for a bad sequence or an unexpected continuation). */
int kc_reassembly_feed(struct kc_reassembly *r, const uint8_t *report, size_t len);

/* Pure fragmentation: number of reports needed for a message of len bytes,
 * and the i-th report (zero-padded to report_len). */
size_t kc_frag_count(size_t len);
int kc_frag_report(uint32_t cid, uint8_t cmd, const uint8_t *msg, size_t len, size_t index,
                   uint8_t *report, size_t report_len);

#endif

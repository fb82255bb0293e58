/* A small HID report descriptor parser: enough to tell a FIDO interface
 * (usage page 0xF1D0) from others and to learn its report lengths. */
#ifndef KCARD_CTAPHID_HID_DESC_H
#define KCARD_CTAPHID_HID_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KC_FIDO_USAGE_PAGE 0xf1d0
#define KC_FIDO_USAGE_CTAPHID 0x01
#define KC_HID_DESC_MAX 4096 /* HID_MAX_DESCRIPTOR_SIZE on Linux */

struct kc_hid_desc {
    uint16_t usage_page; /* of the first top-level collection (0 if none) */
    uint16_t usage;
    size_t in_report_len;  /* bytes per input report, without a report id */
    size_t out_report_len; /* bytes per output report, without a report id */
    bool uses_report_ids;
};

/* Parses desc; lengths default to 64 when the descriptor declares no input
 * or output report. Returns KC_OK or KC_ERR_PROTOCOL for a malformed one. */
int kc_hid_desc_parse(const uint8_t *desc, size_t len, struct kc_hid_desc *out);
bool kc_hid_desc_is_fido(const struct kc_hid_desc *d);

#endif

/* fido2-probe: HID device list and card-presence check (docs/man/fido2-probe.1).
 * fido2_probe.c parses options; fido2_probe_out.c turns the library's
 * results into text and JSON (no I/O besides the FILE given). */
#ifndef KCARD_PROBE_FIDO2_PROBE_H
#define KCARD_PROBE_FIDO2_PROBE_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "ctaphid/hid_enum.h"
#include "ctaphid/probe.h"

#define FP_VERSION "0.1.0"
#define FP_NO_DEVICES "No CTAP HID devices found."

enum fp_exit {
    FP_EXIT_OK = 0,    /* listed, or the card is present */
    FP_EXIT_FAIL = 1,  /* card not present / check or enumeration failed */
    FP_EXIT_USAGE = 2, /* bad options */
};

/* One node as a JSON object (see the man page for the keys). */
json_t *fp_node_json(const struct kc_hid_node *nd);
/* The list as a JSON array with one compact object per line. */
int fp_print_list_json(FILE *f, const struct kc_hid_node *nodes, size_t n);
/* The list for people; FP_NO_DEVICES when n is 0. */
void fp_print_list_text(FILE *f, const struct kc_hid_node *nodes, size_t n);
/* The presence check result. */
json_t *fp_probe_json(const struct kc_probe_result *r);
void fp_print_probe_text(FILE *f, const struct kc_probe_result *r);

#endif

/* HID report descriptor walk (HID 1.11, section 6.2.2): global state for
 * usage page, report size/count/id, the first usage of the first top-level
 * collection, and the bits of every Input and Output main item. */
#include "ctaphid/hid_desc.h"

#include <string.h>

#include "ctaphid/status.h"

#define ITEM_MAIN 0
#define ITEM_GLOBAL 1
#define ITEM_LOCAL 2

#define TAG_INPUT 0x8
#define TAG_OUTPUT 0x9
#define TAG_COLLECTION 0xa
#define TAG_END_COLLECTION 0xc
#define TAG_USAGE_PAGE 0x0
#define TAG_REPORT_SIZE 0x7
#define TAG_REPORT_ID 0x8
#define TAG_REPORT_COUNT 0x9
#define TAG_PUSH 0xa
#define TAG_POP 0xb
#define TAG_USAGE 0x0

#define STACK_DEPTH 8
#define MAX_BITS (1u << 24)

struct globals {
    uint32_t usage_page;
    uint32_t report_size;
    uint32_t report_count;
    uint32_t report_id;
};

struct walk {
    struct globals g;
    struct globals stack[STACK_DEPTH];
    size_t sp;
    uint32_t first_usage; /* first local usage since the last main item */
    bool have_usage;
    unsigned depth;
    bool have_top;
    uint32_t top_page, top_usage;
    bool have_first_id[2];
    uint32_t first_id[2]; /* per direction: input, output */
    uint32_t in_bits, out_bits;
};

static uint32_t item_value(const uint8_t *p, size_t n)
{
    uint32_t v = 0;

    for (size_t i = 0; i < n; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

/* Counts an Input/Output item's bits toward the first report id only: the
 * lengths describe one report. */
static int add_bits(struct walk *w, uint32_t *bits, int dir)
{
    uint64_t add = (uint64_t)w->g.report_size * w->g.report_count;

    if (w->g.report_id != 0) {
        if (!w->have_first_id[dir]) {
            w->have_first_id[dir] = true;
            w->first_id[dir] = w->g.report_id;
        }
        if (w->g.report_id != w->first_id[dir])
            return KC_OK;
    }
    if (add > MAX_BITS || *bits + add > MAX_BITS)
        return KC_ERR_PROTOCOL;
    *bits += (uint32_t)add;
    return KC_OK;
}

static int on_main(struct walk *w, uint8_t tag)
{
    int rc = KC_OK;

    switch (tag) {
    case TAG_INPUT:
        rc = add_bits(w, &w->in_bits, 0);
        break;
    case TAG_OUTPUT:
        rc = add_bits(w, &w->out_bits, 1);
        break;
    case TAG_COLLECTION:
        if (w->depth == 0 && !w->have_top) {
            uint32_t usage = w->have_usage ? w->first_usage : 0;
            w->have_top = true;
            /* A 4-byte usage carries its own page in the high half. */
            w->top_page = usage > 0xffff ? usage >> 16 : w->g.usage_page;
            w->top_usage = usage & 0xffff;
        }
        if (++w->depth > 64)
            return KC_ERR_PROTOCOL;
        break;
    case TAG_END_COLLECTION:
        if (w->depth == 0)
            return KC_ERR_PROTOCOL;
        w->depth--;
        break;
    default:
        break;
    }
    return rc;
}

int kc_hid_desc_parse(const uint8_t *desc, size_t len, struct kc_hid_desc *out)
{
    struct walk w;
    size_t i = 0;

    if (out == NULL || (desc == NULL && len > 0))
        return KC_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    memset(&w, 0, sizeof(w));
    while (i < len) {
        uint8_t b = desc[i];
        size_t n;
        uint8_t type, tag;
        uint32_t v;

        if (b == 0xfe) { /* long item: prefix, size, tag, data */
            if (len - i < 3 || len - i - 3 < desc[i + 1])
                return KC_ERR_PROTOCOL;
            i += 3 + (size_t)desc[i + 1];
            continue;
        }
        n = (b & 3) == 3 ? 4 : (size_t)(b & 3);
        if (len - i - 1 < n)
            return KC_ERR_PROTOCOL;
        type = (b >> 2) & 3;
        tag = b >> 4;
        v = item_value(desc + i + 1, n);
        i += 1 + n;

        if (type == ITEM_MAIN) {
            int rc = on_main(&w, tag);
            if (rc != KC_OK)
                return rc;
            w.have_usage = false;
            w.first_usage = 0;
        } else if (type == ITEM_GLOBAL) {
            switch (tag) {
            case TAG_USAGE_PAGE:
                w.g.usage_page = v;
                break;
            case TAG_REPORT_SIZE:
                w.g.report_size = v;
                break;
            case TAG_REPORT_ID:
                if (v == 0 || v > 255)
                    return KC_ERR_PROTOCOL;
                w.g.report_id = v;
                out->uses_report_ids = true;
                break;
            case TAG_REPORT_COUNT:
                w.g.report_count = v;
                break;
            case TAG_PUSH:
                if (w.sp >= STACK_DEPTH)
                    return KC_ERR_PROTOCOL;
                w.stack[w.sp++] = w.g;
                break;
            case TAG_POP:
                if (w.sp == 0)
                    return KC_ERR_PROTOCOL;
                w.g = w.stack[--w.sp];
                break;
            default:
                break;
            }
        } else if (type == ITEM_LOCAL) {
            if (tag == TAG_USAGE && !w.have_usage) {
                w.first_usage = v;
                w.have_usage = true;
            }
        }
    }
    out->usage_page = (uint16_t)w.top_page;
    out->usage = (uint16_t)w.top_usage;
    out->in_report_len = w.in_bits > 0 ? (w.in_bits + 7) / 8 : KC_HID_REPORT_LEN;
    out->out_report_len = w.out_bits > 0 ? (w.out_bits + 7) / 8 : KC_HID_REPORT_LEN;
    return KC_OK;
}

bool kc_hid_desc_is_fido(const struct kc_hid_desc *d)
{
    return d != NULL && d->usage_page == KC_FIDO_USAGE_PAGE;
}

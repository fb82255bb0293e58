/* rawctap doctor's decision tree and its JSON over arbitrary evidence: every
 * field (counts, error codes, strings from sysfs and the card, step lists)
 * taken from the input, so no combination can overrun a buffer, print an
 * unterminated string or leave the verdict without a code and a fix, and
 * the resident-credential capacity never changes the verdict. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "triage/rawctap_doctor.h"

struct reader {
    const uint8_t *p;
    size_t n;
};

static uint8_t take_u8(struct reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static int take_int(struct reader *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 8) | take_u8(r);
    return (int)v;
}

static bool take_bool(struct reader *r)
{
    return (take_u8(r) & 1) != 0;
}

/* An input string that itself says "reset" (a device URI, a path) may be
 * quoted in a fix: the reset-advice check holds only for doctor's own words. */
static bool input_says_reset;

/* A length byte, then that many bytes (NUL-terminated, truncated to fit). */
static void take_str(struct reader *r, char *buf, size_t cap)
{
    size_t len = take_u8(r);
    size_t i = 0;
    for (; i < len && i + 1 < cap; i++)
        buf[i] = (char)take_u8(r);
    buf[i] = '\0';
    if (strcasestr(buf, "reset"))
        input_says_reset = true;
}

static void take_pings(struct reader *r, struct rc_doc_pings *p)
{
    p->sent = take_int(r);
    p->ok = take_int(r);
    p->timeout = take_int(r);
    p->framing = take_int(r);
    p->mismatch = take_int(r);
    p->other = take_int(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"discover", "open", "init", "channel", "x"};
    struct reader r = {data, size};
    input_says_reset = false;
    struct rc_doc_evidence *ev = calloc(1, sizeof(*ev));
    struct rc_doc_verdict *v = calloc(1, sizeof(*v));
    if (ev == NULL || v == NULL) {
        free(ev);
        free(v);
        return 0;
    }
    ev->dev = (enum rc_doc_dev)(take_u8(&r) % 3);
    take_str(&r, ev->device, sizeof(ev->device));
    take_str(&r, ev->target, sizeof(ev->target));
    ev->timeout_ms = take_int(&r);
    ev->init_timeout_ms = take_int(&r);
    ev->presence_timeout_ms = take_int(&r);
    ev->slow_ms = take_int(&r);
    ev->discover_ran = take_bool(&r);
    ev->n_hidraw = take_u8(&r) % 4;
    ev->n_fido = take_u8(&r) % 4;
    ev->n_announced = take_u8(&r) % 4;
    take_str(&r, ev->sysfs_root, sizeof(ev->sysfs_root));
    take_str(&r, ev->nodes, sizeof(ev->nodes));
    take_str(&r, ev->fido_nodes, sizeof(ev->fido_nodes));
    ev->named_exists = take_bool(&r);
    ev->named_fido = (int)(take_u8(&r) % 3) - 1;
    ev->open_ran = take_bool(&r);
    ev->open_err = -(int)(take_u8(&r) % 18);
    take_str(&r, ev->open_msg, sizeof(ev->open_msg));
    take_str(&r, ev->node_path, sizeof(ev->node_path));
    ev->have_stat = take_bool(&r);
    take_str(&r, ev->owner, sizeof(ev->owner));
    take_str(&r, ev->group, sizeof(ev->group));
    ev->mode = (unsigned)take_int(&r);
    ev->uid = (unsigned)take_int(&r);
    ev->in_group = take_bool(&r);
    ev->init_ran = take_bool(&r);
    ev->init_attempts = take_int(&r);
    ev->init_ok_attempt = take_u8(&r) % 3;
    ev->init_err = -(int)(take_u8(&r) % 18);
    ev->caps = take_u8(&r);
    ev->caps_known = take_bool(&r);
    ev->chan_ran = take_bool(&r);
    take_pings(&r, &ev->small);
    take_pings(&r, &ev->large);
    ev->busy = take_bool(&r);
    ev->hid_err = take_u8(&r);
    ev->other_cid = (uint64_t)take_int(&r);
    ev->stale = (uint64_t)take_int(&r);
    ev->info_ran = take_bool(&r);
    ev->info_err = (int)(int8_t)take_u8(&r);
    ev->n_pin_protocols = take_u8(&r) % 3;
    ev->client_pin = (int)(take_u8(&r) % 3) - 1;
    take_str(&r, ev->versions, sizeof(ev->versions));
    ev->always_uv = (int)(take_u8(&r) % 3) - 1;
    ev->uv = (int)(take_u8(&r) % 3) - 1;
    ev->mc_uv_not_rqd = (int)(take_u8(&r) % 3) - 1;
    ev->force_pin_change = take_bool(&r);
    take_str(&r, ev->pin_protocols, sizeof(ev->pin_protocols));
    ev->pin_given = take_bool(&r);
    ev->pin_ran = take_bool(&r);
    ev->retries_ran = take_bool(&r);
    ev->retries_err = (int)(int8_t)take_u8(&r);
    ev->retries = take_u8(&r);
    ev->power_cycle_state = take_bool(&r);
    ev->pin_spared = take_bool(&r);
    ev->token_ran = take_bool(&r);
    ev->token_err = (int)(int8_t)take_u8(&r);
    ev->token_protocol = take_u8(&r) % 3;
    ev->retries_after_known = take_bool(&r);
    ev->retries_after = take_u8(&r);
    ev->mc_used_pin = take_bool(&r);
    ev->ga_used_pin = take_bool(&r);
    ev->mc_alive_after = (int)(take_u8(&r) % 3) - 1;
    ev->ga_alive_after = (int)(take_u8(&r) % 3) - 1;
    take_str(&r, ev->moved_hint, sizeof(ev->moved_hint));
    take_str(&r, ev->cred_file, sizeof(ev->cred_file));
    ev->presence_ran = take_bool(&r);
    ev->mc_err = (int)(int8_t)take_u8(&r);
    ev->mc_phase = (enum kc_phase)(take_u8(&r) % 6);
    ev->n_processing = take_int(&r);
    ev->n_upneeded = take_int(&r);
    ev->mc_ms = take_int(&r);
    ev->max_gap_ms = take_int(&r);
    ev->att_err = -(int)(take_u8(&r) % 18);
    take_str(&r, ev->att_reason, sizeof(ev->att_reason));
    ev->verify_ran = take_bool(&r);
    ev->verify_cred_file = take_bool(&r);
    ev->ga_err = (int)(int8_t)take_u8(&r);
    ev->sig_err = -(int)(take_u8(&r) % 18);
    take_str(&r, ev->sig_reason, sizeof(ev->sig_reason));
    ev->prev_count = (uint32_t)take_int(&r);
    ev->new_count = (uint32_t)take_int(&r);
    ev->ga_max_gap_ms = take_int(&r);
    ev->ctap1_ran = take_bool(&r);
    ev->ctap1_err = (int)(int8_t)take_u8(&r);
    ev->ctap1_sw = (uint16_t)take_int(&r);
    ev->ctap1_ms = take_int(&r);
    ev->ctap1_cut_short = take_bool(&r);
    take_str(&r, ev->u2f_version, sizeof(ev->u2f_version));
    ev->enum_ran = take_bool(&r);
    ev->enum_changed = take_bool(&r);
    ev->enum_vanished = take_bool(&r);
    take_str(&r, ev->enum_old, sizeof(ev->enum_old));
    take_str(&r, ev->enum_new, sizeof(ev->enum_new));
    ev->saw_unplugged = take_bool(&r);
    size_t steps = take_u8(&r) % (RC_DOC_MAX_STEPS + 2);
    for (size_t i = 0; i < steps; i++) {
        char detail[RC_DOC_LINE];
        take_str(&r, detail, sizeof(detail));
        rc_doc_step_add(ev, names[take_u8(&r) % 5], (enum rc_doc_result)(take_u8(&r) % 4),
                        take_int(&r), "%s", detail);
    }

    /* capacity last, so older corpus inputs keep their meaning */
    ev->rk_remaining_known = take_bool(&r);
    ev->rk_remaining = (uint64_t)take_int(&r);
    ev->cm_ran = take_bool(&r);
    ev->cm_err = (int)(int8_t)take_u8(&r);
    ev->cm_existing = (uint64_t)take_int(&r);
    ev->cm_remaining = (uint64_t)take_int(&r);

    /* capacity is reported, never a finding: the same evidence without it
     * must give the same verdict (a full card is not a fault) */
    struct rc_doc_evidence *bare = malloc(sizeof(*ev));
    struct rc_doc_verdict *bare_v = calloc(1, sizeof(*bare_v));
    if (bare == NULL || bare_v == NULL) {
        free(bare);
        free(bare_v);
        free(ev);
        free(v);
        return 0;
    }
    memcpy(bare, ev, sizeof(*ev));
    bare->rk_remaining_known = false;
    bare->rk_remaining = 0;
    bare->cm_ran = false;
    bare->cm_err = 0;
    bare->cm_existing = bare->cm_remaining = 0;
    rc_doc_decide(bare, bare_v);

    rc_doc_decide(ev, v);
    if (v->primary.code == NULL || bare_v->primary.code == NULL ||
        strcmp(v->primary.code, bare_v->primary.code) != 0 || v->n_warnings != bare_v->n_warnings)
        abort();
    for (size_t i = 0; i < v->n_warnings; i++)
        if (strcmp(v->warnings[i].code, bare_v->warnings[i].code) != 0)
            abort();
    free(bare);
    free(bare_v);
    if (v->primary.code == NULL || v->primary.step == NULL || v->primary.fix[0] == '\0')
        abort();
    if (rc_doc_code_exit(v->primary.code) < 0 || v->n_warnings > RC_DOC_MAX_WARNINGS)
        abort();
    if (v->ok != (v->primary.exit == 0))
        abort();
    /* a destructive fix only for a blocked PIN, and never without what it erases */
    for (size_t i = 0; !input_says_reset && i <= v->n_warnings; i++) {
        const struct rc_doc_finding *f = i == 0 ? &v->primary : &v->warnings[i - 1];
        if (strcasestr(f->fix, "reset") &&
            (strcmp(f->code, "PIN_BLOCKED") != 0 || strstr(f->fix, "erases") == NULL))
            abort();
    }
    json_t *o = rc_doc_json(ev, v);
    if (o != NULL) {
        char *s = json_dumps(o, JSON_COMPACT);
        free(s);
        json_decref(o);
    }
    free(ev);
    free(v);
    return 0;
}

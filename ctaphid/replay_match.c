/* Structural comparison of a recorded and a new CTAPHID request (see
 * replay_match.h): CTAP2 requests decoded with libcbor and walked key by
 * key, with a table of the fields that legitimately change between runs. */
#include "ctaphid/replay_match.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cbor.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/status.h"
#include "util/hex.h"

#define PATH_MAX_LEN 160
#define TEXT_SHOWN 40 /* characters of a text string shown in a message */
#define BYTES_SHOWN 8 /* bytes of a byte string shown in a message */

/* ---- names ---------------------------------------------------------------- */

struct key_name {
    uint8_t ctap;
    int64_t key;
    const char *name;
};

/* Top-level parameter names (CTAP 2.1, section 6); 0x40/0x41 are the
 * 2.1-PRE bioEnrollment and credentialManagement. */
static const struct key_name param_names[] = {
    {0x01, 1, "clientDataHash"},
    {0x01, 2, "rp"},
    {0x01, 3, "user"},
    {0x01, 4, "pubKeyCredParams"},
    {0x01, 5, "excludeList"},
    {0x01, 6, "extensions"},
    {0x01, 7, "options"},
    {0x01, 8, "pinUvAuthParam"},
    {0x01, 9, "pinUvAuthProtocol"},
    {0x01, 10, "enterpriseAttestation"},
    {0x02, 1, "rpId"},
    {0x02, 2, "clientDataHash"},
    {0x02, 3, "allowList"},
    {0x02, 4, "extensions"},
    {0x02, 5, "options"},
    {0x02, 6, "pinUvAuthParam"},
    {0x02, 7, "pinUvAuthProtocol"},
    {0x06, 1, "pinUvAuthProtocol"},
    {0x06, 2, "subCommand"},
    {0x06, 3, "keyAgreement"},
    {0x06, 4, "pinUvAuthParam"},
    {0x06, 5, "newPinEnc"},
    {0x06, 6, "pinHashEnc"},
    {0x06, 9, "permissions"},
    {0x06, 10, "rpId"},
    {0x09, 1, "modality"},
    {0x09, 2, "subCommand"},
    {0x09, 3, "subCommandParams"},
    {0x09, 4, "pinUvAuthProtocol"},
    {0x09, 5, "pinUvAuthParam"},
    {0x09, 6, "getModality"},
    {0x40, 1, "modality"},
    {0x40, 2, "subCommand"},
    {0x40, 3, "subCommandParams"},
    {0x40, 4, "pinUvAuthProtocol"},
    {0x40, 5, "pinUvAuthParam"},
    {0x40, 6, "getModality"},
    {0x0a, 1, "subCommand"},
    {0x0a, 2, "subCommandParams"},
    {0x0a, 3, "pinUvAuthProtocol"},
    {0x0a, 4, "pinUvAuthParam"},
    {0x41, 1, "subCommand"},
    {0x41, 2, "subCommandParams"},
    {0x41, 3, "pinUvAuthProtocol"},
    {0x41, 4, "pinUvAuthParam"},
    {0x0c, 1, "get"},
    {0x0c, 2, "set"},
    {0x0c, 3, "offset"},
    {0x0c, 4, "length"},
    {0x0c, 5, "pinUvAuthParam"},
    {0x0c, 6, "pinUvAuthProtocol"},
    {0x0d, 1, "subCommand"},
    {0x0d, 2, "subCommandParams"},
    {0x0d, 3, "pinUvAuthProtocol"},
    {0x0d, 4, "pinUvAuthParam"},
};

/* Fields that differ between two faithful runs, as key paths ("3/id": the
 * "id" of parameter 3). Their presence and CBOR type still have to agree. */
struct allowed {
    uint8_t ctap;
    const char *path;
};

static const struct allowed allowed_paths[] = {
    {0x01, "1"},                  /* clientDataHash: a fresh challenge */
    {0x01, "3/id"},               /* user id, random in rawctap and many clients */
    {0x01, "8"},                  /* pinUvAuthParam: from a fresh token */
    {0x01, "6/hmac-secret-mc/1"}, /* hmac-secret-mc keyAgreement, saltEnc, saltAuth */
    {0x01, "6/hmac-secret-mc/2"}, /**/
    {0x01, "6/hmac-secret-mc/3"}, /**/
    {0x02, "2"},                  /* clientDataHash */
    {0x02, "6"},                  /* pinUvAuthParam */
    {0x02, "4/hmac-secret/1"},    /* hmac-secret keyAgreement: a fresh platform key */
    {0x02, "4/hmac-secret/2"},    /* saltEnc */
    {0x02, "4/hmac-secret/3"},    /* saltAuth */
    {0x06, "3"},                  /* platform keyAgreement */
    {0x06, "4"},                  /* pinUvAuthParam */
    {0x06, "5"},                  /* newPinEnc */
    {0x06, "6"},                  /* pinHashEnc */
    {0x09, "5"},                  /* pinUvAuthParam of the others */
    {0x40, "5"},                  /**/
    {0x0a, "4"},                  /**/
    {0x41, "4"},                  /**/
    {0x0c, "5"},                  /**/
    {0x0d, "4"},                  /**/
};

const char *kc_replay_ctap2_name(uint8_t cmd)
{
    switch (cmd) {
    case 0x01:
        return "makeCredential";
    case 0x02:
        return "getAssertion";
    case 0x04:
        return "getInfo";
    case 0x06:
        return "clientPIN";
    case 0x07:
        return "reset";
    case 0x08:
        return "getNextAssertion";
    case 0x09:
        return "bioEnrollment";
    case 0x0a:
        return "credentialManagement";
    case 0x0b:
        return "selection";
    case 0x0c:
        return "largeBlobs";
    case 0x0d:
        return "config";
    case 0x40:
        return "bioEnrollment (2.1-PRE)";
    case 0x41:
        return "credentialManagement (2.1-PRE)";
    default:
        return NULL;
    }
}

static const char *u2f_ins_name(uint8_t ins)
{
    switch (ins) {
    case 0x01:
        return "REGISTER";
    case 0x02:
        return "AUTHENTICATE";
    case 0x03:
        return "VERSION";
    default:
        return NULL;
    }
}

void kc_replay_msg_label(const struct kc_replay_msg *m, char *buf, size_t len)
{
    const char *n;

    if (buf == NULL || len == 0)
        return;
    if (m == NULL || m->cmd == 0) {
        snprintf(buf, len, "stray report");
    } else if (m->cmd == KC_HID_CBOR && m->len >= 1 &&
               (n = kc_replay_ctap2_name(m->data[0])) != NULL) {
        snprintf(buf, len, "CTAP2 %s", n);
    } else if (m->cmd == KC_HID_CBOR && m->len >= 1) {
        snprintf(buf, len, "CTAP2 command 0x%02x", m->data[0]);
    } else if (m->cmd == KC_HID_MSG && m->len >= 2 && (n = u2f_ins_name(m->data[1])) != NULL) {
        snprintf(buf, len, "CTAP1 %s", n);
    } else if (m->cmd == KC_HID_MSG && m->len >= 2) {
        snprintf(buf, len, "CTAP1 INS 0x%02x", m->data[1]);
    } else if (strcmp(kc_hid_cmd_name(m->cmd), "UNKNOWN") == 0) {
        snprintf(buf, len, "CTAPHID command 0x%02x", m->cmd);
    } else {
        snprintf(buf, len, "CTAPHID %s", kc_hid_cmd_name(m->cmd));
    }
}

/* ---- describing values ------------------------------------------------------ */

static void hex_short(const uint8_t *p, size_t len, char *buf, size_t cap)
{
    size_t shown = len < BYTES_SHOWN ? len : BYTES_SHOWN;

    if (cap < 2 * BYTES_SHOWN + 1)
        return;
    kcu_hex_encode(p, shown, buf);
}

static void describe_bytes(const uint8_t *p, size_t len, char *buf, size_t cap)
{
    char hex[2 * BYTES_SHOWN + 1] = "";

    hex_short(p, len, hex, sizeof(hex));
    snprintf(buf, cap, "h'%s%s' (%zu byte%s)", hex, len > BYTES_SHOWN ? "..." : "", len,
             len == 1 ? "" : "s");
}

static void describe(const cbor_item_t *it, char *buf, size_t cap)
{
    if (it == NULL) {
        snprintf(buf, cap, "(absent)");
        return;
    }
    switch (cbor_typeof(it)) {
    case CBOR_TYPE_UINT:
        snprintf(buf, cap, "%" PRIu64, cbor_get_int(it));
        return;
    case CBOR_TYPE_NEGINT:
        if (cbor_get_int(it) < INT64_MAX)
            snprintf(buf, cap, "%" PRId64, -1 - (int64_t)cbor_get_int(it));
        else
            snprintf(buf, cap, "-1-%" PRIu64, cbor_get_int(it));
        return;
    case CBOR_TYPE_BYTESTRING:
        describe_bytes(cbor_bytestring_handle(it), cbor_bytestring_length(it), buf, cap);
        return;
    case CBOR_TYPE_STRING: {
        char text[TEXT_SHOWN + 1];
        size_t n = cbor_string_length(it);
        size_t shown = n < TEXT_SHOWN ? n : TEXT_SHOWN;
        const unsigned char *s = cbor_string_handle(it);
        for (size_t i = 0; i < shown; i++)
            text[i] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' ? (char)s[i] : '?';
        text[shown] = '\0';
        snprintf(buf, cap, "\"%s%s\"", text, n > TEXT_SHOWN ? "..." : "");
        return;
    }
    case CBOR_TYPE_ARRAY:
        snprintf(buf, cap, "[%zu item%s]", cbor_array_size(it),
                 cbor_array_size(it) == 1 ? "" : "s");
        return;
    case CBOR_TYPE_MAP:
        snprintf(buf, cap, "{%zu entr%s}", cbor_map_size(it), cbor_map_size(it) == 1 ? "y" : "ies");
        return;
    case CBOR_TYPE_TAG:
        snprintf(buf, cap, "tag %" PRIu64, cbor_tag_value(it));
        return;
    case CBOR_TYPE_FLOAT_CTRL:
        if (cbor_float_get_width(it) == CBOR_FLOAT_0) {
            uint8_t v = cbor_ctrl_value(it);
            snprintf(buf, cap, "%s",
                     v == CBOR_CTRL_TRUE    ? "true"
                     : v == CBOR_CTRL_FALSE ? "false"
                     : v == CBOR_CTRL_NULL  ? "null"
                     : v == CBOR_CTRL_UNDEF ? "undefined"
                                            : "simple value");
        } else {
            snprintf(buf, cap, "%g", cbor_float_get_float(it));
        }
        return;
    }
    snprintf(buf, cap, "(unknown item)");
}

/* ---- the walk ---------------------------------------------------------------- */

struct walk {
    uint8_t ctap;
    char path[PATH_MAX_LEN];  /* for people: "rp.id", "pubKeyCredParams[0].alg" */
    char kpath[PATH_MAX_LEN]; /* for the table: "2/id" */
    char *why;
    size_t why_len;
};

static void differ(struct walk *w, const cbor_item_t *a, const cbor_item_t *b)
{
    char da[96], db[96];

    describe(a, da, sizeof(da));
    describe(b, db, sizeof(db));
    snprintf(w->why, w->why_len, "recorded %s %s, sent %s", w->path[0] ? w->path : "parameters", da,
             db);
}

static bool allowed(const struct walk *w)
{
    for (size_t i = 0; i < sizeof(allowed_paths) / sizeof(allowed_paths[0]); i++)
        if (allowed_paths[i].ctap == w->ctap && strcmp(allowed_paths[i].path, w->kpath) == 0)
            return true;
    return false;
}

static bool key_eq(const cbor_item_t *a, const cbor_item_t *b)
{
    if (cbor_typeof(a) != cbor_typeof(b))
        return false;
    if (cbor_is_int(a))
        return cbor_get_int(a) == cbor_get_int(b);
    if (cbor_isa_string(a) || cbor_isa_bytestring(a)) {
        size_t la = cbor_isa_string(a) ? cbor_string_length(a) : cbor_bytestring_length(a);
        size_t lb = cbor_isa_string(b) ? cbor_string_length(b) : cbor_bytestring_length(b);
        const void *pa = cbor_isa_string(a) ? (const void *)cbor_string_handle(a)
                                            : (const void *)cbor_bytestring_handle(a);
        const void *pb = cbor_isa_string(b) ? (const void *)cbor_string_handle(b)
                                            : (const void *)cbor_bytestring_handle(b);
        return la == lb && (la == 0 || memcmp(pa, pb, la) == 0);
    }
    return false;
}

static const cbor_item_t *map_find(const cbor_item_t *map, const cbor_item_t *key)
{
    struct cbor_pair *p = cbor_map_handle(map);

    for (size_t i = 0; i < cbor_map_size(map); i++)
        if (p[i].key != NULL && key_eq(p[i].key, key))
            return p[i].value;
    return NULL;
}

/* Appends one key to both paths; false when they would not fit. */
static bool push_key(struct walk *w, const cbor_item_t *key, size_t depth)
{
    size_t pl = strlen(w->path), kl = strlen(w->kpath);
    char ks[48];
    const char *shown = NULL;

    if (cbor_isa_uint(key)) {
        snprintf(ks, sizeof(ks), "%" PRIu64, cbor_get_int(key));
        if (depth == 0)
            for (size_t i = 0; i < sizeof(param_names) / sizeof(param_names[0]); i++)
                if (param_names[i].ctap == w->ctap &&
                    (uint64_t)param_names[i].key == cbor_get_int(key))
                    shown = param_names[i].name;
    } else if (cbor_isa_negint(key)) {
        snprintf(ks, sizeof(ks), "-%" PRIu64, cbor_get_int(key) + 1);
    } else if (cbor_isa_string(key)) {
        size_t n = cbor_string_length(key);
        if (n >= sizeof(ks))
            n = sizeof(ks) - 1;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = cbor_string_handle(key)[i];
            ks[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        ks[n] = '\0';
    } else {
        snprintf(ks, sizeof(ks), "?");
    }
    if (shown == NULL)
        shown = ks;
    if (pl + strlen(shown) + 2 >= sizeof(w->path) || kl + strlen(ks) + 2 >= sizeof(w->kpath))
        return false;
    snprintf(w->path + pl, sizeof(w->path) - pl, "%s%s", pl > 0 ? "." : "", shown);
    snprintf(w->kpath + kl, sizeof(w->kpath) - kl, "%s%s", kl > 0 ? "/" : "", ks);
    return true;
}

static bool same_scalar(const cbor_item_t *a, const cbor_item_t *b)
{
    switch (cbor_typeof(a)) {
    case CBOR_TYPE_UINT:
    case CBOR_TYPE_NEGINT:
        return cbor_get_int(a) == cbor_get_int(b);
    case CBOR_TYPE_BYTESTRING:
    case CBOR_TYPE_STRING:
        return key_eq(a, b);
    case CBOR_TYPE_FLOAT_CTRL:
        if (cbor_float_get_width(a) != cbor_float_get_width(b))
            return false;
        if (cbor_float_get_width(a) == CBOR_FLOAT_0)
            return cbor_ctrl_value(a) == cbor_ctrl_value(b);
        return cbor_float_get_float(a) == cbor_float_get_float(b);
    default:
        return false;
    }
}

static bool walk_item(struct walk *w, const cbor_item_t *a, const cbor_item_t *b, size_t depth);

static bool walk_map(struct walk *w, const cbor_item_t *a, const cbor_item_t *b, size_t depth)
{
    size_t pl = strlen(w->path), kl = strlen(w->kpath);
    struct cbor_pair *pa = cbor_map_handle(a), *pb = cbor_map_handle(b);
    bool ok = true;

    /* the recorded keys in their order, then the keys only the host sent */
    for (size_t i = 0; ok && i < cbor_map_size(a); i++) {
        if (pa[i].key == NULL || !push_key(w, pa[i].key, depth)) {
            differ(w, a, b);
            return false;
        }
        ok = walk_item(w, pa[i].value, map_find(b, pa[i].key), depth + 1);
        w->path[pl] = '\0';
        w->kpath[kl] = '\0';
    }
    for (size_t i = 0; ok && i < cbor_map_size(b); i++) {
        if (pb[i].key == NULL || map_find(a, pb[i].key) != NULL)
            continue;
        if (!push_key(w, pb[i].key, depth)) {
            differ(w, a, b);
            return false;
        }
        differ(w, NULL, pb[i].value);
        ok = false;
    }
    return ok;
}

static bool walk_array(struct walk *w, const cbor_item_t *a, const cbor_item_t *b, size_t depth)
{
    size_t pl = strlen(w->path);
    cbor_item_t **ia = cbor_array_handle(a), **ib = cbor_array_handle(b);

    if (cbor_array_size(a) != cbor_array_size(b)) {
        differ(w, a, b);
        return false;
    }
    for (size_t i = 0; i < cbor_array_size(a); i++) {
        bool ok;
        if (pl + 24 >= sizeof(w->path)) {
            differ(w, a, b);
            return false;
        }
        snprintf(w->path + pl, sizeof(w->path) - pl, "[%zu]", i);
        ok = walk_item(w, ia[i], ib[i], depth + 1);
        w->path[pl] = '\0';
        if (!ok)
            return false;
    }
    return true;
}

static bool walk_item(struct walk *w, const cbor_item_t *a, const cbor_item_t *b, size_t depth)
{
    if (a == NULL || b == NULL || cbor_typeof(a) != cbor_typeof(b)) {
        if (a == NULL && b == NULL)
            return true;
        differ(w, a, b);
        return false;
    }
    if (allowed(w))
        return true; /* present in both, of the same type: its value may differ */
    switch (cbor_typeof(a)) {
    case CBOR_TYPE_MAP:
        return walk_map(w, a, b, depth);
    case CBOR_TYPE_ARRAY:
        return walk_array(w, a, b, depth);
    case CBOR_TYPE_TAG: {
        cbor_item_t *ta, *tb;
        bool ok;
        if (cbor_tag_value(a) != cbor_tag_value(b)) {
            differ(w, a, b);
            return false;
        }
        ta = cbor_tag_item(a);
        tb = cbor_tag_item(b);
        ok = walk_item(w, ta, tb, depth + 1);
        cbor_decref(&ta);
        cbor_decref(&tb);
        return ok;
    }
    default:
        if (!same_scalar(a, b)) {
            differ(w, a, b);
            return false;
        }
        return true;
    }
}

/* ---- per command ------------------------------------------------------------- */

static void bytes_differ(char *why, size_t why_len, const char *what, const uint8_t *a, size_t la,
                         const uint8_t *b, size_t lb)
{
    char da[64], db[64];

    describe_bytes(a, la, da, sizeof(da));
    describe_bytes(b, lb, db, sizeof(db));
    snprintf(why, why_len, "recorded %s %s, sent %s", what, da, db);
}

/* The first differing byte, named for people. */
static bool bytes_match(char *why, size_t why_len, const char *what, const uint8_t *a, size_t la,
                        const uint8_t *b, size_t lb)
{
    if (la == lb && (la == 0 || memcmp(a, b, la) == 0))
        return true;
    bytes_differ(why, why_len, what, a, la, b, lb);
    return false;
}

static bool match_cbor(const struct kc_replay_msg *r, const struct kc_replay_msg *s, char *why,
                       size_t why_len)
{
    cbor_item_t *ia = NULL, *ib = NULL;
    struct walk w;
    bool ok;

    if (r->len == 0 || s->len == 0)
        return bytes_match(why, why_len, "CBOR message", r->data, r->len, s->data, s->len);
    if (r->data[0] != s->data[0]) {
        char la[48], lb[48];
        kc_replay_msg_label(r, la, sizeof(la));
        kc_replay_msg_label(s, lb, sizeof(lb));
        snprintf(why, why_len, "recorded %s, sent %s", la, lb);
        return false;
    }
    if (r->len == 1 || s->len == 1) {
        if (r->len == s->len)
            return true;
        snprintf(why, why_len, "recorded %s, sent %s", r->len == 1 ? "no parameters" : "parameters",
                 s->len == 1 ? "no parameters" : "parameters");
        return false;
    }
    if (kc_cbor_load(r->data + 1, r->len - 1, &ia) != 0) {
        /* a recording of malformed CBOR is matched by the same bytes only */
        return bytes_match(why, why_len, "parameters (not CBOR)", r->data + 1, r->len - 1,
                           s->data + 1, s->len - 1);
    }
    if (kc_cbor_load(s->data + 1, s->len - 1, &ib) != 0) {
        char da[64];
        describe(ia, da, sizeof(da));
        snprintf(why, why_len, "recorded parameters %s, sent malformed CBOR (%zu bytes)", da,
                 s->len - 1);
        cbor_decref(&ia);
        return false;
    }
    memset(&w, 0, sizeof(w));
    w.ctap = r->data[0];
    w.why = why;
    w.why_len = why_len;
    ok = walk_item(&w, ia, ib, 0);
    cbor_decref(&ia);
    cbor_decref(&ib);
    return ok;
}

/* CTAP1 REGISTER and AUTHENTICATE carry a fresh 32-byte challenge first in
 * their data; the rest (application parameter, key handle) must agree. */
static bool match_u2f(const struct kc_replay_msg *r, const struct kc_replay_msg *s, char *why,
                      size_t why_len)
{
    size_t off;

    if (r->len < 4 || s->len < 4)
        return bytes_match(why, why_len, "APDU", r->data, r->len, s->data, s->len);
    if (memcmp(r->data, s->data, 4) != 0)
        return bytes_match(why, why_len, "APDU header", r->data, 4, s->data, 4);
    if (r->len != s->len) {
        snprintf(why, why_len, "recorded APDU of %zu bytes, sent %zu bytes", r->len, s->len);
        return false;
    }
    off = r->len > 7 && r->data[4] == 0 ? 7 : 5; /* extended or short Lc */
    if ((r->data[1] != 0x01 && r->data[1] != 0x02) || r->len < off + 64)
        return bytes_match(why, why_len, "APDU", r->data, r->len, s->data, s->len);
    if (memcmp(r->data, s->data, off) != 0)
        return bytes_match(why, why_len, "APDU header", r->data, off, s->data, off);
    if (memcmp(r->data + off + 32, s->data + off + 32, 32) != 0)
        return bytes_match(why, why_len, "application parameter", r->data + off + 32, 32,
                           s->data + off + 32, 32);
    return bytes_match(why, why_len, "key handle and trailer", r->data + off + 64,
                       r->len - off - 64, s->data + off + 64, s->len - off - 64);
}

bool kc_replay_match(const struct kc_replay_msg *r, const struct kc_replay_msg *s, char *why,
                     size_t why_len)
{
    char scratch[8];

    if (why == NULL || why_len == 0) {
        why = scratch;
        why_len = sizeof(scratch);
    }
    why[0] = '\0';
    if (r == NULL || s == NULL || (r->data == NULL && r->len > 0) ||
        (s->data == NULL && s->len > 0)) {
        snprintf(why, why_len, "nothing to compare");
        return false;
    }
    if (r->cmd != s->cmd) {
        char la[48], lb[48];
        kc_replay_msg_label(r, la, sizeof(la));
        kc_replay_msg_label(s, lb, sizeof(lb));
        snprintf(why, why_len, "recorded %s, sent %s (%zu bytes)", la, lb, s->bcnt);
        return false;
    }
    if (r->cmd == 0)
        return bytes_match(why, why_len, "report", r->data, r->len, s->data, s->len);
    if ((r->cid == KC_HID_BROADCAST_CID) != (s->cid == KC_HID_BROADCAST_CID)) {
        snprintf(why, why_len, "recorded %s, sent %s",
                 r->cid == KC_HID_BROADCAST_CID ? "the broadcast channel" : "an allocated channel",
                 s->cid == KC_HID_BROADCAST_CID ? "the broadcast channel" : "an allocated channel");
        return false;
    }
    if (r->bcnt != s->bcnt && !(r->cmd == KC_HID_CBOR && r->complete && s->complete)) {
        snprintf(why, why_len, "recorded %zu bytes, sent %zu bytes", r->bcnt, s->bcnt);
        return false;
    }
    if (!r->complete || !s->complete) {
        /* an unfinished message: the bytes that arrived, as they are */
        if (r->complete != s->complete) {
            snprintf(why, why_len, "recorded %s message (%zu of %zu bytes), sent %s",
                     r->complete ? "a complete" : "an unfinished", r->len, r->bcnt,
                     s->complete ? "all of it" : "part of it");
            return false;
        }
        return bytes_match(why, why_len, "data", r->data, r->len, s->data, s->len);
    }
    switch (r->cmd) {
    case KC_HID_INIT: /* the nonce is fresh every time */
    case KC_HID_PING: /* so is the payload rawctap and clients send */
        return true;
    case KC_HID_CBOR:
        return match_cbor(r, s, why, why_len);
    case KC_HID_MSG:
        return match_u2f(r, s, why, why_len);
    default:
        return bytes_match(why, why_len, "data", r->data, r->len, s->data, s->len);
    }
}

bool kc_replay_msg_cdh(const struct kc_replay_msg *m, uint8_t cdh[32])
{
    cbor_item_t *map = NULL;
    const cbor_item_t *v;
    bool ok = false;
    int64_t key;

    if (m == NULL || cdh == NULL || m->cmd != KC_HID_CBOR || !m->complete || m->len < 2)
        return false;
    if (m->data[0] == KC_CTAP2_MAKE_CREDENTIAL)
        key = 1;
    else if (m->data[0] == KC_CTAP2_GET_ASSERTION)
        key = 2;
    else
        return false;
    if (kc_cbor_load(m->data + 1, m->len - 1, &map) != 0)
        return false;
    if (cbor_isa_map(map) && (v = kc_cbor_map_get_int(map, key)) != NULL && kc_cbor_is_bytes(v) &&
        cbor_bytestring_length(v) == 32) {
        memcpy(cdh, cbor_bytestring_handle(v), 32);
        ok = true;
    }
    cbor_decref(&map);
    return ok;
}

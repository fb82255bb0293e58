/* rawctap credential files: what make-credential --cred-file and
 * u2f-register --key-file save, and get-assertion reads back. JSON through
 * jansson; every field's type and size is checked before it is used. */
#include <stdlib.h>
#include <string.h>

#include "ctaphid/cose.h"
#include "triage/rawctap.h"
#include "util/b64url.h"
#include "util/hex.h"

int rc_json_write_file(struct rc_ctx *ctx, const char *path, const json_t *j, const char *what)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int r = RC_EXIT_LOCAL;
    if (s == NULL)
        return r;
    size_t n = strlen(s);
    char *s2 = realloc(s, n + 2);
    if (s2 == NULL)
        goto out;
    s = s2;
    s[n] = '\n';
    s[n + 1] = '\0';
    if (rc_write_atomic(path, s, n + 1) != 0) {
        rc_err(ctx, "%s %s", what, path);
        goto out;
    }
    r = RC_EXIT_OK;
out:
    free(s);
    return r;
}

int rc_save_cred_file(struct rc_ctx *ctx, const char *path, const char *rp_id,
                      const uint8_t *cred_id, size_t cred_id_len, int alg, const uint8_t *cose,
                      size_t cose_len, const char *pem, uint32_t sign_count, const char *protocol)
{
    char *cid = kcu_b64url_encode_alloc(cred_id, cred_id_len);
    char *hex = kcu_hex_encode_alloc(cose, cose_len);
    json_t *j = NULL;
    int r = RC_EXIT_LOCAL;
    if (cid == NULL || hex == NULL)
        goto out;
    j = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:I, s:s}", "rp_id", rp_id, "cred_id", cid, "alg",
                  alg, "alg_name", kc_cose_alg_name(alg), "public_key_cose", hex, "public_key_pem",
                  pem ? pem : "", "sign_count", (json_int_t)sign_count, "protocol", protocol);
    if (j == NULL)
        goto out;
    if ((r = rc_json_write_file(ctx, path, j, "cannot write credential file")) != RC_EXIT_OK)
        goto out;
    rc_verbose(ctx, 1, "credential saved to %s", path);
out:
    free(cid);
    free(hex);
    json_decref(j);
    return r;
}

void rc_cred_file_free(struct rc_cred_file *cf)
{
    free(cf->cred_id);
    free(cf->cose);
    free(cf->rp_id);
    memset(cf, 0, sizeof(*cf));
}

/* Fields of a parsed file; path only names it in messages. */
static int rc_cred_file_from_json(struct rc_ctx *ctx, const char *path, json_t *j,
                                  struct rc_cred_file *cf)
{
    json_error_t jerr;
    const char *rp = NULL, *cid = NULL, *hex = NULL, *proto = NULL;
    json_int_t alg = 0, count = 0;
    memset(&jerr, 0, sizeof(jerr));
    if (json_unpack_ex(j, &jerr, 0, "{s:s, s:s, s:I, s:s, s:I, s?:s}", "rp_id", &rp, "cred_id",
                       &cid, "alg", &alg, "public_key_cose", &hex, "sign_count", &count, "protocol",
                       &proto) != 0) {
        rc_err(ctx, "credential file %s: %s", path, jerr.text);
        return RC_EXIT_USAGE;
    }
    if (count < 0 || count > 0xffffffffLL || alg < -65536 || alg > 65535 || *rp == '\0') {
        rc_err(ctx, "credential file %s: sign_count, alg or rp_id out of range", path);
        return RC_EXIT_USAGE;
    }
    cf->rp_id = strdup(rp);
    cf->alg = (int)alg;
    cf->sign_count = (uint32_t)count;
    cf->u2f = proto && strcmp(proto, "ctap1") == 0;
    if (cf->rp_id == NULL ||
        kcu_b64url_decode_alloc(cid, RC_DECODE_MAX, KCU_B64URL_LENIENT, &cf->cred_id,
                                &cf->cred_id_len, NULL, 0) != 0 ||
        kcu_hex_decode_alloc(hex, RC_DECODE_MAX, &cf->cose, &cf->cose_len, NULL, 0) != 0) {
        rc_err(ctx, "credential file %s: bad cred_id (base64url) or public_key_cose (hex)", path);
        rc_cred_file_free(cf);
        return RC_EXIT_USAGE;
    }
    return RC_EXIT_OK;
}

/* A credential file from the file name (from_file) or from buf; a JSON error
 * is reported as "LEAD NAME: reason (line N)". */
static int rc_cred_file_read(struct rc_ctx *ctx, const char *name, bool from_file, const char *buf,
                             size_t len, const char *lead, struct rc_cred_file *cf)
{
    json_error_t jerr;
    memset(cf, 0, sizeof(*cf));
    json_t *j = from_file ? json_load_file(name, JSON_REJECT_DUPLICATES, &jerr)
                          : json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        rc_err(ctx, "%s %s: %s (line %d)", lead, name, jerr.text, jerr.line);
        return RC_EXIT_USAGE;
    }
    int r = rc_cred_file_from_json(ctx, name, j, cf);
    json_decref(j);
    return r;
}

int rc_cred_file_parse(struct rc_ctx *ctx, const char *name, const char *buf, size_t len,
                       struct rc_cred_file *cf)
{
    return rc_cred_file_read(ctx, name, false, buf, len, "credential file", cf);
}

int rc_cred_file_load(struct rc_ctx *ctx, const char *path, struct rc_cred_file *cf)
{
    return rc_cred_file_read(ctx, path, true, NULL, 0, "cannot read credential file", cf);
}

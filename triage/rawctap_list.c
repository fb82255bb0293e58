/* rawctap list: FIDO hidraw nodes and announced virtual cards. */
#include <stdlib.h>
#include <string.h>

#include "ctaphid/discover.h"
#include "ctaphid/status.h"
#include "triage/rawctap.h"

#define RC_LIST_MAX 64

static int rc_list_opt(struct rc_ctx *ctx, void *st, int c, const char *arg)
{
    bool *all = st;
    (void)ctx;
    (void)arg;
    if (c == 'a') {
        *all = true;
        return 0;
    }
    return rc_usage_error("list", "unexpected option");
}

int rc_cmd_list(struct rc_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {{"all", no_argument, NULL, 'a'}, {NULL, 0, NULL, 0}};
    bool all = false;
    int r = rc_parse_cmd_no_operands(ctx, argc, argv, "", lo, rc_list_opt, &all);
    if (r != 0)
        return r;

    struct kc_dev_entry *ents = calloc(RC_LIST_MAX, sizeof(*ents));
    size_t n = 0;
    if (ents == NULL)
        return RC_EXIT_LOCAL;
    int e =
        all ? kc_discover_list_all(ents, RC_LIST_MAX, &n) : kc_discover_list(ents, RC_LIST_MAX, &n);
    if (e != KC_OK) {
        free(ents);
        int code = rc_exit_for(e) == RC_EXIT_OK ? RC_EXIT_LOCAL : rc_exit_for(e);
        rc_err(ctx, "list: %s", kc_strerror(e));
        rc_json_error(ctx, kc_err_name(e), code);
        return code;
    }
    if (n > RC_LIST_MAX) {
        rc_verbose(ctx, 1, "%zu devices found, showing the first %d", n, RC_LIST_MAX);
        n = RC_LIST_MAX;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct kc_dev_entry *d = &ents[i];
        if (ctx->json) {
            json_array_append_new(arr,
                                  json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:b}", "uri", d->uri,
                                            "kind", d->kind, "vid", d->vid, "pid", d->pid, "name",
                                            d->name, "serial", d->serial, "fido", d->fido));
        } else {
            printf("%s\t%04x:%04x\t%s%s%s%s\n", d->uri, d->vid, d->pid, d->name,
                   d->serial[0] ? " serial=" : "", d->serial, d->fido ? "" : " (not FIDO)");
        }
    }
    if (ctx->json)
        json_object_set_new(ctx->result, "devices", arr);
    else
        json_decref(arr);
    if (n == 0) {
        rc_err(ctx, "no FIDO devices found (no hidraw node with usage page 0xF1D0, no card "
                    "announced in $KCARD_ANNOUNCE_DIR); check that the card is attached to "
                    "this VM and that you may read /dev/hidraw*");
        rc_json_error(ctx, kc_err_name(KC_ERR_NO_DEVICE), RC_EXIT_TRANSPORT);
        free(ents);
        return RC_EXIT_TRANSPORT;
    }
    free(ents);
    return RC_EXIT_OK;
}

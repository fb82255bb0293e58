/* libFuzzer: chain-regress --analyze's input, lines recorded with plain
 * curl on another machine: the line parser, the order of the lines, the
 * judges they feed, the verdict and both reports. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regression/chain_regress.h"

#define REQUESTS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kcr_sample samples[REQUESTS];
    struct kcr_opts o;
    struct kcr_run r;
    struct kcr_line l;
    char err[512], why[KCR_WHY_MAX], sink[8192];
    char *argv[] = {(char *)"chain-regress",      (char *)"--requests", (char *)"8",
                    (char *)"--expect-auth-mode", (char *)"card_probe", NULL};
    FILE *in, *out;
    int rc;

    /* one line on its own */
    if (kcr_input_parse_line((const char *)data, size, &l, why, sizeof(why)) &&
        (l.body_len > KCR_MAX_BODY || l.body + l.body_len != (const char *)data + size))
        __builtin_trap();

    /* the whole input as a recorded run */
    if (kcr_opts_parse(5, argv, NULL, &o, err, sizeof(err)) != KCR_OPTS_RUN)
        __builtin_trap();
    memset(&r, 0, sizeof(r));
    r.samples = samples;
    in = fmemopen((void *)data, size, "r");
    if (in == NULL)
        return 0;
    rc = kcr_input_read(in, &o, &r, err, sizeof(err));
    fclose(in);
    if (rc != KCR_EXIT_OK)
        return 0;
    if (r.n_samples > REQUESTS || strlen(o.cacert) >= sizeof(o.cacert))
        __builtin_trap();
    out = fmemopen(sink, sizeof(sink), "w");
    if (out != NULL) {
        kcr_print_human(&o, &r, out);
        fclose(out);
    }
    json_decref(kcr_report_json(&o, &r));
    return 0;
}

/* kc-forward: qvm-connect-tcp between Linux network namespaces (see
 * docs/man/kc-forward.1). */
#include <stdio.h>

#include "harness/chain/forward.h"

int main(int argc, char *argv[])
{
    struct kcf_options opts;
    char err[256];

    switch (kcf_options_parse(argc, argv, &opts, err, sizeof(err))) {
    case KCF_PARSE_OK:
        break;
    case KCF_PARSE_HELP:
        fputs(kcf_usage(), stdout);
        return KCF_EXIT_OK;
    default:
        fprintf(stderr, "kc-forward: %s\n%s", err, kcf_usage());
        return KCF_EXIT_USAGE;
    }
    return kcf_run(&opts);
}

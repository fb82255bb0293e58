/* libFuzzer: chain-regress's parsers of k_proxy's answers (login, status,
 * counter, logout, error) and the judges built on them. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "regression/chain_regress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct kcr_login_resp login;
    struct kcr_status_resp status;
    struct kcr_counter_resp counter;
    struct kcr_logout_resp logout;
    struct kcr_error_resp err;
    struct kcr_opts o;
    struct kcr_step st;
    struct kcr_sample s;
    char why[KCR_WHY_MAX];
    long code = size > 0 ? 200 + (long)(data[0] % 4) * 67 : 200; /* 200, 267, 334, 401 */

    (void)kcr_parse_login(body, size, &login, why, sizeof(why));
    (void)kcr_parse_status(body, size, &status, why, sizeof(why));
    if (kcr_parse_counter(body, size, &counter, why, sizeof(why)) == KCR_PARSE_OK)
        (void)counter.counter;
    (void)kcr_parse_logout(body, size, &logout, why, sizeof(why));
    if (kcr_parse_error(body, size, &err) == KCR_PARSE_OK &&
        (strlen(err.error) >= sizeof(err.error) || strlen(err.message) >= sizeof(err.message)))
        __builtin_trap();

    memset(&o, 0, sizeof(o));
    memcpy(o.username, "alice", 6);
    memcpy(o.expect_auth_mode, "card_probe", 11);
    memset(&st, 0, sizeof(st));
    kcr_judge_login(&o, code, body, size, &st, &login);
    kcr_judge_status(&o, code, body, size, &st);
    kcr_judge_logout(&o, code, body, size, &st);
    kcr_judge_after_logout(code, body, size, &st);
    memset(&s, 0, sizeof(s));
    kcr_judge_counter(200, body, size, &s);
    kcr_judge_counter(502, body, size, &s);
    return 0;
}

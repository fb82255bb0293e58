/* rawctap doctor's resident-credential capacity as the pure tree reports
 * it: the "capacity" object of --json from getInfo's
 * remainingDiscoverableCredentials (0x14) and from credential management's
 * metadata, an error named when the metadata failed, nothing when neither
 * ran; and capacity never changes the diagnosis: a full card is still OK,
 * with no warning and no fix that advises a reset or a delete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctaphid/status.h"
#include "triage/rawctap_doctor.h"
#include "tests/unit/triage/test_doctor_evidence.h"

/* A healthy CTAP2 card over udp with a PIN given and accepted. */
static struct rc_doc_evidence *healthy_with_pin(void)
{
    struct rc_doc_evidence *ev = healthy();
    ev->client_pin = 1;
    ev->pin_given = ev->pin_ran = ev->retries_ran = ev->token_ran = true;
    ev->retries = 8;
    ev->token_protocol = 2;
    ev->mc_used_pin = ev->ga_used_pin = true;
    return ev;
}

/* The verdict and its JSON; *cap the "capacity" object or NULL. */
static json_t *judge(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v, json_t **cap)
{
    rc_doc_decide(ev, v);
    json_t *o = rc_doc_json(ev, v);
    assert_non_null(o);
    *cap = json_object_get(o, "capacity");
    return o;
}

static json_int_t cap_int(json_t *cap, const char *key)
{
    json_t *n = json_object_get(cap, key);
    assert_true(json_is_integer(n));
    return json_integer_value(n);
}

static bool fix_advises(const char *fix)
{
    return strstr(fix, "reset") != NULL || strstr(fix, "delete") != NULL ||
           strstr(fix, "erase") != NULL;
}

static void test_no_capacity_when_nothing_ran(void **state)
{
    (void)state;
    struct rc_doc_evidence *ev = healthy_with_pin();
    struct rc_doc_verdict v;
    json_t *cap, *o = judge(ev, &v, &cap);
    assert_null(cap);
    assert_string_equal(v.primary.code, "OK");
    json_decref(o);
    free(ev);
}

static void test_info_remaining(void **state)
{
    (void)state;
    struct rc_doc_evidence *ev = healthy_with_pin();
    struct rc_doc_verdict v;
    ev->rk_remaining_known = true;
    ev->rk_remaining = 23;
    json_t *cap, *o = judge(ev, &v, &cap);
    assert_non_null(cap);
    assert_int_equal(cap_int(cap, "remaining_discoverable_credentials"), 23);
    assert_null(json_object_get(cap, "existing_resident_credentials"));
    assert_null(json_object_get(cap, "cred_mgmt_error"));
    json_decref(o);
    /* 0 is a number the card gave, not an absent key */
    ev->rk_remaining = 0;
    o = judge(ev, &v, &cap);
    assert_int_equal(cap_int(cap, "remaining_discoverable_credentials"), 0);
    json_decref(o);
    free(ev);
}

static void test_cred_mgmt_counts_and_error(void **state)
{
    (void)state;
    struct rc_doc_evidence *ev = healthy_with_pin();
    struct rc_doc_verdict v;
    ev->rk_remaining_known = true;
    ev->rk_remaining = 47;
    ev->cm_ran = true;
    ev->cm_err = KC_OK;
    ev->cm_existing = 3;
    ev->cm_remaining = 47;
    json_t *cap, *o = judge(ev, &v, &cap);
    assert_int_equal(cap_int(cap, "remaining_discoverable_credentials"), 47);
    assert_int_equal(cap_int(cap, "existing_resident_credentials"), 3);
    assert_int_equal(cap_int(cap, "remaining_resident_credentials"), 47);
    json_decref(o);
    /* the card refused the metadata: named, no counts, still OK */
    ev->cm_err = KC_CTAP2_ERR_PIN_AUTH_INVALID;
    o = judge(ev, &v, &cap);
    assert_string_equal(json_string_value(json_object_get(cap, "cred_mgmt_error")),
                        "CTAP2_ERR_PIN_AUTH_INVALID");
    assert_null(json_object_get(cap, "existing_resident_credentials"));
    assert_string_equal(v.primary.code, "OK");
    json_decref(o);
    ev->cm_err = KC_ERR_CBOR;
    o = judge(ev, &v, &cap);
    assert_string_equal(json_string_value(json_object_get(cap, "cred_mgmt_error")),
                        kc_err_name(KC_ERR_CBOR));
    json_decref(o);
    free(ev);
}

/* A full card is a fact, not a fault: the same verdict as with room. */
static void test_full_card_is_not_a_finding(void **state)
{
    (void)state;
    struct rc_doc_evidence *ev = healthy_with_pin();
    struct rc_doc_verdict with_room, full;
    rc_doc_decide(ev, &with_room);
    ev->rk_remaining_known = true;
    ev->rk_remaining = 0;
    ev->cm_ran = true;
    ev->cm_existing = 25;
    ev->cm_remaining = 0;
    rc_doc_decide(ev, &full);
    assert_string_equal(full.primary.code, "OK");
    assert_string_equal(full.primary.code, with_room.primary.code);
    assert_int_equal(full.n_warnings, with_room.n_warnings);
    assert_int_equal(full.primary.exit, 0);
    assert_false(fix_advises(full.primary.fix));
    /* also beside a real finding: capacity does not change which one */
    ev->mc_err = KC_CTAP2_ERR_OPERATION_DENIED;
    struct rc_doc_verdict denied, denied_room;
    rc_doc_decide(ev, &denied);
    ev->rk_remaining_known = false;
    ev->cm_ran = false;
    rc_doc_decide(ev, &denied_room);
    assert_string_equal(denied.primary.code, denied_room.primary.code);
    assert_string_equal(denied.primary.fix, denied_room.primary.fix);
    free(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_capacity_when_nothing_ran),
        cmocka_unit_test(test_info_remaining),
        cmocka_unit_test(test_cred_mgmt_counts_and_error),
        cmocka_unit_test(test_full_card_is_not_a_finding),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

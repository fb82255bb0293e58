/* The services' shared code: base64url, hex, HKDF/HMAC against vectors from
 * python3-cryptography, the k_proxy -> k_server request signature, the
 * replay cache, bearer parsing and the metrics text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "services/common/crypto.h"
#include "services/common/http.h"
#include "services/common/metrics.h"
#include "services/common/upstream.h"

/* HKDF-SHA256("dev-proxy-token", salt "kcard upstream v1", info "k_proxy->k_server"),
 * computed with python3-cryptography. */
static const char key_hex[] = "0ae8db3380715a9d17fd11d10481493b5611aa97f067b9084700534c27190080";
/* HMAC of the canonical string for POST /counter/next, ts 1700000000, nonce
 * 000102..0f, ref abcDEF_-123, body "{}" (python3-cryptography). */
static const char sig_hex[] = "cb5d2e1d5e1f7bdb9263e534cf1ae3c9c93d979ee9d6fb5a2ec2954557444f19";
#define TS 1700000000
#define NONCE "000102030405060708090a0b0c0d0e0f"

static void test_b64url(void **state)
{
    (void)state;
    uint8_t in[10], back[16];
    char out[32];
    for (int i = 0; i < 10; i++)
        in[i] = (uint8_t)i;
    assert_int_equal(ksvc_b64url_encode(in, 10, out, sizeof(out)), 14);
    assert_string_equal(out, "AAECAwQFBgcICQ");
    assert_int_equal(ksvc_b64url_decode(out, back, sizeof(back)), 10);
    assert_memory_equal(in, back, 10);
    for (size_t n = 0; n < 10; n++) { /* every length round-trips */
        assert_true(ksvc_b64url_encode(in, n, out, sizeof(out)) >= 0);
        assert_int_equal(ksvc_b64url_decode(out, back, sizeof(back)), (int)n);
        assert_memory_equal(in, back, n);
    }
    uint8_t ff[3] = {0xfb, 0xff, 0xfe};
    ksvc_b64url_encode(ff, 3, out, sizeof(out));
    assert_string_equal(out, "-__-");
    assert_int_equal(ksvc_b64url_decode("+//+", back, sizeof(back)), -1); /* std alphabet */
    assert_int_equal(ksvc_b64url_decode("AAECAw==", back, sizeof(back)), -1);
    assert_int_equal(ksvc_b64url_decode("A", back, sizeof(back)), -1);
    assert_int_equal(ksvc_b64url_decode("AA*A", back, sizeof(back)), -1);
    assert_int_equal(ksvc_b64url_decode("AAECAwQFBgcICQ", back, 4), -1); /* too small */
    assert_int_equal(ksvc_b64url_encode(in, 10, out, 14), -1); /* 14 chars need 15 bytes */
    assert_int_equal(ksvc_b64url_encode(in, 10, out, 15), 14);
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t b[4];
    char s[9];
    assert_true(ksvc_unhex("DEADbeef", b, 4));
    ksvc_hex(b, 4, s);
    assert_string_equal(s, "deadbeef");
    assert_false(ksvc_unhex("deadbee", b, 4));
    assert_false(ksvc_unhex("deadbeefaa", b, 4));
    assert_false(ksvc_unhex("deadbeeg", b, 4));
}

static void test_key_vector(void **state)
{
    (void)state;
    uint8_t key[32], want[32];
    assert_int_equal(ksvc_upstream_key("dev-proxy-token", key), 0);
    assert_true(ksvc_unhex(key_hex, want, 32));
    assert_memory_equal(key, want, 32);
    assert_int_equal(ksvc_upstream_key("", key), -1);
}

static void test_verify_vector(void **state)
{
    (void)state;
    uint8_t key[32];
    ksvc_upstream_key("dev-proxy-token", key);
    struct ksvc_replay_cache *c = ksvc_replay_cache_new(64);
    struct ksvc_upstream_auth a;
    char header[256];
    snprintf(header, sizeof(header),
             "KC-HMAC-SHA256 ts=%d, nonce=" NONCE ", ref=abcDEF_-123, sig=%s", TS, sig_hex);
    assert_int_equal(
        ksvc_upstream_verify(key, c, header, "POST", "/counter/next", "{}", 2, TS + 5, &a),
        KSVC_UPSTREAM_OK);
    assert_string_equal(a.ref, "abcDEF_-123");
    /* the same header again is a replay */
    assert_int_equal(
        ksvc_upstream_verify(key, c, header, "POST", "/counter/next", "{}", 2, TS + 6, &a),
        KSVC_UPSTREAM_REPLAYED);
    ksvc_replay_cache_free(c);
}

static void test_sign_verify_and_tamper(void **state)
{
    (void)state;
    uint8_t key[32], other[32];
    ksvc_upstream_key("dev-proxy-token", key);
    ksvc_upstream_key("another-token", other);
    struct ksvc_replay_cache *c = ksvc_replay_cache_new(256);
    struct ksvc_upstream_auth a;
    char h[256];
    time_t now = 1800000000;
    assert_int_equal(
        ksvc_upstream_sign(key, "POST", "/counter/next", "ref1", "{}", 2, now, h, sizeof(h)), 0);
    /* every field is bound by the signature */
    assert_int_equal(ksvc_upstream_verify(key, c, h, "GET", "/counter/next", "{}", 2, now, &a),
                     KSVC_UPSTREAM_BAD_SIG);
    assert_int_equal(ksvc_upstream_verify(key, c, h, "POST", "/counter/nexT", "{}", 2, now, &a),
                     KSVC_UPSTREAM_BAD_SIG);
    assert_int_equal(ksvc_upstream_verify(key, c, h, "POST", "/counter/next", "{ }", 3, now, &a),
                     KSVC_UPSTREAM_BAD_SIG);
    assert_int_equal(ksvc_upstream_verify(other, c, h, "POST", "/counter/next", "{}", 2, now, &a),
                     KSVC_UPSTREAM_BAD_SIG);
    char forged[256];
    snprintf(forged, sizeof(forged), "%s", h);
    char *ref = strstr(forged, "ref=ref1");
    ref[7] = '2';
    assert_int_equal(
        ksvc_upstream_verify(key, c, forged, "POST", "/counter/next", "{}", 2, now, &a),
        KSVC_UPSTREAM_BAD_SIG);
    /* clock skew beyond 30 s either way */
    assert_int_equal(
        ksvc_upstream_verify(key, c, h, "POST", "/counter/next", "{}", 2, now + 31, &a),
        KSVC_UPSTREAM_STALE);
    assert_int_equal(
        ksvc_upstream_verify(key, c, h, "POST", "/counter/next", "{}", 2, now - 31, &a),
        KSVC_UPSTREAM_STALE);
    /* failed attempts did not spend the nonce */
    assert_int_equal(
        ksvc_upstream_verify(key, c, h, "POST", "/counter/next", "{}", 2, now + 30, &a),
        KSVC_UPSTREAM_OK);
    ksvc_replay_cache_free(c);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    struct ksvc_upstream_auth a;
    const char *ok = "KC-HMAC-SHA256 ts=1, nonce=" NONCE ", ref=r, sig=" /* 64 hex */
                     "cb5d2e1d5e1f7bdb9263e534cf1ae3c9c93d979ee9d6fb5a2ec2954557444f19";
    assert_int_equal(ksvc_upstream_parse(ok, &a), KSVC_UPSTREAM_OK);
    assert_int_equal(ksvc_upstream_parse(NULL, &a), KSVC_UPSTREAM_UNSIGNED);
    assert_int_equal(ksvc_upstream_parse("Bearer abc", &a), KSVC_UPSTREAM_UNSIGNED);
    const char *bad[] = {
        "KC-HMAC-SHA256 ",
        "KC-HMAC-SHA256 ts=1, nonce=" NONCE ", ref=r",
        "KC-HMAC-SHA256 ts=-1, nonce=" NONCE ", ref=r, sig=00",
        "KC-HMAC-SHA256 ts=1,nonce=" NONCE ", ref=r, sig=00",
        "KC-HMAC-SHA256 nonce=" NONCE ", ts=1, ref=r, sig=00",
        "KC-HMAC-SHA256 ts=1, nonce=00, ref=r, "
        "sig=cb5d2e1d5e1f7bdb9263e534cf1ae3c9c93d979ee9d6fb5a2ec2954557444f19",
        "KC-HMAC-SHA256 ts=1, nonce=" NONCE ", ref=a b, "
        "sig=cb5d2e1d5e1f7bdb9263e534cf1ae3c9c93d979ee9d6fb5a2ec2954557444f19",
        "KC-HMAC-SHA256 ts=1, nonce=" NONCE ", ref=r, "
        "sig=cb5d2e1d5e1f7bdb9263e534cf1ae3c9c93d979ee9d6fb5a2ec2954557444f19, x=1",
        "KC-HMAC-SHA256 ts=99999999999999999999, nonce=" NONCE ", ref=r, "
        "sig=cb5d2e1d5e1f7bdb9263e534cf1ae3c9c93d979ee9d6fb5a2ec2954557444f19",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ksvc_upstream_parse(bad[i], &a), KSVC_UPSTREAM_MALFORMED);
}

static void test_replay_cache_rotation_and_capacity(void **state)
{
    (void)state;
    struct ksvc_replay_cache *c = ksvc_replay_cache_new(8);
    uint8_t key[32];
    ksvc_upstream_key("t", key);
    struct ksvc_upstream_auth a;
    char h[10][256];
    time_t now = 1800000000;
    int ok = 0, full = 0;
    for (int i = 0; i < 10; i++) {
        ksvc_upstream_sign(key, "POST", "/p", "r", "", 0, now, h[i], sizeof(h[i]));
        enum ksvc_upstream_verdict v =
            ksvc_upstream_verify(key, c, h[i], "POST", "/p", "", 0, now, &a);
        ok += v == KSVC_UPSTREAM_OK;
        full += v == KSVC_UPSTREAM_CACHE_FULL;
    }
    assert_int_equal(ok, 6); /* three quarters of 8 */
    assert_int_equal(full, 4);
    /* after one rotation the old nonces are still remembered */
    assert_int_equal(ksvc_upstream_verify(key, c, h[0], "POST", "/p", "", 0, now + 29, &a),
                     KSVC_UPSTREAM_REPLAYED);
    char fresh[256];
    ksvc_upstream_sign(key, "POST", "/p", "r", "", 0, now + 60, fresh, sizeof(fresh));
    assert_int_equal(ksvc_upstream_verify(key, c, fresh, "POST", "/p", "", 0, now + 60, &a),
                     KSVC_UPSTREAM_OK);
    ksvc_replay_cache_free(c);
}

static void test_session_ref(void **state)
{
    (void)state;
    uint8_t k1[32] = {1}, k2[32] = {2};
    char a[23], b[23], c[23];
    assert_int_equal(ksvc_session_ref(k1, "session-1", a), 0);
    assert_int_equal(ksvc_session_ref(k1, "session-1", b), 0);
    assert_int_equal(ksvc_session_ref(k2, "session-1", c), 0);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 22);
    assert_null(strstr(a, "session"));
}

static void test_bearer(void **state)
{
    (void)state;
    char t[64];
    assert_true(ksvc_parse_bearer("Bearer abc-_DEF", t, sizeof(t)));
    assert_string_equal(t, "abc-_DEF");
    assert_true(ksvc_parse_bearer("bearer   x==", t, sizeof(t)));
    assert_string_equal(t, "x==");
    assert_false(ksvc_parse_bearer(NULL, t, sizeof(t)));
    assert_false(ksvc_parse_bearer("Basic abc", t, sizeof(t)));
    assert_false(ksvc_parse_bearer("Bearer ", t, sizeof(t)));
    assert_false(ksvc_parse_bearer("Bearer a b", t, sizeof(t)));
    assert_false(ksvc_parse_bearer("Bearer a=b", t, sizeof(t)));
    assert_false(ksvc_parse_bearer("Bearer abcdef", t, 4));
}

static void test_metrics_text(void **state)
{
    (void)state;
    struct ksvc_metrics *m = ksvc_metrics_new("kcard_test");
    ksvc_metric_add(m, "kcard_test_things_total", "Things.", "kind=\"a\"", 2);
    ksvc_metric_add(m, "kcard_test_things_total", "Things.", "kind=\"a\"", 1);
    ksvc_metric_add(m, "kcard_test_things_total", "Things.", "kind=\"b\"", 1);
    ksvc_metric_set(m, "kcard_test_level", "Level.", "", 7);
    ksvc_metrics_request(m, "/x", "POST", 200, 0.003);
    char *text = ksvc_metrics_render(m);
    assert_non_null(text);
    assert_non_null(strstr(text, "# TYPE kcard_test_things_total counter\n"
                                 "kcard_test_things_total{kind=\"a\"} 3\n"
                                 "kcard_test_things_total{kind=\"b\"} 1\n"));
    assert_non_null(strstr(text, "# TYPE kcard_test_level gauge\nkcard_test_level 7\n"));
    assert_non_null(strstr(
        text, "kcard_test_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.0025\"} 0\n"));
    assert_non_null(strstr(
        text, "kcard_test_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.005\"} 1\n"));
    assert_non_null(
        strstr(text, "kcard_test_http_request_duration_seconds_count{route=\"/x\"} 1\n"));
    /* HELP/TYPE once per name */
    const char *first = strstr(text, "# TYPE kcard_test_things_total");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE kcard_test_things_total"));
    free(text);
    for (int i = 0; i < KSVC_METRICS_MAX + 10; i++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "i=\"%d\"", i);
        ksvc_metric_add(m, "kcard_test_many_total", "Many.", labels, 1);
    }
    text = ksvc_metrics_render(m);
    assert_non_null(strstr(text, "kcard_test_metrics_dropped_total 1"));
    free(text);
    ksvc_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_key_vector),
        cmocka_unit_test(test_verify_vector),
        cmocka_unit_test(test_sign_verify_and_tamper),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_replay_cache_rotation_and_capacity),
        cmocka_unit_test(test_session_ref),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_metrics_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

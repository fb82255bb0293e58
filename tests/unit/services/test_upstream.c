/* The services' shared code: base64url, hex, HKDF/HMAC against vectors from
 * python3-cryptography and Python's hmac, the k_proxy -> k_server request
 * signature (instance and sequence number included), bearer parsing and the
 * metrics text. The replay windows are in test_replay.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
/* HMAC of the canonical string "KC2\nPOST\n/counter/next\n1700000000\n"
 * "000102..0f\n42\nabcDEF_-123\n" hex(SHA-256("{}")), computed with Python's
 * hmac and hashlib. */
static const char sig_hex[] = "05bb0c25893701c3a83c00ed739ad846485eeccd31177f8e4891e4bef78dfba0";
#define TS 1700000000
#define INST "000102030405060708090a0b0c0d0e0f"
static const uint8_t inst1[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

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
    struct ksvc_replay_table *t = ksvc_replay_table_new(NULL);
    struct ksvc_upstream_auth a;
    char header[256];
    snprintf(header, sizeof(header),
             "KC-HMAC-SHA256 ts=%d, inst=" INST ", seq=42, ref=abcDEF_-123, sig=%s", TS, sig_hex);
    assert_int_equal(
        ksvc_upstream_verify(key, t, header, "POST", "/counter/next", "{}", 2, TS + 5, &a),
        KSVC_UPSTREAM_OK);
    assert_string_equal(a.ref, "abcDEF_-123");
    assert_memory_equal(a.instance, inst1, 16);
    assert_int_equal(a.seq, 42);
    /* the same header again is a replay */
    assert_int_equal(
        ksvc_upstream_verify(key, t, header, "POST", "/counter/next", "{}", 2, TS + 6, &a),
        KSVC_UPSTREAM_REPLAYED);
    /* our signer makes the same header */
    char mine[256];
    assert_int_equal(ksvc_upstream_sign(key, inst1, 42, "POST", "/counter/next", "abcDEF_-123",
                                        "{}", 2, TS, mine, sizeof(mine)),
                     0);
    assert_string_equal(mine, header);
    ksvc_replay_table_free(t);
}

/* The header with the value of one parameter replaced. */
static void with_param(const char *h, const char *name, const char *value, char *out, size_t cap)
{
    char key[16];
    snprintf(key, sizeof(key), "%s=", name);
    const char *at = strstr(h, key);
    assert_non_null(at);
    const char *end = strchr(at, ',');
    if (end == NULL)
        end = at + strlen(at);
    snprintf(out, cap, "%.*s%s%s%s", (int)(at - h), h, key, value, end);
}

static void test_sign_verify_and_tamper(void **state)
{
    (void)state;
    uint8_t key[32], other[32];
    ksvc_upstream_key("dev-proxy-token", key);
    ksvc_upstream_key("another-token", other);
    struct ksvc_replay_table *t = ksvc_replay_table_new(NULL);
    struct ksvc_upstream_auth a;
    char h[256], forged[256];
    time_t now = 1800000000;
    assert_int_equal(ksvc_upstream_sign(key, inst1, 7, "POST", "/counter/next", "ref1", "{}", 2,
                                        now, h, sizeof(h)),
                     0);
    assert_true(strlen(h) <= KSVC_UPSTREAM_HEADER_MAX);
    /* every field is bound by the signature */
    assert_int_equal(ksvc_upstream_verify(key, t, h, "GET", "/counter/next", "{}", 2, now, &a),
                     KSVC_UPSTREAM_BAD_SIG);
    assert_int_equal(ksvc_upstream_verify(key, t, h, "POST", "/counter/nexT", "{}", 2, now, &a),
                     KSVC_UPSTREAM_BAD_SIG);
    assert_int_equal(ksvc_upstream_verify(key, t, h, "POST", "/counter/next", "{ }", 3, now, &a),
                     KSVC_UPSTREAM_BAD_SIG);
    assert_int_equal(ksvc_upstream_verify(other, t, h, "POST", "/counter/next", "{}", 2, now, &a),
                     KSVC_UPSTREAM_BAD_SIG);
    const char *fields[][2] = {
        {"ref", "ref2"},
        {"seq", "8"},
        {"inst", "000102030405060708090a0b0c0d0e0e"},
        {"ts", "1800000001"},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        with_param(h, fields[i][0], fields[i][1], forged, sizeof(forged));
        assert_int_equal(
            ksvc_upstream_verify(key, t, forged, "POST", "/counter/next", "{}", 2, now, &a),
            KSVC_UPSTREAM_BAD_SIG);
    }
    /* clock skew beyond 30 s either way */
    assert_int_equal(
        ksvc_upstream_verify(key, t, h, "POST", "/counter/next", "{}", 2, now + 31, &a),
        KSVC_UPSTREAM_STALE);
    assert_int_equal(
        ksvc_upstream_verify(key, t, h, "POST", "/counter/next", "{}", 2, now - 31, &a),
        KSVC_UPSTREAM_STALE);
    /* failed attempts did not spend the sequence number */
    assert_int_equal(
        ksvc_upstream_verify(key, t, h, "POST", "/counter/next", "{}", 2, now + 30, &a),
        KSVC_UPSTREAM_OK);
    assert_int_equal(
        ksvc_upstream_verify(key, t, h, "POST", "/counter/next", "{}", 2, now + 30, &a),
        KSVC_UPSTREAM_REPLAYED);
    /* the signer refuses what the parser would */
    assert_int_equal(ksvc_upstream_sign(key, inst1, 0, "POST", "/p", "r", "", 0, now, h, sizeof(h)),
                     -1);
    assert_int_equal(ksvc_upstream_sign(key, inst1, UINT64_C(10000000000000000000), "POST", "/p",
                                        "r", "", 0, now, h, sizeof(h)),
                     -1);
    assert_int_equal(
        ksvc_upstream_sign(key, inst1, 1, "POST", "/p", "a b", "", 0, now, h, sizeof(h)), -1);
    assert_int_equal(ksvc_upstream_sign(key, inst1, 1, "POST", "/p", "r", "", 0, now, h, 40), -1);
    ksvc_replay_table_free(t);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    struct ksvc_upstream_auth a;
#define SIG "cb5d2e1d5e1f7bdb9263e534cf1ae3c9c93d979ee9d6fb5a2ec2954557444f19"
    const char *ok = "KC-HMAC-SHA256 ts=1, inst=" INST ", seq=1, ref=r, sig=" SIG;
    assert_int_equal(ksvc_upstream_parse(ok, &a), KSVC_UPSTREAM_OK);
    assert_int_equal(a.seq, 1);
    assert_int_equal(ksvc_upstream_parse("KC-HMAC-SHA256 ts=1, inst=" INST
                                         ", seq=9999999999999999999, ref=r, sig=" SIG,
                                         &a),
                     KSVC_UPSTREAM_OK);
    assert_true(a.seq == UINT64_C(9999999999999999999));
    assert_int_equal(ksvc_upstream_parse(NULL, &a), KSVC_UPSTREAM_UNSIGNED);
    assert_int_equal(ksvc_upstream_parse("Bearer abc", &a), KSVC_UPSTREAM_UNSIGNED);
    const char *bad[] = {
        "KC-HMAC-SHA256 ",
        "KC-HMAC-SHA256 ts=1, inst=" INST ", seq=1, ref=r",
        "KC-HMAC-SHA256 ts=-1, inst=" INST ", seq=1, ref=r, sig=" SIG,
        "KC-HMAC-SHA256 ts=1,inst=" INST ", seq=1, ref=r, sig=" SIG,
        "KC-HMAC-SHA256 inst=" INST ", ts=1, seq=1, ref=r, sig=" SIG,
        "KC-HMAC-SHA256 ts=1, inst=00, seq=1, ref=r, sig=" SIG,
        "KC-HMAC-SHA256 ts=1, inst=" INST "00, seq=1, ref=r, sig=" SIG,
        "KC-HMAC-SHA256 ts=1, inst=" INST ", seq=0, ref=r, sig=" SIG,
        "KC-HMAC-SHA256 ts=1, inst=" INST ", seq=01, ref=r, sig=" SIG,
        "KC-HMAC-SHA256 ts=1, inst=" INST ", seq=-1, ref=r, sig=" SIG,
        "KC-HMAC-SHA256 ts=1, inst=" INST ", seq=+1, ref=r, sig=" SIG,
        "KC-HMAC-SHA256 ts=1, inst=" INST ", seq=1x, ref=r, sig=" SIG,
        "KC-HMAC-SHA256 ts=1, inst=" INST ", seq=10000000000000000000, ref=r, sig=" SIG,
        "KC-HMAC-SHA256 ts=1, inst=" INST ", ref=r, sig=" SIG,
        "KC-HMAC-SHA256 ts=1, inst=" INST ", seq=1, ref=a b, sig=" SIG,
        "KC-HMAC-SHA256 ts=1, inst=" INST ", seq=1, ref=r, sig=" SIG ", x=1",
        "KC-HMAC-SHA256 ts=99999999999999999999, inst=" INST ", seq=1, ref=r, sig=" SIG,
        /* the KC1 header with a nonce is refused: k_proxy and k_server upgrade together */
        "KC-HMAC-SHA256 ts=1, nonce=" INST ", ref=r, sig=" SIG,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ksvc_upstream_parse(bad[i], &a), KSVC_UPSTREAM_MALFORMED);
#undef SIG
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
        cmocka_unit_test(test_session_ref),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_metrics_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The services' shared code: HKDF/HMAC against vectors from
 * python3-cryptography and Python's hmac, the k_proxy -> k_server request
 * signature (instance and sequence number included), bearer parsing and the
 * metrics text. The replay windows are in test_replay.c.
 *
 * k_proxy's asynchronous client of k_server is tested against a small
 * k_server stand-in run in this process on 127.0.0.1 (libmicrohttpd, an
 * ephemeral port, every wait bounded): many requests in flight, renewal of
 * the instance id on a replayed_request refusal, timeouts, failures and a
 * stop with requests in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "services/common/crypto.h"
#include "services/common/http.h"
#include "services/common/metrics.h"
#include "services/common/upstream.h"
#include "services/k_proxy/upstream_client.h"
#include "util/clock.h"
#include "util/hex.h"

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

static void test_key_vector(void **state)
{
    (void)state;
    uint8_t key[32], want[32];
    assert_int_equal(ksvc_upstream_key("dev-proxy-token", key), 0);
    assert_int_equal(kcu_hex_decode_exact(key_hex, want, 32, NULL, 0), 0);
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

/* The same with an empty body (what k_proxy's counter calls carry, whose
 * body digest both ends make once) and seq 43: Python's hmac and hashlib. */
static const char sig_empty_hex[] =
    "905b8abd030de925263342422aa4caaa546fc5f8900e83ecc2a5977cc1248073";

static void test_verify_vector_empty_body(void **state)
{
    (void)state;
    uint8_t key[32];
    ksvc_upstream_key("dev-proxy-token", key);
    struct ksvc_replay_table *t = ksvc_replay_table_new(NULL);
    struct ksvc_upstream_auth a;
    char header[256], mine[256];
    snprintf(header, sizeof(header),
             "KC-HMAC-SHA256 ts=%d, inst=" INST ", seq=43, ref=abcDEF_-123, sig=%s", TS,
             sig_empty_hex);
    for (int i = 0; i < 2; i++) { /* the second time from the digest made once */
        assert_int_equal(ksvc_upstream_sign(key, inst1, 43, "POST", "/counter/next", "abcDEF_-123",
                                            "", 0, TS, mine, sizeof(mine)),
                         0);
        assert_string_equal(mine, header);
    }
    /* signed over an empty body, it does not verify with a body, nor the {} one without */
    assert_int_equal(
        ksvc_upstream_verify(key, t, header, "POST", "/counter/next", "{}", 2, TS + 5, &a),
        KSVC_UPSTREAM_BAD_SIG);
    assert_int_equal(
        ksvc_upstream_verify(key, t, header, "POST", "/counter/next", NULL, 0, TS + 5, &a),
        KSVC_UPSTREAM_OK);
    assert_int_equal(a.seq, 43);
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
    /* a header buffer one byte short of the header (and its NUL) is refused at
     * every length; the exact size is not */
    char full[512], part[512];
    assert_int_equal(ksvc_upstream_sign(key, inst1, 123456789, "POST", "/p", "r", "", 0, now, full,
                                        sizeof(full)),
                     0);
    size_t len = strlen(full);
    for (size_t cap = 0; cap <= len; cap++)
        assert_int_equal(
            ksvc_upstream_sign(key, inst1, 123456789, "POST", "/p", "r", "", 0, now, part, cap),
            -1);
    assert_int_equal(
        ksvc_upstream_sign(key, inst1, 123456789, "POST", "/p", "r", "", 0, now, part, len + 1), 0);
    assert_string_equal(part, full);
    /* a path too long for the canonical string is refused, not cut */
    char long_path[1100];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    assert_int_equal(
        ksvc_upstream_sign(key, inst1, 1, "POST", long_path, "r", "", 0, now, full, sizeof(full)),
        -1);
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

static void test_parse_counter_header(void **state)
{
    (void)state;
    const char *ref = "AbCdEfGhIjKlMnOpQrStUv";
    int64_t v = 0;
    char msg[256];
    assert_int_equal(
        kpx_upstream_parse_counter_header("42 AbCdEfGhIjKlMnOpQrStUv", ref, &v, msg, sizeof(msg)),
        0);
    assert_true(v == 42);
    assert_int_equal(kpx_upstream_parse_counter_header("9223372036854775807 AbCdEfGhIjKlMnOpQrStUv",
                                                       ref, &v, msg, sizeof(msg)),
                     0);
    assert_true(v == INT64_MAX);
    static const char *const bad[] = {
        "",
        " 42 AbCdEfGhIjKlMnOpQrStUv",
        "+42 AbCdEfGhIjKlMnOpQrStUv",
        "-42 AbCdEfGhIjKlMnOpQrStUv",
        "0 AbCdEfGhIjKlMnOpQrStUv",
        "9223372036854775808 AbCdEfGhIjKlMnOpQrStUv",
        "99999999999999999999 AbCdEfGhIjKlMnOpQrStUv",
        "123456789012345678901234 AbCdEfGhIjKlMnOpQrStUv",
        "42AbCdEfGhIjKlMnOpQrStUv",
        "42,AbCdEfGhIjKlMnOpQrStUv",
        "42  AbCdEfGhIjKlMnOpQrStUv",
        "42 AbCdEfGhIjKlMnOpQrStU",
        "42 AbCdEfGhIjKlMnOpQrStUvW",
        "42 AbCdEfGhIjKlMnOpQrStUv ",
        "42",
        "42 ",
        "0x2a AbCdEfGhIjKlMnOpQrStUv",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        msg[0] = '\0';
        if (kpx_upstream_parse_counter_header(bad[i], ref, &v, msg, sizeof(msg)) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_true(v == 7);
        assert_true(msg[0] != '\0');
    }
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

/* ---- k_proxy's client of k_server, against a stand-in on loopback ---- */

#define STUB_SEEN_MAX 4096

/* STUB_COUNTER answers with a JSON body only (a k_server without the
 * counter header); the HEADER modes add KSVC_COUNTER_HEADER: right with an
 * unusable body (so only the header can be what the client read), or
 * malformed, or for another ref, with a right body (so a header is never
 * passed over for the body). */
enum stub_mode {
    STUB_COUNTER,
    STUB_FAIL_500,
    STUB_WRONG_REF,
    STUB_HEADER,
    STUB_HEADER_BAD,
    STUB_HEADER_WRONG_REF
};

/* A k_server stand-in: verifies the signature and the replay window as
 * k_server does, and hands out 1, 2, 3... */
struct stub {
    struct MHD_Daemon *d;
    uint8_t key[32];
    struct ksvc_replay_table *table;
    atomic_int delay_ms;
    atomic_int mode;
    atomic_llong counter;
    pthread_mutex_t lock;
    size_t nseen; /* (instance, seq) of every accepted request */
    uint8_t inst[STUB_SEEN_MAX][16];
    uint64_t seq[STUB_SEEN_MAX];
    size_t refused_replayed;
    char base_url[64];
};

static enum MHD_Result stub_reply_with(struct MHD_Connection *c, unsigned status, json_t *j,
                                       const char *counter_header)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (counter_header != NULL)
        MHD_add_response_header(r, KSVC_COUNTER_HEADER, counter_header);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result stub_reply(struct MHD_Connection *c, unsigned status, json_t *j)
{
    return stub_reply_with(c, status, j, NULL);
}

static enum MHD_Result stub_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    static int started, with_body; /* markers of the request's state in *con_cls */
    struct stub *st = cls;
    if (*con_cls == NULL) {
        *con_cls = &started;
        return MHD_YES;
    }
    if (*upload_size > 0) { /* k_proxy sends no body: one is refused below */
        *con_cls = &with_body;
        *upload_size = 0;
        return MHD_YES;
    }
    if (*con_cls == &with_body)
        return stub_reply(c, 400, json_pack("{s:s}", "error", "unexpected_body"));
    /* nor any header announcing one */
    if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length") != NULL ||
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type") != NULL)
        return stub_reply(c, 400, json_pack("{s:s}", "error", "unexpected_body_headers"));
    int delay = atomic_load(&st->delay_ms);
    if (delay > 0)
        usleep((useconds_t)delay * 1000);
    if (strcmp(url, "/counter/next") != 0 || strcmp(method, "POST") != 0)
        return stub_reply(c, 404, json_pack("{s:s}", "error", "not_found"));
    int mode = atomic_load(&st->mode);
    if (mode == STUB_FAIL_500)
        return stub_reply(c, 500, json_pack("{s:s}", "error", "internal"));
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    struct ksvc_upstream_auth a;
    enum ksvc_upstream_verdict v =
        ksvc_upstream_verify(st->key, st->table, h, "POST", "/counter/next", "", 0, time(NULL), &a);
    if (v != KSVC_UPSTREAM_OK) {
        pthread_mutex_lock(&st->lock);
        st->refused_replayed += v == KSVC_UPSTREAM_REPLAYED;
        pthread_mutex_unlock(&st->lock);
        return stub_reply(c, 401, json_pack("{s:s}", "error", ksvc_upstream_verdict_code(v)));
    }
    pthread_mutex_lock(&st->lock);
    if (st->nseen < STUB_SEEN_MAX) {
        memcpy(st->inst[st->nseen], a.instance, 16);
        st->seq[st->nseen++] = a.seq;
    }
    pthread_mutex_unlock(&st->lock);
    long long n = atomic_fetch_add(&st->counter, 1) + 1;
    if (mode == STUB_HEADER || mode == STUB_HEADER_BAD || mode == STUB_HEADER_WRONG_REF) {
        char header[128];
        if (mode == STUB_HEADER_BAD)
            snprintf(header, sizeof(header), "%lld,%s", n, a.ref);
        else
            snprintf(header, sizeof(header), "%lld %s", n,
                     mode == STUB_HEADER_WRONG_REF ? "someone-else" : a.ref);
        json_t *body = mode == STUB_HEADER
                           ? json_pack("{s:s}", "note", "no counter here")
                           : json_pack("{s:I, s:s}", "counter", (json_int_t)n, "ref", a.ref);
        return stub_reply_with(c, 200, body, header);
    }
    return stub_reply(c, 200,
                      json_pack("{s:I, s:s}", "counter", (json_int_t)n, "ref",
                                mode == STUB_WRONG_REF ? "someone-else" : a.ref));
}

static struct stub *stub_start(void)
{
    struct stub *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    assert_int_equal(ksvc_upstream_key("dev-proxy-token", st->key), 0);
    st->table = ksvc_replay_table_new(NULL);
    assert_non_null(st->table);
    pthread_mutex_init(&st->lock, NULL);
    st->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL,
        NULL, stub_handler, st, MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
    assert_non_null(st->d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(st->d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    snprintf(st->base_url, sizeof(st->base_url), "http://127.0.0.1:%u", info->port);
    return st;
}

static void stub_stop(struct stub *st)
{
    MHD_stop_daemon(st->d);
    ksvc_replay_table_free(st->table);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static struct kpx_upstream *client_for(const char *base_url, const char *token, int timeout_ms,
                                       unsigned max_connections)
{
    uint8_t key[32];
    char err[256];
    assert_int_equal(ksvc_upstream_key(token, key), 0);
    struct kpx_upstream_cfg cfg = {.base_url = base_url,
                                   .key = key,
                                   .timeout_ms = timeout_ms,
                                   .max_connections = max_connections};
    struct kpx_upstream *u = kpx_upstream_new(&cfg, err, sizeof(err));
    if (u == NULL)
        fail_msg("kpx_upstream_new: %s", err);
    return u;
}

/* Collects the callbacks of a batch of requests. */
struct batch {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t want, got;
    size_t status[5];
    int64_t values[STUB_SEEN_MAX];
    size_t nvalues;
    char last_msg[512];
    bool caller_intact;
};

struct call_tag {
    uint32_t magic;
    uint32_t index;
};

static void batch_init(struct batch *b, size_t want)
{
    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->want = want;
    b->caller_intact = true;
}

static void batch_done(void *arg, const struct kpx_upstream_result *r)
{
    struct batch *b = arg;
    const struct call_tag *tag = r->caller;
    pthread_mutex_lock(&b->lock);
    if (tag->magic != 0x6b637264 || tag->index >= b->want)
        b->caller_intact = false;
    b->status[r->status]++;
    if (r->status == KPX_UPSTREAM_OK && b->nvalues < STUB_SEEN_MAX)
        b->values[b->nvalues++] = r->value;
    snprintf(b->last_msg, sizeof(b->last_msg), "%s", r->msg);
    b->got++;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

/* Waits (at most limit_s) for every callback of the batch; true when all came. */
static bool batch_wait(struct batch *b, int limit_s)
{
    struct timespec until;
    kcu_deadline(CLOCK_REALTIME, (uint64_t)limit_s * 1000, &until);
    pthread_mutex_lock(&b->lock);
    int rc = 0;
    while (b->got < b->want && rc == 0)
        rc = pthread_cond_timedwait(&b->cond, &b->lock, &until);
    bool all = b->got == b->want;
    pthread_mutex_unlock(&b->lock);
    return all;
}

static void batch_start(struct kpx_upstream *u, struct batch *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct call_tag tag = {.magic = 0x6b637264, .index = (uint32_t)i};
        assert_int_equal(kpx_upstream_counter_start(u, NULL, "AbCdEfGhIjKlMnOpQrStUv", &tag,
                                                    sizeof(tag), batch_done, b),
                         0);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void assert_distinct_identities(struct stub *st)
{
    for (size_t i = 0; i < st->nseen; i++)
        for (size_t j = i + 1; j < st->nseen; j++)
            assert_false(st->seq[i] == st->seq[j] && memcmp(st->inst[i], st->inst[j], 16) == 0);
}

/* 500 requests in flight over 16 connections: all answered, values 1..500
 * each once, every (instance, seq) distinct and accepted by the window. */
static void test_client_many_in_flight(void **state)
{
    (void)state;
    struct stub *st = stub_start();
    struct kpx_upstream *u = client_for(st->base_url, "dev-proxy-token", 10000, 16);
    static struct batch b;
    batch_init(&b, 500);
    batch_start(u, &b, 500);
    assert_true(batch_wait(&b, 20));
    assert_true(b.caller_intact);
    assert_int_equal(b.status[KPX_UPSTREAM_OK], 500);
    qsort(b.values, b.nvalues, sizeof(b.values[0]), cmp_i64);
    for (size_t i = 0; i < b.nvalues; i++)
        assert_int_equal(b.values[i], (int64_t)i + 1);
    assert_int_equal(st->nseen, 500);
    assert_int_equal(st->refused_replayed, 0);
    assert_distinct_identities(st);
    /* again, on the same connections and slots */
    batch_init(&b, 300);
    batch_start(u, &b, 300);
    assert_true(batch_wait(&b, 20));
    assert_int_equal(b.status[KPX_UPSTREAM_OK], 300);
    assert_int_equal(st->nseen, 800);
    assert_distinct_identities(st);
    assert_int_equal(kpx_upstream_renewals(u), 0);
    kpx_upstream_free(u);
    stub_stop(st);
}

/* After k_server "restarts" (it closes the instance it knew), requests of
 * that instance are refused as replayed: the client takes a new instance
 * once and every request is served, none twice. */
static void test_client_renews_on_replay(void **state)
{
    (void)state;
    struct stub *st = stub_start();
    struct kpx_upstream *u = client_for(st->base_url, "dev-proxy-token", 5000, 8);
    int64_t value = 0;
    char msg[512];
    assert_int_equal(
        kpx_upstream_counter_next(u, "AbCdEfGhIjKlMnOpQrStUv", &value, msg, sizeof(msg)),
        KPX_UPSTREAM_OK);
    assert_int_equal(value, 1);
    assert_int_equal(st->nseen, 1);
    uint8_t old[16];
    memcpy(old, st->inst[0], 16);
    assert_int_equal(ksvc_replay_table_close(st->table, old, 1, time(NULL)), 0);
    static struct batch b;
    batch_init(&b, 40);
    batch_start(u, &b, 40);
    assert_true(batch_wait(&b, 10));
    assert_int_equal(b.status[KPX_UPSTREAM_OK], 40);
    assert_int_equal(kpx_upstream_renewals(u), 1);
    assert_true(st->refused_replayed >= 1);
    assert_int_equal(st->nseen, 41);
    for (size_t i = 1; i < st->nseen; i++) /* all served under the new instance */
        assert_memory_not_equal(st->inst[i], old, 16);
    assert_distinct_identities(st);
    qsort(b.values, b.nvalues, sizeof(b.values[0]), cmp_i64);
    for (size_t i = 0; i < b.nvalues; i++)
        assert_int_equal(b.values[i], (int64_t)i + 2);
    kpx_upstream_free(u);
    stub_stop(st);
}

/* A signature k_server does not accept is REFUSED, and no renewal. */
static void test_client_refused(void **state)
{
    (void)state;
    struct stub *st = stub_start();
    struct kpx_upstream *u = client_for(st->base_url, "another-token", 5000, 0);
    int64_t value = 0;
    char msg[512];
    assert_int_equal(
        kpx_upstream_counter_next(u, "AbCdEfGhIjKlMnOpQrStUv", &value, msg, sizeof(msg)),
        KPX_UPSTREAM_REFUSED);
    assert_non_null(strstr(msg, "bad_signature"));
    assert_int_equal(kpx_upstream_renewals(u), 0);
    kpx_upstream_free(u);
    stub_stop(st);
}

static double elapsed_ms(uint64_t t0_us)
{
    return (double)(kcu_now_us() - t0_us) / 1e3;
}

/* A k_server slower than the timeout: TIMEOUT, in about the timeout, also
 * for requests that waited for a connection. */
static void test_client_timeout(void **state)
{
    (void)state;
    struct stub *st = stub_start();
    atomic_store(&st->delay_ms, 900);
    struct kpx_upstream *u = client_for(st->base_url, "dev-proxy-token", 200, 2);
    static struct batch b;
    batch_init(&b, 6);
    uint64_t t0 = kcu_now_us();
    batch_start(u, &b, 6);
    assert_true(batch_wait(&b, 5));
    double ms = elapsed_ms(t0);
    assert_int_equal(b.status[KPX_UPSTREAM_TIMEOUT], 6);
    assert_non_null(strstr(b.last_msg, "did not answer within 200 ms"));
    assert_true(ms >= 150 && ms < 800);
    kpx_upstream_free(u);
    stub_stop(st);
}

/* Answers that are not a counter for this reference are BAD_REPLY. */
static void test_client_bad_reply(void **state)
{
    (void)state;
    struct stub *st = stub_start();
    struct kpx_upstream *u = client_for(st->base_url, "dev-proxy-token", 5000, 0);
    int64_t value = 0;
    char msg[512];
    atomic_store(&st->mode, STUB_FAIL_500);
    assert_int_equal(
        kpx_upstream_counter_next(u, "AbCdEfGhIjKlMnOpQrStUv", &value, msg, sizeof(msg)),
        KPX_UPSTREAM_BAD_REPLY);
    assert_non_null(strstr(msg, "HTTP 500 (internal)"));
    atomic_store(&st->mode, STUB_WRONG_REF);
    assert_int_equal(
        kpx_upstream_counter_next(u, "AbCdEfGhIjKlMnOpQrStUv", &value, msg, sizeof(msg)),
        KPX_UPSTREAM_BAD_REPLY);
    assert_non_null(strstr(msg, "another session reference"));
    atomic_store(&st->mode, STUB_COUNTER);
    assert_int_equal(
        kpx_upstream_counter_next(u, "AbCdEfGhIjKlMnOpQrStUv", &value, msg, sizeof(msg)),
        KPX_UPSTREAM_OK);
    /* the counter header, when sent, is what is read: with a body of no use */
    atomic_store(&st->mode, STUB_HEADER);
    int64_t before = value;
    assert_int_equal(
        kpx_upstream_counter_next(u, "AbCdEfGhIjKlMnOpQrStUv", &value, msg, sizeof(msg)),
        KPX_UPSTREAM_OK);
    assert_true(value == before + 1);
    /* and a bad one is refused, not passed over for a right body */
    atomic_store(&st->mode, STUB_HEADER_BAD);
    assert_int_equal(
        kpx_upstream_counter_next(u, "AbCdEfGhIjKlMnOpQrStUv", &value, msg, sizeof(msg)),
        KPX_UPSTREAM_BAD_REPLY);
    assert_non_null(strstr(msg, "Kcard-Counter header is not"));
    atomic_store(&st->mode, STUB_HEADER_WRONG_REF);
    assert_int_equal(
        kpx_upstream_counter_next(u, "AbCdEfGhIjKlMnOpQrStUv", &value, msg, sizeof(msg)),
        KPX_UPSTREAM_BAD_REPLY);
    assert_non_null(strstr(msg, "another session reference"));
    atomic_store(&st->mode, STUB_COUNTER);
    /* a reference that cannot be signed */
    assert_int_equal(kpx_upstream_counter_next(u, "not a ref!", &value, msg, sizeof(msg)),
                     KPX_UPSTREAM_BAD_REPLY);
    assert_non_null(strstr(msg, "cannot sign"));
    /* nor one too long for a request slot (not cut to a valid one) */
    char longref[KSVC_UPSTREAM_REF_MAX + 8];
    memset(longref, 'A', sizeof(longref) - 1);
    longref[sizeof(longref) - 1] = '\0';
    assert_int_equal(kpx_upstream_counter_next(u, longref, &value, msg, sizeof(msg)),
                     KPX_UPSTREAM_BAD_REPLY);
    assert_non_null(strstr(msg, "cannot sign"));
    kpx_upstream_free(u);
    stub_stop(st);
}

/* Nothing listening: UNREACHABLE, at once. */
static void test_client_unreachable(void **state)
{
    (void)state;
    struct stub *st = stub_start();
    char url[64];
    snprintf(url, sizeof(url), "%s", st->base_url);
    stub_stop(st); /* the port is closed now */
    struct kpx_upstream *u = client_for(url, "dev-proxy-token", 2000, 0);
    int64_t value = 0;
    char msg[512];
    uint64_t t0 = kcu_now_us();
    assert_int_equal(
        kpx_upstream_counter_next(u, "AbCdEfGhIjKlMnOpQrStUv", &value, msg, sizeof(msg)),
        KPX_UPSTREAM_UNREACHABLE);
    assert_true(elapsed_ms(t0) < 1500);
    assert_non_null(strstr(msg, url));
    kpx_upstream_free(u);
}

/* Freeing the client completes requests in flight and queued with
 * UNREACHABLE before it returns; starting after that is refused. */
static void test_client_stop_completes_all(void **state)
{
    (void)state;
    struct stub *st = stub_start();
    atomic_store(&st->delay_ms, 700);
    struct kpx_upstream *u = client_for(st->base_url, "dev-proxy-token", 5000, 4);
    static struct batch b;
    batch_init(&b, 10);
    batch_start(u, &b, 10);
    usleep(100 * 1000); /* 4 on the wire, 6 waiting */
    kpx_upstream_free(u);
    pthread_mutex_lock(&b.lock);
    assert_int_equal(b.got, 10);
    assert_int_equal(b.status[KPX_UPSTREAM_UNREACHABLE], 10);
    assert_string_equal(b.last_msg, "k_proxy is stopping");
    pthread_mutex_unlock(&b.lock);
    stub_stop(st);
}

static void test_client_bad_config(void **state)
{
    (void)state;
    uint8_t key[32] = {0};
    char err[256];
    struct kpx_upstream_cfg cfg = {.base_url = "ftp://127.0.0.1:1", .key = key};
    assert_null(kpx_upstream_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "must start with http:// or https://"));
    /* what curl cannot parse is refused at start, naming the URL and why */
    cfg.base_url = "http://127.0.0.1:99999";
    assert_null(kpx_upstream_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "--server-base-url http://127.0.0.1:99999: "));
    assert_non_null(strstr(err, "Port number"));
    cfg.base_url = "http://exa mple";
    assert_null(kpx_upstream_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "--server-base-url http://exa mple: "));
    struct kpx_upstream *u = client_for("http://127.0.0.1:9", "dev-proxy-token", 1000, 0);
    static struct batch b;
    batch_init(&b, 1);
    uint8_t big[KPX_UPSTREAM_CALLER_MAX + 1] = {0};
    assert_int_equal(kpx_upstream_counter_start(u, NULL, "AbCdEfGhIjKlMnOpQrStUv", big, sizeof(big),
                                                batch_done, &b),
                     -1);
    kpx_upstream_free(u);
    assert_int_equal(b.got, 0);
}

static int curl_setup(void **state)
{
    (void)state;
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int curl_teardown(void **state)
{
    (void)state;
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_vector),
        cmocka_unit_test(test_verify_vector),
        cmocka_unit_test(test_verify_vector_empty_body),
        cmocka_unit_test(test_sign_verify_and_tamper),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_counter_header),
        cmocka_unit_test(test_session_ref),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_metrics_text),
        cmocka_unit_test(test_client_many_in_flight),
        cmocka_unit_test(test_client_renews_on_replay),
        cmocka_unit_test(test_client_refused),
        cmocka_unit_test(test_client_timeout),
        cmocka_unit_test(test_client_bad_reply),
        cmocka_unit_test(test_client_unreachable),
        cmocka_unit_test(test_client_stop_completes_all),
        cmocka_unit_test(test_client_bad_config),
    };
    return cmocka_run_group_tests(tests, curl_setup, curl_teardown);
}

/* rawctap helpers (base64url and hex are util/'s: tests/unit/util): integer
 * parsing, PIN sources, atomic writes, and credential files (save, load,
 * malformed input). No device, no sockets. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "ctaphid/status.h"
#include "triage/rawctap.h"

/* The credential-file code reports through these; rc_err keeps the last
 * message so that a test can check its words. */
static char last_err[1024];

void rc_err(struct rc_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    (void)ctx;
    va_start(ap, fmt);
    vsnprintf(last_err, sizeof(last_err), fmt, ap);
    va_end(ap);
}

void rc_verbose(struct rc_ctx *ctx, int level, const char *fmt, ...)
{
    (void)ctx;
    (void)level;
    (void)fmt;
}

/* rawctap's main reports usage errors (rawctap.c); here the last one is
 * kept, with the command it names. */
static char last_usage[1024];

int rc_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(last_usage, sizeof(last_usage), "%s: ", cmd);
    va_start(ap, fmt);
    vsnprintf(last_usage + n, sizeof(last_usage) - (size_t)n, fmt, ap);
    va_end(ap);
    return RC_EXIT_USAGE;
}

static void test_pin_sources(void **state)
{
    (void)state;
    char buf[16];
    unsetenv("RAWCTAP_PIN");
    assert_int_equal(rc_pin_get(NULL, NULL, buf, sizeof(buf)), 0);
    setenv("RAWCTAP_PIN", "from-env", 1);
    assert_int_equal(rc_pin_get(NULL, NULL, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "from-env");
    char arg[] = "1234";
    assert_int_equal(rc_pin_get(arg, NULL, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "1234");
    /* the command-line copy is wiped */
    assert_memory_equal(arg, "\0\0\0\0", 4);
    /* too long for the buffer */
    char longarg[] = "0123456789abcdefXYZ";
    assert_int_equal(rc_pin_get(longarg, NULL, buf, sizeof(buf)), RC_EXIT_USAGE);

    char path[] = "/tmp/rawctap-pin-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "4321\nsecond line\n", 17), 17);
    close(fd);
    assert_int_equal(rc_pin_get(NULL, path, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "4321");
    /* a first line longer than the buffer is refused, not cut */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789abcdefXYZ\n", 20), 20);
    close(fd);
    assert_int_equal(rc_pin_get(NULL, path, buf, sizeof(buf)), RC_EXIT_USAGE);
    unlink(path);
    assert_int_equal(rc_pin_get(NULL, path, buf, sizeof(buf)), RC_EXIT_USAGE);
    unsetenv("RAWCTAP_PIN");
}

/* --pin and --pin-file as every PIN-taking command keeps and reads them. */
static void test_pin_option(void **state)
{
    char buf[RC_PIN_MAX], arg[] = "2468";
    struct rc_pin_src src = {0};
    bool have = true;
    (void)state;
    unsetenv("RAWCTAP_PIN");
    assert_false(rc_pin_src_opt(&src, 'x', "nope"));
    assert_false(rc_pin_src_opt(&src, RC_OPT_CMD_BASE, "nope"));
    assert_null(src.pin);
    assert_null(src.file);

    /* none given: not an error, unless the command needs one */
    assert_int_equal(rc_pin_src_read(&src, buf, sizeof(buf), &have), 0);
    assert_false(have);
    last_usage[0] = '\0';
    assert_int_equal(rc_pin_src_need(&src, "cred", "cred needs the card's PIN", buf, sizeof(buf)),
                     RC_EXIT_USAGE);
    assert_string_equal(last_usage, "cred: cred needs the card's PIN: --pin, --pin-file or "
                                    "$RAWCTAP_PIN");

    /* a file that is not there: the exit code, no PIN */
    assert_true(rc_pin_src_opt(&src, RC_OPT_PIN_FILE, "/nonexistent/rawctap-pin"));
    assert_string_equal(src.file, "/nonexistent/rawctap-pin");
    have = true;
    assert_int_equal(rc_pin_src_read(&src, buf, sizeof(buf), &have), RC_EXIT_USAGE);
    assert_false(have);
    assert_int_equal(rc_pin_src_need(&src, "pin", "x", buf, sizeof(buf)), RC_EXIT_USAGE);

    /* --pin wins over --pin-file and is wiped from argv once read */
    assert_true(rc_pin_src_opt(&src, RC_OPT_PIN, arg));
    assert_ptr_equal(src.pin, arg);
    assert_int_equal(rc_pin_src_read(&src, buf, sizeof(buf), &have), 0);
    assert_true(have);
    assert_string_equal(buf, "2468");
    assert_int_not_equal(arg[0], '2');
    memset(buf, 0, sizeof(buf));
    strcpy(arg, "1357");
    assert_int_equal(rc_pin_src_need(&src, "pin", "x", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "1357");
}

static void test_write_atomic(void **state)
{
    (void)state;
    char dir[] = "/tmp/rawctap-at-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/f.json", dir);
    assert_int_equal(rc_write_atomic(path, "one", 3), 0);
    assert_int_equal(rc_write_atomic(path, "second", 6), 0);
    FILE *fp = fopen(path, "r");
    char got[16] = "";
    assert_non_null(fp);
    assert_int_equal(fread(got, 1, sizeof(got) - 1, fp), 6);
    fclose(fp);
    assert_string_equal(got, "second");
    unlink(path);
    /* a folder that does not exist: failure, nothing left behind */
    char bad[96];
    snprintf(bad, sizeof(bad), "%s/missing/f.json", dir);
    assert_int_equal(rc_write_atomic(bad, "x", 1), -1);
    assert_int_equal(rmdir(dir), 0);
}

static void test_credfile_round_trip(void **state)
{
    (void)state;
    char dir[] = "/tmp/rawctap-cf-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/cred.json", dir);
    const uint8_t cid[] = {1, 2, 3, 250, 251, 252};
    const uint8_t cose[] = {0xa1, 0x01, 0x02};
    struct rc_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    assert_int_equal(rc_save_cred_file(&ctx, path, "example.org", cid, sizeof(cid), -7, cose,
                                       sizeof(cose), "PEM", 41, "ctap2"),
                     0);
    struct rc_cred_file cf;
    assert_int_equal(rc_cred_file_load(&ctx, path, &cf), 0);
    assert_string_equal(cf.rp_id, "example.org");
    assert_int_equal(cf.cred_id_len, sizeof(cid));
    assert_memory_equal(cf.cred_id, cid, sizeof(cid));
    assert_int_equal(cf.cose_len, sizeof(cose));
    assert_memory_equal(cf.cose, cose, sizeof(cose));
    assert_int_equal(cf.alg, -7);
    assert_int_equal(cf.sign_count, 41);
    assert_false(cf.u2f);
    rc_cred_file_free(&cf);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

static void test_credfile_rejects(void **state)
{
    (void)state;
    struct rc_ctx ctx;
    struct rc_cred_file cf;
    memset(&ctx, 0, sizeof(ctx));
    static const char *bad[] = {
        "",
        "[]",
        "{\"rp_id\":\"a\"}",
        /* sign_count negative */
        "{\"rp_id\":\"a\",\"cred_id\":\"AQ\",\"alg\":-7,\"public_key_cose\":\"a1\","
        "\"sign_count\":-1}",
        /* sign_count above 32 bits */
        "{\"rp_id\":\"a\",\"cred_id\":\"AQ\",\"alg\":-7,\"public_key_cose\":\"a1\","
        "\"sign_count\":4294967296}",
        /* cred_id not base64url */
        "{\"rp_id\":\"a\",\"cred_id\":\"!!\",\"alg\":-7,\"public_key_cose\":\"a1\","
        "\"sign_count\":0}",
        /* key not hex */
        "{\"rp_id\":\"a\",\"cred_id\":\"AQ\",\"alg\":-7,\"public_key_cose\":\"a\","
        "\"sign_count\":0}",
        /* wrong types */
        "{\"rp_id\":1,\"cred_id\":\"AQ\",\"alg\":-7,\"public_key_cose\":\"a1\","
        "\"sign_count\":0}",
        /* duplicate key */
        "{\"rp_id\":\"a\",\"rp_id\":\"b\",\"cred_id\":\"AQ\",\"alg\":-7,"
        "\"public_key_cose\":\"a1\",\"sign_count\":0}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rc_cred_file_parse(&ctx, "t", bad[i], strlen(bad[i]), &cf), RC_EXIT_USAGE);
        assert_null(cf.rp_id);
        assert_null(cf.cred_id);
    }
    const char *good = "{\"rp_id\":\"a\",\"cred_id\":\"AQ\",\"alg\":-7,\"public_key_cose\":"
                       "\"a1\",\"sign_count\":4294967295,\"protocol\":\"ctap1\"}";
    assert_int_equal(rc_cred_file_parse(&ctx, "t", good, strlen(good), &cf), 0);
    assert_int_equal(cf.sign_count, 4294967295u);
    assert_true(cf.u2f);
    rc_cred_file_free(&cf);
}

static void test_json_write_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/rawctap-jw-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], missing[80], text[64];
    snprintf(path, sizeof(path), "%s/f.json", dir);
    snprintf(missing, sizeof(missing), "%s/no/such/f.json", dir);
    struct rc_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    json_t *j = json_pack("{s:i, s:s}", "b", 1, "a", "x");
    assert_non_null(j);
    assert_int_equal(rc_json_write_file(&ctx, path, j, "cannot update"), RC_EXIT_OK);
    /* indented, in the order the keys were set, with a final newline */
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    assert_string_equal(text, "{\n  \"b\": 1,\n  \"a\": \"x\"\n}\n");
    /* a failed write names the step and the path */
    last_err[0] = '\0';
    assert_int_equal(rc_json_write_file(&ctx, missing, j, "cannot update"), RC_EXIT_LOCAL);
    char want[128];
    snprintf(want, sizeof(want), "cannot update %s", missing);
    assert_string_equal(last_err, want);
    json_decref(j);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

static void test_credfile_load_messages(void **state)
{
    (void)state;
    char dir[] = "/tmp/rawctap-cm-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], want[128];
    snprintf(path, sizeof(path), "%s/bad.json", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"rp_id\":", fp);
    fclose(fp);
    struct rc_ctx ctx;
    struct rc_cred_file cf;
    memset(&ctx, 0, sizeof(ctx));
    /* from a file: "cannot read credential file PATH: reason (line N)" */
    assert_int_equal(rc_cred_file_load(&ctx, path, &cf), RC_EXIT_USAGE);
    assert_null(cf.rp_id);
    snprintf(want, sizeof(want), "cannot read credential file %s: ", path);
    assert_memory_equal(last_err, want, strlen(want));
    assert_non_null(strstr(last_err, " (line 1)"));
    /* from a buffer: "credential file NAME: reason (line N)" */
    assert_int_equal(rc_cred_file_parse(&ctx, "buf", "{\"rp_id\":", 9, &cf), RC_EXIT_USAGE);
    assert_memory_equal(last_err, "credential file buf: ", 21);
    assert_non_null(strstr(last_err, " (line 1)"));
    /* a missing file is refused the same way */
    snprintf(path, sizeof(path), "%s/none.json", dir);
    assert_int_equal(rc_cred_file_load(&ctx, path, &cf), RC_EXIT_USAGE);
    snprintf(want, sizeof(want), "cannot read credential file %s: ", path);
    assert_memory_equal(last_err, want, strlen(want));
    snprintf(path, sizeof(path), "%s/bad.json", dir);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

static void test_pubkey_pem(void **state)
{
    (void)state;
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    assert_non_null(pkey);
    char *pem = rc_pubkey_pem(pkey);
    assert_non_null(pem);
    static const char head[] = "-----BEGIN PUBLIC KEY-----\n";
    static const char tail[] = "-----END PUBLIC KEY-----\n";
    size_t n = strlen(pem);
    assert_true(n > sizeof(head) + sizeof(tail));
    assert_memory_equal(pem, head, strlen(head));
    assert_string_equal(pem + n - strlen(tail), tail);
    free(pem);
    EVP_PKEY_free(pkey);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_sources),
        cmocka_unit_test(test_pin_option),
        cmocka_unit_test(test_write_atomic),
        cmocka_unit_test(test_credfile_round_trip),
        cmocka_unit_test(test_credfile_rejects),
        cmocka_unit_test(test_json_write_file),
        cmocka_unit_test(test_credfile_load_messages),
        cmocka_unit_test(test_pubkey_pem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

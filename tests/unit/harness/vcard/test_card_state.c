/* The virtual card's state file: credentials, counters, PIN and keys survive
 * a restart; the file is 0600 and replaced atomically; a corrupt or
 * unreadable file stops vc_card_new with a message naming it. */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctaphid/cbor_util.h"
#include "harness/vcard/card_int.h"
#include "tests/unit/harness/vcard/test_card_util.h"

struct dir {
    char path[256];
    char file[300];
};

static void dir_new(struct dir *d)
{
    snprintf(d->path, sizeof(d->path), "/tmp/vcard-state-XXXXXX");
    assert_non_null(mkdtemp(d->path));
    snprintf(d->file, sizeof(d->file), "%s/card.state", d->path);
}

static int dir_entries(const struct dir *d)
{
    DIR *dp = opendir(d->path);
    struct dirent *e;
    int n = 0;

    assert_non_null(dp);
    while ((e = readdir(dp)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(dp);
    return n;
}

static void dir_free(struct dir *d)
{
    DIR *dp = opendir(d->path);
    struct dirent *e;
    char p[600];

    if (dp != NULL) {
        while ((e = readdir(dp)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(p, sizeof(p), "%s/%s", d->path, e->d_name);
            unlink(p);
        }
        closedir(dp);
    }
    rmdir(d->path);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static struct vc_card *try_open(const char *path, char *err, size_t errlen)
{
    struct vc_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.ctap1 = true;
    cfg.state_path = path;
    return vc_card_new(&cfg, err, errlen);
}

static void test_round_trip(void **state)
{
    struct dir d;
    struct vc_card *c;
    struct mc_opts o = {0};
    struct ga_opts go = {.cdh_seed = 1};
    struct made nonres, res;
    struct got g;
    struct stat st;
    cbor_item_t *r = NULL;
    char *js;

    (void)state;
    dir_new(&d);
    c = card_with(VC_ATT_PACKED_BATCH, true, d.file);
    assert_int_equal(stat(d.file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(make_cred(c, &o, NULL, &nonres), 0);
    o.rk = true;
    o.user_name = "bob";
    assert_int_equal(make_cred(c, &o, NULL, &res), 0);
    go.allow_id = nonres.cred_id;
    go.allow_len = nonres.cred_id_len;
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_int_equal(g.count, 2);
    vc_card_free(c);
    assert_int_equal(dir_entries(&d), 1); /* no temporary file left behind */

    c = card_with(VC_ATT_PACKED_BATCH, true, d.file);
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_int_equal(g.count, 3); /* the counter continued */
    assert_true(check_assertion_sig(&nonres.key, &g, 1));
    go.allow_id = NULL;
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_string_equal(g.user_name, "bob");
    assert_int_equal(g.count, 1);
    assert_true(check_assertion_sig(&res.key, &g, 1));
    js = vc_card_status_json(c);
    assert_non_null(js);
    assert_non_null(strstr(js, "\"credentials\":1"));
    free(js);
    /* the batch certificate is the same after a restart */
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_INFO, NULL, &r, NULL), 0);
    cbor_decref(&r);
    {
        struct made again;
        const cbor_item_t *x1, *x2;
        o.rk = false;
        assert_int_equal(make_cred(c, &o, NULL, &again), 0);
        x1 = cbor_array_handle(map_get_text(again.att_stmt, "x5c"))[0];
        x2 = cbor_array_handle(map_get_text(nonres.att_stmt, "x5c"))[0];
        assert_int_equal(cbor_bytestring_length(x1), cbor_bytestring_length(x2));
        assert_memory_equal(cbor_bytestring_handle(x1), cbor_bytestring_handle(x2),
                            cbor_bytestring_length(x1));
        made_free(&again);
    }
    vc_card_free(c);
    made_free(&nonres);
    made_free(&res);
    dir_free(&d);
}

static void test_corrupt(void **state)
{
    struct dir d;
    struct vc_card *c;
    char err[512];
    uint8_t good[8192];
    size_t good_len;
    FILE *f;
    struct stat st;

    (void)state;
    dir_new(&d);
    /* garbage */
    write_file(d.file, "not cbor at all", 15);
    c = try_open(d.file, err, sizeof(err));
    assert_null(c);
    assert_non_null(strstr(err, d.file));
    assert_non_null(strstr(err, "corrupt"));
    assert_int_equal(stat(d.file, &st), 0);
    assert_int_equal(st.st_size, 15); /* left alone */
    /* empty */
    write_file(d.file, "", 0);
    assert_null(try_open(d.file, err, sizeof(err)));
    assert_non_null(strstr(err, d.file));
    /* valid CBOR, wrong shape */
    write_file(d.file, "\xa1\x61\x61\x01", 4);
    assert_null(try_open(d.file, err, sizeof(err)));
    assert_non_null(strstr(err, "version"));
    /* a real state file, truncated */
    unlink(d.file);
    c = try_open(d.file, err, sizeof(err));
    assert_non_null(c);
    vc_card_free(c);
    f = fopen(d.file, "rb");
    assert_non_null(f);
    good_len = fread(good, 1, sizeof(good), f);
    fclose(f);
    assert_true(good_len > 100 && good_len < sizeof(good));
    write_file(d.file, good, good_len - 10);
    assert_null(try_open(d.file, err, sizeof(err)));
    assert_non_null(strstr(err, "corrupt"));
    /* a directory where the file should be */
    assert_null(try_open(d.path, err, sizeof(err)));
    assert_non_null(strstr(err, d.path));
    /* unreadable */
    write_file(d.file, good, good_len);
    c = try_open(d.file, err, sizeof(err));
    assert_non_null(c);
    vc_card_free(c);
    if (geteuid() != 0) {
        chmod(d.file, 0);
        assert_null(try_open(d.file, err, sizeof(err)));
        assert_non_null(strstr(err, d.file));
    }
    dir_free(&d);
}

/* Two flipped bytes in the master key used to load as a different card:
 * the file's MAC catches them, and the file is left as it was. Files of the
 * earlier formats (the bare map; the map with a SHA-256) still load, and a
 * digest that does not match is refused too. */
static void test_flipped_bytes(void **state)
{
    static const char key[] = "master_key";
    struct dir d;
    struct vc_card *c;
    char err[512];
    uint8_t good[8192], bad[8192], again[8192];
    size_t good_len, again_len;
    uint8_t *at;
    cbor_item_t *outer = NULL, *inner;
    FILE *f;

    (void)state;
    dir_new(&d);
    c = try_open(d.file, err, sizeof(err));
    assert_non_null(c);
    vc_card_free(c);
    f = fopen(d.file, "rb");
    assert_non_null(f);
    good_len = fread(good, 1, sizeof(good), f);
    fclose(f);
    /* "master_key" then a 32-byte string header (0x58 0x20), then the key */
    at = memmem(good, good_len, key, strlen(key));
    assert_non_null(at);
    at += strlen(key);
    assert_int_equal(at[0], 0x58);
    assert_int_equal(at[1], 0x20);
    memcpy(bad, good, good_len);
    bad[at + 5 - good] ^= 0x01;
    bad[at + 20 - good] ^= 0x80;
    write_file(d.file, bad, good_len);
    assert_null(try_open(d.file, err, sizeof(err)));
    assert_non_null(strstr(err, "MAC does not match"));
    assert_non_null(strstr(err, d.file));
    f = fopen(d.file, "rb");
    assert_non_null(f);
    again_len = fread(again, 1, sizeof(again), f);
    fclose(f);
    assert_int_equal(again_len, good_len);
    assert_memory_equal(again, bad, good_len); /* left alone */

    /* the first format: the inner map alone */
    assert_int_equal(kc_cbor_load(good, good_len, &outer), KC_OK);
    inner = kc_cbor_map_get_str(outer, "state");
    assert_non_null(inner);
    write_file(d.file, cbor_bytestring_handle(inner), cbor_bytestring_length(inner));
    c = try_open(d.file, err, sizeof(err));
    assert_non_null(c);
    vc_card_free(c);

    /* the second format: {"sha256", "state"}, good and then damaged */
    {
        uint8_t digest[32], *buf = NULL;
        size_t len = 0;
        cbor_item_t *w = cbor_new_definite_map(2);

        assert_int_equal(
            vc_sha256(cbor_bytestring_handle(inner), cbor_bytestring_length(inner), digest), 0);
        assert_int_equal(kc_cbor_map_add_str(w, "sha256", kc_cbor_new_bytes(digest, 32)), KC_OK);
        assert_int_equal(kc_cbor_map_add_str(w, "state",
                                             kc_cbor_new_bytes(cbor_bytestring_handle(inner),
                                                               cbor_bytestring_length(inner))),
                         KC_OK);
        assert_int_equal(kc_cbor_serialize(w, &buf, &len), KC_OK);
        write_file(d.file, buf, len);
        c = try_open(d.file, err, sizeof(err));
        assert_non_null(c);
        vc_card_free(c);
        buf[len - 3] ^= 0x04; /* a byte of the state, at its end */
        write_file(d.file, buf, len);
        assert_null(try_open(d.file, err, sizeof(err)));
        assert_non_null(strstr(err, "SHA-256 does not match"));
        free(buf);
        cbor_decref(&w);
    }
    cbor_decref(&outer);
    dir_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_flipped_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

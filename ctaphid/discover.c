/* Device discovery for "auto" and `rawctap list`. */
#include "ctaphid/discover.h"

#include <ctype.h>
#include <pthread.h>
#include <unistd.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/clock.h"
#include "ctaphid/hid_desc.h"
#include "ctaphid/io.h"
#include "ctaphid/status.h"
#include "ctaphid/sysfs.h"
#include "ctaphid/trace.h"
#include "ctaphid/transport_int.h"

#define MAX_FIND 256

static void parse_uevent(const char *path, struct kc_dev_entry *e)
{
    char text[4096];
    size_t len = kc_enum_read_file(path, text, sizeof(text));
    struct kc_hid_uevent ue;

    if (len == 0 || kc_hid_uevent_parse(text, len, &ue) != KC_OK)
        return;
    if (ue.have_id) {
        e->bus = ue.bus;
        e->vid = ue.vid;
        e->pid = ue.pid;
    }
    snprintf(e->name, sizeof(e->name), "%s", ue.name);
    snprintf(e->serial, sizeof(e->serial), "%s", ue.uniq);
}

static void add_entry(struct kc_dev_entry *out, size_t cap, size_t *n, const struct kc_dev_entry *e)
{
    if (out != NULL && *n < cap)
        out[*n] = *e;
    (*n)++;
}

static void scan_hidraw(struct kc_dev_entry *out, size_t cap, size_t *n, bool fido_only)
{
    const char *root = kc_enum_env_or("KCARD_SYSFS_HIDRAW", KC_SYSFS_HIDRAW_DEFAULT);
    const char *devdir = kc_enum_env_or("KCARD_DEV_DIR", "/dev");
    size_t count;
    char **names = kc_enum_list_dir(root, &count);
    uint8_t *desc = malloc(KC_HID_DESC_MAX);

    if (desc == NULL) {
        kc_enum_free_names(names, count);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        struct kc_dev_entry e;
        struct kc_hid_desc d;
        char path[1024];
        size_t dlen;

        if (strncmp(names[i], "hidraw", 6) != 0)
            continue;
        memset(&e, 0, sizeof(e));
        snprintf(path, sizeof(path), "%s/%s/device/report_descriptor", root, names[i]);
        dlen = kc_enum_read_file(path, desc, KC_HID_DESC_MAX);
        e.fido = dlen > 0 && kc_hid_desc_parse(desc, dlen, &d) == KC_OK && kc_hid_desc_is_fido(&d);
        if (fido_only && !e.fido)
            continue;
        snprintf(e.uri, sizeof(e.uri), "hidraw:%.200s/%.200s", devdir, names[i]);
        snprintf(e.kind, sizeof(e.kind), "hidraw");
        snprintf(path, sizeof(path), "%s/%s/device/uevent", root, names[i]);
        parse_uevent(path, &e);
        add_entry(out, cap, n, &e);
    }
    free(desc);
    kc_enum_free_names(names, count);
}

static bool known_scheme(const char *uri, char *kind, size_t kindlen)
{
    static const char *const schemes[] = {"udp", "hidraw", "hidapi", "replay"};

    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t l = strlen(schemes[i]);
        if (strncmp(uri, schemes[i], l) == 0 && uri[l] == ':' && uri[l + 1] != '\0') {
            snprintf(kind, kindlen, "%s", schemes[i]);
            return true;
        }
    }
    if (uri[0] == '/') {
        snprintf(kind, kindlen, "hidraw");
        return true;
    }
    return false;
}

static void scan_announced(struct kc_dev_entry *out, size_t cap, size_t *n)
{
    const char *dir = kc_enum_env_or("KCARD_ANNOUNCE_DIR", KC_ANNOUNCE_DIR_DEFAULT);
    size_t count;
    char **names = kc_enum_list_dir(dir, &count);

    for (size_t i = 0; i < count; i++) {
        struct kc_dev_entry e;
        char path[1024], line[KC_URI_MAX + 2];
        FILE *f;
        size_t l;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fgets(line, sizeof(line), f) == NULL) {
            fclose(f);
            continue;
        }
        fclose(f);
        line[strcspn(line, "\r\n")] = '\0';
        for (l = strlen(line); l > 0 && isspace((unsigned char)line[l - 1]); l--)
            line[l - 1] = '\0';
        memset(&e, 0, sizeof(e));
        /* "auto" or junk in an announcement must not loop or mislead. */
        if (strlen(line) >= sizeof(e.uri) || !known_scheme(line, e.kind, sizeof(e.kind)))
            continue;
        memcpy(e.uri, line, strlen(line) + 1);
        snprintf(e.name, sizeof(e.name), "%.127s", names[i]);
        e.fido = true;
        e.announced = true;
        add_entry(out, cap, n, &e);
    }
    kc_enum_free_names(names, count);
}

/* URIs that "auto" resolved from an announce file, so that
 * kc_transport_reopen can follow the card to its next address: the udp
 * transport itself does not know where its URI came from. */
#define REMEMBER_MAX 16
static struct {
    char uri[KC_URI_MAX];
    char name[256];
} remembered[REMEMBER_MAX];
static size_t remembered_next;
static pthread_mutex_t remembered_lock = PTHREAD_MUTEX_INITIALIZER;

static void remember_announced(const char *uri, const char *name)
{
    size_t i;

    pthread_mutex_lock(&remembered_lock);
    for (i = 0; i < REMEMBER_MAX; i++)
        if (strcmp(remembered[i].uri, uri) == 0)
            break;
    if (i == REMEMBER_MAX)
        i = remembered_next++ % REMEMBER_MAX;
    snprintf(remembered[i].uri, sizeof(remembered[i].uri), "%s", uri);
    snprintf(remembered[i].name, sizeof(remembered[i].name), "%s", name);
    pthread_mutex_unlock(&remembered_lock);
}

static bool lookup_announced(const char *uri, char *name, size_t len)
{
    bool found = false;

    pthread_mutex_lock(&remembered_lock);
    for (size_t i = 0; i < REMEMBER_MAX && !found; i++) {
        if (remembered[i].uri[0] != '\0' && strcmp(remembered[i].uri, uri) == 0) {
            snprintf(name, len, "%s", remembered[i].name);
            found = true;
        }
    }
    pthread_mutex_unlock(&remembered_lock);
    return found;
}

static int list_entries(struct kc_dev_entry *out, size_t cap, size_t *n, bool fido_only)
{
    if (n == NULL)
        return KC_ERR_INVALID_ARG;
    *n = 0;
    scan_hidraw(out, cap, n, fido_only);
    scan_announced(out, cap, n);
    return KC_OK;
}

int kc_discover_list(struct kc_dev_entry *out, size_t cap, size_t *n)
{
    return list_entries(out, cap, n, true);
}

int kc_discover_list_all(struct kc_dev_entry *out, size_t cap, size_t *n)
{
    return list_entries(out, cap, n, false);
}

int kc_discover_auto(char *uri, size_t len, char *err, size_t errlen)
{
    struct kc_dev_entry e;
    size_t n = 0;

    if (uri == NULL || len == 0)
        return KC_ERR_INVALID_ARG;
    uri[0] = '\0';
    scan_hidraw(&e, 1, &n, true);
    if (n == 0)
        scan_announced(&e, 1, &n);
    if (n == 0) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen,
                     "auto: no FIDO device: no hidraw node with usage page 0xF1D0 under %s and "
                     "no card announced in %s",
                     kc_enum_env_or("KCARD_SYSFS_HIDRAW", KC_SYSFS_HIDRAW_DEFAULT),
                     kc_enum_env_or("KCARD_ANNOUNCE_DIR", KC_ANNOUNCE_DIR_DEFAULT));
        return KC_ERR_NO_DEVICE;
    }
    if (strlen(e.uri) >= len)
        return KC_ERR_INVALID_ARG;
    snprintf(uri, len, "%s", e.uri);
    if (e.announced)
        remember_announced(e.uri, e.name);
    return KC_OK;
}

/* ---- identity, find, reopen ------------------------------------------ */

static bool same_card(const struct kc_dev_entry *e, const struct kc_card_id *id)
{
    return !e->announced && e->bus == id->bus && e->vid == id->vid && e->pid == id->pid &&
           strcmp(e->serial, id->serial) == 0;
}

int kc_discover_find(const struct kc_card_id *id, char *uri, size_t len, char *err, size_t errlen)
{
    struct kc_dev_entry *e;
    size_t n = 0;
    bool announce;
    int rc = KC_ERR_NO_DEVICE;
    char who[400];

    if (id == NULL || uri == NULL || len == 0)
        return KC_ERR_INVALID_ARG;
    uri[0] = '\0';
    announce = strcmp(id->kind, "announce") == 0;
    if (!announce && strcmp(id->kind, "hidraw") != 0)
        return KC_ERR_INVALID_ARG;
    if ((e = calloc(MAX_FIND, sizeof(*e))) == NULL)
        return KC_ERR_NOMEM;
    if (announce)
        scan_announced(e, MAX_FIND, &n);
    else
        scan_hidraw(e, MAX_FIND, &n, true);
    if (n > MAX_FIND)
        n = MAX_FIND;
    for (size_t i = 0; i < n; i++) {
        bool match = announce ? strcmp(e[i].name, id->announce) == 0 : same_card(&e[i], id);
        if (!match)
            continue;
        if (strlen(e[i].uri) >= len) {
            rc = KC_ERR_INVALID_ARG;
            break;
        }
        snprintf(uri, len, "%s", e[i].uri);
        if (announce)
            remember_announced(e[i].uri, e[i].name);
        rc = KC_OK;
        break;
    }
    free(e);
    if (rc == KC_ERR_NO_DEVICE && err != NULL && errlen > 0) {
        kc_card_id_str(id, who, sizeof(who));
        if (announce)
            snprintf(err, errlen, "card %s is not announced (any more) in %s", who,
                     kc_enum_env_or("KCARD_ANNOUNCE_DIR", KC_ANNOUNCE_DIR_DEFAULT));
        else
            snprintf(err, errlen,
                     "card %s is not back: no FIDO hidraw node with that HID id and serial "
                     "under %s",
                     who, kc_enum_env_or("KCARD_SYSFS_HIDRAW", KC_SYSFS_HIDRAW_DEFAULT));
    }
    return rc;
}

int kc_transport_reopen(struct kc_transport *t)
{
    struct kc_card_id id;
    struct kc_transport *n = NULL, tmp;
    char uri[KC_URI_MAX], err[sizeof(t->last_error)], who[400];
    int rc;

    if (t == NULL || t->kind == NULL)
        return KC_ERR_INVALID_ARG;
    memset(&id, 0, sizeof(id));
    if (strcmp(t->kind, "hidraw") == 0) {
        if (kc_hidraw_identity(t, &id) != KC_OK) {
            t->last_errno = 0;
            snprintf(t->last_error, sizeof(t->last_error),
                     "%.120s: sysfs told nothing of this node when it was opened; cannot follow "
                     "the card",
                     t->uri);
            return KC_ERR_UNSUPPORTED;
        }
    } else if (lookup_announced(t->uri, id.announce, sizeof(id.announce))) {
        snprintf(id.kind, sizeof(id.kind), "announce");
    } else {
        t->last_errno = 0;
        snprintf(t->last_error, sizeof(t->last_error),
                 "%.120s was not found through \"auto\": no identity to follow it by", t->uri);
        return KC_ERR_UNSUPPORTED;
    }
    err[0] = '\0';
    if ((rc = kc_discover_find(&id, uri, sizeof(uri), err, sizeof(err))) != KC_OK ||
        (rc = kc_transport_open(uri, &n, err, sizeof(err))) != KC_OK) {
        t->last_errno = 0;
        snprintf(t->last_error, sizeof(t->last_error), "%s", err);
        return rc;
    }
    /* swap the backends; n now holds the stale one and is closed */
    tmp = *t;
    *t = *n;
    *n = tmp;
    kc_transport_close(n);
    kc_card_id_str(&id, who, sizeof(who));
    t->last_errno = 0;
    snprintf(t->last_error, sizeof(t->last_error), "re-opened card %.100s at %.120s", who, t->uri);
    return KC_OK;
}

int kc_transport_reopen_wait(struct kc_transport *t, int timeout_ms)
{
    uint64_t deadline = kc_now_us() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000u;
    int rc;

    while ((rc = kc_transport_reopen(t)) == KC_ERR_NO_DEVICE && kc_now_us() < deadline)
        usleep(100000);
    return rc;
}

/* ---- opening by URI, "auto" included ---------------------------------- */

int kc_transport_open(const char *uri, struct kc_transport **out, char *errbuf, size_t errlen)
{
    char resolved[KC_URI_MAX];
    int rc;

    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (out == NULL || uri == NULL || uri[0] == '\0')
        return kc_transport_open_backend(uri, out, errbuf, errlen);
    *out = NULL;
    if (strcmp(uri, "auto") != 0) {
        rc = kc_transport_open_backend(uri, out, errbuf, errlen);
    } else {
        /* Resolved on every open, so a card that re-enumerates is found again. */
        if ((rc = kc_discover_auto(resolved, sizeof(resolved), errbuf, errlen)) != KC_OK)
            return rc;
        if (strcmp(resolved, "auto") == 0)
            return KC_ERR_NO_DEVICE;
        if ((rc = kc_transport_open_backend(resolved, out, errbuf, errlen)) == KC_OK)
            (*out)->opened_as_auto = true;
    }
    /* the framing layer follows a re-enumerated card through this */
    if (rc == KC_OK)
        (*out)->reopen = kc_transport_reopen_wait;
    return rc;
}

int kc_dev_open(struct kc_dev **out, const char *uri, const struct kc_timeouts *to, char *errbuf,
                size_t errlen)
{
    struct kc_transport *t = NULL;
    int rc;

    if (out == NULL || uri == NULL)
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if ((rc = kc_transport_open(uri, &t, errbuf, errlen)) != KC_OK)
        return rc;
    return kc_dev_open_transport(out, t, to, uri, errbuf, errlen);
}

/* Device discovery for "auto" and `rawctap list`. */
#include "ctaphid/discover.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/hid_desc.h"
#include "ctaphid/status.h"

#define MAX_NAMES 256

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : def;
}

static int cmp_natural(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;

    /* hidraw2 before hidraw10 */
    while (*x != '\0' && *y != '\0') {
        if (isdigit((unsigned char)*x) && isdigit((unsigned char)*y)) {
            unsigned long nx = strtoul(x, (char **)&x, 10);
            unsigned long ny = strtoul(y, (char **)&y, 10);
            if (nx != ny)
                return nx < ny ? -1 : 1;
            continue;
        }
        if (*x != *y)
            return (unsigned char)*x < (unsigned char)*y ? -1 : 1;
        x++;
        y++;
    }
    return (unsigned char)*x - (unsigned char)*y;
}

/* Directory entries not starting with '.', sorted; NULL-free array of n. */
static char **list_dir(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names;

    *n = 0;
    if (d == NULL)
        return NULL;
    if ((names = calloc(MAX_NAMES, sizeof(*names))) == NULL) {
        closedir(d);
        return NULL;
    }
    while ((e = readdir(d)) != NULL && *n < MAX_NAMES) {
        if (e->d_name[0] == '.')
            continue;
        if ((names[*n] = strdup(e->d_name)) == NULL)
            break;
        (*n)++;
    }
    closedir(d);
    qsort(names, *n, sizeof(*names), cmp_natural);
    return names;
}

static void free_names(char **names, size_t n)
{
    if (names == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL)
        return 0;
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void parse_uevent(const char *path, struct kc_dev_entry *e)
{
    char line[256];
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned bus, vid, pid;
        line[strcspn(line, "\r\n")] = '\0';
        if (sscanf(line, "HID_ID=%x:%x:%x", &bus, &vid, &pid) == 3) {
            e->vid = (uint16_t)vid;
            e->pid = (uint16_t)pid;
        } else if (strncmp(line, "HID_NAME=", 9) == 0) {
            snprintf(e->name, sizeof(e->name), "%.127s", line + 9);
        } else if (strncmp(line, "HID_UNIQ=", 9) == 0) {
            snprintf(e->serial, sizeof(e->serial), "%.63s", line + 9);
        }
    }
    fclose(f);
}

static void add_entry(struct kc_dev_entry *out, size_t cap, size_t *n, const struct kc_dev_entry *e)
{
    if (out != NULL && *n < cap)
        out[*n] = *e;
    (*n)++;
}

static void scan_hidraw(struct kc_dev_entry *out, size_t cap, size_t *n, bool fido_only)
{
    const char *root = env_or("KCARD_SYSFS_HIDRAW", KC_SYSFS_HIDRAW_DEFAULT);
    const char *devdir = env_or("KCARD_DEV_DIR", "/dev");
    size_t count;
    char **names = list_dir(root, &count);
    uint8_t *desc = malloc(KC_HID_DESC_MAX);

    if (desc == NULL) {
        free_names(names, count);
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
        dlen = read_file(path, desc, KC_HID_DESC_MAX);
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
    free_names(names, count);
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
    const char *dir = env_or("KCARD_ANNOUNCE_DIR", KC_ANNOUNCE_DIR_DEFAULT);
    size_t count;
    char **names = list_dir(dir, &count);

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
        add_entry(out, cap, n, &e);
    }
    free_names(names, count);
}

int kc_discover_list(struct kc_dev_entry *out, size_t cap, size_t *n)
{
    if (n == NULL)
        return KC_ERR_INVALID_ARG;
    *n = 0;
    scan_hidraw(out, cap, n, true);
    scan_announced(out, cap, n);
    return KC_OK;
}

int kc_discover_list_all(struct kc_dev_entry *out, size_t cap, size_t *n)
{
    if (n == NULL)
        return KC_ERR_INVALID_ARG;
    *n = 0;
    scan_hidraw(out, cap, n, false);
    scan_announced(out, cap, n);
    return KC_OK;
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
                     env_or("KCARD_SYSFS_HIDRAW", KC_SYSFS_HIDRAW_DEFAULT),
                     env_or("KCARD_ANNOUNCE_DIR", KC_ANNOUNCE_DIR_DEFAULT));
        return KC_ERR_NO_DEVICE;
    }
    if (strlen(e.uri) >= len)
        return KC_ERR_INVALID_ARG;
    snprintf(uri, len, "%s", e.uri);
    return KC_OK;
}

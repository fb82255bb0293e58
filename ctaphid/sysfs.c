/* Reading the sysfs hidraw class without libudev: the directory listing in
 * natural order, small file reads, the HID uevent parser, and a card's
 * identity (HID id and serial) from them. Shared by the hidraw transport
 * (it remembers the identity at open), discovery and enumeration. */
#include "ctaphid/sysfs.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "ctaphid/status.h"
#include "util/hex.h"

#define MAX_NAMES 256

const char *kc_enum_env_or(const char *name, const char *def)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : def;
}

/* ---- small file helpers ------------------------------------------------ */

static int cmp_natural(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;

    while (*x != '\0' && *y != '\0') {
        if (isdigit((unsigned char)*x) && isdigit((unsigned char)*y)) {
            char *ex, *ey;
            unsigned long nx = strtoul(x, &ex, 10);
            unsigned long ny = strtoul(y, &ey, 10);
            if (nx != ny)
                return nx < ny ? -1 : 1;
            x = ex;
            y = ey;
            continue;
        }
        if (*x != *y)
            return (unsigned char)*x < (unsigned char)*y ? -1 : 1;
        x++;
        y++;
    }
    return (unsigned char)*x - (unsigned char)*y;
}

char **kc_enum_list_dir(const char *dir, size_t *n)
{
    DIR *d;
    struct dirent *e;
    char **names;

    *n = 0;
    if ((d = opendir(dir)) == NULL)
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

void kc_enum_free_names(char **names, size_t n)
{
    if (names == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

size_t kc_enum_read_file(const char *path, void *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL)
        return 0;
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* ---- uevent ------------------------------------------------------------- */

static void copy_value(char *dst, size_t cap, const char *src, size_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;

    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* HID_ID=0003:00001209:0000000A */
static bool parse_hid_id(const char *v, size_t len, struct kc_hid_uevent *out)
{
    const char *c1 = memchr(v, ':', len), *c2;
    uint32_t bus, vid, pid;

    if (c1 == NULL || (c2 = memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - v))) == NULL)
        return false;
    if (!kcu_hex_field(v, (size_t)(c1 - v), 8, &bus) ||
        !kcu_hex_field(c1 + 1, (size_t)(c2 - c1 - 1), 8, &vid) ||
        !kcu_hex_field(c2 + 1, len - (size_t)(c2 + 1 - v), 8, &pid))
        return false;
    if (bus > 0xffff || vid > 0xffff || pid > 0xffff)
        return false;
    out->bus = (uint16_t)bus;
    out->vid = (uint16_t)vid;
    out->pid = (uint16_t)pid;
    out->have_id = true;
    return true;
}

int kc_hid_uevent_parse(const char *text, size_t len, struct kc_hid_uevent *out)
{
    size_t i = 0;

    if (out == NULL || (text == NULL && len > 0))
        return KC_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    while (i < len) {
        const char *line = text + i, *nl = memchr(line, '\n', len - i), *eq;
        size_t l = nl != NULL ? (size_t)(nl - line) : len - i;

        i += l + (nl != NULL ? 1 : 0);
        if (l > 0 && line[l - 1] == '\r')
            l--;
        if ((eq = memchr(line, '=', l)) == NULL)
            continue;
        size_t kl = (size_t)(eq - line), vl = l - kl - 1;
        const char *v = eq + 1;
        if (kl == 6 && memcmp(line, "HID_ID", 6) == 0) {
            (void)parse_hid_id(v, vl, out);
        } else if (kl == 8 && memcmp(line, "HID_NAME", 8) == 0) {
            copy_value(out->name, sizeof(out->name), v, vl);
        } else if (kl == 8 && memcmp(line, "HID_UNIQ", 8) == 0) {
            copy_value(out->uniq, sizeof(out->uniq), v, vl);
        } else if (kl == 8 && memcmp(line, "HID_PHYS", 8) == 0) {
            copy_value(out->phys, sizeof(out->phys), v, vl);
        } else if (kl == 6 && memcmp(line, "DRIVER", 6) == 0) {
            copy_value(out->driver, sizeof(out->driver), v, vl);
        }
    }
    return KC_OK;
}

/* ---- a card's identity ------------------------------------------------ */

void kc_card_id_str(const struct kc_card_id *id, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return;
    if (id == NULL)
        snprintf(buf, len, "(none)");
    else if (strcmp(id->kind, "announce") == 0)
        snprintf(buf, len, "announced %s", id->announce);
    else
        snprintf(buf, len, "%04x:%04x:%04x serial %s", id->bus, id->vid, id->pid,
                 id->serial[0] != '\0' ? id->serial : "(none)");
}

int kc_card_id_of_hidraw(const char *path, int fd, struct kc_card_id *id)
{
    const char *root = kc_enum_env_or("KCARD_SYSFS_HIDRAW", KC_SYSFS_HIDRAW_DEFAULT);
    const char *sysname;
    char file[1024], text[4096];
    struct kc_hid_uevent ue;
    size_t len;

    if (path == NULL || id == NULL)
        return KC_ERR_INVALID_ARG;
    memset(id, 0, sizeof(*id));
    sysname = strrchr(path, '/');
    sysname = sysname != NULL ? sysname + 1 : path;
    if (sysname[0] == '\0' || strcmp(sysname, "..") == 0 || strcmp(sysname, ".") == 0)
        return KC_ERR_NO_DEVICE;
    snprintf(file, sizeof(file), "%s/%s/device/uevent", root, sysname);
    len = kc_enum_read_file(file, text, sizeof(text));
    if (len == 0 || kc_hid_uevent_parse(text, len, &ue) != KC_OK || !ue.have_id)
        return KC_ERR_NO_DEVICE;
    if (fd >= 0) {
        /* the name could belong to another node than the one opened (a
         * path outside /dev): trust sysfs only when the numbers agree */
        struct stat st;
        unsigned maj, min;
        snprintf(file, sizeof(file), "%s/%s/dev", root, sysname);
        len = kc_enum_read_file(file, text, sizeof(text) - 1);
        if (len > 0 && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode)) {
            text[len] = '\0';
            if (sscanf(text, "%u:%u", &maj, &min) != 2 || major(st.st_rdev) != maj ||
                minor(st.st_rdev) != min)
                return KC_ERR_NO_DEVICE;
        }
    }
    snprintf(id->kind, sizeof(id->kind), "hidraw");
    id->bus = ue.bus;
    id->vid = ue.vid;
    id->pid = ue.pid;
    snprintf(id->serial, sizeof(id->serial), "%s", ue.uniq);
    return KC_OK;
}

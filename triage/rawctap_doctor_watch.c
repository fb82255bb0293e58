/* rawctap doctor: finding the card again. Discovery of every hidraw node
 * and announced card, the enumeration step (has the card moved or gone?),
 * and the watch that kc_dev polls while a request waits, so a card that
 * moves is named at once rather than after the request's timeout. */
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "triage/rawctap_doctor_run.h"

/* ---- discovery ---- */

static bool is_sysfs_node(const char *uri, char **names, size_t n)
{
    const char *devdir = rc_doc_env_or("KCARD_DEV_DIR", "/dev");
    size_t dl = strlen(devdir);
    if (strncmp(uri, "hidraw:", 7) != 0 || strncmp(uri + 7, devdir, dl) != 0 || uri[7 + dl] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(uri + 8 + dl, names[i]) == 0)
            return true;
    return false;
}

/* hidraw names in the sysfs class directory (a missing directory is none). */
static size_t sysfs_names(char **names, size_t cap)
{
    DIR *d = opendir(rc_doc_env_or("KCARD_SYSFS_HIDRAW", KC_SYSFS_HIDRAW_DEFAULT));
    struct dirent *e;
    size_t n = 0;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < cap)
        if (strncmp(e->d_name, "hidraw", 6) == 0 && (names[n] = strdup(e->d_name)) != NULL)
            n++;
    closedir(d);
    return n;
}

/* Lists every node; marks which entries are hidraw nodes (vs announced). */
size_t rc_doc_discover_all(struct kc_dev_entry *ents, bool *is_node, size_t *n_nodes)
{
    char *names[RC_DOC_MAX_NODES];
    size_t nn = sysfs_names(names, RC_DOC_MAX_NODES);
    size_t n = 0;
    if (kc_discover_list_all(ents, RC_DOC_MAX_NODES, &n) != KC_OK)
        n = 0;
    if (n > RC_DOC_MAX_NODES)
        n = RC_DOC_MAX_NODES;
    *n_nodes = 0;
    for (size_t i = 0; i < n; i++) {
        is_node[i] = is_sysfs_node(ents[i].uri, names, nn);
        if (is_node[i])
            (*n_nodes)++;
    }
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    return n;
}

bool rc_doc_same_card(const struct kc_dev_entry *a, bool a_node, const struct kc_dev_entry *b,
                      bool b_node)
{
    if (a_node != b_node)
        return false;
    if (!a_node) /* an announced card is its announce file */
        return strcmp(a->name, b->name) == 0;
    return a->vid == b->vid && a->pid == b->pid && a->fido == b->fido &&
           strcmp(a->serial, b->serial) == 0 && strcmp(a->name, b->name) == 0;
}

/* ---- enumeration: has the card moved or gone? ---- */

enum rc_doc_where { RC_DOC_WHERE_SAME, RC_DOC_WHERE_MOVED, RC_DOC_WHERE_GONE };

/* Where the chosen card is among ents: still at its address (any entry with
 * its identity there: two cards alike without a serial must not look like
 * one that moved), under another (*now gets it), or gone. */
static enum rc_doc_where where_in(const struct rc_doc_run *run, const struct kc_dev_entry *ents,
                                  const bool *is_node, size_t n, char *now, size_t cap)
{
    const struct kc_dev_entry *other = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!rc_doc_same_card(&run->chosen, run->chosen_node, &ents[i], is_node[i]))
            continue;
        if (strcmp(ents[i].uri, run->chosen.uri) == 0)
            return RC_DOC_WHERE_SAME;
        if (other == NULL)
            other = &ents[i];
    }
    if (other == NULL)
        return RC_DOC_WHERE_GONE;
    if (now)
        snprintf(now, cap, "%s", other->uri);
    return RC_DOC_WHERE_MOVED;
}

void rc_doc_step_enumeration(struct rc_doc_run *run, int wait_ms, int settle_ms)
{
    struct rc_doc_evidence *ev = run->ev;
    uint64_t t0 = kc_now_us();
    if (ev->enum_ran || !run->have_chosen || ev->dev == RC_DOC_DEV_OTHER)
        return;
    struct kc_dev_entry *ents = calloc(RC_DOC_MAX_NODES, sizeof(*ents));
    bool is_node[RC_DOC_MAX_NODES];
    size_t n_nodes = 0;
    if (ents == NULL)
        return;
    bool found = false;
    ev->enum_ran = true;
    snprintf(ev->enum_old, sizeof(ev->enum_old), "%s", run->chosen.uri);
    /* after a failure, give a re-enumerating card a moment to reappear */
    for (;;) {
        size_t n = rc_doc_discover_all(ents, is_node, &n_nodes);
        enum rc_doc_where w = where_in(run, ents, is_node, n, ev->enum_new, sizeof(ev->enum_new));
        found = w != RC_DOC_WHERE_GONE;
        ev->enum_changed = w == RC_DOC_WHERE_MOVED;
        if (ev->enum_changed || rc_doc_ms_since(t0) >= wait_ms ||
            (found && rc_doc_ms_since(t0) >= settle_ms))
            break;
        usleep(RC_DOC_ENUM_POLL_MS * 1000);
    }
    ev->enum_vanished = !found;
    rc_doc_step_add(ev, "enumeration",
                    ev->enum_changed || ev->enum_vanished ? RC_DOC_FAIL : RC_DOC_PASS,
                    rc_doc_ms_since(t0), "%s",
                    ev->enum_changed    ? "the card moved to another node"
                    : ev->enum_vanished ? "the card is gone"
                                        : "the card is where it was");
    free(ents);
}

/* ---- watching the card while requests wait ---- */

/* Where the card doctor opened is now (by its identity: HID id and serial,
 * or its announce file); *now gets the current URI when it moved. */
static enum rc_doc_where card_where(struct rc_doc_run *run, char *now, size_t cap)
{
    struct kc_dev_entry *ents = calloc(RC_DOC_MAX_NODES, sizeof(*ents));
    bool is_node[RC_DOC_MAX_NODES];
    size_t n_nodes = 0;
    enum rc_doc_where w = RC_DOC_WHERE_GONE;
    if (ents == NULL)
        return RC_DOC_WHERE_SAME; /* cannot tell: say nothing */
    size_t n = rc_doc_discover_all(ents, is_node, &n_nodes);
    w = where_in(run, ents, is_node, n, now, cap);
    free(ents);
    return w;
}

static bool watching(const struct rc_doc_run *run)
{
    return run->have_chosen && (run->ev->dev != RC_DOC_DEV_OTHER || run->udp_announce[0]);
}

/* kc_dev's abort poll: ends a wait as soon as the card is seen under another
 * address (or its announcement is withdrawn twice in a row), so REENUMERATED
 * (or, for an explicit address, NO_REPLY) is named within a moment of the
 * move instead of after the request's timeout. */
int rc_doc_watch(void *arg)
{
    struct rc_doc_run *run = arg;
    char uri[KC_URI_MAX] = "";
    if (!watching(run))
        return 0;
    uint64_t now = kc_now_us();
    if (run->watch_last_us != 0 && now - run->watch_last_us < RC_DOC_WATCH_MS * 1000u)
        return 0;
    run->watch_last_us = now;
    enum rc_doc_where w = card_where(run, uri, sizeof(uri));
    if (w == RC_DOC_WHERE_MOVED) {
        if (run->udp_announce[0])
            snprintf(run->ev->moved_hint, sizeof(run->ev->moved_hint), "%s", uri);
        run->moved_abort = true;
        return 1;
    }
    /* a hidraw node that vanished fails the read by itself */
    run->watch_gone = w == RC_DOC_WHERE_GONE && !run->chosen_node ? run->watch_gone + 1 : 0;
    if (run->watch_gone >= 2) {
        run->watch_gone = 0;
        run->moved_abort = true;
        return 1;
    }
    return 0;
}

/* Explicit udp: remember which announce file names this address, so a
 * virtual card that re-plugs can be pointed to. */
void rc_doc_udp_watch_setup(struct rc_doc_run *run, const char *uri)
{
    struct kc_dev_entry *ents = calloc(RC_DOC_MAX_NODES, sizeof(*ents));
    bool is_node[RC_DOC_MAX_NODES];
    size_t n_nodes = 0;
    if (ents == NULL || strncmp(uri, "udp:", 4) != 0) {
        free(ents);
        return;
    }
    size_t n = rc_doc_discover_all(ents, is_node, &n_nodes);
    for (size_t i = 0; i < n; i++)
        if (!is_node[i] && strcmp(ents[i].uri, uri) == 0) {
            run->chosen = ents[i];
            run->chosen_node = false;
            run->have_chosen = true;
            snprintf(run->udp_announce, sizeof(run->udp_announce), "%s", ents[i].name);
            break;
        }
    free(ents);
}

/* After a failure on an explicit udp card: does its announce file name
 * another address now (it may take a moment to be rewritten)? */
void rc_doc_udp_moved_hint(struct rc_doc_run *run)
{
    char uri[KC_URI_MAX] = "";
    uint64_t t0 = kc_now_us();
    if (!run->udp_announce[0] || run->ev->moved_hint[0])
        return;
    for (;;) {
        if (card_where(run, uri, sizeof(uri)) == RC_DOC_WHERE_MOVED) {
            snprintf(run->ev->moved_hint, sizeof(run->ev->moved_hint), "%s", uri);
            return;
        }
        if (rc_doc_ms_since(t0) >= 300)
            return;
        usleep(RC_DOC_ENUM_POLL_MS * 1000);
    }
}

/* The virtual card's control commands (vcard-ctl): approve, deny,
 * presence, fault, clear, unplug, replug, personality, status. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/vcard/personality.h"
#include "harness/vcard/script.h"

#include "harness/vcard/server_internal.h"
#include "util/clock.h"

static json_t *faults_json(const struct vc_faults *f)
{
    json_t *a = json_array();

    for (int k = 0; a != NULL && k < VC_FAULT_COUNT; k++) {
        char buf[48];

        if (!f->on[k])
            continue;
        if (k == VC_FAULT_SLOW_CTAP1 || k == VC_FAULT_DROP_EVERY || k == VC_FAULT_DUPLICATE_EVERY)
            snprintf(buf, sizeof(buf), "%s:%d", vc_fault_name((enum vc_fault_kind)k), f->arg[k]);
        else
            snprintf(buf, sizeof(buf), "%s", vc_fault_name((enum vc_fault_kind)k));
        json_array_append_new(a, json_string(buf));
    }
    return a;
}

static json_t *status_json(struct vc_server *s)
{
    char host[INET_ADDRSTRLEN];
    char mode[32];
    json_t *o;
    json_t *clients = json_array();
    char *card;

    inet_ntop(AF_INET, &s->addr.sin_addr, host, sizeof(host));
    vc_presence_format(&s->presence, mode, sizeof(mode));
    for (size_t i = 0; clients != NULL && i < s->nclients; i++) {
        char a[INET_ADDRSTRLEN];
        char peer[64];

        inet_ntop(AF_INET, &s->clients[i].addr.sin_addr, a, sizeof(a));
        snprintf(peer, sizeof(peer), "%s:%u", a, ntohs(s->clients[i].addr.sin_port));
        json_array_append_new(clients, json_pack("{s:s, s:I}", "address", peer, "reports",
                                                 (json_int_t)s->clients[i].requests));
    }
    o = json_pack("{s:b, s:s, s:s, s:i, s:s, s:o, s:b, s:b, s:b, s:o, s:i, s:I, s:I}", "ok", 1,
                  "uri", s->uri, "listen", host, "port", ntohs(s->addr.sin_port), "presence", mode,
                  "faults", faults_json(&s->faults), "presence_pending", s->presence_pending,
                  "busy", s->job_active || s->job_ready, "unplugged", s->faults.on[VC_FAULT_UNPLUG],
                  "clients", clients ? clients : json_array(), "channels",
                  (int)vc_hid_channel_count(s->hid), "requests", (json_int_t)s->completed,
                  "replugs", (json_int_t)s->replugs);
    if (o == NULL)
        return NULL;
    if (s->announce_path != NULL)
        json_object_set_new(o, "announce", json_string(s->announce_path));
    json_object_set_new(o, "personality", json_string(vc_card_personality(s->card)->name));
    json_object_set_new(o, "reply_port",
                        s->reply_port ? json_integer(ntohs(s->reply_port)) : json_null());
    json_object_set_new(o, "uhid", json_boolean(s->uhid != NULL));
    if (s->script != NULL)
        json_object_set_new(o, "script", vc_script_status(s->script));
    card = vc_card_status_json(s->card);
    if (card != NULL) {
        json_t *c = json_loads(card, 0, NULL);

        if (c != NULL)
            json_object_set_new(o, "card", c);
        free(card);
    }
    return o;
}

static json_t *reply_ok(void)
{
    return json_pack("{s:b}", "ok", 1);
}

json_t *vcs_reply_err(const char *msg)
{
    json_t *o = json_pack("{s:b, s:s}", "ok", 0, "error", msg);

    /* jansson refuses text that is not UTF-8: never leave the caller empty */
    return o ? o : json_pack("{s:b, s:s}", "ok", 0, "error", "bad command");
}

static bool printable_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 ? *s != '\t' : (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static json_t *decide(struct vc_server *s, enum vc_up_result d)
{
    if (s->presence_pending) {
        s->decision = (int)d;
        pthread_cond_broadcast(&s->cv);
        return json_pack("{s:b, s:s}", "ok", 1, "applied", "pending");
    }
    s->armed = (int)d;
    s->armed_until_ms = kcu_now_ms() + ARMED_DECISION_MS;
    return json_pack("{s:b, s:s}", "ok", 1, "applied", "next");
}

/* presence MODE */
static json_t *cmd_presence(struct vc_server *s, const char *arg)
{
    char err[320];
    struct vc_presence p;

    if (vc_presence_parse(arg, &p, err, sizeof(err)) < 0)
        return vcs_reply_err(err);
    s->presence = p;
    pthread_cond_broadcast(&s->cv);
    return reply_ok();
}

/* fault PROFILE: "replug" is an action, the others a state */
static json_t *cmd_fault(struct vc_server *s, const char *arg)
{
    char err[320];
    struct vc_faults f = s->faults;

    if (vc_fault_parse(arg, &f, err, sizeof(err)) < 0)
        return vcs_reply_err(err);
    if (f.on[VC_FAULT_REPLUG]) {
        /* an action, not a state: replug now */
        f.on[VC_FAULT_REPLUG] = false;
        s->faults = f;
        if (vcs_do_replug(s, err, sizeof(err)) < 0)
            return vcs_reply_err(err);
        return json_pack("{s:b, s:s}", "ok", 1, "uri", s->uri);
    }
    s->faults = f;
    if (f.on[VC_FAULT_UNPLUG])
        vcs_do_unplug(s);
    else
        vcs_apply_faults(s);
    pthread_cond_broadcast(&s->cv);
    return reply_ok();
}

/* personality NAME */
static json_t *cmd_personality(struct vc_server *s, const char *arg)
{
    char err[320];
    const struct vc_personality *p = vc_personality_find(arg);

    if (p == NULL) {
        vc_personality_unknown(arg, err, sizeof(err));
        return vcs_reply_err(err);
    }
    /* another card model plugged in: a replug with the new personality */
    if (vc_card_set_personality(s->card, p, err, sizeof(err)) < 0 ||
        vcs_do_replug(s, err, sizeof(err)) < 0)
        return vcs_reply_err(err);
    return json_pack("{s:b, s:s, s:s}", "ok", 1, "uri", s->uri, "personality", p->name);
}

/* clear: no faults; an unplugged card comes back */
static json_t *cmd_clear(struct vc_server *s)
{
    char err[320];
    bool was_unplugged = s->faults.on[VC_FAULT_UNPLUG];

    memset(&s->faults, 0, sizeof(s->faults));
    vcs_apply_faults(s);
    if (was_unplugged && vcs_announce_write(s) < 0)
        return vcs_reply_err("cannot rewrite the announce file");
    if (was_unplugged && vcs_uhid_plug(s, err, sizeof(err)) < 0)
        return vcs_reply_err(err);
    pthread_cond_broadcast(&s->cv);
    return reply_ok();
}

/* One control line; returns the JSON reply. Lock held. */
json_t *vcs_control_command(struct vc_server *s, char *line)
{
    char err[320];
    char *arg;

    if (!printable_ascii(line))
        return vcs_reply_err("commands are printable ASCII");
    while (*line == ' ' || *line == '\t')
        line++;
    arg = strpbrk(line, " \t");
    if (arg != NULL) {
        *arg++ = '\0';
        while (*arg == ' ' || *arg == '\t')
            arg++;
        if (*arg == '\0')
            arg = NULL;
    }
    if (strcmp(line, "approve") == 0 || strcmp(line, "deny") == 0) {
        if (arg != NULL)
            return vcs_reply_err("approve/deny take no argument");
        return decide(s, line[0] == 'a' ? VC_UP_APPROVED : VC_UP_DENIED);
    }
    if (strcmp(line, "presence") == 0)
        return cmd_presence(s, arg);
    if (strcmp(line, "fault") == 0)
        return cmd_fault(s, arg);
    if (strcmp(line, "personality") == 0)
        return cmd_personality(s, arg);
    if (arg != NULL)
        return vcs_reply_err("this command takes no argument");
    if (strcmp(line, "clear") == 0)
        return cmd_clear(s);
    if (strcmp(line, "unplug") == 0) {
        vcs_do_unplug(s);
        return reply_ok();
    }
    if (strcmp(line, "replug") == 0) {
        if (vcs_do_replug(s, err, sizeof(err)) < 0)
            return vcs_reply_err(err);
        return json_pack("{s:b, s:s}", "ok", 1, "uri", s->uri);
    }
    if (strcmp(line, "status") == 0) {
        json_t *o = status_json(s);

        return o ? o : vcs_reply_err("out of memory");
    }
    snprintf(err, sizeof(err),
             "unknown command '%.40s' (approve, deny, presence MODE, fault PROFILE, clear, "
             "unplug, replug, personality NAME, status)",
             line);
    return vcs_reply_err(err);
}

char *vc_server_control(struct vc_server *s, const char *line)
{
    char buf[CTL_LINE_MAX];
    size_t len = strlen(line);
    json_t *o;
    char *text;

    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len >= sizeof(buf) || memchr(line, '\n', len) != NULL) {
        o = vcs_reply_err("command line too long or not one line");
    } else {
        memcpy(buf, line, len);
        buf[len] = '\0';
        pthread_mutex_lock(&s->mu);
        o = vcs_control_command(s, buf);
        pthread_mutex_unlock(&s->mu);
    }
    text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return text;
}

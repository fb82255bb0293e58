/* vcard --script: a recorded card served to clients (see script.h). The
 * playback is libctaphid's replay player, the same that --device replay:
 * uses, so a client that rawctap replay accepts is served the same way. */
#include "harness/vcard/script.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/replay_player.h"
#include "ctaphid/status.h"

struct vc_script {
    char file[256];
    struct kc_player *player;
    vc_hid_send_fn send;
    void *send_ctx;
    FILE *log;
    struct vc_hid_peer reply_to; /* the client whose request is being answered */
    bool have_peer;
    bool logged;
    uint64_t due_us;
};

static int wrap(struct kc_trace_log *log, uint64_t now_us, const char *name, struct vc_script **out)
{
    struct vc_script *sc = calloc(1, sizeof(*sc));
    int rc;

    if (sc == NULL) {
        kc_trace_log_free(log);
        return KC_ERR_NOMEM;
    }
    if ((rc = kc_player_new(log, now_us, &sc->player)) != KC_OK) {
        free(sc);
        return rc;
    }
    snprintf(sc->file, sizeof(sc->file), "%s", name);
    sc->log = stderr;
    sc->due_us = UINT64_MAX;
    *out = sc;
    return KC_OK;
}

int vc_script_load(const char *path, struct vc_script **out, char *err, size_t errlen)
{
    struct kc_trace_log *log;
    int rc;

    if (out == NULL || path == NULL)
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if ((rc = kc_trace_log_load(path, &log, err, errlen)) != KC_OK)
        return rc;
    return wrap(log, 0, path, out);
}

int vc_script_load_buffer(const char *data, size_t len, const char *name, struct vc_script **out,
                          char *err, size_t errlen)
{
    struct kc_trace_log *log;
    int rc;

    if (out == NULL)
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if ((rc = kc_trace_log_parse(data, len, name, &log, err, errlen)) != KC_OK)
        return rc;
    return wrap(log, 0, name != NULL ? name : "(buffer)", out);
}

void vc_script_free(struct vc_script *sc)
{
    if (sc == NULL)
        return;
    kc_player_free(sc->player);
    free(sc);
}

void vc_script_set_send(struct vc_script *sc, vc_hid_send_fn send, void *ctx)
{
    if (sc == NULL)
        return;
    sc->send = send;
    sc->send_ctx = ctx;
}

void vc_script_set_log(struct vc_script *sc, FILE *log)
{
    if (sc != NULL)
        sc->log = log;
}

static void send_report(struct vc_script *sc, const uint8_t *rep, size_t len)
{
    uint8_t full[KC_HID_REPORT_LEN];

    if (sc->send == NULL || !sc->have_peer)
        return;
    memset(full, 0, sizeof(full));
    memcpy(full, rep, len < sizeof(full) ? len : sizeof(full));
    sc->send(sc->send_ctx, &sc->reply_to, full);
}

static void log_divergence(struct vc_script *sc)
{
    json_t *o;
    char *line;

    if (sc->logged || sc->log == NULL)
        return;
    sc->logged = true;
    o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "event", "script_diverged", "file", sc->file,
                  "report", (json_int_t)kc_player_diverged_report(sc->player), "line",
                  (json_int_t)kc_player_diverged_line(sc->player), "position",
                  (json_int_t)kc_player_position(sc->player), "error", kc_player_error(sc->player));
    line = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (line != NULL) {
        fprintf(sc->log, "%s\n", line);
        fflush(sc->log);
    }
    free(line);
    json_decref(o);
}

/* A request the trace does not have: CTAPHID_ERROR ERR_OTHER on its
 * channel, so the client fails at once and visibly. */
static void refuse(struct vc_script *sc, const uint8_t *report, size_t len)
{
    uint8_t err[KC_HID_INIT_HDR + 1] = {0};

    if (len < 4)
        return;
    memcpy(err, report, 4);
    err[4] = KC_HID_ERROR;
    err[6] = 1;
    err[7] = KC_HID_ERR_OTHER;
    send_report(sc, err, sizeof(err));
}

void vc_script_tick(struct vc_script *sc, uint64_t now_ms)
{
    uint8_t rep[KC_HID_REPORT_LEN];
    uint64_t now_us = now_ms * 1000u;
    size_t n;

    if (sc == NULL)
        return;
    while ((n = kc_player_card_report(sc->player, now_us, rep, sizeof(rep), &sc->due_us)) > 0)
        send_report(sc, rep, n);
}

void vc_script_input(struct vc_script *sc, const struct vc_hid_peer *from, const uint8_t *report,
                     size_t len, uint64_t now_ms)
{
    bool was_diverged;
    int rc;

    if (sc == NULL || from == NULL || report == NULL || len == 0)
        return;
    if (len > KC_HID_REPORT_LEN)
        len = KC_HID_REPORT_LEN;
    was_diverged = kc_player_diverged(sc->player);
    sc->reply_to = *from;
    sc->have_peer = true;
    rc = kc_player_host_report(sc->player, report, len, now_ms * 1000u);
    if (rc == KC_ERR_REPLAY_DIVERGED) {
        log_divergence(sc);
        /* once per request: the report that ended the replay, then every
         * message start */
        if (!was_diverged || (len >= 5 && (report[4] & KC_HID_TYPE_INIT) != 0))
            refuse(sc, report, len);
        return;
    }
    vc_script_tick(sc, now_ms);
}

uint64_t vc_script_deadline(const struct vc_script *sc)
{
    if (sc == NULL || sc->due_us == UINT64_MAX)
        return UINT64_MAX;
    return (sc->due_us + 999u) / 1000u;
}

json_t *vc_script_status(const struct vc_script *sc)
{
    if (sc == NULL)
        return json_null();
    return json_pack("{s:s, s:I, s:I, s:b, s:o}", "file", sc->file, "position",
                     (json_int_t)kc_player_position(sc->player), "messages",
                     (json_int_t)kc_player_messages(sc->player), "diverged",
                     kc_player_diverged(sc->player), "error",
                     kc_player_diverged(sc->player) ? json_string(kc_player_error(sc->player))
                                                    : json_null());
}

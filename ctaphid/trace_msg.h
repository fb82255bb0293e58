/* A JSON-lines trace (trace.h) read back as data: its reports in order, and
 * the host's reports reassembled into the CTAPHID messages it sent, so that
 * replay (the "replay:" transport, vcard --script) can match a new host's
 * messages against the recorded ones and play back what the card answered.
 * Also writes one report as a trace line, for tools that make traces from
 * other sources (rawctap trace import). */
#ifndef KCARD_CTAPHID_TRACE_MSG_H
#define KCARD_CTAPHID_TRACE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/status.h"

#define KC_TRACE_LOG_MAX_BYTES (16u * 1024u * 1024u)
#define KC_TRACE_LOG_MAX_REPORTS 200000u
#define KC_TRACE_REPORT_MAX 1024u /* bytes in one recorded report */

/* One recorded report. */
struct kc_trace_rec {
    bool in; /* card to host */
    bool has_t;
    uint64_t t_us;    /* the trace's own timestamp */
    size_t line;      /* 1-based line in the trace */
    size_t report_no; /* 1-based among the trace's reports */
    size_t len;
    uint8_t *data;
};

/* One message the host sent, as recorded. A report that starts no message
 * and continues none (a stray continuation) is a message of its own with
 * cmd 0 and the whole report as data. */
struct kc_trace_msg {
    size_t first, last; /* indexes of its first and last report in rec[] */
    uint32_t cid;
    uint8_t cmd;   /* CTAPHID command byte (0x80 bit set), 0 for a stray report */
    bool complete; /* every byte the init packet announced arrived */
    size_t bcnt;   /* the length the init packet announced */
    size_t len;    /* bytes that arrived */
    uint8_t *data;
};

struct kc_trace_log {
    char name[128];
    struct kc_trace_rec *rec;
    size_t n;
    struct kc_trace_msg *msg;
    size_t nmsg;
};

/* Parses a JSON-lines trace held in memory; event and blank lines are
 * skipped. name is used in messages. KC_OK, or a KC_ERR_* with errbuf
 * naming the line and what was wrong. */
int kc_trace_log_parse(const char *data, size_t len, const char *name, struct kc_trace_log **out,
                       char *errbuf, size_t errlen);
/* The same from a file (at most KC_TRACE_LOG_MAX_BYTES). */
int kc_trace_log_load(const char *path, struct kc_trace_log **out, char *errbuf, size_t errlen);
void kc_trace_log_free(struct kc_trace_log *log);

/* Reassembles a sequence of host reports into messages, as the trace's are
 * (also used for the live host in replay). */
struct kc_msg_asm {
    bool active;
    uint32_t cid;
    uint8_t cmd;
    size_t bcnt;
    size_t have;
    uint8_t next_seq;
    uint8_t buf[KC_HID_MAX_MSG];
};
enum kc_asm_result {
    KC_ASM_MORE = 0,  /* the report started or continued a message that wants more */
    KC_ASM_DONE = 1,  /* the report completed the message in the assembler */
    KC_ASM_STRAY = 2, /* the report belongs to no message (left alone) */
};
/* A report that starts a message while another is incomplete: the caller
 * sees kc_msg_asm_busy() first and decides what the incomplete one was. */
enum kc_asm_result kc_msg_asm_feed(struct kc_msg_asm *a, const uint8_t *report, size_t len);
/* true when report is an init packet (starts a message). */
bool kc_report_is_init(const uint8_t *report, size_t len);

/* One report as a trace line in trace.c's JSON format (t_us, dir, cid, cmd,
 * seq, len, hex), without the newline; malloc'd, NULL when out of memory. */
char *kc_trace_report_line(uint64_t t_us, bool in, const uint8_t *report, size_t len);

#endif

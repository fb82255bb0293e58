/*
 * A virtual card's HID face through Linux UHID: the kernel makes a real
 * hidraw node for it, so tools talk to the virtual card exactly as they
 * talk to a USB security key. One UHID device is the FIDO interface
 * (usage page 0xF1D0, 64-byte input and output reports); an optional
 * second one is a vendor-defined interface beside it (usage page 0xFF00),
 * as on the card in the runbook (hidraw0 FIDO, hidraw1 vendor).
 *
 * The module only moves reports; CTAPHID framing is the caller's job.
 * It compiles everywhere; vc_uhid_open() fails cleanly without /dev/uhid.
 */
#ifndef KCARD_HARNESS_VCARD_UHID_H
#define KCARD_HARNESS_VCARD_UHID_H

#include <stddef.h>
#include <stdint.h>

#define VC_UHID_REPORT_LEN 64
#define VC_UHID_DEFAULT_PATH "/dev/uhid"
#define VC_UHID_DEFAULT_NAME "kcard virtual card"

struct vc_uhid_config {
    const char *dev_path; /* NULL: /dev/uhid */
    uint16_t vendor_id;
    uint16_t product_id;
    const char *name;     /* HID_NAME; NULL: VC_UHID_DEFAULT_NAME */
    const char *serial;   /* HID_UNIQ; NULL: empty */
    int vendor_interface; /* nonzero: add the vendor-defined interface */
    /*
     * Wait this long for the kernel's UHID_START on each device before
     * returning (0: do not wait). Waiting also orders the hidraw nodes:
     * the FIDO interface gets the lower number.
     */
    int start_timeout_ms;
};

struct vc_uhid;

/* One event read from a UHID descriptor, decoded and checked. */
enum vc_uhid_event_kind {
    VC_UHID_EV_START,
    VC_UHID_EV_STOP,
    VC_UHID_EV_OPEN,
    VC_UHID_EV_CLOSE,
    VC_UHID_EV_OUTPUT,     /* report[] holds one 64-byte output report */
    VC_UHID_EV_BAD_OUTPUT, /* an output report of the wrong shape */
    VC_UHID_EV_GET_REPORT, /* request_id must be answered */
    VC_UHID_EV_SET_REPORT, /* request_id must be answered */
    VC_UHID_EV_OTHER,
};

struct vc_uhid_event {
    enum vc_uhid_event_kind kind;
    uint32_t request_id;
    unsigned char report[VC_UHID_REPORT_LEN];
};

/*
 * Decodes len bytes read from a UHID descriptor. An output report must be
 * 65 bytes, a report-id byte 0 (hidraw passes it through) and 64 bytes of
 * payload; anything else is VC_UHID_EV_BAD_OUTPUT. Returns 0, or -1 when
 * buf is too short to be an event.
 */
int vc_uhid_parse_event(const void *buf, size_t len, struct vc_uhid_event *ev);

/* The report descriptors, for tests and for tools that describe them. */
const unsigned char *vc_uhid_fido_descriptor(size_t *len);
const unsigned char *vc_uhid_vendor_descriptor(size_t *len);

/* Creates the device(s). Returns 0, or -1 with a reason in err. */
int vc_uhid_open(const struct vc_uhid_config *cfg, struct vc_uhid **out, char *err, size_t errlen);

/* The FIDO interface's descriptor, for poll(): POLLIN means an event. */
int vc_uhid_fd(const struct vc_uhid *u);

/* The vendor interface's descriptor, or -1 without one. */
int vc_uhid_vendor_fd(const struct vc_uhid *u);

/*
 * Handles the FIDO interface's events until an output report arrives or
 * timeout_ms passes (0: only what is pending; <0: wait forever). Returns 1
 * with the report stored, 0 when none came, -1 on error (errno set).
 */
int vc_uhid_read_output(struct vc_uhid *u, unsigned char report[VC_UHID_REPORT_LEN],
                        int timeout_ms);

/* Sends one 64-byte input report (UHID_INPUT2). Returns 0 or -1 (errno). */
int vc_uhid_send_input(struct vc_uhid *u, const unsigned char report[VC_UHID_REPORT_LEN]);

/*
 * Handles every pending event of the vendor interface; its output reports
 * are dropped. Returns 0 or -1 (errno). Call it when vc_uhid_vendor_fd()
 * polls readable, so the kernel's event queue never fills.
 */
int vc_uhid_service_vendor(struct vc_uhid *u);

/* Nonzero once the kernel started the FIDO interface (UHID_START). */
int vc_uhid_is_started(const struct vc_uhid *u);

/* How many hidraw clients hold the FIDO interface open (UHID_OPEN). */
int vc_uhid_open_count(const struct vc_uhid *u);

/* Output reports dropped because of their shape. */
unsigned long vc_uhid_bad_outputs(const struct vc_uhid *u);

/* GET_REPORT/SET_REPORT requests refused (the card has no feature reports). */
unsigned long vc_uhid_refused_requests(const struct vc_uhid *u);

/* Destroys the device(s) (UHID_DESTROY) and frees u. NULL is a no-op. */
void vc_uhid_close(struct vc_uhid *u);

#endif

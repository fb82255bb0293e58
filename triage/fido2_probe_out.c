/* fido2-probe output: nodes and presence results as text and JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/status.h"
#include "triage/fido2_probe.h"

static json_t *hex16(uint16_t v)
{
    char buf[8];

    snprintf(buf, sizeof(buf), "%04x", v);
    return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

/* json_object_set_new that tolerates a NULL value (allocation failure):
 * the key is then left out rather than the process aborted. */
static void put(json_t *o, const char *key, json_t *v)
{
    if (o != NULL && v != NULL)
        json_object_set_new(o, key, v);
}

static json_t *ms_json(double ms)
{
    return ms < 0 ? json_null() : json_real((double)(long long)(ms * 1000.0 + 0.5) / 1000.0);
}

json_t *fp_node_json(const struct kc_hid_node *nd)
{
    json_t *o = json_object(), *sib = json_array();
    char usage[16], mode[8];

    if (o == NULL || sib == NULL) {
        json_decref(o);
        json_decref(sib);
        return NULL;
    }
    put(o, "path", json_string(nd->path));
    put(o, "uri", json_string(nd->uri));
    put(o, "kind", json_string(nd->kind));
    put(o, "fido", json_boolean(nd->fido));
    if (nd->have_id) {
        put(o, "bus", json_string(kc_hid_bus_name(nd->bus)));
        put(o, "bus_id", json_integer(nd->bus));
        put(o, "vendor_id", hex16(nd->vid));
        put(o, "product_id", hex16(nd->pid));
    } else {
        put(o, "bus", json_string(strcmp(nd->kind, "hidraw") == 0 ? "unknown" : nd->kind));
        put(o, "bus_id", json_null());
        put(o, "vendor_id", json_null());
        put(o, "product_id", json_null());
    }
    put(o, "hid_name", json_string(nd->name));
    put(o, "hid_uniq", json_string(nd->uniq));
    put(o, "hid_phys", str_or_null(nd->phys));
    if (nd->have_desc) {
        snprintf(usage, sizeof(usage), "0x%04x", nd->usage_page);
        put(o, "usage_page", json_string(usage));
        snprintf(usage, sizeof(usage), "0x%04x", nd->usage);
        put(o, "usage", json_string(usage));
    } else {
        put(o, "usage_page", json_null());
        put(o, "usage", json_null());
    }
    put(o, "in_report_len",
        nd->in_report_len > 0 ? json_integer((json_int_t)nd->in_report_len) : json_null());
    put(o, "out_report_len",
        nd->out_report_len > 0 ? json_integer((json_int_t)nd->out_report_len) : json_null());
    put(o, "interface", nd->interface >= 0 ? json_integer(nd->interface) : json_null());
    put(o, "virtual", json_boolean(nd->is_virtual));
    if (nd->access == KC_ACCESS_UNKNOWN)
        put(o, "permission", json_null());
    else
        put(o, "permission", json_boolean(nd->access == KC_ACCESS_OK));
    put(o, "access", json_string(kc_access_name(nd->access)));
    if (nd->have_stat) {
        snprintf(mode, sizeof(mode), "%04o", nd->mode);
        put(o, "owner", json_string(nd->owner));
        put(o, "group", json_string(nd->group));
        put(o, "mode", json_string(mode));
    }
    if (nd->access != KC_ACCESS_OK && nd->access != KC_ACCESS_UNKNOWN) {
        put(o, "error", json_string(strerror(nd->access_errno)));
        put(o, "fix", json_string(nd->fix));
    }
    put(o, "device", str_or_null(nd->device));
    for (size_t i = 0; i < nd->n_siblings && i < KC_ENUM_MAX_SIBLINGS; i++)
        json_array_append_new(sib, json_string(nd->siblings[i]));
    json_object_set_new(o, "siblings", sib);
    return o;
}

int fp_print_list_json(FILE *f, const struct kc_hid_node *nodes, size_t n)
{
    fputs("[", f);
    for (size_t i = 0; i < n; i++) {
        json_t *o = fp_node_json(&nodes[i]);
        char *s = o != NULL
                      ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6))
                      : NULL;
        json_decref(o);
        if (s == NULL)
            return -1;
        fprintf(f, "%s\n%s", i == 0 ? "" : ",", s);
        free(s);
    }
    fputs(n > 0 ? "\n]\n" : "]\n", f);
    return 0;
}

static void print_node_text(FILE *f, const struct kc_hid_node *nd)
{
    fprintf(f, "%s  %s  %s", nd->path[0] != '\0' ? nd->path : nd->uri,
            nd->fido ? "FIDO" : "not-FIDO", nd->kind);
    if (nd->have_id)
        fprintf(f, "  %s %04x:%04x", kc_hid_bus_name(nd->bus), nd->vid, nd->pid);
    if (nd->name[0] != '\0')
        fprintf(f, "  \"%s\"", nd->name);
    if (nd->uniq[0] != '\0')
        fprintf(f, "  serial %s", nd->uniq);
    fputc('\n', f);
    if (strcmp(nd->kind, "hidraw") != 0 && strcmp(nd->kind, "hidapi") != 0) {
        fprintf(f, "    announced virtual card: %s\n", nd->uri);
        return;
    }
    fprintf(f, "    uri %s", nd->uri);
    if (nd->have_desc)
        fprintf(f, ", usage page 0x%04x usage 0x%04x", nd->usage_page, nd->usage);
    else
        fprintf(f, ", report descriptor unknown");
    if (nd->in_report_len > 0)
        fprintf(f, ", reports in %zu / out %zu bytes", nd->in_report_len, nd->out_report_len);
    if (nd->interface >= 0)
        fprintf(f, ", interface %d", nd->interface);
    fputc('\n', f);
    if (nd->access == KC_ACCESS_OK)
        fprintf(f, "    read-write: yes\n");
    else if (nd->access != KC_ACCESS_UNKNOWN) {
        fprintf(f, "    read-write: no (%s", strerror(nd->access_errno));
        if (nd->have_stat)
            fprintf(f, "; owner %s:%s mode %04o", nd->owner, nd->group, nd->mode);
        fprintf(f, ")\n    fix: %s\n", nd->fix);
    }
    if (nd->n_siblings > 0) {
        fprintf(f, "    same device:");
        for (size_t i = 0; i < nd->n_siblings && i < KC_ENUM_MAX_SIBLINGS; i++)
            fprintf(f, " %s", nd->siblings[i]);
        fputc('\n', f);
    }
    if (nd->device[0] != '\0')
        fprintf(f, "    device %s\n", nd->device);
}

void fp_print_list_text(FILE *f, const struct kc_hid_node *nodes, size_t n)
{
    if (n == 0) {
        fprintf(f, "%s\n", FP_NO_DEVICES);
        return;
    }
    for (size_t i = 0; i < n; i++)
        print_node_text(f, &nodes[i]);
}

static void aaguid_str(const uint8_t *a, char *buf, size_t len)
{
    static const int dash[] = {4, 6, 8, 10};
    size_t o = 0;

    for (int i = 0; i < KC_AAGUID_LEN && o + 3 < len; i++) {
        for (size_t k = 0; k < sizeof(dash) / sizeof(dash[0]); k++)
            if (i == dash[k] && o + 1 < len)
                buf[o++] = '-';
        o += (size_t)snprintf(buf + o, len - o, "%02x", a[i]);
    }
    buf[o < len ? o : len - 1] = '\0';
}

json_t *fp_probe_json(const struct kc_probe_result *r)
{
    json_t *o = json_object();
    char buf[64];

    if (o == NULL)
        return NULL;
    put(o, "present", json_boolean(r->present));
    put(o, "device", str_or_null(r->uri));
    if (r->have_id) {
        put(o, "bus", json_string(kc_hid_bus_name(r->id.bus)));
        put(o, "vendor_id", hex16(r->id.vid));
        put(o, "product_id", hex16(r->id.pid));
        put(o, "hid_uniq", json_string(r->id.serial));
    }
    put(o, "error", r->present ? json_null() : json_string(r->error));
    put(o, "error_code", r->present ? json_null() : json_string(kc_probe_fail_code(r->fail)));
    if (!r->present)
        put(o, "fix", str_or_null(r->fix));
    put(o, "open_ms", ms_json(r->open_ms));
    put(o, "init_ms", ms_json(r->init_ms));
    put(o, "getinfo_ms", ms_json(r->getinfo_ms));
    put(o, "total_ms", ms_json(r->total_ms));
    if (r->init_ok) {
        json_t *c = json_object();
        snprintf(buf, sizeof(buf), "%08x", r->init.cid);
        put(c, "cid", json_string(buf));
        put(c, "protocol", json_integer(r->init.protocol_version));
        snprintf(buf, sizeof(buf), "%u.%u.%u", r->init.major, r->init.minor, r->init.build);
        put(c, "device_version", json_string(buf));
        put(c, "wink", json_boolean(r->init.capabilities & KC_HID_CAP_WINK));
        put(c, "cbor", json_boolean(r->init.capabilities & KC_HID_CAP_CBOR));
        put(c, "nmsg", json_boolean(r->init.capabilities & KC_HID_CAP_NMSG));
        put(o, "ctaphid", c);
    }
    put(o, "ctap2", json_boolean(r->ctap2));
    if (r->info_ok) {
        json_t *v = json_array(), *p = json_array(), *opts = json_object();
        for (size_t i = 0; i < r->info.n_versions && v != NULL; i++)
            json_array_append_new(v, json_string(r->info.versions[i]));
        put(o, "versions", v);
        aaguid_str(r->info.aaguid, buf, sizeof(buf));
        put(o, "aaguid", json_string(buf));
        for (size_t i = 0; i < r->info.n_pin_protocols && p != NULL; i++)
            json_array_append_new(p, json_integer((json_int_t)r->info.pin_protocols[i]));
        put(o, "pin_protocols", p);
        for (size_t i = 0; i < r->info.n_options && opts != NULL; i++)
            json_object_set_new(opts, r->info.options[i].name,
                                json_boolean(r->info.options[i].value));
        put(o, "options", opts);
    } else if (r->init_ok && !r->ctap2) {
        put(o, "versions", json_pack("[s]", "U2F_V2"));
    }
    return o;
}

static void print_ms(FILE *f, const char *name, double ms)
{
    if (ms >= 0)
        fprintf(f, " %s %.1f ms", name, ms);
    else
        fprintf(f, " %s -", name);
}

void fp_print_probe_text(FILE *f, const struct kc_probe_result *r)
{
    char buf[64];

    fprintf(f, "device: %s", r->uri[0] != '\0' ? r->uri : "(none)");
    if (r->have_id) {
        char id[400];
        kc_card_id_str(&r->id, id, sizeof(id));
        fprintf(f, " (card %s)", id);
    }
    fprintf(f, "\npresent: %s\n", r->present ? "yes" : "no");
    if (!r->present) {
        fprintf(f, "error: %s [%s]\n", r->error, kc_probe_fail_code(r->fail));
        if (r->fix[0] != '\0')
            fprintf(f, "fix: %s\n", r->fix);
    }
    fprintf(f, "timings:");
    print_ms(f, "open", r->open_ms);
    print_ms(f, "init", r->init_ms);
    print_ms(f, "getInfo", r->getinfo_ms);
    print_ms(f, "total", r->total_ms);
    fputc('\n', f);
    if (r->init_ok)
        fprintf(f,
                "ctaphid: channel %08x, protocol %u, device version %u.%u.%u, capabilities%s%s%s\n",
                r->init.cid, r->init.protocol_version, r->init.major, r->init.minor, r->init.build,
                r->init.capabilities & KC_HID_CAP_WINK ? " wink" : "",
                r->init.capabilities & KC_HID_CAP_CBOR ? " cbor" : "",
                r->init.capabilities & KC_HID_CAP_NMSG ? " nmsg" : "");
    if (r->init_ok && !r->ctap2)
        fprintf(f, "versions: U2F_V2 (no CBOR capability: CTAP1 only, getInfo not asked)\n");
    if (!r->info_ok)
        return;
    fprintf(f, "versions:");
    for (size_t i = 0; i < r->info.n_versions; i++)
        fprintf(f, "%s %s", i == 0 ? "" : ",", r->info.versions[i]);
    aaguid_str(r->info.aaguid, buf, sizeof(buf));
    fprintf(f, "\naaguid: %s\npin protocols: ", buf);
    kc_info_pin_protocols_str(&r->info, buf, sizeof(buf));
    fprintf(f, "%s\noptions:", buf);
    for (size_t i = 0; i < r->info.n_options; i++)
        fprintf(f, "%s %s=%s", i == 0 ? "" : ",", r->info.options[i].name,
                r->info.options[i].value ? "true" : "false");
    fputc('\n', f);
}

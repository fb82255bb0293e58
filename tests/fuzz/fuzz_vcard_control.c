/* libFuzzer target: the virtual card's control command lines (presence
 * modes, fault profiles, every command), run against a real server bound to
 * a free loopback port. Every reply must be a JSON object with "ok". */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness/vcard/card.h"
#include "harness/vcard/server.h"

static struct vc_card *card;
static struct vc_server *srv;

static int setup(void)
{
    struct vc_config cfg;
    struct vc_server_config scfg;
    char err[256];

    memset(&cfg, 0, sizeof(cfg));
    cfg.attestation = VC_ATT_NONE;
    cfg.ctap1 = true;
    card = vc_card_new(&cfg, err, sizeof(err));
    if (card == NULL)
        return -1;
    memset(&scfg, 0, sizeof(scfg));
    scfg.listen = "127.0.0.1:0";
    scfg.presence.mode = VC_PRESENCE_YES;
    srv = vc_server_new(card, &scfg, err, sizeof(err));
    return srv == NULL ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char line[600];
    char *reply;
    json_t *o;

    if (srv == NULL && setup() < 0)
        abort();
    if (size >= sizeof(line))
        size = sizeof(line) - 1;
    memcpy(line, data, size);
    line[size] = '\0';
    reply = vc_server_control(srv, line);
    if (reply == NULL)
        abort();
    o = json_loads(reply, 0, NULL);
    if (o == NULL || !json_is_boolean(json_object_get(o, "ok")))
        abort();
    json_decref(o);
    free(reply);
    return 0;
}

#!/usr/bin/python3
"""Interop: Debian's python-fido2 drives kcard's virtual card's
authenticatorConfig (fido2.ctap2.Config) and the PIN/UV retry counters
(ClientPin.get_pin_retries / get_uv_retries) over UDP, each result checked
against what getInfo then says.

Usage: python_fido2_config.py HOST PORT config   (a ctap2.1-full card, no PIN)
       python_fido2_config.py HOST PORT uv       (a card started with --uv)
Prints one "ok - ..." / "not ok - ..." line per check, then "N passed, M failed".
"""
import hashlib
import os
import sys

from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.config import Config
from fido2.ctap2.pin import ClientPin
from fido2.hid import CtapHidDevice
from fido2.hid.base import HidDescriptor

import udp_ctaphid as u

check = u.Checks()
E = CtapError.ERR


def expect(fn, code):
    return lambda: u.expect_ctap_error(fn, code)


def config_run(ctap2):
    st = {}

    def info_says(**want):
        i = ctap2.get_info()
        got = {
            "alwaysUv": i.options.get("alwaysUv"),
            "ep": i.options.get("ep"),
            "min": i.min_pin_length,
            "force": i.force_pin_change,
        }
        for k, v in want.items():
            if got[k] != v:
                raise AssertionError("getInfo %s=%r, wanted %r (%r)" % (k, got[k], v, got))
        return "getInfo %s" % got

    def offered():
        i = ctap2.get_info()
        assert i.options.get("authnrCfg") is True, i.options
        assert i.options.get("setMinPINLength") is True, i.options
        assert i.max_rpids_for_min_pin >= 1, i.max_rpids_for_min_pin
        return info_says(alwaysUv=False, ep=False, min=4)

    check("getInfo offers authnrCfg and setMinPINLength", offered)

    def toggle_unprotected():
        Config(ctap2).toggle_always_uv()
        return info_says(alwaysUv=True)

    check("Config.toggle_always_uv without a PIN", toggle_unprotected)
    check(
        "alwaysUv on: Config needs a token even without a PIN (PUAT_REQUIRED)",
        expect(lambda: Config(ctap2).toggle_always_uv(), E.PIN_REQUIRED),
    )

    cp = ClientPin(ctap2)
    st["cp"] = cp
    check("ClientPin.set_pin 1234", lambda: cp.set_pin("1234"))
    check(
        "ClientPin.get_pin_retries is (8, False)",
        lambda: cp.get_pin_retries() == (8, False) or u.fail(str(cp.get_pin_retries())),
    )
    check(
        "Config without a token once a PIN is set: PUAT_REQUIRED",
        expect(lambda: Config(ctap2).toggle_always_uv(), E.PIN_REQUIRED),
    )

    def mc_token_refused():
        tok = cp.get_pin_token("1234", ClientPin.PERMISSION.MAKE_CREDENTIAL, "example.org")
        Config(ctap2, cp.protocol, tok).toggle_always_uv()

    check("a token without acfg: PIN_AUTH_INVALID", expect(mc_token_refused, E.PIN_AUTH_INVALID))

    def acfg():
        return cp.get_pin_token("1234", ClientPin.PERMISSION.AUTHENTICATOR_CFG)

    def toggle_off():
        Config(ctap2, cp.protocol, acfg()).toggle_always_uv()
        return info_says(alwaysUv=False)

    check("Config.toggle_always_uv with an acfg token turns it off", toggle_off)

    def set_min():
        Config(ctap2, cp.protocol, acfg()).set_min_pin_length(6, rp_ids=["example.org"])
        return info_says(min=6, force=True)

    check("Config.set_min_pin_length 6: minPINLength 6, forcePINChange", set_min)
    check(
        "a token while forcePINChange: PIN_POLICY_VIOLATION",
        expect(acfg, E.PIN_POLICY_VIOLATION),
    )
    check(
        "change_pin to 5 digits below the minimum: PIN_POLICY_VIOLATION",
        expect(lambda: cp.change_pin("1234", "12345"), E.PIN_POLICY_VIOLATION),
    )

    def change_ok():
        cp.change_pin("1234", "123456")
        return info_says(force=False, min=6)

    check("change_pin to 6 digits clears forcePINChange", change_ok)

    def lower_refused():
        Config(ctap2, cp.protocol, cp.get_pin_token("123456", 0x20)).set_min_pin_length(5)

    check("the minimum never goes down", expect(lower_refused, E.PIN_POLICY_VIOLATION))

    def ep():
        Config(ctap2, cp.protocol, cp.get_pin_token("123456", 0x20))._call(
            Config.CMD.ENABLE_ENTERPRISE_ATT
        )
        info = info_says(ep=True)
        cdh = hashlib.sha256(os.urandom(32)).digest()
        resp = ctap2.send_cbor(
            Ctap2.CMD.MAKE_CREDENTIAL,
            {
                1: cdh,
                2: {"id": "example.org", "name": "Example"},
                3: {"id": b"user-ep", "name": "alice"},
                4: [{"type": "public-key", "alg": -7}],
                10: 2,
            },
        )
        assert resp.get(4) is True, "epAtt %r" % resp.get(4)
        return info + ", makeCredential enterpriseAttestation 2: epAtt true"

    check("enableEnterpriseAttestation, then epAtt on makeCredential", ep)

    def toggle_pin():
        Config(ctap2, cp.protocol, cp.get_pin_token("123456", 0x20)).toggle_always_uv()
        return info_says(alwaysUv=True)

    check("Config.toggle_always_uv on again", toggle_pin)

    def soft_block():
        for want in (E.PIN_INVALID, E.PIN_INVALID, E.PIN_AUTH_BLOCKED):
            u.expect_ctap_error(lambda: cp.get_pin_token("000000", 0x20), want)
        got = cp.get_pin_retries()
        assert got == (5, True), got
        return "retries %d, powerCycleState %s" % got

    check("3 wrong PINs: get_pin_retries (5, True)", soft_block)
    check(
        "get_uv_retries without built-in UV: INVALID_SUBCOMMAND",
        expect(cp.get_uv_retries, E.INVALID_SUBCOMMAND),
    )


def uv_run(ctap2):
    cp = ClientPin(ctap2)
    check("getInfo says uv", lambda: ctap2.info.options.get("uv") is True or u.fail("no uv"))
    check(
        "ClientPin.get_uv_retries is 8",
        lambda: cp.get_uv_retries()[0] == 8 or u.fail(str(cp.get_uv_retries())),
    )


def main():
    if len(sys.argv) != 4 or not sys.argv[2].isdigit() or sys.argv[3] not in ("config", "uv"):
        u.die("usage: %s HOST PORT config|uv" % sys.argv[0])
    host, port = sys.argv[1], int(sys.argv[2])
    u.bound_run()
    desc = HidDescriptor("udp:%s:%d" % (host, port), 0, 0, u.REPORT, u.REPORT)
    dev = CtapHidDevice(desc, u.UdpConnection(host, port))
    ctap2 = Ctap2(dev)
    if sys.argv[3] == "config":
        config_run(ctap2)
    else:
        uv_run(ctap2)
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())

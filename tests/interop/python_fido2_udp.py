#!/usr/bin/python3
"""Interop: Debian's python-fido2 (an independent FIDO2 client library) drives
kcard's virtual card over UDP and verifies what it returns.

Usage: python_fido2_udp.py HOST PORT
Prints one "ok - ..." / "not ok - ..." line per check, then "N passed, M failed".
Every socket read has a timeout, so a silent card fails the check, not the run.
The probes that can fail are in python_fido2_probes.py and python_fido2_cards.py.
"""
import hashlib
import os
import sys

from fido2 import cose
from fido2.attestation import Attestation
from fido2.ctap1 import Ctap1
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.hid import CtapHidDevice
from fido2.hid.base import HidDescriptor

import udp_ctaphid as u

REPORT = u.REPORT
check = u.Checks(client="")


def main():
    if len(sys.argv) != 3 or not sys.argv[2].isdigit():
        u.die("usage: %s HOST PORT" % sys.argv[0])
    host, port = sys.argv[1], int(sys.argv[2])
    u.bound_run()
    desc = HidDescriptor("udp:%s:%d" % (host, port), 0, 0, REPORT, REPORT)
    dev = CtapHidDevice(desc, u.UdpConnection(host, port))
    ctap2 = Ctap2(dev)
    state = {}

    def info():
        i = ctap2.info
        assert "FIDO_2_0" in i.versions, i.versions
        assert len(i.aaguid) == 16
        return "versions=%s protocols=%s" % (i.versions, i.pin_uv_protocols)

    check("python-fido2 getInfo", info)
    check("python-fido2 ping echo", lambda: dev.ping(b"kcard" * 300) == b"kcard" * 300 or 1 / 0)

    def make_cred(alg, key):
        def run():
            cdh = hashlib.sha256(os.urandom(32)).digest()
            att = ctap2.make_credential(
                cdh,
                {"id": "example.org", "name": "Example"},
                {"id": b"user-" + key.encode(), "name": "alice"},
                [{"type": "public-key", "alg": alg}],
            )
            result = Attestation.for_type(att.fmt)().verify(
                att.att_statement, att.auth_data, cdh
            )
            cred = att.auth_data.credential_data
            assert att.auth_data.rp_id_hash == hashlib.sha256(b"example.org").digest()
            assert att.auth_data.is_user_present()
            state[key] = cred
            return "fmt=%s type=%s alg=%d" % (att.fmt, result.attestation_type.name, alg)

        return run

    def get_assert(key):
        def run():
            cred = state[key]
            cdh = hashlib.sha256(os.urandom(32)).digest()
            a = ctap2.get_assertion(
                "example.org", cdh, [{"type": "public-key", "id": cred.credential_id}]
            )
            a.verify(cdh, cred.public_key)
            assert a.auth_data.rp_id_hash == hashlib.sha256(b"example.org").digest()
            return "signCount=%d" % a.auth_data.counter

        return run

    check("python-fido2 makeCredential ES256 + attestation verified", make_cred(cose.ES256.ALGORITHM, "es256"))
    check("python-fido2 getAssertion ES256 verified", get_assert("es256"))
    check("python-fido2 makeCredential EdDSA + attestation verified", make_cred(cose.EdDSA.ALGORITHM, "eddsa"))
    check("python-fido2 getAssertion EdDSA verified", get_assert("eddsa"))

    def pin_flow(proto_cls):
        def run():
            cp = ClientPin(ctap2, proto_cls())
            retries = cp.get_pin_retries()[0]
            if not ctap2.get_info().options.get("clientPin"):
                cp.set_pin("1234")
            # CTAP 2.1 requires permissions with subcommand 9 (the card
            # advertises pinUvAuthToken); python-fido2 0.9 omits them unless asked
            token = cp.get_pin_token(
                "1234", ClientPin.PERMISSION.MAKE_CREDENTIAL, "example.org"
            )
            cdh = hashlib.sha256(b"pin").digest()
            param = cp.protocol.authenticate(token, cdh)
            att = ctap2.make_credential(
                cdh,
                {"id": "example.org"},
                {"id": b"pinuser", "name": "bob"},
                [{"type": "public-key", "alg": -7}],
                pin_uv_param=param,
                pin_uv_protocol=cp.protocol.VERSION,
            )
            assert att.auth_data.is_user_verified(), "UV flag not set with a PIN token"
            return "protocol %d, retries %d" % (cp.protocol.VERSION, retries)

        return run

    check("python-fido2 ClientPIN protocol 2 token + makeCredential UV", pin_flow(PinProtocolV2))
    check("python-fido2 ClientPIN protocol 1 token + makeCredential UV", pin_flow(PinProtocolV1))

    def u2f():
        ctap1 = Ctap1(dev)
        assert ctap1.get_version() == "U2F_V2"
        app = hashlib.sha256(b"https://example.org").digest()
        chal = hashlib.sha256(b"challenge").digest()
        reg = ctap1.register(chal, app)
        reg.verify(app, chal)
        sig = ctap1.authenticate(chal, app, reg.key_handle)
        sig.verify(app, chal, reg.public_key)
        return "counter=%d" % sig.counter

    check("python-fido2 CTAP1 register + authenticate verified", u2f)
    dev.close()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())

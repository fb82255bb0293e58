#!/usr/bin/python3
"""Interop: Debian's python-fido2 LargeBlobs and the hmac-secret extension
(an independent client) against kcard's virtual card over UDP.

Usage: python_fido2_largeblob.py HOST PORT PIN RAWCTAP_ARRAY_FILE OUT_ARRAY_HEX_FILE
RAWCTAP_ARRAY_FILE holds the CBOR array rawctap wrote before this run (more
than one fragment); python-fido2 must read exactly it. Then python-fido2
writes its own array (with a token holding the lbw permission, protocols 1
and 2) and saves that array's CBOR in hex to OUT_ARRAY_HEX_FILE for the
calling script to read back with rawctap.

python-fido2 0.9.1 sends `length` = the fragment's length with every
fragment of a write, where CTAP 2.1 6.10.2 wants the total length with the
first fragment only; a spec-conforming card therefore refuses its writes of
more than one fragment (INTEGRITY_FAILURE after the first fragment). That
is checked as such, and python-fido2's own writes here fit one fragment.
hmac-secret: a credential made with it, then getAssertion with one and two
salts under PIN protocols 1 and 2: outputs are 32 bytes, stable between
runs and protocols, and output1 of two salts equals the one-salt output.
Prints "ok - ..." lines and "N passed, M failed".
"""
import hashlib
import os
import sys

from fido2 import cbor
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2, LargeBlobs
from fido2.ctap2.extensions import HmacSecretExtension
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2

import udp_ctaphid as u

check = u.Checks(client="python-fido2")


def main():
    if len(sys.argv) != 6 or not sys.argv[2].isdigit():
        u.die(__doc__)
    host, port, pin = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(sys.argv[4], "rb") as f:
        rawctap_array = f.read()
    out_file = sys.argv[5]
    u.bound_run()

    class Args:
        pass

    a = Args()
    a.host, a.port, a.timeout, a.local_port = host, port, 5.0, None
    dev, _conn = u.open_device(a)
    ctap2 = Ctap2(dev)
    info = ctap2.info

    def lb_token(protocol=None):
        cp = ClientPin(ctap2, protocol)
        return cp, cp.get_pin_token(pin, ClientPin.PERMISSION.LARGE_BLOB_WRITE)

    def info_options():
        if info.options.get("largeBlobs") is not True:
            u.fail("getInfo options %r lack largeBlobs" % info.options)
        if info.max_large_blob is None or info.max_large_blob < 1024:
            u.fail("maxSerializedLargeBlobArray %r" % info.max_large_blob)
        return "largeBlobs, maxSerializedLargeBlobArray %d" % info.max_large_blob

    def read_rawctap():
        if len(rawctap_array) + 16 <= info.max_msg_size - 64:
            u.fail("rawctap's array fits one fragment: not a fragmented read")
        got = LargeBlobs(ctap2).read_blob_array()
        if cbor.encode(got) != rawctap_array:
            u.fail("read %r, rawctap wrote %s" % (got, rawctap_array.hex()))
        return "%d bytes in fragments of %d, as rawctap wrote them" % (len(rawctap_array) + 16, info.max_msg_size - 64)

    one = [{1: os.urandom(1500), 2: os.urandom(12), 3: 1500}]
    two = [{1: os.urandom(1200), 2: os.urandom(12), 3: 9}, {1: os.urandom(900), 2: os.urandom(12), 3: 7}]

    def write_v2():
        cp, token = lb_token(PinProtocolV2())
        lb = LargeBlobs(ctap2, cp.protocol, token)
        lb.write_blob_array(one)
        if LargeBlobs(ctap2).read_blob_array() != one:
            u.fail("read back differs")
        with open(out_file, "w") as f:
            f.write(cbor.encode(one).hex())
        return "%d bytes written and read back" % (len(cbor.encode(one)) + 16)

    def write_v1():
        cp, token = lb_token(PinProtocolV1())
        lb = LargeBlobs(ctap2, cp.protocol, token)
        lb.write_blob_array([b"v1"])
        if LargeBlobs(ctap2).read_blob_array() != [b"v1"]:
            u.fail("read back differs")
        return "protocol 1 token accepted"

    def multi_fragment_write():
        cp, token = lb_token(PinProtocolV2())
        lb = LargeBlobs(ctap2, cp.protocol, token)
        return u.expect_ctap_error(lambda: lb.write_blob_array(two), CtapError.ERR.INTEGRITY_FAILURE)

    def write_without_token():
        return u.expect_ctap_error(lambda: LargeBlobs(ctap2).write_blob_array([]), 0x36)  # PUAT_REQUIRED

    def write_wrong_permission():
        cp = ClientPin(ctap2, PinProtocolV2())
        token = cp.get_pin_token(pin, ClientPin.PERMISSION.GET_ASSERTION, "example.com")
        lb = LargeBlobs(ctap2, cp.protocol, token)
        return u.expect_ctap_error(lambda: lb.write_blob_array([]), CtapError.ERR.PIN_AUTH_INVALID)

    def bad_hash_refused():
        cp, token = lb_token(PinProtocolV2())
        data = cbor.encode([b"x"]) + b"\0" * 16  # a wrong hash
        msg = b"\xff" * 32 + b"\x0c\x00" + (0).to_bytes(4, "little") + hashlib.sha256(data).digest()
        param = cp.protocol.authenticate(token, msg)
        return u.expect_ctap_error(
            lambda: ctap2.large_blobs(0, set=data, length=len(data), pin_uv_protocol=cp.protocol.VERSION, pin_uv_param=param),
            CtapError.ERR.INTEGRITY_FAILURE,
        )

    check("getInfo largeBlobs", info_options)
    check("LargeBlobs.read_blob_array == rawctap's array", read_rawctap)
    check("LargeBlobs set without a token: PUAT_REQUIRED", write_without_token)
    check("LargeBlobs set with a ga-only token: PIN_AUTH_INVALID", write_wrong_permission)
    check("LargeBlobs set with a wrong hash: INTEGRITY_FAILURE", bad_hash_refused)
    check("LargeBlobs.write_blob_array with protocol 1", write_v1)
    check("0.9.1's multi-fragment write (length per fragment) refused: INTEGRITY_FAILURE", multi_fragment_write)
    check("LargeBlobs.write_blob_array with protocol 2, read back", write_v2)

    # ---- hmac-secret ----
    rp = {"id": "example.com", "name": "Example"}
    user = {"id": b"hmac-user", "name": "hmac"}
    params = [{"type": "public-key", "alg": -7}]
    state = {}

    def make():
        cp = ClientPin(ctap2, PinProtocolV2())
        token = cp.get_pin_token(pin, ClientPin.PERMISSION.MAKE_CREDENTIAL, "example.com")
        cdh = os.urandom(32)
        att = ctap2.make_credential(
            cdh, rp, user, params, extensions={"hmac-secret": True},
            pin_uv_param=cp.protocol.authenticate(token, cdh), pin_uv_protocol=cp.protocol.VERSION,
        )
        if att.auth_data.extensions.get("hmac-secret") is not True:
            u.fail("authData extensions %r" % att.auth_data.extensions)
        state["cred"] = {"type": "public-key", "id": att.auth_data.credential_data.credential_id}
        return "hmac-secret: true in authData"

    salt1, salt2 = hashlib.sha256(b"salt one").digest(), hashlib.sha256(b"salt two").digest()

    def hmac(proto, salts):
        ext = HmacSecretExtension(ctap2, proto)
        inp = {"salt1": salts[0]}
        if len(salts) > 1:
            inp["salt2"] = salts[1]
        ext_in = ext.process_get_input({"hmacGetSecret": inp})
        r = ctap2.get_assertion("example.com", os.urandom(32), [state["cred"]], extensions={"hmac-secret": ext_in})
        out = ext.process_get_output(r.auth_data)["hmacGetSecret"]
        return out

    def one_salt(proto, name):
        def fn():
            out = hmac(proto, [salt1])
            if len(out["output1"]) != 32 or "output2" in out:
                u.fail("outputs %r" % out)
            state.setdefault("one", {})[name] = out["output1"]
            again = hmac(proto, [salt1])["output1"]
            if again != out["output1"]:
                u.fail("output1 changed between runs")
            return out["output1"].hex()[:16] + "..., same twice"

        return fn

    def two_salts(proto, name):
        def fn():
            out = hmac(proto, [salt1, salt2])
            if len(out["output1"]) != 32 or len(out.get("output2", b"")) != 32:
                u.fail("outputs %r" % out)
            if out["output1"] != state["one"][name]:
                u.fail("output1 with two salts differs from the one-salt output")
            if out["output1"] == out["output2"]:
                u.fail("both outputs equal")
            return "output1 matches one salt; output2 differs"

        return fn

    def same_across_protocols():
        if state["one"]["p1"] != state["one"]["p2"]:
            u.fail("protocol 1 and 2 give different secrets for the same salt")
        return "same secret under protocols 1 and 2"

    check("makeCredential hmac-secret", make)
    check("hmac-secret one salt (protocol 2)", one_salt(PinProtocolV2(), "p2"))
    check("hmac-secret two salts (protocol 2)", two_salts(PinProtocolV2(), "p2"))
    check("hmac-secret one salt (protocol 1)", one_salt(PinProtocolV1(), "p1"))
    check("hmac-secret two salts (protocol 1)", two_salts(PinProtocolV1(), "p1"))
    check("hmac-secret consistent across PIN protocols", same_across_protocols)
    dev.close()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""An independent client (Debian's python-fido2) against a recorded card
served by vcard --script over UDP.

Usage: test_replay_fido2.py info PORT TRACE
       test_replay_fido2.py mc PORT TRACE
TRACE is the kcard JSON-lines trace vcard serves; the expectations are read
from it here, with python-fido2's own CBOR decoder, not from kcard.
  info: getInfo answers what the trace recorded; a PING after the end of the
        trace gets CTAPHID_ERROR OTHER at once.
  mc:   a makeCredential of the recorded shape with a fresh clientDataHash
        and user id gets the recorded attestation, which verifies against
        the recorded clientDataHash and not against the fresh one.
Prints "ok - ..." / "not ok - ..." lines and "N passed, M failed". Every
read has a timeout.
"""
import hashlib
import json
import os
import signal
import socket
import sys
import time

from fido2 import cbor
from fido2.attestation import Attestation
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor

REPORT = 64
passed = 0
failed = 0


def check(name, fn):
    global passed, failed
    try:
        detail = fn()
        passed += 1
        print("ok - python-fido2 scripted card: %s%s" % (name, " (%s)" % detail if detail else ""))
    except Exception as e:  # a failed check, not a crashed run
        failed += 1
        print("not ok - python-fido2 scripted card: %s: %s: %s" % (name, type(e).__name__, e))
    sys.stdout.flush()


class Udp(CtapHidConnection):
    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(3.0)
        self.sock.connect(("127.0.0.1", port))

    def write_packet(self, data):
        self.sock.send(bytes(data).ljust(REPORT, b"\0"))

    def read_packet(self):
        return self.sock.recv(REPORT)

    def close(self):
        self.sock.close()


def recorded(trace):
    """The trace's messages: [(dir, cmd, payload)], reassembled here."""
    msgs = []
    cur = {"out": None, "in": None}
    with open(trace, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if "dir" not in r:
                continue
            b = bytes.fromhex(r["hex"])
            d = r["dir"]
            if b[4] & 0x80:
                n = b[5] << 8 | b[6]
                cur[d] = [d, b[4], bytearray(b[7 : 7 + min(57, n)]), n]
                msgs.append(cur[d])
            elif cur[d] is not None:
                need = cur[d][3] - len(cur[d][2])
                cur[d][2] += b[5 : 5 + min(59, need)]
    return [(d, cmd, bytes(p)) for d, cmd, p, _ in msgs]


def cbor_pairs(msgs, ctap_cmd):
    """The recorded CTAP2 request with command ctap_cmd and the answer after it."""
    for i, (d, cmd, p) in enumerate(msgs):
        if d == "out" and cmd == 0x90 and p[:1] == bytes([ctap_cmd]):
            for d2, cmd2, p2 in msgs[i + 1 :]:
                if d2 == "in" and cmd2 == 0x90:
                    req = cbor.decode(p[1:]) if len(p) > 1 else {}
                    return req, p2
    raise AssertionError("the trace has no CTAP2 command 0x%02x" % ctap_cmd)


def open_card(port):
    desc = HidDescriptor("udp:127.0.0.1:%d" % port, 0, 0, REPORT, REPORT)
    return CtapHidDevice(desc, Udp(port))


def run_info(port, trace):
    msgs = recorded(trace)
    _, resp = cbor_pairs(msgs, 0x04)
    want = cbor.decode(resp[1:])
    dev = open_card(port)
    ctap2 = Ctap2(dev)  # sends getInfo

    def same_info():
        i = ctap2.info
        assert i.versions == want[1], (i.versions, want[1])
        assert bytes(i.aaguid) == want[3], (bytes(i.aaguid).hex(), want[3].hex())
        return "versions %s, aaguid %s" % (",".join(i.versions), want[3].hex())

    check("getInfo is the recorded one", same_info)

    def ping_after_end():
        t0 = time.monotonic()
        try:
            dev.ping(b"after the end")
        except CtapError as e:
            took = time.monotonic() - t0
            assert e.code == CtapError.ERR.OTHER, e
            assert took < 1.0, took
            return "CTAPHID_ERROR OTHER in %.3fs" % took
        raise AssertionError("the ping was answered")

    check("a request after the end of the trace is refused at once", ping_after_end)


def run_mc(port, trace):
    msgs = recorded(trace)
    req, resp = cbor_pairs(msgs, 0x01)
    rec_cdh = req[1]
    dev = open_card(port)
    ctap2 = Ctap2(dev)
    state = {}

    def make():
        cdh = hashlib.sha256(os.urandom(32)).digest()
        user = dict(req[3])
        user["id"] = os.urandom(len(req[3]["id"]))  # random, as clients make it
        att = ctap2.make_credential(cdh, req[2], user, req[4])
        state["att"] = att
        state["cdh"] = cdh
        assert att.auth_data.rp_id_hash == hashlib.sha256(req[2]["id"].encode()).digest()
        return "fmt %s, %d-byte credential id" % (
            att.fmt,
            len(att.auth_data.credential_data.credential_id),
        )

    check("makeCredential of the recorded shape is answered", make)

    def verifies_recorded():
        att = state["att"]
        Attestation.for_type(att.fmt)().verify(att.att_statement, att.auth_data, rec_cdh)
        assert cbor.decode(resp[1:])[2] == att.auth_data, "not the recorded authData"
        return "against the recorded clientDataHash"

    check("the attestation is the recorded one and verifies", verifies_recorded)

    def not_fresh():
        att = state["att"]
        try:
            Attestation.for_type(att.fmt)().verify(att.att_statement, att.auth_data, state["cdh"])
        except Exception:
            return "the fresh clientDataHash was not signed"
        raise AssertionError("verified against a clientDataHash the card never saw")

    check("the attestation does not verify against the fresh clientDataHash", not_fresh)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("info", "mc") or not sys.argv[2].isdigit():
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    signal.alarm(20)  # the whole run, whatever happens
    if sys.argv[1] == "info":
        run_info(int(sys.argv[2]), sys.argv[3])
    else:
        run_mc(int(sys.argv[2]), sys.argv[3])
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

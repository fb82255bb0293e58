#!/usr/bin/python3
"""Interop probes that can fail: Debian's python-fido2 drives kcard's virtual
card over UDP and each check asserts an exact outcome.

Scenarios:
  negative       unknown CTAPHID command -> ERROR INVALID_CMD (0x01) and a
                 channel never allocated -> ERROR INVALID_CHANNEL (0x0B), both
                 as raw reports and as python-fido2 raises them; unknown
                 credential -> NO_CREDENTIALS (0x2E); excludeList hit ->
                 CREDENTIAL_EXCLUDED (0x19)
  counter:N      N verified assertions with a strictly rising signCount; with
                 --rollback-ctl PATH (the card's control socket) the card's
                 counter-rollback fault is switched on after N/2 of them, so
                 the check must report the rollback
  keepalive:none makeCredential + getAssertion complete, no KEEPALIVE at all
  keepalive:upneeded  ... and python-fido2 reported KEEPALIVE UPNEEDED
  ctap1[:slow]   CTAP1 register + authenticate verified; with :slow, KEEPALIVE
                 PROCESSING arrived while the reply was held back
Prints "ok - ..." lines and "N passed, M failed"; exit 1 if any failed.
"""
import hashlib
import json
import os
import socket
import sys
import time

from fido2 import cose
from fido2.ctap import STATUS, CtapError
from fido2.ctap1 import Ctap1
from fido2.ctap2 import Ctap2

import udp_ctaphid as u

UNKNOWN_HID_CMD = 0x2A
NEVER_ALLOCATED_CID = 0x7A5E11ED
RP = {"id": "example.org", "name": "Example"}
ES256 = [{"type": "public-key", "alg": cose.ES256.ALGORITHM}]


def cdh():
    return hashlib.sha256(os.urandom(32)).digest()


def descriptor(cred_id):
    return {"type": "public-key", "id": cred_id}


def make_cred(ctap2, tag, rp=RP, exclude=None, **kw):
    return ctap2.make_credential(
        cdh(), rp, {"id": b"user-" + tag, "name": "alice"}, ES256, exclude_list=exclude, **kw
    )


def negative(check, args, dev, conn, ctap2):
    raw = u.UdpConnection(args.host, args.port, args.timeout, None)
    try:

        def raw_unknown():
            cid = u.raw_init(raw)
            u.raw_send(raw, cid, UNKNOWN_HID_CMD)
            cmd, body = u.raw_reply(raw, cid)
            assert cmd == u.CMD_ERROR and body[:1] == b"\x01", "reply 0x%02x %s" % (cmd, body.hex())
            return "ERROR 0x01 on channel 0x%08x" % cid

        def raw_unallocated():
            u.raw_send(raw, NEVER_ALLOCATED_CID, u.CMD_PING, b"hello")
            cmd, body = u.raw_reply(raw, NEVER_ALLOCATED_CID)
            assert cmd == u.CMD_ERROR and body[:1] == b"\x0b", "reply 0x%02x %s" % (cmd, body.hex())
            return "ERROR 0x0B on channel 0x%08x" % NEVER_ALLOCATED_CID

        check("raw report: unknown CTAPHID command 0x2a -> ERROR INVALID_CMD (0x01)", raw_unknown)
        check("raw report: PING on a channel never allocated -> ERROR INVALID_CHANNEL (0x0B)", raw_unallocated)
    finally:
        raw.close()

    check(
        "CtapHidDevice.call(0x2a) raises CtapError INVALID_COMMAND",
        lambda: u.expect_ctap_error(lambda: dev.call(UNKNOWN_HID_CMD), CtapError.ERR.INVALID_COMMAND),
    )

    def lib_unallocated():
        # python-fido2 has no API to pick a channel: use its private attribute
        own = dev._channel_id
        dev._channel_id = NEVER_ALLOCATED_CID
        try:
            return u.expect_ctap_error(lambda: dev.ping(b"hello"), CtapError.ERR.INVALID_CHANNEL)
        finally:
            dev._channel_id = own

    check("ping on a channel never allocated raises CtapError INVALID_CHANNEL", lib_unallocated)
    check("ping on its own channel works again", lambda: dev.ping(b"again") == b"again" or u.fail("no echo"))
    check(
        "getAssertion, allowList of an unknown id -> CtapError NO_CREDENTIALS (0x2E)",
        lambda: u.expect_ctap_error(
            lambda: ctap2.get_assertion("example.org", cdh(), [descriptor(os.urandom(64))]),
            CtapError.ERR.NO_CREDENTIALS,
        ),
    )
    state = {}

    def first():
        state["id"] = make_cred(ctap2, b"excl").auth_data.credential_data.credential_id
        return "id %d bytes" % len(state["id"])

    if check("makeCredential for the excludeList probe", first):
        check(
            "makeCredential, excludeList holds it -> CtapError CREDENTIAL_EXCLUDED (0x19)",
            lambda: u.expect_ctap_error(
                lambda: make_cred(ctap2, b"excl", exclude=[descriptor(state["id"])]),
                CtapError.ERR.CREDENTIAL_EXCLUDED,
            ),
        )
        check(
            "makeCredential, excludeList id of another rp succeeds (the control)",
            lambda: make_cred(ctap2, b"excl", rp={"id": "other.example"}, exclude=[descriptor(state["id"])])
            and "ok",
        )


def ctl_command(path, line):
    """One command to the card's control socket; raises unless it says ok."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        reply = json.loads(s.makefile().readline())
    assert reply.get("ok") is True, reply
    return "ok"


def counter(check, args, n, ctap2):
    att = make_cred(ctap2, b"counter")
    cred = att.auth_data.credential_data
    counts = []

    def verified():
        for i in range(n):
            if args.rollback_ctl and i == n // 2:
                check(
                    "the card's counter-rollback fault switched on mid-run",
                    lambda: ctl_command(args.rollback_ctl, "fault counter-rollback"),
                )
            c = cdh()
            a = ctap2.get_assertion("example.org", c, [descriptor(cred.credential_id)])
            a.verify(c, cred.public_key)  # raises when the signature is bad
            counts.append(a.auth_data.counter)
            print("# assertion %d: signCount %d" % (i + 1, counts[-1]))
        return "%d verified" % n

    def rising():
        for i in range(1, len(counts)):
            if counts[i] <= counts[i - 1]:
                raise AssertionError(
                    "assertion %d: signCount %d after %d (%s)"
                    % (i + 1, counts[i], counts[i - 1], "rollback" if counts[i] < counts[i - 1] else "did not rise")
                )
        assert len(counts) == n, "only %d assertions" % len(counts)
        return "signCounts %s" % counts

    check("verifies %d assertions in a row (public key verify)" % n, verified)
    check("signCount rises strictly over %d assertions" % n, rising)


def keepalive(check, conn, ctap2, want_upneeded):
    reported = []
    t0 = time.monotonic()
    del conn.keepalives[:]

    def run():
        att = make_cred(ctap2, b"ka", on_keepalive=reported.append)
        cred = att.auth_data.credential_data
        c = cdh()
        a = ctap2.get_assertion(
            "example.org", c, [descriptor(cred.credential_id)], on_keepalive=reported.append
        )
        a.verify(c, cred.public_key)
        return "in %.0f ms" % u.elapsed_ms(t0)

    check("makeCredential + getAssertion complete and verify", run)
    wire = "wire: PROCESSING %d, UPNEEDED %d; library reported %s" % (
        conn.keepalives.count(1),
        conn.keepalives.count(2),
        [getattr(s, "name", s) for s in reported],
    )
    print("# keepalives %s" % wire)
    if want_upneeded:

        def upneeded():
            assert STATUS.UPNEEDED in reported, "python-fido2 reported no UPNEEDED"
            assert conn.keepalives.count(2) >= 3, "fewer than 3 UPNEEDED on the wire"
            return wire

        check("reports KEEPALIVE UPNEEDED while the card waits for presence", upneeded)
    else:

        def none():
            assert not reported and not conn.keepalives, "keepalives arrived"
            return wire

        check("sees no KEEPALIVE at all (and still completes)", none)


def ctap1(check, dev, conn, slow):
    t0 = time.monotonic()
    del conn.keepalives[:]

    def run():
        c1 = Ctap1(dev)
        app = hashlib.sha256(b"https://example.org").digest()
        chal = hashlib.sha256(os.urandom(16)).digest()
        reg = c1.register(chal, app)
        reg.verify(app, chal)
        sig = c1.authenticate(chal, app, reg.key_handle)
        sig.verify(app, chal, reg.public_key)
        return "counter %d in %.0f ms" % (sig.counter, u.elapsed_ms(t0))

    check("CTAP1 register + authenticate verified", run)
    if slow:

        def held_back():
            n = conn.keepalives.count(1)
            assert n >= 3, "only %d KEEPALIVE PROCESSING" % n
            return "KEEPALIVE PROCESSING %d, %.0f ms" % (n, u.elapsed_ms(t0))

        check("CTAP1 reply held back with KEEPALIVE PROCESSING meanwhile", held_back)


def main():
    names = ["negative", "counter", "keepalive", "ctap1"]
    p = u.base_args(__doc__, names)
    p.add_argument("--rollback-ctl", default=None, help="the card's control socket")
    args = p.parse_args()
    u.bound_run()
    check = u.Checks()
    for name, arg in args.scenario:
        try:
            dev, conn = u.open_device(args)
        except Exception as e:
            check("opens the card (CTAPHID INIT)", lambda e=e: (_ for _ in ()).throw(e))
            break
        try:
            if name == "negative":
                negative(check, args, dev, conn, Ctap2(dev))
            elif name == "counter":
                counter(check, args, int(arg or 6), Ctap2(dev))
            elif name == "keepalive":
                if arg not in ("none", "upneeded"):
                    u.die("keepalive:none or keepalive:upneeded")
                keepalive(check, conn, Ctap2(dev), arg == "upneeded")
            elif name == "ctap1":
                ctap1(check, dev, conn, arg == "slow")
        except Exception as e:  # a scenario that could not even start
            check("scenario %s" % name, lambda e=e: (_ for _ in ()).throw(e))
        finally:
            dev.close()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())

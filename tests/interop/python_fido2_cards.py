#!/usr/bin/python3
"""Interop across card personalities: Debian's python-fido2 reads the card's
getInfo over UDP and does what that card allows, asserting exact outcomes.

Scenarios:
  info      getInfo as python-fido2 parses it, or on a U2F-only card that
            python-fido2 refuses CTAP2 and CTAP1 answers U2F_V2; checked
            against --expect-ctap2 / --expect-max-msg / --expect-protocol
  register  makeCredential (with a PIN token from ClientPin, in the protocol
            python-fido2 picks from getInfo, when the card has a PIN set; CTAP1
            on a U2F-only card) with its attestation verified, then 5 verified
            assertions with a strictly rising signCount. When the card must
            refuse makeCredential without the PIN (PIN set and no
            makeCredUvNotRqd, or alwaysUv), that refusal is asserted too; a
            PIN that is blocked (retries 0) or must be changed (forcePINChange)
            is refused with PIN_BLOCKED / PIN_POLICY_VIOLATION.
  large:N   a makeCredential of about N bytes (a long excludeList): accepted
            when N fits maxMsgSize, else CtapError REQUEST_TOO_LARGE (0x39);
            and a CTAPHID PING of N bytes echoed
  wrong-channel  the card replies on a channel it never allocated:
            python-fido2 raises "Wrong channel"
  no-reply  nothing comes back (the card replies to another port): INIT
            times out within --timeout
With --local-port the socket is unconnected and bound to that port.
Prints "ok - ..." lines and "N passed, M failed"; exit 1 if any failed.
"""
import hashlib
import os
import socket
import sys
import time

from fido2 import cose
from fido2.attestation import Attestation
from fido2.ctap import CtapError
from fido2.ctap1 import Ctap1
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin, PinProtocolV2
from fido2.hid import CAPABILITY

import udp_ctaphid as u

RP_ID = "example.org"
ES256 = [{"type": "public-key", "alg": cose.ES256.ALGORITHM}]
ASSERTIONS = 5
FLAG_UV = 0x04


fail = u.fail


def cdh():
    return hashlib.sha256(os.urandom(32)).digest()


def ctap2_or_none(dev):
    """python-fido2's own verdict: Ctap2 raises on a card without CBOR."""
    try:
        return Ctap2(dev), None
    except ValueError as e:
        return None, e


def info(check, args, dev):
    ctap2, refusal = ctap2_or_none(dev)
    if args.expect_ctap2 is not None:
        want = args.expect_ctap2 == "yes"

        def ctap2_check():
            assert (ctap2 is not None) == want, "Ctap2: %s" % (refusal or "available")
            return "Ctap2 available" if ctap2 else "Ctap2 refused: %s" % refusal

        check("sees CTAP2" if want else "reports no CTAP2 on this card", ctap2_check)
    if ctap2 is None:
        check("CTAP1 version is U2F_V2", lambda: Ctap1(dev).get_version() == "U2F_V2" or fail("version"))
        return
    i = ctap2.info
    summary = "versions=%s maxMsgSize=%d pinUvAuthProtocols=%s options=%s" % (
        i.versions,
        i.max_msg_size,
        i.pin_uv_protocols,
        dict(i.options),
    )
    print("# getInfo: %s" % summary)
    if dev.capabilities & CAPABILITY.NMSG:
        check(
            "card without CTAP1 (NMSG): CTAPHID_MSG -> CtapError INVALID_COMMAND",
            lambda: u.expect_ctap_error(lambda: Ctap1(dev).get_version(), CtapError.ERR.INVALID_COMMAND),
        )
    elif "U2F_V2" in i.versions:
        check(
            "CTAP1 beside CTAP2: version U2F_V2",
            lambda: Ctap1(dev).get_version() == "U2F_V2" or fail("version"),
        )
    if args.expect_max_msg is not None:
        check(
            "reads maxMsgSize %d" % args.expect_max_msg,
            lambda: (i.max_msg_size == args.expect_max_msg or fail(i.max_msg_size))
            and "maxMsgSize %d" % i.max_msg_size,
        )
    if args.expect_protocol is not None:

        def protocol():
            cp = ClientPin(ctap2)
            assert cp.protocol.VERSION == args.expect_protocol, "picked %d" % cp.protocol.VERSION
            return "ClientPin picked protocol %d of %s" % (cp.protocol.VERSION, i.pin_uv_protocols)

        check("ClientPin picks PIN protocol %d from getInfo" % args.expect_protocol, protocol)


def get_token(ctap2, pin, state):
    """A PIN token with the makeCredential and getAssertion permissions, in
    the protocol python-fido2 picks from getInfo; kept in state."""
    cp = ClientPin(ctap2)
    perms = ClientPin.PERMISSION.MAKE_CREDENTIAL | ClientPin.PERMISSION.GET_ASSERTION
    state["token"] = cp.get_pin_token(pin, perms, RP_ID)
    state["cp"] = cp
    return "protocol %d (card offers %s), %s" % (
        cp.protocol.VERSION,
        ctap2.info.pin_uv_protocols,
        "getPinUvAuthTokenUsingPinWithPermissions" if ctap2.info.options.get("pinUvAuthToken") else "getPinToken",
    )


def pin_param(state, client_hash):
    """pinUvAuthParam and protocol for a request, when a token was got."""
    if "token" not in state:
        return {}
    cp = state["cp"]
    return {
        "pin_uv_param": cp.protocol.authenticate(state["token"], client_hash),
        "pin_uv_protocol": cp.protocol.VERSION,
    }


def rising(counts):
    for k in range(1, len(counts)):
        if counts[k] <= counts[k - 1]:
            raise AssertionError("assertion %d: signCount %d after %d" % (k + 1, counts[k], counts[k - 1]))
    assert len(counts) == ASSERTIONS, "only %d assertions" % len(counts)
    return "signCounts %s" % counts


def register_ctap1(check, dev):
    c1 = Ctap1(dev)
    app = hashlib.sha256(b"https://example.org").digest()
    state = {"counts": []}

    def reg():
        chal = cdh()
        state["reg"] = c1.register(chal, app)
        state["reg"].verify(app, chal)
        return "key handle %d bytes" % len(state["reg"].key_handle)

    def auth():
        r = state["reg"]
        for _ in range(ASSERTIONS):
            chal = cdh()
            sig = c1.authenticate(chal, app, r.key_handle)
            sig.verify(app, chal, r.public_key)
            state["counts"].append(sig.counter)
        return "%d verified" % ASSERTIONS

    if check("CTAP1 register verified (fido-u2f)", reg):
        check("CTAP1 authenticates %d times, each verified" % ASSERTIONS, auth)
        check("CTAP1 counter rises strictly", lambda: rising(state["counts"]))


def pin_unusable(check, args, ctap2):
    """A PIN that is blocked (retries 0) or must be changed (forcePINChange)
    is refused with its own error; True when that is the case."""
    retries = ClientPin(ctap2).get_pin_retries()[0]
    if retries == 0:
        name, want = "PIN retries 0: ClientPin PIN token -> CtapError PIN_BLOCKED (0x32)", CtapError.ERR.PIN_BLOCKED
    elif ctap2.info.force_pin_change:
        name = "forcePINChange: ClientPin PIN token -> CtapError PIN_POLICY_VIOLATION (0x37)"
        want = CtapError.ERR.PIN_POLICY_VIOLATION
    else:
        return False
    check(name, lambda: u.expect_ctap_error(lambda: get_token(ctap2, args.pin, {}), want))
    return True


def wrong_channel(check, dev):
    """Replies on a channel never allocated: python-fido2 refuses them."""

    def refused():
        try:
            Ctap2(dev)
        except Exception as e:
            assert str(e) == "Wrong channel", "%s: %s" % (type(e).__name__, e)
            return "Exception: %s" % e
        fail("the card's reply was taken")

    check("vs replies on a channel never allocated: raises 'Wrong channel'", refused)


def register(check, args, dev):
    ctap2, _ = ctap2_or_none(dev)
    if ctap2 is None:
        register_ctap1(check, dev)
        return
    i = ctap2.info
    pin_set = i.options.get("clientPin") is True
    needs_pin = pin_set and (i.options.get("makeCredUvNotRqd") is not True or i.options.get("alwaysUv") is True)
    state = {"counts": [], "uv": 0}
    if pin_set and args.pin is None:
        check("register: the card has a PIN set; give --pin", lambda: fail("no --pin"))
        return
    if pin_set and i.pin_uv_protocols == [1]:
        check(
            "ClientPin protocol 2 on a card offering only [1] -> CtapError INVALID_PARAMETER (0x02)",
            lambda: u.expect_ctap_error(
                lambda: ClientPin(ctap2, PinProtocolV2()).get_pin_token(args.pin),
                CtapError.ERR.INVALID_PARAMETER,
            ),
        )
    if needs_pin:
        check(
            "makeCredential without the PIN -> CtapError PIN_REQUIRED (0x36, PUAT_REQUIRED)",
            lambda: u.expect_ctap_error(
                lambda: ctap2.make_credential(cdh(), {"id": RP_ID}, {"id": b"nopin", "name": "n"}, ES256),
                CtapError.ERR.PIN_REQUIRED,
            ),
        )

    use_pin = pin_set and not pin_unusable(check, args, ctap2)
    if needs_pin and not use_pin:
        return  # nothing more this card allows
    if use_pin and not check("ClientPin PIN token", lambda: get_token(ctap2, args.pin, state)):
        return

    def make():
        h = cdh()
        att = ctap2.make_credential(
            h, {"id": RP_ID, "name": "Example"}, {"id": b"cards", "name": "alice"}, ES256, **pin_param(state, h)
        )
        result = Attestation.for_type(att.fmt)().verify(att.att_statement, att.auth_data, h)
        assert att.auth_data.rp_id_hash == hashlib.sha256(RP_ID.encode()).digest()
        if use_pin:
            assert att.auth_data.flags & FLAG_UV, "UV flag missing with a PIN token"
        state["cred"] = att.auth_data.credential_data
        return "fmt=%s %s%s" % (att.fmt, result.attestation_type.name, ", UV" if use_pin else "")

    def assert_all():
        cred = state["cred"]
        for _ in range(ASSERTIONS):
            h = cdh()
            a = ctap2.get_assertion(
                RP_ID, h, [{"type": "public-key", "id": cred.credential_id}], **pin_param(state, h)
            )
            a.verify(h, cred.public_key)
            state["counts"].append(a.auth_data.counter)
            state["uv"] += 1 if a.auth_data.flags & FLAG_UV else 0
        if use_pin:
            assert state["uv"] == ASSERTIONS, "UV flag on %d of %d" % (state["uv"], ASSERTIONS)
        return "%d verified%s" % (ASSERTIONS, ", UV on each" if use_pin else "")

    label = "makeCredential%s + attestation verified" % (" with a PIN token" if use_pin else "")
    if check(label, make):
        check("%d assertions verified" % ASSERTIONS, assert_all)
        check("signCount rises strictly over %d assertions" % ASSERTIONS, lambda: rising(state["counts"]))


def large(check, args, dev, size):
    ctap2, _ = ctap2_or_none(dev)
    if ctap2 is None:
        check("large message: needs a CTAP2 card", lambda: fail("no CTAP2"))
        return
    i = ctap2.info
    n = i.max_creds_in_list or 16
    id_len = min(1000, size // n - 20)
    exclude = [{"type": "public-key", "id": os.urandom(id_len)} for _ in range(n)]
    fits = size + 200 <= i.max_msg_size
    # a card with a PIN set may demand it (CTAP 2.0): bring a token
    state = {}
    if i.options.get("clientPin") is True and args.pin is not None:
        check("ClientPin PIN token", lambda: get_token(ctap2, args.pin, state))

    def call():
        h = cdh()
        return ctap2.make_credential(
            h, {"id": RP_ID}, {"id": b"large", "name": "l"}, ES256, exclude_list=exclude, **pin_param(state, h)
        )

    if fits:
        check(
            "%d-byte makeCredential accepted (maxMsgSize %d)" % (size, i.max_msg_size),
            lambda: call() and "%d excludeList ids of %d bytes" % (n, id_len),
        )
    else:
        check(
            "%d-byte makeCredential -> CtapError REQUEST_TOO_LARGE (0x39; maxMsgSize %d)" % (size, i.max_msg_size),
            lambda: u.expect_ctap_error(call, CtapError.ERR.REQUEST_TOO_LARGE),
        )
    msg = os.urandom(size)
    check(
        "CTAPHID PING of %d bytes echoed" % size,
        lambda: (dev.ping(msg) == msg or fail("echo differs")) and "%d bytes" % size,
    )


def no_reply(check, args):
    t0 = time.monotonic()

    def silent():
        try:
            dev, _ = u.open_device(args)
        except socket.timeout:
            took = u.elapsed_ms(t0)
            assert took < args.timeout * 1000 + 1000, "took %.0f ms" % took
            return "socket.timeout after %.0f ms" % took
        dev.close()
        raise AssertionError("the card answered INIT on this port")

    check("bound to a port the card does not reply to: INIT times out", silent)


def main():
    p = u.base_args(__doc__, ["info", "register", "large", "no-reply", "wrong-channel"])
    p.add_argument("--pin", default=None)
    p.add_argument("--expect-ctap2", choices=["yes", "no"], default=None)
    p.add_argument("--expect-max-msg", type=int, default=None)
    p.add_argument("--expect-protocol", type=int, default=None)
    args = p.parse_args()
    u.bound_run()
    check = u.Checks()
    for name, arg in args.scenario:
        if name == "no-reply":
            no_reply(check, args)
            continue
        try:
            dev, _ = u.open_device(args)
        except Exception as e:
            check("opens the card (CTAPHID INIT)", lambda e=e: (_ for _ in ()).throw(e))
            break
        try:
            if name == "info":
                info(check, args, dev)
            elif name == "register":
                register(check, args, dev)
            elif name == "wrong-channel":
                wrong_channel(check, dev)
            elif name == "large":
                large(check, args, dev, int(arg or 7000))
        except Exception as e:  # a scenario that could not even start
            check("scenario %s" % name, lambda e=e: (_ for _ in ()).throw(e))
        finally:
            dev.close()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())

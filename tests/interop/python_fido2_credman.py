#!/usr/bin/python3
"""Interop: Debian's python-fido2 CredentialManagement (an independent
client) against kcard's virtual card over UDP, checked against what rawctap
saw on the same card.

Usage: python_fido2_credman.py HOST PORT PIN RAWCTAP_LIST_JSON DELETE_ID UPDATE_ID
RAWCTAP_LIST_JSON is `rawctap --json cred list --rp-id example.com` output
taken before this run. The program compares python-fido2's metadata, RPs and
credentials with it, then deletes DELETE_ID and renames UPDATE_ID's user to
"renamed-by-python-fido2" (base64url ids); the calling script checks both
with rawctap afterwards. Prints "ok - ..." lines and "N passed, M failed".
"""
import base64
import hashlib
import json
import sys

from fido2 import cbor
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2, CredentialManagement
from fido2.ctap2.pin import ClientPin

import udp_ctaphid as u

check = u.Checks(client="python-fido2")
RES = CredentialManagement.RESULT


def b64u(data):
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def main():
    if len(sys.argv) != 7 or not sys.argv[2].isdigit():
        u.die(__doc__)
    host, port, pin = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(sys.argv[4]) as f:
        seen = json.load(f)
    delete_id, update_id = unb64u(sys.argv[5]), unb64u(sys.argv[6])
    u.bound_run()

    class Args:
        pass

    a = Args()
    a.host, a.port, a.timeout, a.local_port = host, port, 5.0, None
    dev, _conn = u.open_device(a)
    ctap2 = Ctap2(dev)
    client_pin = ClientPin(ctap2)
    perm = ClientPin.PERMISSION.CREDENTIAL_MGMT
    token = client_pin.get_pin_token(pin, perm if "pinUvAuthToken" in ctap2.info.options else None)
    cm = CredentialManagement(ctap2, client_pin.protocol, token)
    by_id = {c["cred_id"]: c for c in seen["credentials"]}

    def metadata():
        m = cm.get_metadata()
        existing = m[RES.EXISTING_CRED_COUNT]
        remaining = m[RES.MAX_REMAINING_COUNT]
        if existing != 3:
            u.fail("existing %d, rawctap made 3" % existing)
        return "existing=%d remaining=%d" % (existing, remaining)

    def rps():
        got = {r[RES.RP]["id"]: r[RES.RP_ID_HASH] for r in cm.enumerate_rps()}
        if sorted(got) != ["example.com", "other.org"]:
            u.fail("rps %s" % sorted(got))
        for rp_id, h in got.items():
            if h != hashlib.sha256(rp_id.encode()).digest():
                u.fail("rpIdHash of %s is wrong" % rp_id)
        return ", ".join(sorted(got))

    def creds():
        got = cm.enumerate_creds(hashlib.sha256(b"example.com").digest())
        if len(got) != seen["count"]:
            u.fail("%d credentials, rawctap listed %d" % (len(got), seen["count"]))
        for c in got:
            cid = b64u(c[RES.CREDENTIAL_ID]["id"])
            r = by_id.get(cid)
            if r is None:
                u.fail("credential %s unknown to rawctap" % cid)
            user = c[RES.USER]
            if b64u(user["id"]) != r["user_id"] or user.get("name", "") != r["user_name"]:
                u.fail("user of %s differs: %r vs %r" % (cid, user, r))
            if cbor.encode(c[RES.PUBLIC_KEY]).hex() != r["public_key"]:
                u.fail("public key of %s differs from rawctap's" % cid)
            if c.get(RES.CRED_PROTECT, 1) != r["cred_protect"]:
                u.fail("credProtect of %s differs" % cid)
        return "%d credentials match rawctap's list" % len(got)

    def none_for_unknown_rp():
        return "none" if cm.enumerate_creds(hashlib.sha256(b"nobody.example").digest()) == [] else u.fail("creds")

    def update():
        user_id = unb64u(by_id[b64u(update_id)]["user_id"])
        cm.update_user_info(
            {"id": update_id, "type": "public-key"},
            {"id": user_id, "name": "renamed-by-python-fido2", "displayName": "Renamed"},
        )
        return "renamed"

    def update_wrong_user():
        return u.expect_ctap_error(
            lambda: cm.update_user_info(
                {"id": update_id, "type": "public-key"}, {"id": b"not-the-user", "name": "x"}
            ),
            CtapError.ERR.INVALID_PARAMETER,
        )

    def delete():
        cm.delete_cred({"id": delete_id, "type": "public-key"})
        left = cm.get_metadata()[RES.EXISTING_CRED_COUNT]
        if left != 2:
            u.fail("existing %d after delete" % left)
        return "deleted, 2 left"

    def delete_again():
        return u.expect_ctap_error(
            lambda: cm.delete_cred({"id": delete_id, "type": "public-key"}),
            CtapError.ERR.NO_CREDENTIALS,
        )

    def wrong_token():
        bad = CredentialManagement(ctap2, client_pin.protocol, bytes(len(token)))
        return u.expect_ctap_error(bad.get_metadata, CtapError.ERR.PIN_AUTH_INVALID)

    check("credMgmt getCredsMetadata", metadata)
    check("credMgmt enumerateRPs", rps)
    check("credMgmt enumerateCredentials == rawctap cred list", creds)
    check("credMgmt enumerateCredentials of an rp without any", none_for_unknown_rp)
    check("credMgmt updateUserInformation", update)
    check("credMgmt updateUserInformation with another user id refused", update_wrong_user)
    check("credMgmt deleteCredential", delete)
    check("credMgmt deleteCredential twice: NO_CREDENTIALS", delete_again)
    check("credMgmt wrong pinUvAuthParam: PIN_AUTH_INVALID", wrong_token)
    dev.close()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())

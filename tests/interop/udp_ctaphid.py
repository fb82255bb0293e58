"""Shared by the python-fido2 interop programs: CTAPHID over UDP for
python-fido2 (one 64-byte report per datagram, no report-id byte), raw
reports for the probes python-fido2 has no API for, and the ok/not ok
bookkeeping ending in "N passed, M failed".

A connection either connect()s to the card, or, as the 8111/7112 simulator
convention expects, is an unconnected socket bound to a fixed local port
using sendto/recvfrom. Every read has a timeout, so a silent card fails a
check, not the run, and a whole run is cut off after RUN_LIMIT_S seconds
(bound_run). The connection also notes every KEEPALIVE status it
reads, since python-fido2's CTAP1 calls report none.
"""
import argparse
import os
import signal
import socket
import struct
import sys
import time

from fido2.ctap import CtapError
from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor

REPORT = 64
RUN_LIMIT_S = 20  # a whole run; SIGALRM ends it without a summary
BROADCAST = 0xFFFFFFFF
CMD_PING = 0x01
CMD_INIT = 0x06
CMD_KEEPALIVE = 0x3B
CMD_ERROR = 0x3F
TYPE_INIT = 0x80


class UdpConnection(CtapHidConnection):
    """python-fido2's view of the card: write_packet / read_packet."""

    def __init__(self, host, port, timeout=5.0, local_port=None):
        self.card = (socket.gethostbyname(host), port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.bound = local_port is not None
        if self.bound:
            self.sock.bind(("127.0.0.1", local_port))
        else:
            self.sock.connect(self.card)
        self.keepalives = []  # status bytes, in order
        self.foreign = 0  # datagrams from another address, dropped

    def write_packet(self, data):
        report = bytes(data).ljust(REPORT, b"\0")
        if self.bound:
            self.sock.sendto(report, self.card)
        else:
            self.sock.send(report)

    def read_packet(self):
        while True:
            if self.bound:
                data, src = self.sock.recvfrom(REPORT)
                if src != self.card:
                    self.foreign += 1
                    continue
            else:
                data = self.sock.recv(REPORT)
            if len(data) >= 8 and data[4] == TYPE_INIT | CMD_KEEPALIVE:
                self.keepalives.append(data[7])
            return data

    def close(self):
        self.sock.close()


def open_device(args, timeout=None, local_port=None):
    """A python-fido2 CtapHidDevice on the card (its constructor sends INIT)."""
    conn = UdpConnection(
        args.host,
        args.port,
        timeout if timeout is not None else args.timeout,
        local_port if local_port is not None else args.local_port,
    )
    desc = HidDescriptor("udp:%s:%d" % (args.host, args.port), 0, 0, REPORT, REPORT)
    try:
        return CtapHidDevice(desc, conn), conn
    except BaseException:
        conn.close()
        raise


# ---- raw reports ----


def raw_send(conn, cid, cmd, payload=b""):
    """One initialisation packet (payload of at most 57 bytes)."""
    assert len(payload) <= REPORT - 7
    conn.write_packet(struct.pack(">IBH", cid, TYPE_INIT | cmd, len(payload)) + payload)


def raw_reply(conn, cid):
    """(command, payload of the first packet) of the next non-KEEPALIVE reply on cid."""
    while True:
        data = conn.read_packet()
        r_cid, r_cmd, r_len = struct.unpack_from(">IBH", data)
        if r_cid != cid or r_cmd == TYPE_INIT | CMD_KEEPALIVE:
            continue
        return r_cmd & 0x7F, data[7 : 7 + min(r_len, REPORT - 7)]


def raw_init(conn):
    """A fresh channel from INIT on the broadcast channel."""
    nonce = os.urandom(8)
    raw_send(conn, BROADCAST, CMD_INIT, nonce)
    while True:
        cmd, body = raw_reply(conn, BROADCAST)
        if cmd == CMD_INIT and body[:8] == nonce:
            return struct.unpack_from(">I", body, 8)[0]


# ---- checks ----


class Checks:
    """ok / not ok lines; a check is a function returning a detail or raising."""

    def __init__(self, client="python-fido2"):
        self.client = client
        self.passed = 0
        self.failed = 0

    def __call__(self, name, fn):
        name = "%s %s" % (self.client, name) if self.client else name
        try:
            detail = fn()
        except Exception as e:  # a failed check, reported and counted
            self.failed += 1
            print("not ok - %s: %s: %s" % (name, type(e).__name__, e), flush=True)
            return False
        self.passed += 1
        print("ok - %s%s" % (name, (": " + str(detail)) if detail else ""), flush=True)
        return True

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0


def expect_ctap_error(fn, want):
    """Runs fn; passes only when it raises CtapError with code want."""
    try:
        fn()
    except CtapError as e:
        if e.code != want:
            raise AssertionError("CtapError %s, wanted %s" % (e.code, CtapError.ERR(want)))
        return "CtapError %s" % e.code
    raise AssertionError("no error, wanted %s" % CtapError.ERR(want))


def bound_run():
    signal.alarm(RUN_LIMIT_S)


def fail(msg):
    raise AssertionError(msg)


def elapsed_ms(t0):
    return (time.monotonic() - t0) * 1000.0


def base_args(doc, scenarios):
    """The common command line: [--local-port P] [--timeout S] HOST PORT SCENARIO..."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--local-port", type=int, default=None, help="bind here (unconnected socket)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per socket read")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("scenario", nargs="+", type=scenario_type(scenarios), help=", ".join(scenarios))
    return p


def scenario_type(names):
    """NAME or NAME:ARG with NAME among names, as a (name, arg) pair."""

    def parse(text):
        name, _, arg = text.partition(":")
        if name not in names:
            raise argparse.ArgumentTypeError("unknown scenario '%s'" % text)
        return name, arg

    return parse


def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(2)

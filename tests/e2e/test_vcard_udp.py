#!/usr/bin/env python3
"""Socket-level checks of vcard's CTAPHID server over UDP on loopback.

Usage: test_vcard_udp.py PORT CONTROL_SOCKET ANNOUNCE_DIR STDERR_LOG
Started by test_vcard_udp.sh against a running vcard (presence yes, -v).
Prints "ok - NAME" / "not ok - NAME" lines and ends with "N passed, M failed".
Only the standard library; every wait is bounded.
"""
import json
import os
import socket
import struct
import sys
import threading
import time

REPORT = 64
BROADCAST = 0xFFFFFFFF
PING, MSG, LOCK, INIT, WINK, CBOR, CANCEL = 0x81, 0x83, 0x84, 0x86, 0x88, 0x90, 0x91
KEEPALIVE, ERROR = 0xBB, 0xBF
ERR_INVALID_CMD, ERR_INVALID_PAR, ERR_INVALID_LEN, ERR_INVALID_SEQ = 1, 2, 3, 4
ERR_MSG_TIMEOUT, ERR_CHANNEL_BUSY, ERR_INVALID_CHANNEL = 5, 6, 0x0B
CAP_WINK, CAP_CBOR, CAP_NMSG = 1, 4, 8
KA_PROCESSING, KA_UPNEEDED = 1, 2
MAX_MSG = 7609

passed = 0
failed = 0


def ok(name):
    global passed
    passed += 1
    print("ok - " + name, flush=True)


def not_ok(name, why=""):
    global failed
    failed += 1
    print("not ok - " + name + (": " + why if why else ""), flush=True)


def check(name, cond, why=""):
    if cond:
        ok(name)
    else:
        not_ok(name, why)


# ---- a tiny CBOR encoder for test requests (ints, bytes, text, maps, lists)
def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    if n < 0x100:
        return bytes([major << 5 | 24, n])
    if n < 0x10000:
        return bytes([major << 5 | 25]) + struct.pack(">H", n)
    return bytes([major << 5 | 26]) + struct.pack(">I", n)


def cbor(v):
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, bytes):
        return _head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return _head(3, len(b)) + b
    if isinstance(v, list):
        return _head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return _head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    raise TypeError(v)


def make_credential_req():
    return bytes([0x01]) + cbor({
        1: b"\x11" * 32,
        2: {"id": "example.com", "name": "Example"},
        3: {"id": b"user-1", "name": "alice"},
        4: [{"alg": -7, "type": "public-key"}],
    })


GET_INFO = bytes([0x04])
U2F_VERSION = bytes([0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00])


# ---- CTAPHID client
def frag(cid, cmd, data, seq_override=None):
    out = []
    first = data[:57]
    out.append(struct.pack(">IBH", cid, cmd, len(data)) + first)
    off, seq = 57, 0
    while off < len(data):
        s = seq if seq_override is None else seq_override(seq)
        out.append(struct.pack(">IB", cid, s) + data[off:off + 59])
        off += 59
        seq += 1
    return [r.ljust(REPORT, b"\0") for r in out]


class Client:
    def __init__(self, port):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.cid = None

    def close(self):
        self.sock.close()

    def send(self, report):
        self.sock.sendto(report, ("127.0.0.1", self.port))

    def send_msg(self, cid, cmd, data):
        for r in frag(cid, cmd, data):
            self.send(r)

    def recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, _ = self.sock.recvfrom(256)
            return data
        except socket.timeout:
            return None

    def drain(self, quiet=0.05):
        while self.recv(quiet) is not None:
            pass

    def reports_for(self, seconds):
        out, end = [], time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return out
            r = self.recv(left)
            if r is not None:
                out.append((time.monotonic(), r))

    def read_msg(self, cid, timeout=3.0, keepalives=None):
        """Next message on cid (skips keepalives into the list). (cmd, data) or None."""
        end = time.monotonic() + timeout
        cmd, total, data, seq = None, 0, b"", 0
        while time.monotonic() < end:
            r = self.recv(end - time.monotonic())
            if r is None:
                break
            rcid = struct.unpack(">I", r[:4])[0]
            if rcid != cid:
                continue
            if r[4] & 0x80:
                if r[4] == KEEPALIVE:
                    if keepalives is not None:
                        keepalives.append((time.monotonic(), r[7]))
                    continue
                cmd = r[4]
                total = r[5] << 8 | r[6]
                data = r[7:7 + min(total, 57)]
                seq = 0
            elif cmd is not None:
                if r[4] != seq:
                    return ("badseq", r[4])
                data += r[5:5 + min(total - len(data), 59)]
                seq += 1
            if cmd is not None and len(data) >= total:
                return (cmd, data)
        return None

    def init(self, cid=BROADCAST, nonce=None, timeout=2.0):
        nonce = nonce or os.urandom(8)
        self.send_msg(cid, INIT, nonce)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = self.read_msg(cid, end - time.monotonic())
            if m is None:
                return None
            if m[0] == INIT and m[1][:8] == nonce:
                info = {"cid": struct.unpack(">I", m[1][8:12])[0], "proto": m[1][12],
                        "version": tuple(m[1][13:16]), "caps": m[1][16], "len": len(m[1])}
                if cid == BROADCAST:
                    self.cid = info["cid"]
                return info
            if m[0] == ERROR:
                return {"error": m[1][0]}
        return None

    def transact(self, cmd, data, timeout=3.0, keepalives=None, cid=None):
        cid = self.cid if cid is None else cid
        self.send_msg(cid, cmd, data)
        return self.read_msg(cid, timeout, keepalives)


def is_error(m, code):
    return m is not None and m[0] == ERROR and m[1][:1] == bytes([code])


# ---- control socket
def control(path, line, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return json.loads(buf.decode())
    finally:
        s.close()


def run_bg(fn):
    result = {}

    def target():
        result["value"] = fn()

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, result


def wait_pending(ctl, want=True, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if control(ctl, "status").get("presence_pending") == want:
            return True
        time.sleep(0.02)
    return False


# ---- the checks
def t_init(port):
    c = Client(port)
    nonce = os.urandom(8)
    info = c.init(nonce=nonce)
    check("INIT answers with the nonce echoed and 17 bytes", info is not None and info.get("len") == 17,
          repr(info))
    if info is None or "cid" not in info:
        c.close()
        return
    check("INIT allocates a real channel", info["cid"] not in (0, BROADCAST))
    check("INIT protocol version 2", info["proto"] == 2)
    check("INIT capabilities WINK|CBOR, no NMSG", info["caps"] == CAP_WINK | CAP_CBOR, hex(info["caps"]))
    info2 = c.init()
    check("second INIT gives a fresh channel", info2 and info2.get("cid") not in (None, info["cid"]))
    re = c.init(cid=info["cid"])
    check("INIT on an allocated channel resyncs it (same cid)", re is not None and re.get("cid") == info["cid"],
          repr(re))
    c.send_msg(BROADCAST, INIT, b"\1\2\3")
    m = c.read_msg(BROADCAST, 1.0)
    check("INIT with a 3-byte nonce gets INVALID_LEN", is_error(m, ERR_INVALID_LEN), repr(m))
    c.close()


def t_framing(port):
    c = Client(port)
    c.init()
    m = c.transact(PING, b"hello")
    check("PING echoes", m == (PING, b"hello"), repr(m))
    big = os.urandom(MAX_MSG)
    m = c.transact(PING, big, timeout=5.0)
    check("PING of 7609 bytes (129 reports) echoes", m is not None and m[0] == PING and m[1] == big)
    m = c.transact(WINK, b"")
    check("WINK answers empty", m == (WINK, b""), repr(m))
    m = c.transact(PING, b"x", cid=0x12345678)
    check("command on a never-allocated channel gets INVALID_CHANNEL", is_error(m, ERR_INVALID_CHANNEL), repr(m))
    m = c.transact(PING, b"x", cid=BROADCAST)
    check("PING on the broadcast channel gets INVALID_CHANNEL", is_error(m, ERR_INVALID_CHANNEL), repr(m))
    c.send(struct.pack(">IBH", c.cid, PING, MAX_MSG + 1).ljust(64, b"\0"))
    m = c.read_msg(c.cid, 1.0)
    check("length 7610 gets INVALID_LEN", is_error(m, ERR_INVALID_LEN), repr(m))
    for r in frag(c.cid, PING, os.urandom(200), seq_override=lambda s: s + 1):
        c.send(r)
    m = c.read_msg(c.cid, 1.0)
    check("bad sequence gets INVALID_SEQ", is_error(m, ERR_INVALID_SEQ), repr(m))
    m = c.transact(0x99, b"")
    check("unknown command gets INVALID_CMD", is_error(m, ERR_INVALID_CMD), repr(m))
    c.send(frag(c.cid, PING, os.urandom(100))[0])
    t0 = time.monotonic()
    m = c.read_msg(c.cid, 2.0)
    dt = time.monotonic() - t0
    check("unfinished message gets MSG_TIMEOUT after ~500 ms", is_error(m, ERR_MSG_TIMEOUT) and 0.4 <= dt <= 1.2,
          "%r after %.3fs" % (m, dt))
    m = c.transact(LOCK, b"\x0b")
    check("LOCK 11 s gets INVALID_PAR", is_error(m, ERR_INVALID_PAR), repr(m))
    m = c.transact(CBOR, GET_INFO)
    check("CBOR getInfo answers status 0", m is not None and m[0] == CBOR and m[1][:1] == b"\0", repr(m))
    m = c.transact(MSG, U2F_VERSION)
    check("MSG U2F version answers U2F_V2 9000", m is not None and m[0] == MSG and m[1].endswith(b"\x90\x00"),
          repr(m))
    c.close()


def t_busy_and_lock(port):
    a, b = Client(port), Client(port)
    a.init()
    b.init()
    a.send(frag(a.cid, PING, os.urandom(100))[0])
    m = b.transact(PING, b"b")
    check("second channel mid-transaction gets CHANNEL_BUSY", is_error(m, ERR_CHANNEL_BUSY), repr(m))
    a.drain(0.7)  # a's message times out
    m = a.transact(LOCK, b"\x02")
    check("LOCK 2 s answers", m == (LOCK, b""), repr(m))
    m = b.transact(PING, b"b")
    check("other channel is CHANNEL_BUSY while locked", is_error(m, ERR_CHANNEL_BUSY), repr(m))
    m = a.transact(PING, b"a")
    check("locking channel still works", m == (PING, b"a"), repr(m))
    m = a.transact(LOCK, b"\x00")
    m2 = b.transact(PING, b"b")
    check("LOCK 0 releases the lock", m == (LOCK, b"") and m2 == (PING, b"b"), repr((m, m2)))
    a.close()
    b.close()


def t_presence(port, ctl):
    c = Client(port)
    c.init()
    control(ctl, "presence ask")
    kas = []
    t, res = run_bg(lambda: c.transact(CBOR, make_credential_req(), timeout=10.0, keepalives=kas))
    pend = wait_pending(ctl)
    check("ask mode: status shows a pending presence wait", pend)
    time.sleep(1.0)
    r = control(ctl, "approve")
    t.join(12)
    m = res.get("value")
    check("approve answers makeCredential with status 0", m is not None and m[0] == CBOR and m[1][:1] == b"\0",
          repr(m)[:80])
    up = [ts for ts, st in kas if st == KA_UPNEEDED]
    check("keepalives UPNEEDED while waiting (8..14 in ~1 s)", 8 <= len(up) <= 14, "%d keepalives" % len(up))
    gaps = [b - a for a, b in zip(up, up[1:])]
    check("keepalive cadence about 100 ms", gaps and 0.05 <= sum(gaps) / len(gaps) <= 0.16,
          "mean gap %r" % (sum(gaps) / len(gaps) if gaps else None))
    check("approve reports it hit the pending wait", r.get("applied") == "pending", repr(r))

    t, res = run_bg(lambda: c.transact(CBOR, make_credential_req(), timeout=10.0))
    wait_pending(ctl)
    control(ctl, "deny")
    t.join(12)
    m = res.get("value")
    check("deny answers OPERATION_DENIED (0x27)", m is not None and m[1][:1] == b"\x27", repr(m))

    t, res = run_bg(lambda: c.transact(CBOR, make_credential_req(), timeout=10.0))
    wait_pending(ctl)
    b = Client(port)
    b.init()
    mb = b.transact(PING, b"b")
    check("another client gets CHANNEL_BUSY during the presence wait", is_error(mb, ERR_CHANNEL_BUSY), repr(mb))
    info = b.init()
    check("INIT still answered during the presence wait", info is not None and "cid" in info, repr(info))
    c.send(struct.pack(">IBH", c.cid, CANCEL, 0).ljust(64, b"\0"))
    t.join(12)
    m = res.get("value")
    check("CANCEL during the wait answers KEEPALIVE_CANCEL (0x2d)", m is not None and m[1][:1] == b"\x2d", repr(m))
    st = control(ctl, "status")
    check("no pending wait after CANCEL", st.get("presence_pending") is False, repr(st.get("presence_pending")))
    c.send(struct.pack(">IBH", c.cid, CANCEL, 0).ljust(64, b"\0"))
    check("CANCEL with nothing running gets no reply", c.recv(0.3) is None)
    control(ctl, "presence timeout:300")
    m = c.transact(CBOR, make_credential_req(), timeout=5.0)
    check("presence timeout answers USER_ACTION_TIMEOUT (0x2f)", m is not None and m[1][:1] == b"\x2f", repr(m))
    control(ctl, "presence delay:200")
    t0 = time.monotonic()
    m = c.transact(CBOR, make_credential_req(), timeout=5.0)
    dt = time.monotonic() - t0
    check("presence delay:200 approves after ~200 ms", m is not None and m[1][:1] == b"\0" and dt >= 0.18,
          "%r %.3f" % (m and m[1][:1], dt))
    control(ctl, "presence yes")
    b.close()
    c.close()


def t_two_clients(port):
    results = []

    def worker(n):
        c = Client(port)
        good = 0
        if c.init() is None:
            results.append(0)
            return
        for i in range(30):
            payload = bytes([n]) * (10 + i)
            for _ in range(50):  # retry while the other client holds the card
                m = c.transact(PING, payload, timeout=2.0)
                if is_error(m, ERR_CHANNEL_BUSY):
                    time.sleep(0.002)
                    continue
                break
            if m == (PING, payload):
                good += 1
        results.append(good)
        c.close()

    ts = [threading.Thread(target=worker, args=(n,), daemon=True) for n in (1, 2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    check("two clients at once each get their own 30 replies", results == [30, 30], repr(results))


def with_fault(ctl, profile):
    r = control(ctl, "fault " + profile)
    if not r.get("ok"):
        not_ok("fault " + profile + " accepted", repr(r))
        return False
    return True


def t_faults(port, ctl):
    c = Client(port)
    c.init()
    if with_fault(ctl, "no-init-reply"):
        check("no-init-reply: INIT is not answered", c.init(timeout=0.5) is None)
        control(ctl, "clear")
    if with_fault(ctl, "busy"):
        m = c.transact(PING, b"x")
        check("busy: every command gets CHANNEL_BUSY", is_error(m, ERR_CHANNEL_BUSY), repr(m))
        control(ctl, "clear")
    if with_fault(ctl, "ctap1-only"):
        i = c.init()
        check("ctap1-only: capabilities without CBOR and without NMSG",
              i is not None and i.get("caps", 0) & (CAP_CBOR | CAP_NMSG) == 0, repr(i))
        m = c.transact(CBOR, GET_INFO)
        check("ctap1-only: CBOR gets INVALID_CMD", is_error(m, ERR_INVALID_CMD), repr(m))
        control(ctl, "clear")
        c.init()
    if with_fault(ctl, "wrong-cid"):
        c.send_msg(c.cid, PING, b"wc")
        rs = c.reports_for(0.4)
        cids = {struct.unpack(">I", r[:4])[0] for _, r in rs}
        check("wrong-cid: reply arrives on another channel", rs and c.cid not in cids, repr(cids))
        control(ctl, "clear")
    data = os.urandom(200)  # 4 reports
    if with_fault(ctl, "corrupt-seq"):
        c.send_msg(c.cid, PING, data)
        rs = [r for _, r in c.reports_for(0.4)]
        seqs = [r[4] for r in rs[1:]]
        check("corrupt-seq: continuation sequence numbers are wrong", len(rs) == 4 and seqs != [0, 1, 2],
              repr(seqs))
        control(ctl, "clear")
    if with_fault(ctl, "drop-every:2"):
        c.send_msg(c.cid, PING, data)
        rs = c.reports_for(0.4)
        check("drop-every:2: half the reports are dropped", len(rs) == 2, "%d reports" % len(rs))
        control(ctl, "clear")
    if with_fault(ctl, "duplicate-every:2"):
        c.send_msg(c.cid, PING, data)
        rs = c.reports_for(0.4)
        check("duplicate-every:2: every second report comes twice", len(rs) == 6, "%d reports" % len(rs))
        control(ctl, "clear")
    if with_fault(ctl, "slow-ctap1:400"):
        kas = []
        t0 = time.monotonic()
        m = c.transact(MSG, U2F_VERSION, timeout=3.0, keepalives=kas)
        dt = time.monotonic() - t0
        check("slow-ctap1:400: U2F reply after >= 400 ms with keepalives PROCESSING",
              m is not None and m[0] == MSG and dt >= 0.38 and kas and all(s == KA_PROCESSING for _, s in kas),
              "%.3fs %d keepalives" % (dt, len(kas)))
        control(ctl, "clear")
    if with_fault(ctl, "hang-before-up"):
        kas = []
        c.send_msg(c.cid, CBOR, make_credential_req())
        m = c.read_msg(c.cid, 0.6, keepalives=kas)
        check("hang-before-up: no reply, keepalives PROCESSING only",
              m is None and len(kas) >= 3 and all(s == KA_PROCESSING for _, s in kas),
              "%r %r" % (m, [s for _, s in kas]))
        st = control(ctl, "status")
        check("hang-before-up: presence never asked", st.get("presence_pending") is False)
        c.send(struct.pack(">IBH", c.cid, CANCEL, 0).ljust(64, b"\0"))
        m = c.read_msg(c.cid, 2.0)
        check("hang-before-up: CANCEL answers KEEPALIVE_CANCEL", m is not None and m[1][:1] == b"\x2d", repr(m))
        control(ctl, "clear")
    if with_fault(ctl, "no-keepalive"):
        control(ctl, "presence ask")
        kas = []
        t, res = run_bg(lambda: c.transact(CBOR, make_credential_req(), timeout=5.0, keepalives=kas))
        wait_pending(ctl)
        time.sleep(0.5)
        control(ctl, "approve")
        t.join(6)
        check("no-keepalive: silent while waiting for presence, then answers",
              not kas and res.get("value") is not None and res["value"][1][:1] == b"\0",
              "%d keepalives" % len(kas))
        control(ctl, "presence yes")
        control(ctl, "clear")
    for core_fault in ("no-pin-protocols", "bogus-signature", "counter-rollback"):
        if with_fault(ctl, core_fault):
            st = control(ctl, "status")
            check("fault %s shows in status" % core_fault, core_fault in st.get("faults", []), repr(st.get("faults")))
            control(ctl, "clear")
    r = control(ctl, "fault no-such-thing")
    check("an unknown profile is refused, naming it", r.get("ok") is False and "no-such-thing" in r.get("error", ""),
          repr(r))
    if with_fault(ctl, "unplug"):
        check("unplug: nothing answered", c.transact(PING, b"u", timeout=0.5) is None)
        st = control(ctl, "status")
        check("unplug: status says unplugged", st.get("unplugged") is True)
        control(ctl, "clear")
        m = c.transact(PING, b"u")
        check("clear after unplug: answers again", m == (PING, b"u"), repr(m))
    c.close()


def t_replug(port, ctl, announce_dir):
    files = [f for f in os.listdir(announce_dir) if f.endswith(".uri")]
    check("announce file exists", len(files) == 1, repr(files))
    if not files:
        return port
    path = os.path.join(announce_dir, files[0])
    with open(path) as f:
        before = f.read()
    check("announce file names the URI, then the personality",
          before == "udp:127.0.0.1:%d\npersonality kcard-2.1\n" % port, repr(before))
    c = Client(port)
    c.init()
    old_cid = c.cid
    r = control(ctl, "replug")
    new_uri = r.get("uri", "")
    check("replug answers a new URI", r.get("ok") and new_uri.startswith("udp:127.0.0.1:") and
          new_uri != "udp:127.0.0.1:%d" % port, repr(r))
    try:
        new_port = int(new_uri.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return port
    with open(path) as f:
        after = f.read()
    check("announce file rewritten on replug",
          after == new_uri + "\npersonality kcard-2.1\n", repr(after))
    check("old port is silent after replug", c.init(timeout=0.4) is None)
    n = Client(new_port)
    m = n.transact(PING, b"p", cid=old_cid)
    check("old channel is gone after replug (INVALID_CHANNEL)", is_error(m, ERR_INVALID_CHANNEL), repr(m))
    check("INIT works on the new port", n.init() is not None)
    r = control(ctl, "unplug")
    check("unplug removes the announce file", not os.path.exists(path))
    control(ctl, "clear")
    check("clear after unplug re-announces", os.path.exists(path))
    c.close()
    n.close()
    return new_port


def t_status(port, ctl, log):
    st = control(ctl, "status")
    check("status JSON has listen, port, presence, faults, clients, card",
          st.get("ok") is True and st.get("port") == port and st.get("listen") == "127.0.0.1" and
          st.get("presence") == "yes" and st.get("faults") == [] and isinstance(st.get("clients"), list) and
          isinstance(st.get("card"), dict), repr(st)[:300])
    r = control(ctl, "frobnicate")
    check("unknown control command refused", r.get("ok") is False and "frobnicate" in r.get("error", ""))
    r = control(ctl, "presence sometimes")
    check("bad presence mode refused", r.get("ok") is False)
    lines = []
    with open(log) as f:
        for line in f:
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    pass
    good = [j for j in lines if {"command", "channel", "status", "duration_ms", "client"} <= set(j)]
    check("-v logs one JSON line per request", len(good) >= 10 and any(j["command"] == "CBOR" for j in good),
          "%d lines" % len(good))


def replug_once(port, announce_dir):
    """vcard started with --fault replug: re-enumerates after its first request."""
    c = Client(port)
    c.init()
    m = c.transact(CBOR, GET_INFO)
    check("--fault replug: the first request is answered", m is not None and m[0] == CBOR, repr(m))
    new_uri, end = None, time.monotonic() + 3
    while time.monotonic() < end:
        for f in os.listdir(announce_dir):
            if f.endswith(".uri"):
                with open(os.path.join(announce_dir, f)) as fh:
                    uri = fh.readline().strip()  # the URI; then "personality NAME"
                if uri and uri != "udp:127.0.0.1:%d" % port:
                    new_uri = uri
        if new_uri:
            break
        time.sleep(0.05)
    check("--fault replug: announce file names a new port after it", new_uri is not None, repr(new_uri))
    if new_uri:
        n = Client(int(new_uri.rsplit(":", 1)[1]))
        check("--fault replug: the card answers INIT on the new port", n.init() is not None)
        m = n.transact(CBOR, GET_INFO)
        time.sleep(0.3)  # a second replug would have happened by now
        check("--fault replug: only once (still on the new port after another request)",
              m is not None and m[0] == CBOR and n.init() is not None)
        n.close()
    c.close()
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "replug-once":
        return replug_once(int(sys.argv[2]), sys.argv[3])
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    port, ctl, announce_dir, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    for fn, args in ((t_init, (port,)), (t_framing, (port,)), (t_busy_and_lock, (port,)),
                     (t_presence, (port, ctl)), (t_two_clients, (port,)), (t_faults, (port, ctl))):
        try:
            fn(*args)
        except Exception as e:  # one broken group must not hide the others
            not_ok(fn.__name__, "exception %r" % e)
    try:
        port = t_replug(port, ctl, announce_dir)
        t_status(port, ctl, log)
    except Exception as e:
        not_ok("replug/status", "exception %r" % e)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

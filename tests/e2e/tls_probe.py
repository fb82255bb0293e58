#!/usr/bin/env python3
"""TLS probes of the services' HTTP front, for test_tls_answers.sh.

  tls_probe.py CASE HOST PORT CAFILE
      opens one TLS connection to HOST:PORT (verified against CAFILE) and
      reads the raw TLS records itself, so it sees how each answer was cut:
      records  three GET /healthz in turn on one kept-alive connection
      http10   a GET /healthz in HTTP/1.0 without keep-alive (the server closes)
      close    a GET /healthz with Connection: close
      head     a HEAD /healthz, then a GET /healthz on the same connection
      pipelined two GET /healthz in one write
      metrics  a GET /metrics (a large answer)
      missing  a GET of a path no route has (a 404)
      mixed    a GET /metrics, then two GET /healthz on the same connection
      fresh    five fresh TLS 1.3 connections, one GET /healthz each, sent
               as a client with Nagle's algorithm on sends it (after the
               handshake, in its own write): "seconds" is each answer's
               time from the request's send
  Prints {"answers": [{"status", "records", "body_len", "seconds"}...],
  "closed"} as JSON: records is how many TLS application-data records the
  answer arrived in. Every wait is bounded (5 s)."""
import json
import socket
import ssl
import sys
import time

DEADLINE = 5.0


class Conn:
    def __init__(self, host, port, cafile, tls13=False):
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False
        if tls13:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.sock = socket.create_connection((host, port), timeout=DEADLINE)
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_side=False)
        self.raw = b""
        self.plain = b""
        self.closed = False
        self.records = 0
        self._handshake()

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _read_raw(self):
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
        self.raw += data

    def _feed_record(self):
        """Feeds one whole raw record to the TLS object; False if none is whole."""
        if len(self.raw) < 5:
            return False
        size = int.from_bytes(self.raw[3:5], "big")
        if len(self.raw) < 5 + size:
            return False
        record, self.raw = self.raw[: 5 + size], self.raw[5 + size :]
        if record[0] == 23:
            self.records += 1
        self.incoming.write(record)
        return True

    def _handshake(self):
        end = time.monotonic() + DEADLINE
        while True:
            try:
                self.tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                while not self._feed_record():
                    if time.monotonic() > end or self.closed:
                        raise TimeoutError("no TLS handshake within 5 s")
                    self._read_raw()

    def send(self, data):
        self.tls.write(data)
        self._flush()

    def _drain_plain(self):
        while True:
            try:
                chunk = self.tls.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                return
            if not chunk:
                return
            self.plain += chunk

    def answer(self, head_request=False, start=None):
        """Reads one whole answer; returns its status, record count, body length."""
        start = time.monotonic() if start is None else start
        self.records = 0
        while True:
            parsed = parse(self.plain, head_request)
            if parsed is not None:
                status, body_len, used = parsed
                self.plain = self.plain[used:]
                return {
                    "status": status,
                    "records": self.records,
                    "body_len": body_len,
                    "seconds": round(time.monotonic() - start, 4),
                }
            if time.monotonic() - start > DEADLINE:
                raise TimeoutError("no whole answer within 5 s: %r" % self.plain[:200])
            if not self._feed_record():
                if self.closed:
                    raise EOFError("closed before a whole answer: %r" % self.plain[:200])
                self._read_raw()
                continue
            self._drain_plain()

    def wait_closed(self):
        """True when the server closes the connection within 5 s."""
        end = time.monotonic() + DEADLINE
        while not self.closed and time.monotonic() < end:
            try:
                self._read_raw()
            except (socket.timeout, ConnectionResetError):
                return False
        return self.closed


def parse(buf, head_request):
    """(status, body length, bytes used) of one whole HTTP answer at buf's start."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if head_request:
        length_sent = 0
    else:
        length_sent = length
    if len(buf) < end + 4 + length_sent:
        return None
    return status, length_sent, end + 4 + length_sent


def get(path, version="HTTP/1.1", extra=""):
    return ("GET %s %s\r\nHost: kcard\r\n%s\r\n" % (path, version, extra)).encode()


def main():
    case, host, port, cafile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    answers = []
    closed = None
    if case == "fresh":
        for _ in range(5):
            c = Conn(host, port, cafile, tls13=True)
            sent = time.monotonic()
            c.send(get("/healthz"))
            answers.append(c.answer(start=sent))
            c.sock.close()
        print(json.dumps({"answers": answers, "closed": closed}))
        return
    c = Conn(host, port, cafile)
    if case == "records":
        for _ in range(3):
            c.send(get("/healthz"))
            answers.append(c.answer())
    elif case == "http10":
        c.send(get("/healthz", "HTTP/1.0"))
        answers.append(c.answer())
        closed = c.wait_closed()
    elif case == "close":
        c.send(get("/healthz", extra="Connection: close\r\n"))
        answers.append(c.answer())
        closed = c.wait_closed()
    elif case == "head":
        c.send(b"HEAD /healthz HTTP/1.1\r\nHost: kcard\r\n\r\n")
        answers.append(c.answer(head_request=True))
        c.send(get("/healthz"))
        answers.append(c.answer())
    elif case == "pipelined":
        c.send(get("/healthz") + get("/healthz"))
        answers.append(c.answer())
        answers.append(c.answer())
    elif case == "metrics":
        c.send(get("/metrics"))
        answers.append(c.answer())
    elif case == "mixed":
        for path in ("/metrics", "/healthz", "/healthz"):
            c.send(get(path))
            answers.append(c.answer())
    elif case == "missing":
        c.send(get("/no/such/route"))
        answers.append(c.answer())
    else:
        sys.exit("tls_probe.py: unknown case %r" % case)
    print(json.dumps({"answers": answers, "closed": closed}))


if __name__ == "__main__":
    main()

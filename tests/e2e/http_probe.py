#!/usr/bin/env python3
"""Raw-socket probes of the services' HTTP front, for test_http_limits.sh.

  http_probe.py flood HOST PORT SRC N SECONDS [INTERVAL]
      keeps up to N connections from source address SRC open to HOST:PORT for
      SECONDS, each sending an unfinished request and then one header line
      every INTERVAL seconds (slowloris); a connection the server closes is
      opened again. Prints {"opened", "closed_by_server", "open_at_end",
      "max_open"} as JSON.
  http_probe.py raw HOST PORT CASE
      sends one hand-made request (CASE: smuggle, dup_length, same_length,
      no_host, http10_no_host, te_gzip, pipelined) and reads until the
      server closes or 3 s pass. Prints {"responses", "status", "closed",
      "headers", "body"} of the first response as JSON.
  http_probe.py parallel URL N
      N requests at once (one thread each); prints {"elapsed", "statuses",
      "bodies", "max_latency"} as JSON.
Every wait is bounded."""
import json
import resource
import selectors
import socket
import sys
import threading
import time
import urllib.request


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def flood(host, port, src, n, seconds, interval=0.5):
    limit = raise_nofile()
    n = min(n, limit - 64)
    sel = selectors.DefaultSelector()
    socks = {}
    stats = {"opened": 0, "closed_by_server": 0, "max_open": 0, "connect_errors": 0}
    end = time.monotonic() + seconds
    next_trickle = time.monotonic() + interval

    def open_one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((src, 0))
            s.connect_ex((host, port))
        except OSError:
            stats["connect_errors"] += 1
            s.close()
            return False
        socks[s] = "connecting"
        sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ)
        stats["opened"] += 1
        return True

    def drop(s, by_server):
        sel.unregister(s)
        del socks[s]
        s.close()
        if by_server:
            stats["closed_by_server"] += 1

    while time.monotonic() < end:
        # top up, at most 2000 new connections per round so the loop stays responsive
        budget = 2000
        while len(socks) < n and budget > 0:
            if not open_one():
                break
            budget -= 1
        stats["max_open"] = max(stats["max_open"], len(socks))
        for key, events in sel.select(timeout=0.05):
            s = key.fileobj
            if s not in socks:
                continue
            if socks[s] == "connecting" and events & selectors.EVENT_WRITE:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err != 0:
                    drop(s, True)
                    continue
                try:
                    s.send(b"GET /healthz HTTP/1.1\r\nHost: flood\r\n")
                except OSError:
                    drop(s, True)
                    continue
                socks[s] = "open"
                sel.modify(s, selectors.EVENT_READ)
                continue
            if events & selectors.EVENT_READ:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    drop(s, True)
        now = time.monotonic()
        if now >= next_trickle:
            next_trickle = now + interval
            for s, state in list(socks.items()):
                if state != "open":
                    continue
                try:
                    s.send(b"X-Trickle: 1\r\n")
                except OSError:
                    drop(s, True)
    stats["open_at_end"] = len(socks)
    for s in list(socks):
        s.close()
    return stats


CASES = {
    # a body framed two ways: 4 bytes by Content-Length, empty by chunked; what
    # follows either way is a second request that must never be served
    "smuggle": b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    "dup_length": b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 41\r\n\r\n"
                  b"{}GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    "same_length": b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 2\r\n"
                   b"Connection: close\r\n\r\n{}",
    "no_host": b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
    "two_hosts": b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    "http10_no_host": b"GET /healthz HTTP/1.0\r\n\r\n",
    "te_gzip": b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nxxxx",
    "pipelined": b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                 b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
}


def raw(host, port, case):
    s = socket.create_connection((host, port), timeout=3)
    s.sendall(CASES[case])
    data = b""
    closed = False
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    s.close()
    out = {"responses": data.count(b"HTTP/1.1 ") + data.count(b"HTTP/1.0 "), "closed": closed,
           "status": 0, "headers": {}, "body": None}
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if lines and lines[0].startswith("HTTP/"):
        out["status"] = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            out["headers"][k.strip().lower()] = v.strip()
        length = int(out["headers"].get("content-length", "0") or 0)
        try:
            out["body"] = json.loads(rest[:length])
        except ValueError:
            out["body"] = rest[:length].decode("latin-1")
    return out


def parallel(url, n):
    results = [None] * n
    t0 = time.monotonic()

    def one(i):
        start = time.monotonic()
        req = urllib.request.Request(url, data=("body-%d" % i).encode(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                results[i] = (r.status, json.loads(r.read()), time.monotonic() - start)
        except Exception as e:  # the test reports what went wrong
            results[i] = (0, str(e), time.monotonic() - start)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    done = [r for r in results if r is not None]
    return {"elapsed": time.monotonic() - t0, "statuses": [r[0] for r in done],
            "bodies": [r[1] for r in done], "max_latency": max((r[2] for r in done), default=0)}


def main():
    cmd = sys.argv[1]
    if cmd == "flood":
        host, port, src, n, secs = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
        interval = float(sys.argv[7]) if len(sys.argv) > 7 else 0.5
        print(json.dumps(flood(host, port, src, n, secs, interval)))
    elif cmd == "raw":
        print(json.dumps(raw(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
    elif cmd == "parallel":
        print(json.dumps(parallel(sys.argv[2], int(sys.argv[3]))))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()

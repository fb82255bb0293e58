"""Small TCP tools for the kc-forward and split-chain tests (stdlib only).

  echo PORT                    echo server on 127.0.0.1:PORT: returns every byte,
                               passes the client's EOF back (half-close)
  roundtrip PORT NBYTES        sends NBYTES random bytes, shuts its write side,
                               reads everything back; exit 0 when identical
  expect_close PORT SECONDS    connects and waits for the peer to close; exit 0
                               when it closed (EOF or reset) within SECONDS
  connect_fails PORT           exit 0 when a connection to PORT is refused
  hold PORT SECONDS            connects and keeps the connection open
"""
import hashlib
import os
import socket
import sys
import threading
import time


def echo(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)

    def serve(c):
        with c:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
            c.shutdown(socket.SHUT_WR)

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def roundtrip(port, nbytes):
    data = os.urandom(nbytes)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(20)

    def send():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=send)
    t.start()
    got = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    t.join()
    s.close()
    same = hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    print("sent %d received %d identical %s" % (len(data), len(got), same))
    return 0 if same else 1


def expect_close(port, seconds):
    start = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=seconds)
        s.settimeout(seconds)
        data = s.recv(1)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        print("still open after %.2f s" % (time.monotonic() - start))
        return 1
    elapsed = time.monotonic() - start
    print("closed after %.3f s, data %r" % (elapsed, data))
    return 0 if data == b"" and elapsed <= seconds else 1


def connect_fails(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
    except OSError as e:
        print("refused: %s" % e)
        return 0
    s.close()
    print("connected")
    return 1


def hold(port, seconds):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    time.sleep(seconds)
    s.close()
    return 0


def main():
    mode = sys.argv[1]
    port = int(sys.argv[2])
    if mode == "echo":
        echo(port)
    elif mode == "roundtrip":
        return roundtrip(port, int(sys.argv[3]))
    elif mode == "expect_close":
        return expect_close(port, float(sys.argv[3]))
    elif mode == "connect_fails":
        return connect_fails(port)
    elif mode == "hold":
        return hold(port, float(sys.argv[3]))
    return 2


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/nb.py: the two ends of the benchmark streams (no dependencies).

  nb.py serve --unix PATH [--tcp PORT]
        one server for every stream kind; the first byte of a connection picks it:
        S sink: read to EOF, answer the byte count      E echo: send back what comes
        Z stall: never read (a stuck reader)
  nb.py push ADDR BYTES [--streams K]      K concurrent sink streams, JSON result
  nb.py rr ADDR N                          N 1-byte round trips on one connection
  nb.py connect ADDR N                     N new connections, one round trip each
  nb.py stall ADDR SECONDS                 a stream that writes into a stuck reader
ADDR is unix:PATH or tcp:HOST:PORT. Times are wall clock, seconds.
"""
import json
import os
import socket
import statistics
import sys
import threading
import time

CHUNK = 256 * 1024


def connect(addr):
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(addr[5:])
    elif addr.startswith("tcp:"):
        _, host, port = addr.split(":")
        s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        raise SystemExit(f"bad address {addr}")
    return s


def handle(conn):
    try:
        kind = conn.recv(1)
        if kind == b"S":
            n = 0
            while True:
                b = conn.recv(CHUNK)
                if not b:
                    break
                n += len(b)
            conn.sendall(f"{n}\n".encode())
        elif kind == b"E":
            while True:
                b = conn.recv(CHUNK)
                if not b:
                    break
                conn.sendall(b)
        elif kind == b"Z":
            time.sleep(3600)
    except OSError:
        pass
    finally:
        conn.close()


def serve(args):
    socks = []
    path = args[args.index("--unix") + 1]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.bind(path)
    u.listen(128)
    socks.append(u)
    if "--tcp" in args:
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("0.0.0.0", int(args[args.index("--tcp") + 1])))
        t.listen(128)
        socks.append(t)

    def accept_loop(ls):
        while True:
            c, _ = ls.accept()
            if c.family == socket.AF_INET:
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=handle, args=(c,), daemon=True).start()

    for ls in socks[1:]:
        threading.Thread(target=accept_loop, args=(ls,), daemon=True).start()
    print("ready", flush=True)
    accept_loop(socks[0])


def push_one(addr, nbytes, out, i, start):
    buf = bytes(CHUNK)
    s = connect(addr)
    start.wait()
    t0 = time.monotonic()
    s.sendall(b"S")
    left = nbytes
    while left > 0:
        n = min(left, CHUNK)
        s.sendall(buf[:n])
        left -= n
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while not answer.endswith(b"\n"):
        b = s.recv(64)
        if not b:
            break
        answer += b
    t1 = time.monotonic()
    s.close()
    got = int(answer.strip() or b"-1")
    out[i] = {"seconds": t1 - t0, "bytes": got, "ok": got == nbytes}


def push(addr, nbytes, streams):
    out = [None] * streams
    start = threading.Event()
    threads = [threading.Thread(target=push_one, args=(addr, nbytes, out, i, start)) for i in range(streams)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    start.set()
    for t in threads:
        t.join()
    t1 = time.monotonic()
    ok = all(o and o["ok"] for o in out)
    rates = [o["bytes"] / o["seconds"] for o in out if o and o["seconds"] > 0]
    print(json.dumps({"ok": ok, "seconds": t1 - t0, "bytes": nbytes * streams,
                      "rate": nbytes * streams / (t1 - t0), "stream_rates": rates}))


def rr(addr, n):
    s = connect(addr)
    s.sendall(b"E")
    times = []
    for _ in range(n + 5):
        t0 = time.monotonic()
        s.sendall(b"x")
        if s.recv(1) != b"x":
            raise SystemExit("echo broke")
        times.append(time.monotonic() - t0)
    s.close()
    times = times[5:]   # the first ones include the stream opening
    print(json.dumps({"median": statistics.median(times), "mean": statistics.mean(times)}))


def connect_rr(addr, n):
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        s = connect(addr)
        s.sendall(b"Ex")
        if s.recv(1) != b"x":
            raise SystemExit("echo broke")
        times.append(time.monotonic() - t0)
        s.close()
    print(json.dumps({"median": statistics.median(times), "mean": statistics.mean(times)}))


def stall(addr, seconds):
    s = connect(addr)
    s.setblocking(False)
    s.send(b"Z")
    sent = 0
    end = time.monotonic() + seconds
    buf = bytes(CHUNK)
    last = 0
    while time.monotonic() < end:
        try:
            sent += s.send(buf)
        except BlockingIOError:
            time.sleep(0.05)
        if time.monotonic() - last > 0.5:
            last = time.monotonic()
            print(json.dumps({"stalled_bytes_accepted": sent}), flush=True)
    print(json.dumps({"stalled_bytes_accepted": sent}), flush=True)
    s.close()


def main():
    a = sys.argv[1:]
    if not a:
        raise SystemExit(__doc__)
    if a[0] == "serve":
        serve(a[1:])
    elif a[0] == "push":
        k = int(a[a.index("--streams") + 1]) if "--streams" in a else 1
        push(a[1], int(a[2]), k)
    elif a[0] == "rr":
        rr(a[1], int(a[2]))
    elif a[0] == "connect":
        connect_rr(a[1], int(a[2]))
    elif a[0] == "stall":
        stall(a[1], float(a[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()

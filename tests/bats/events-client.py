#!/usr/bin/env python3
"""A raw client of scmd's control socket for core-events.bats: what scmctl
does not do on purpose (subscribe and then not read, subscribe many times,
make requests fast enough to flood a reader).

  events-client.py subscribe SOCK N GO-FILE
      opens N subscriptions and prints "subscribed" or the error for each,
      then reads none until GO-FILE exists; then reads every connection to
      its end and prints "conn I: E events, end" (or "open" when scmd still
      holds it after the last event).
  events-client.py flood SOCK N
      N endpoint.create + endpoint.remove pairs on one connection.
  events-client.py request-after-subscribe SOCK
      subscribes, then asks for "status" on the same connection; prints
      scmd's answer.
"""
import json
import os
import socket
import struct
import sys
import time

MAGIC, HDR = 0x314D4353, "<IBBHIIII"
CALL, REPLY, ERROR, EVENT = 1, 2, 3, 4


def send(s, call_id, body):
    data = json.dumps(body).encode()
    s.send(struct.pack(HDR, MAGIC, 1, CALL, 0, call_id, 0, len(data), 0) + data)


def recv(s):
    """(type, call_id, json) or None at the end of the stream."""
    buf = s.recv(1 << 20)
    if not buf:
        return None
    _, _, typ, _, call_id, _, jlen, _ = struct.unpack_from(HDR, buf)
    return typ, call_id, json.loads(buf[24:24 + jlen]) if jlen else {}


def message(body):
    """An error frame's first message (scmd sends {"error": [chain]})."""
    chain = body.get("error") or [{}]
    return chain[0].get("message", body)


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    return s


def subscribe(path, n, go):
    conns = []
    for i in range(n):
        s = connect(path)
        send(s, 1, {"op": "events.subscribe"})
        typ, _, body = recv(s)
        if typ == REPLY:
            print("subscribed", flush=True)
            conns.append(s)
        else:
            print("refused:", message(body), flush=True)
            s.close()
    while not os.path.exists(go):
        time.sleep(0.05)
    for i, s in enumerate(conns):
        s.settimeout(0.5)
        count, end = 0, "open"
        try:
            while True:
                m = recv(s)
                if m is None:
                    end = "end"
                    break
                count += m[0] == EVENT
        except socket.timeout:
            pass
        print(f"conn {i}: {count} events, {end}", flush=True)


def flood(path, n):
    s = connect(path)
    for i in range(n):
        for k, op in enumerate(("endpoint.create", "endpoint.remove")):
            send(s, 2 * i + k + 1, {"op": op, "name": f"flood{i % 50}"})
            typ, _, body = recv(s)
            if typ != REPLY:
                sys.exit(f"{op} flood{i % 50}: {body}")


def request_after_subscribe(path):
    s = connect(path)
    send(s, 1, {"op": "events.subscribe"})
    recv(s)
    send(s, 2, {"op": "status"})
    while True:
        typ, call_id, body = recv(s)
        if call_id == 2:
            print("error:" if typ == ERROR else "reply:", message(body) if typ == ERROR else body)
            return


if __name__ == "__main__":
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "subscribe":
        subscribe(path, int(sys.argv[3]), sys.argv[4])
    elif cmd == "flood":
        flood(path, int(sys.argv[3]))
    else:
        request_after_subscribe(path)

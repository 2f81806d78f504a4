#!/usr/bin/env python3
"""rfb-tls.py: raw RFB/VeNCrypt clients for tests/bats/gfx-tls.bats.

  types PORT               security types for RFB 3.8, then the VeNCrypt
                           subtypes if 19 is offered ("types 19 2",
                           "subtypes 258")
  choose PORT TYPE [VER]   picks a security type as a 3.8 viewer (VER: the
                           version it claims, default 003.008) and prints
                           what came back ("refused REASON", "challenge",
                           "closed")
  garbage PORT KIND        sends bad bytes at one step (version, sectype,
                           vencrypt-version, subtype, tls) and prints
                           "closed" when the server hangs up
  hold PORT N              opens N connections that each send half a
                           message and wait; prints "held" and waits for
                           stdin to close
  relay PORT REC           listens on a free port (printed), forwards one
                           connection to PORT and writes what the server
                           sent to REC.down and what the viewer sent to
                           REC.up
  starttls PORT SUBTYPE    negotiates VeNCrypt up to SUBTYPE, then listens
                           on a free port (printed) and splices one
                           connection to the server: a TLS client (gnutls-cli)
                           does the handshake on it
"""
import select
import socket
import struct
import sys
import threading


def conn(port):
    return socket.create_connection(("127.0.0.1", int(port)), timeout=15)


def recv(s, n):
    b = b""
    while len(b) < n:
        try:
            c = s.recv(n - len(b))
        except (ConnectionResetError, socket.timeout):
            break
        if not c:
            break
        b += c
    return b


def closed(s):
    """True when the server hangs up (what it sends before is ignored)."""
    s.settimeout(15)
    try:
        while True:
            c = s.recv(4096)
            if not c:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def greet(s, ver=b"RFB 003.008\n"):
    assert recv(s, 12)[:4] == b"RFB "
    s.sendall(ver)
    n = recv(s, 1)
    return list(recv(s, n[0])) if n else []


def venc_to_subtypes(s):
    s.sendall(b"\x13")
    assert recv(s, 2) == b"\x00\x02"
    s.sendall(b"\x00\x02")
    assert recv(s, 1) == b"\x00"
    n = recv(s, 1)[0]
    return [struct.unpack(">I", recv(s, 4))[0] for _ in range(n)]


def cmd_types(port):
    s = conn(port)
    types = greet(s)
    print("types", " ".join(map(str, types)))
    if 19 in types:
        print("subtypes", " ".join(map(str, venc_to_subtypes(s))))


def cmd_choose(port, t, ver="003.008"):
    s = conn(port)
    assert recv(s, 12)[:4] == b"RFB "
    s.sendall(b"RFB %s\n" % ver.encode())
    if ver.startswith("003.003"):
        t32 = recv(s, 4)
        if len(t32) < 4:
            print("closed")
        elif t32 == b"\0\0\0\0":
            n = struct.unpack(">I", recv(s, 4))[0]
            print("refused", recv(s, n).decode())
        else:
            print("type", struct.unpack(">I", t32)[0])
        return
    n = recv(s, 1)
    types = list(recv(s, n[0])) if n else []
    s.sendall(bytes([int(t)]))
    r = recv(s, 4)
    if int(t) == 2 and len(r) == 4 and 2 in types:
        print("challenge")
    elif r == b"\0\0\0\1":
        n = recv(s, 4)
        print("refused", recv(s, struct.unpack(">I", n)[0]).decode() if len(n) == 4 else "")
    else:
        print("closed" if not r else "other %r" % r)


def cmd_garbage(port, kind):
    s = conn(port)
    if kind == "version":
        recv(s, 12)
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
    else:
        types = greet(s)
        if kind == "sectype":
            s.sendall(b"\x07")
        else:
            assert 19 in types
            s.sendall(b"\x13")
            assert recv(s, 2) == b"\x00\x02"
            if kind == "vencrypt-version":
                s.sendall(b"\x07\x09")
            else:
                s.sendall(b"\x00\x02")
                recv(s, 1)
                n = recv(s, 1)[0]
                subs = [struct.unpack(">I", recv(s, 4))[0] for _ in range(n)]
                if kind == "subtype":
                    s.sendall(struct.pack(">I", 999))
                else:  # a TLS record header that is not a ClientHello
                    s.sendall(struct.pack(">I", subs[0]))
                    assert recv(s, 1) == b"\x01"
                    s.sendall(b"\x16\x03\x01\x00\x05hello" + b"\xff" * 64)
    print("closed" if closed(s) else "still open")


def cmd_hold(port, n):
    socks = []
    for i in range(int(n)):
        s = conn(port)
        recv(s, 12)
        s.sendall(b"RFB 00" if i % 2 else b"R")  # half a ProtocolVersion
        socks.append(s)
    print("held", flush=True)
    sys.stdin.read()


def splice(a, b, logs=None):
    """Copies both ways until both ends close; logs: (a->b file, b->a file)."""
    ends = {a: b, b: a}
    open_ = {a, b}
    while open_:
        r, _, _ = select.select(list(open_), [], [], 30)
        if not r:
            break
        for x in r:
            try:
                d = x.recv(65536)
            except ConnectionResetError:
                d = b""
            if not d:
                open_.discard(x)
                try:
                    ends[x].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            if logs:
                logs[0 if x is a else 1].write(d)
            ends[x].sendall(d)


def listener():
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(1)
    l.settimeout(30)  # a test that never connects does not leave us behind
    print(l.getsockname()[1], flush=True)
    return l


def cmd_relay(port, rec):
    l = listener()
    v, _ = l.accept()
    s = conn(port)
    with open(rec + ".up", "wb") as up, open(rec + ".down", "wb") as down:
        splice(v, s, (up, down))


def cmd_starttls(port, subtype):
    s = conn(port)
    greet(s)
    subs = venc_to_subtypes(s)
    assert int(subtype) in subs, subs
    s.sendall(struct.pack(">I", int(subtype)))
    assert recv(s, 1) == b"\x01"
    l = listener()
    v, _ = l.accept()
    s.settimeout(None)
    splice(v, s)


if __name__ == "__main__":
    cmd = {"types": cmd_types, "choose": cmd_choose, "garbage": cmd_garbage, "hold": cmd_hold,
           "relay": cmd_relay, "starttls": cmd_starttls}[sys.argv[1]]
    cmd(*sys.argv[2:])

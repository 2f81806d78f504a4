#!/usr/bin/env python3
"""scm-gfx-rfb-input: a minimal RFB 3.8 viewer that sends input, for tests
and demos: it clicks at a desktop point (which focuses the app there) and
types text, as a person at a VNC viewer would.

  scm-gfx-rfb-input PORT [--click X Y] [--type TEXT] [--return]

Printable ASCII maps to X keysyms one to one; --return adds Return. It
waits for one framebuffer update after sending, so the server has handled
every event before it exits."""
import socket
import struct
import sys


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    port = int(argv[1])
    actions, i = [], 2
    while i < len(argv):
        if argv[i] == "--click":
            actions.append(("click", int(argv[i + 1]), int(argv[i + 2])))
            i += 3
        elif argv[i] == "--type":
            actions.append(("type", argv[i + 1]))
            i += 2
        elif argv[i] == "--return":
            actions.append(("key", 0xFF0D))
            i += 1
        else:
            sys.exit("scm-gfx-rfb-input: unknown argument %r" % argv[i])
    s = socket.create_connection(("127.0.0.1", port), timeout=30)

    def recv(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                sys.exit("scm-gfx-rfb-input: the server closed the connection")
            b += c
        return b

    if recv(12)[:4] != b"RFB ":
        sys.exit("scm-gfx-rfb-input: not an RFB server")
    s.sendall(b"RFB 003.008\n")
    n = recv(1)[0]
    if 1 not in recv(n):
        sys.exit("scm-gfx-rfb-input: security type None not offered")
    s.sendall(b"\x01")
    if recv(4) != b"\0\0\0\0":
        sys.exit("scm-gfx-rfb-input: security handshake failed")
    s.sendall(b"\x01")
    init = recv(24)
    recv(struct.unpack(">I", init[20:24])[0])

    def key(sym):
        s.sendall(struct.pack(">BBHI", 4, 1, 0, sym) + struct.pack(">BBHI", 4, 0, 0, sym))

    for a in actions:
        if a[0] == "click":
            s.sendall(struct.pack(">BBHH", 5, 0, a[1], a[2]) + struct.pack(">BBHH", 5, 1, a[1], a[2])
                      + struct.pack(">BBHH", 5, 0, a[1], a[2]))
        elif a[0] == "type":
            for ch in a[1]:
                if not 0x20 <= ord(ch) < 0x7F:
                    sys.exit("scm-gfx-rfb-input: only printable ASCII can be typed")
                key(ord(ch))
        else:
            key(a[1])
    # A 1x1 full update request, answered after everything above.
    s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, 1, 1))
    hdr = recv(4)
    for _ in range(struct.unpack(">H", hdr[2:4])[0]):
        r = recv(12)
        w, h = struct.unpack(">HH", r[4:8])
        recv(w * h * 4)
    s.close()


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""nbd-raw.py SOCKET NAME CMD...: a deliberately plain NBD client, for what
libnbd will not send (bad magic, lengths past the maximum, offsets past the
disk): the newstyle fixed handshake with NBD_OPT_GO (simple replies), then
each CMD in turn on the one connection, one line printed per CMD:

  read OFF LEN [MAGIC]   -> "read error E" or "read ok SHA256"
  write OFF LEN [MAGIC]  -> "write error E" (LEN bytes of 0xee follow)
  rawwrite OFF LEN       -> a write header only, saying LEN (no data)
  expect-closed          -> "closed" when the server hung up, else "open"
  flush OFF LEN          -> "flush ok" or "flush error E"
  trim OFF LEN, zero OFF LEN, fuawrite OFF LEN, fuatrim OFF LEN,
  fuazero OFF LEN        -> "CMD ok" or "CMD error E" (sent whatever the
                            transmission flags say; fua*: with FUA)
  flood N LEN            -> N times a 4096-byte write at 0, a read of LEN
                            at 0 and a flush (until the server stops
                            reading), none of the replies read: "flooded",
                            then "closed" once the server hangs up
  hold                   -> "held", then waits until the server hangs up
  pipeline N LEN         -> N writes of LEN bytes of 0xee at 0, LEN, 2 LEN...
                            all sent before any reply is read, then every
                            reply read: "pipeline ok N" or "pipeline error E"
  wait FILE              -> "waiting", then waits until FILE exists and
                            goes on ("closed" if the server hangs up first)

Exit 0 unless the handshake failed."""
import hashlib
import os
import select
import socket
import struct
import sys

REQ = 0x25609513


def recv(s, n):
    b = b""
    while len(b) < n:
        k = s.recv(n - len(b))
        if not k:
            raise EOFError
        b += k
    return b


def handshake(path, name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(path)
    magic, opt, flags = struct.unpack(">QQH", recv(s, 18))
    assert magic == 0x4E42444D41474943 and opt == 0x49484156454F5054, "greeting"
    s.sendall(struct.pack(">I", 3))  # fixed newstyle, no zeroes
    n = name.encode()
    data = struct.pack(">I", len(n)) + n + struct.pack(">H", 0)
    s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, len(data)) + data)
    size = None
    while True:
        _, ropt, rtype, rlen = struct.unpack(">QIII", recv(s, 20))
        body = recv(s, rlen)
        if rtype == 3 and struct.unpack(">H", body[:2])[0] == 0:
            size = struct.unpack(">Q", body[2:10])[0]
        if rtype == 1:
            return s, size
        if rtype & 0x80000000:
            raise SystemExit("GO refused: %#x %r" % (rtype, body))


def reply(s, cookie):
    magic, err, ck = struct.unpack(">IIQ", recv(s, 16))
    assert magic == 0x67446698 and ck == cookie, (hex(magic), ck, cookie)
    return err


def main():
    s, size = handshake(sys.argv[1], sys.argv[2])
    print("size", size, flush=True)
    args = sys.argv[3:]
    cookie = 0
    while args:
        cmd = args.pop(0)
        cookie += 1
        try:
            if cmd == "hold":
                print("held", flush=True)
                s.settimeout(None)
                while s.recv(65536):
                    pass
                print("closed", flush=True)
                continue
            if cmd == "pipeline":
                n, ln = int(args.pop(0)), int(args.pop(0))
                for i in range(n):
                    s.sendall(struct.pack(">IHHQQI", REQ, 0, 1, 1000 + i, i * ln, ln) + b"\xee" * ln)
                bad, seen = [], set()
                for i in range(n):  # in any order
                    magic, err, ck = struct.unpack(">IIQ", recv(s, 16))
                    assert magic == 0x67446698 and 1000 <= ck < 1000 + n and ck not in seen, (hex(magic), ck)
                    seen.add(ck)
                    if err:
                        bad.append(err)
                print("pipeline", "error %d" % bad[0] if bad else "ok %d" % n, flush=True)
                continue
            if cmd == "wait":
                path = args.pop(0)
                print("waiting", flush=True)
                p = select.poll()
                p.register(s, select.POLLIN)
                while not os.path.exists(path):
                    if p.poll(100) and s.recv(1, socket.MSG_PEEK) == b"":
                        raise EOFError
                continue
            if cmd == "flood":
                n, ln = int(args.pop(0)), int(args.pop(0))
                s.settimeout(10)  # the server stops reading once full: enough
                try:
                    for i in range(n):
                        s.sendall(struct.pack(">IHHQQI", REQ, 0, 1, 3 * i + 1, 0, 4096) + b"\xee" * 4096)
                        s.sendall(struct.pack(">IHHQQI", REQ, 0, 0, 3 * i + 2, 0, ln))
                        s.sendall(struct.pack(">IHHQQI", REQ, 0, 3, 3 * i + 3, 0, 0))
                except socket.timeout:
                    pass
                print("flooded", flush=True)
                # until the server hangs up, reading nothing (POLLHUP
                # is reported without asking)
                p = select.poll()
                p.register(s, 0)
                while not p.poll():
                    pass
                print("closed", flush=True)
                return 0
            if cmd == "expect-closed":
                s.settimeout(60)
                print("closed" if s.recv(1) == b"" else "open", flush=True)
                continue
            off, ln = int(args.pop(0)), int(args.pop(0))
            magic = REQ
            if args and args[0].startswith("0x"):
                magic = int(args.pop(0), 16)
            typ = {"read": 0, "flush": 3, "trim": 4, "zero": 6, "fuatrim": 4, "fuazero": 6}.get(cmd, 1)
            fl = 1 if cmd.startswith("fua") else 0  # NBD_CMD_FLAG_FUA
            s.sendall(struct.pack(">IHHQQI", magic, fl, typ, cookie, off, ln))
            if cmd in ("write", "fuawrite"):
                s.sendall(b"\xee" * ln)
            if cmd == "rawwrite":
                continue
            err = reply(s, cookie)
            if err:
                print(cmd, "error", err, flush=True)
            elif cmd == "read":
                print("read ok", hashlib.sha256(recv(s, ln)).hexdigest(), flush=True)
            else:
                print(cmd, "ok", flush=True)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            print("closed", flush=True)
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

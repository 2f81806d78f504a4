#!/usr/bin/env python3
"""core-stress.py: throws hostile and random frames at a live scmd.

Used by core-stress.bats. Every loop is bounded in count and time and
talks only to the AF_UNIX sockets of the scmd under test.

  core-stress.py frames SOCKET COUNT SEED   random/mutated frames, one peer each
  core-stress.py control SOCKET COUNT SEED  random control ops (root only)
  core-stress.py chanframes ENDPOINT COUNT SEED  hostile frames on channels
                                            straight at the echo provider
  core-stress.py churn ENDPOINT CONTROL N   N connects, each channel revoked
  core-stress.py hang SOCKET N              N peers that send half a connect and
                                            never read (scmd must not block)
Prints one summary line; exits non-zero when the protocol itself misbehaves
(a reply that is not a frame)."""
import array
import json
import os
import random
import select
import socket
import struct
import sys
import time

MAGIC = 0x314D4353
HDR = struct.Struct("<IBBHIIII")


def frame(typ, call_id, method, body=b"", binary=b"", magic=MAGIC, version=1, flags=0,
          json_len=None, bin_len=None):
    jl = len(body) if json_len is None else json_len
    bl = len(binary) if bin_len is None else bin_len
    return HDR.pack(magic, version, typ, flags, call_id, method, jl, bl) + body + binary


def seqpacket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    return s


def send(s, data, fds=()):
    if fds:
        s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        s.send(data)


def recv(s, timeout=5.0):
    """One frame as (header tuple, json bytes, fds), or None at end of stream."""
    r, _, _ = select.select([s], [], [], timeout)
    if not r:
        raise TimeoutError("no answer from scmd")
    msg, fds, _, _ = socket.recv_fds(s, 300 * 1024, 16)
    for fd in fds:
        os.close(fd)
    if not msg:
        return None
    if len(msg) < HDR.size:
        raise ValueError("scmd sent a %d-byte frame" % len(msg))
    h = HDR.unpack_from(msg)
    if h[0] != MAGIC or HDR.size + h[6] + h[7] != len(msg):
        raise ValueError("scmd sent a malformed frame")
    return h, msg[HDR.size:HDR.size + h[6]], len(fds)


def rand_json(rng, depth=0):
    k = rng.randrange(9 if depth < 20 else 6)
    if k == 0:
        return None
    if k == 1:
        return rng.choice([True, False])
    if k == 2:
        return rng.choice([0, -1, 1, 2**31, -2**31, 2**63 - 1, -2**63, 2**64 - 1, 7])
    if k == 3:
        return rng.random() * 1e9
    if k == 4:
        return rng.choice(["", "echo", "demo", "host", "../x", "a" * 200, "\u00e9", "x\u0000y", "*"])
    if k == 5:
        return "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(20)))
    if k in (6, 7):
        return {rng.choice(["service", "op", "name", "id", "x", "quota", "manifest"]): rand_json(rng, depth + 1)
                for _ in range(rng.randrange(4))}
    return [rand_json(rng, depth + 1) for _ in range(rng.randrange(4))]


CONTROL_OPS = ["status", "service.list", "endpoint.list", "channel.list", "service.show",
               "service.register", "endpoint.create", "channel.revoke", "connect", "policy.effective",
               "policy.explain", "container.list", "container.show", "container.logs", "container.wait",
               "container.kill", "nope", ""]
CONTROL_KEYS = ["name", "owner", "mode", "quota", "id", "manifest", "origin", "service", "method",
                "timeout_ms", "signal", "args"]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        if not data:
            break
        op = rng.randrange(4)
        i = rng.randrange(len(data))
        if op == 0:
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            del data[i:i + rng.randrange(1, 8)]
        elif op == 2:
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        else:
            data[i] = rng.choice([0, 0xff, 0x7f, 0x80])
    return bytes(data)


def hostile_frame(rng, control):
    """A frame that is random, mutated, or valid with random contents."""
    k = rng.randrange(10)
    if k == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    if control:
        # Real ops with random arguments; none that removes what the test
        # relies on (the echo service, the demo endpoint).
        body = {"op": rng.choice(CONTROL_OPS)}
        for key in rng.sample(CONTROL_KEYS, rng.randrange(4)):
            body[key] = rand_json(rng)
    else:
        body = {"service": rand_json(rng)}
    if rng.randrange(4) == 0:
        body = rand_json(rng)
    try:
        raw = json.dumps(body).encode()
    except ValueError:
        raw = b"{}"
    typ = rng.choice([1, 1, 1, 2, 3, 4, 0, 5, 255])
    method = rng.choice([1, 1, 1, 0, 2, 0xffffffff])
    f = frame(typ, rng.randrange(2**32), method, raw)
    if k == 1:
        return frame(1, 1, 1, raw, json_len=rng.choice([0xffffffff, 0x7fffffff, len(raw) + 1]))
    if k == 2:
        return frame(1, 1, 1, b"{}", b"x" * rng.randrange(16), bin_len=rng.choice([0xffffffff, 2**31]))
    if k == 3:
        return frame(1, 1, 1, b"[" * 5000)
    if k == 4:
        return frame(1, 1, 1, b'{"service":NaN}')
    if k in (5, 6):
        return mutate(rng, f)
    return f


def cmd_frames(path, count, seed, control=False):
    rng = random.Random(seed)
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    answered = dropped = refused = 0
    deadline = time.monotonic() + 120
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        try:
            s = seqpacket(path)
        except OSError:
            refused += 1  # connection quota, transiently
            time.sleep(0.01)
            continue
        with s:
            for _ in range(rng.randrange(1, 4)):
                data = hostile_frame(rng, control)
                fds = [null] * rng.choice([0, 0, 0, 1, 3, 8]) if data else []
                try:
                    send(s, data if data else b"\0", fds)
                    got = recv(s)
                except (BrokenPipeError, ConnectionResetError):
                    dropped += 1
                    break
                if got is None:
                    dropped += 1
                    break
                answered += 1
    os.close(null)
    print("frames: %d answered, %d dropped, %d refused" % (answered, dropped, refused))


def open_channel(endpoint, service="echo"):
    with seqpacket(endpoint) as s:
        send(s, frame(1, 1, 1, json.dumps({"service": service}).encode()))
        msg, fds, _, _ = socket.recv_fds(s, 300 * 1024, 4)
    if HDR.unpack_from(msg)[2] != 2 or len(fds) != 1:
        raise SystemExit("connect failed: %r" % msg[HDR.size:])
    ch = socket.socket(fileno=fds[0])
    ch.settimeout(5)
    return ch


def cmd_chanframes(endpoint, count, seed):
    """Hostile frames straight at a provider over brokered channels: the
    skeleton must refuse them without dying, and keep serving. Method 1 of
    echo is ping; a well-formed ping must still be answered at the end.
    Method 7 (crash) is never called on purpose."""
    rng = random.Random(seed)
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    answered = dropped = 0
    ch = open_channel(endpoint)
    for _ in range(count):
        data = hostile_frame(rng, False)
        if rng.randrange(3) == 0:  # a call with random method and args
            body = json.dumps(rand_json(rng) if rng.randrange(2) else {"data": rand_json(rng), "name": rand_json(rng)}).encode()
            data = frame(1, rng.randrange(1, 2**32), rng.choice([0, 1, 2, 3, 4, 5, 6, 200, 256, 257, 0xffffffff]), body,
                         bytes(rng.randrange(256) for _ in range(rng.randrange(8))),
                         flags=rng.choice([0, 0, 1, 0xffff]))
        fds = [null] * rng.choice([0, 0, 0, 1, 8]) if data else []
        try:
            send(ch, data if data else b"\0", fds)
            r, _, _ = select.select([ch], [], [], 0.2)
            if r and recv(ch) is None:
                raise ConnectionResetError
            answered += bool(r)
        except (BrokenPipeError, ConnectionResetError, ValueError):
            dropped += 1
            ch.close()
            ch = open_channel(endpoint)
    ch.close()
    os.close(null)
    ch = open_channel(endpoint)
    send(ch, frame(1, 1, 1, b"{}"))
    h, body, _ = recv(ch)
    if h[2] != 2:
        raise SystemExit("provider does not answer ping after the storm: %r" % body)
    ch.close()
    print("chanframes: %d answered, %d channels dropped, provider serves" % (answered, dropped))


def cmd_churn(endpoint, control, n):
    """n connects through an endpoint, each channel then revoked through the
    control socket, and the client end checked for the revocation notice."""
    ok = 0
    ctl = seqpacket(control)
    for i in range(n):
        with seqpacket(endpoint) as s:
            send(s, frame(1, 1, 1, json.dumps({"service": "echo"}).encode()))
            msg, fds, _, _ = socket.recv_fds(s, 300 * 1024, 4)
            h = HDR.unpack_from(msg)
            if h[2] != 2 or len(fds) != 1:
                raise SystemExit("connect %d failed: %r" % (i, msg[HDR.size:]))
            chan = json.loads(msg[HDR.size:HDR.size + h[6]])["channel"]
        with socket.socket(fileno=fds[0]) as ch:
            if i % 2:
                send(ctl, frame(1, i + 2, 0, json.dumps({"op": "channel.revoke", "id": chan}).encode()))
                h, body, _ = recv(ctl)
                if h[2] != 2:
                    raise SystemExit("revoke %d failed: %r" % (chan, body))
                h, body, _ = recv(ch)
                if h[2] != 3 or b"revoked" not in body:
                    raise SystemExit("channel %d: no revocation notice: %r" % (chan, body))
            ok += 1
    ctl.close()
    print("churn: %d channels" % ok)


def cmd_hang(path, n):
    peers = []
    for _ in range(n):
        try:
            s = seqpacket(path)
        except OSError:
            break
        s.setblocking(False)
        try:  # a request and then silence: never read the answers
            for _ in range(64):
                s.send(frame(1, 1, 1, json.dumps({"service": "echo"}).encode()))
        except BlockingIOError:
            pass
        peers.append(s)
    print("hang: %d silent peers" % len(peers))
    sys.stdout.flush()
    # Keep them open until our parent is done probing scmd.
    sys.stdin.read()
    for s in peers:
        s.close()


def main():
    cmd = sys.argv[1]
    if cmd == "frames":
        cmd_frames(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "control":
        cmd_frames(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), control=True)
    elif cmd == "chanframes":
        cmd_chanframes(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "churn":
        cmd_churn(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "hang":
        cmd_hang(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""nbd-pattern.py URI BASE.raw OUT.raw STOPFILE: one NBD connection (libnbd)
writing known patterns and reading them back until STOPFILE exists, each
round 8 writes of 64 KiB in flight at once, then 8 reads of them in flight,
compared with what was written, and a flush every 4th round. Prints
"round N" after each round (flushed), then "ok ROUNDS" or "error ..." at
the first failure (exit 1); writes the image the disk should now hold
(BASE with every write applied) to OUT."""
import os
import sys

import nbd

uri, base, out, stop = sys.argv[1:5]
img = bytearray(open(base, "rb").read())
h = nbd.NBD()
h.connect_uri(uri)
size = h.get_size()
assert size == len(img), (size, len(img))
CH = 65536


def wait_all(cookies):
    """until every command completed (each retired once; an error raises)"""
    pending = set(cookies)
    while True:
        pending = {c for c in pending if not h.aio_command_completed(c)}
        if not pending:
            return
        h.poll(-1)


slots = size // CH
rnd = 0
try:
    while not os.path.exists(stop):
        rnd += 1
        offs = [((rnd * 37 + k * 101) % slots) * CH for k in range(8)]
        offs = sorted(set(offs))
        cookies = []
        for k, off in enumerate(offs):
            data = bytes([(rnd * 7 + k) & 0xFF]) * (CH - 8) + rnd.to_bytes(8, "little")
            img[off:off + CH] = data
            cookies.append(h.aio_pwrite(data, off))
        wait_all(cookies)
        bufs = [(off, nbd.Buffer(CH)) for off in offs]
        wait_all([h.aio_pread(b, off) for off, b in bufs])
        for off, b in bufs:
            got = b.to_bytearray()
            if got != img[off:off + CH]:
                print("error round %d: offset %d reads other bytes than written" % (rnd, off), flush=True)
                sys.exit(1)
        if rnd % 4 == 0:
            h.flush()
        print("round", rnd, flush=True)
    h.flush()
    h.shutdown()
except nbd.Error as e:
    print("error round %d: %s (errno %s)" % (rnd, e.string, e.errno), flush=True)
    sys.exit(1)
open(out, "wb").write(img)
print("ok", rnd, flush=True)

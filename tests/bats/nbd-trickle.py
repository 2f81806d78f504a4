#!/usr/bin/env python3
"""nbd-trickle.py LISTEN UPSTREAM PERIOD: a unix-socket proxy in front of
an NBD server (UPSTREAM, a unix socket) that takes what the client sends a
window at a time once the handshake is through: after the first 64 KiB,
every PERIOD seconds it reads what the client's socket holds (up to 256 KiB)
and passes it on. The client's writes keep moving, just inside a silence
bound longer than PERIOD, so only a limit bytes cannot push back ends a
large WRITE (vdisk-migrate.bats). Answers pass at full speed. Stops when
killed."""
import os
import socket
import sys
import threading
import time

FREE = 64 << 10
BURST = 256 << 10


def pump(a, b, period):
    sent = 0
    try:
        while True:
            if period and sent >= FREE:
                time.sleep(period)
                n = 0
                while n < BURST:
                    try:
                        d = a.recv(BURST - n, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    if not d:
                        return
                    b.sendall(d)
                    n += len(d)
                sent += n
                continue
            d = a.recv(65536)
            if not d:
                return
            b.sendall(d)
            sent += len(d)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    listen, upstream, period = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if os.path.exists(listen):
        os.unlink(listen)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(listen)
    srv.listen(8)
    while True:
        c, _ = srv.accept()
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.connect(upstream)
        threading.Thread(target=pump, args=(c, u, period), daemon=True).start()
        threading.Thread(target=pump, args=(u, c, 0), daemon=True).start()


if __name__ == "__main__":
    main()

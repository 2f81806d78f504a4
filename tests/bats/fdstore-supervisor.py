#!/usr/bin/env python3
"""A small service supervisor with systemd's file descriptor store, for
tests/bats/core-restart.bats: what systemd does for a Type=notify service
with FileDescriptorStoreMax= and Restart=always, as sd_notify(3),
sd_listen_fds(3) and systemd.service(5) document it, and no more.

  fdstore-supervisor.py DIR -- COMMAND ARGS...

It listens on DIR/notify (a datagram socket; NOTIFY_SOCKET for the
service) and keeps the fds sent with FDSTORE=1 under their FDNAME=
(FDSTOREREMOVE=1 drops every fd of that name), and tells the service it
may (FDSTORE=4096, as systemd 254 does). It starts COMMAND, and
when it dies (kill -9 in the test) starts it again with the stored fds
as 3, 4, ... (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES), as systemd does.
It is a child subreaper, as systemd is, and reaps every orphan.
DIR/pid holds the service's pid, DIR/ready "PID" once it said READY=1,
DIR/store the names it keeps (one a line). SIGTERM stops it and the
service.
"""
import array
import ctypes
import fcntl
import os
import select
import signal
import socket
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    d = sys.argv[1]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    path = os.path.join(d, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    store = []  # (name, fd)
    stopping = False

    def on_term(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)

    def start():
        fds = [fd for _, fd in store]
        names = [n for n, _ in store]
        pid = os.fork()
        if pid == 0:
            # the stored fds become 3, 4, ... in the order they were stored
            tmp = [fcntl.fcntl(fd, fcntl.F_DUPFD, 4096) for fd in fds]
            for i, fd in enumerate(tmp):
                os.dup2(fd, 3 + i, inheritable=True)
            os.closerange(3 + len(tmp), 8192)
            env = dict(os.environ, NOTIFY_SOCKET=path, FDSTORE="4096")  # FileDescriptorStoreMax=
            if fds:
                env.update(LISTEN_FDS=str(len(fds)), LISTEN_PID=str(os.getpid()),
                           LISTEN_FDNAMES=":".join(names))
            os.execvpe(cmd[0], cmd, env)
        write(os.path.join(d, "pid"), "%d\n" % pid)
        return pid

    child = start()
    starts = 1
    while True:
        if stopping:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass
            os.waitpid(child, 0)
            return 0
        r, _, _ = select.select([sock], [], [], 0.05)
        if r:
            fds = array.array("i")
            msg, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(64 * fds.itemsize))
            got = []
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(data[:len(data) - len(data) % a.itemsize])
                    got.extend(a)
            kv = dict(line.split("=", 1) for line in msg.decode().split("\n") if "=" in line)
            name = kv.get("FDNAME", "stored")
            if kv.get("FDSTOREREMOVE") == "1":
                for n, fd in [x for x in store if x[0] == name]:
                    os.close(fd)
                store[:] = [x for x in store if x[0] != name]
            if kv.get("FDSTORE") == "1":
                store.extend((name, fd) for fd in got)
            else:
                for fd in got:
                    os.close(fd)
            if kv.get("READY") == "1":
                write(os.path.join(d, "ready"), "%d\n" % child)
            write(os.path.join(d, "store"), "".join(n + "\n" for n, _ in store))
        # reap the service and every orphan that came to us
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == child and not stopping:
                if starts >= 20:
                    return 1
                time.sleep(0.1)  # RestartSec=
                child = start()
                starts += 1


if __name__ == "__main__":
    sys.exit(main())

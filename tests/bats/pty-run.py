#!/usr/bin/env python3
"""pty-run.py [--rows R --cols C] [--input TEXT] -- CMD ARGS...

Runs CMD with a pty this script holds as its stdin, stdout and stderr (its
controlling terminal), as a user's terminal would be. Prints what CMD wrote,
then "exit N", then the state of that outer terminal after CMD is gone:
"outer: echo on|off, icanon on|off" and "outer input: N bytes" (what is
waiting in its input queue: anything pushed there with TIOCSTI)."""
import fcntl
import os
import select
import struct
import sys
import termios
import time


def main():
    args = sys.argv[1:]
    rows = cols = None
    text = None
    while args and args[0] != "--":
        opt = args.pop(0)
        if opt == "--rows":
            rows = int(args.pop(0))
        elif opt == "--cols":
            cols = int(args.pop(0))
        elif opt == "--input":
            text = args.pop(0).encode().decode("unicode_escape").encode()
        else:
            sys.exit("pty-run: unknown option " + opt)
    cmd = args[1:]
    master, slave = os.openpty()
    if rows:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    pid = os.fork()
    if pid == 0:
        os.close(master)
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.execvp(cmd[0], cmd)
    out = b""
    deadline = time.monotonic() + 30
    status = None
    if text is not None:
        # typed ahead: the terminal keeps it until the program reads
        os.write(master, text)
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.05)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            out += data
        if status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
        if status is not None and not r:
            break
    if status is None:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        print("pty-run: timed out")
        code = 124
    else:
        code = os.waitstatus_to_exitcode(status)
    sys.stdout.write(out.decode(errors="replace"))
    print("\nexit %d" % code)
    lflag = termios.tcgetattr(slave)[3]
    print("outer: echo %s, icanon %s" % ("on" if lflag & termios.ECHO else "off",
                                         "on" if lflag & termios.ICANON else "off"))
    # What waits in the outer terminal's input queue (nobody reads it now).
    fl = fcntl.fcntl(slave, fcntl.F_GETFL)
    fcntl.fcntl(slave, fcntl.F_SETFL, fl | os.O_NONBLOCK)
    termios.tcsetattr(slave, termios.TCSANOW,
                      termios.tcgetattr(slave)[:3] + [lflag & ~termios.ICANON] + termios.tcgetattr(slave)[4:])
    try:
        pending = os.read(slave, 65536)
    except OSError:
        pending = b""
    print("outer input: %d bytes" % len(pending))
    sys.exit(code)


main()

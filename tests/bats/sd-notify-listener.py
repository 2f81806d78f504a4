#!/usr/bin/env python3
"""A stand-in for systemd's notification socket, for tests: binds the
AF_UNIX datagram socket PATH (what $NOTIFY_SOCKET names, sd_notify(3)) and
appends every assignment of every datagram it receives to OUT, one line
each, after a monotonic time stamp: "12.345678 READY=1".
Usage: sd-notify-listener.py PATH OUT"""
import socket, sys, time

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "a", buffering=1)
while True:
    data = s.recv(65536).decode(errors="replace")
    now = time.monotonic()
    for line in data.split("\n"):
        if line:
            out.write("%.6f %s\n" % (now, line))

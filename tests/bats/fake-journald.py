#!/usr/bin/env python3
"""A stand-in for journald's native socket, for tests: binds
/run/systemd/journal/socket (in a private mount namespace) and appends each
entry it receives to OUT as one JSON object of its fields. Decodes both
field forms of the native protocol (KEY=value, and KEY\\n<le64 size>value
for values with newlines). Usage: fake-journald.py OUT"""
import json, os, socket, struct, sys

path = "/run/systemd/journal/socket"
os.makedirs(os.path.dirname(path), exist_ok=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
out = open(sys.argv[1], "a", buffering=1)
while True:
    data = s.recv(1 << 20)
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        fields[k.decode()] = v.decode(errors="replace")
    out.write(json.dumps(fields) + "\n")

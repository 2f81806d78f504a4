#!/usr/bin/env python3
# ws-bridge.py PORT PATH PORTFILE: one websocket viewer for the tests, as
# noVNC connects (binary frames, masked), behind a TCP port that a plain
# RFB viewer (scm-gfx-rfb-input) connects to. It takes ONE viewer and
# opens ONE websocket, and never opens another: if the websocket closes
# it says so and exits 1 (a carried viewer must not reconnect).
import base64, os, select, socket, struct, sys

port, path, portfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lst = socket.socket()
lst.bind(("127.0.0.1", 0))
lst.listen(1)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % lst.getsockname()[1])
os.rename(portfile + ".tmp", portfile)
tcp, _ = lst.accept()
lst.close()
ws = socket.create_connection(("127.0.0.1", port))
key = base64.b64encode(os.urandom(16)).decode()
ws.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: binary\r\n\r\n" % (path, key)).encode())
head = b""
while b"\r\n\r\n" not in head:
    b = ws.recv(1)
    if not b:
        sys.exit("ws-bridge: the websocket closed during the upgrade")
    head += b
if not head.startswith(b"HTTP/1.1 101"):
    sys.exit("ws-bridge: upgrade refused: %r" % head.split(b"\r\n")[0])
print("ws-bridge: upgraded", flush=True)
buf = b""
frames = 0


def viewer_left():
    # its end may be reset while the server's frames still come: that is
    # the viewer leaving too, not the websocket closing
    print("ws-bridge: the viewer left after %d frames" % frames, flush=True)
    sys.exit(0)


while True:
    r, _, _ = select.select([tcp, ws], [], [])
    if tcp in r:
        try:
            d = tcp.recv(65536)
        except OSError:
            d = b""
        if not d:
            viewer_left()
        # one frame per read, as noVNC sends a message or a batch
        mask = os.urandom(4)
        n = len(d)
        hdr = bytes([0x82]) + (bytes([0x80 | n]) if n < 126 else
                               bytes([0xFE]) + struct.pack(">H", n) if n < 65536 else
                               bytes([0xFF]) + struct.pack(">Q", n))
        ws.sendall(hdr + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(d)))
    if ws in r:
        d = ws.recv(65536)
        if not d:
            print("ws-bridge: the websocket closed after %d frames" % frames, flush=True)
            sys.exit(1)
        buf += d
        while len(buf) >= 2:
            op, n, o = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, o = struct.unpack(">H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, o = struct.unpack(">Q", buf[2:10])[0], 10
            if len(buf) < o + n:
                break
            payload, buf = buf[o:o + n], buf[o + n:]
            frames += 1
            if op == 8:
                print("ws-bridge: close frame from the server", flush=True)
                sys.exit(1)
            if op == 2:
                try:
                    tcp.sendall(payload)
                except OSError:
                    viewer_left()

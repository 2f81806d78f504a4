#!/usr/bin/env python3
"""scm-desktop-novnc-shot: loads a noVNC page in headless Chromium, driven
over the DevTools protocol (Chromium's --screenshot does not wait for
websockets), waits until noVNC has drawn the remote desktop, then saves a
screenshot and reads pixels straight from noVNC's canvas.

  scm-desktop-novnc-shot URL OUT.png [--window W,H] [--resized] [--click X,Y] [--dblclick X,Y]
                        [--drag X1,Y1,X2,Y2] [--type TEXT] [--enter] [--chord KEYS] [--wait S]
                        [--until-file PATH] [--shot-each PREFIX] [X,Y ...]

Prints "canvas WxH", then "pixel X Y rrggbb" for every X,Y asked (desktop
coordinates). The actions act as a user in the browser tab would, in the
order given, before the pixels are read: --click a mouse click on the
desktop point, --dblclick a double click (selects a word in xterm),
--drag a press at X1,Y1, a move to X2,Y2 in 20 steps and a release,
--type keys typed into noVNC, --enter the Enter key, --chord keys held
together such as ctrl+shift+c or shift+Insert, --wait a pause of S
seconds (the app answering), --until-file a wait (at most 300 s) until
PATH exists (a test's go, e.g. after it restarted the proxy). After
the actions it prints "disconnects N": how often noVNC's page left
the connected state (noVNC's "disconnect" event; without reconnect=true
noVNC stays disconnected and says so) since it first showed the
desktop. --shot-each PREFIX saves PREFIX.N.png after each
--until-file wait and its next actions. --window sizes the
browser window (default 1600,1000). --resized, for a URL with
resize=remote (noVNC asks the server to take the size of its view,
SetDesktopSize): waits until the desktop has the size of noVNC's view
and prints "resized WxH" once it is steady. Exits 1 (saying what the page shows) if noVNC does not show a desktop within
45 s of Chromium's DevTools answering (which has 30 s).
Chromium is /usr/bin/chromium unless $CHROMIUM says otherwise. The
websocket client is written here (RFC 6455, text frames, client masking)
so that no package has to be installed."""
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


class WS:
    def __init__(self, url):
        assert url.startswith("ws://")
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.split(":")
        self.s = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            c = self.s.recv(1)
            if not c:
                raise SystemExit("devtools: websocket handshake failed")
            head += c
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise SystemExit("devtools: %s" % head.split(b"\r\n")[0].decode())
        self.next_id = 0

    def _recv(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise SystemExit("devtools: connection closed")
            b += c
        return b

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                               bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                               bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._recv(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv(8))[0]
            payload = self._recv(n)
            if b0 & 0x0F in (1, 0):
                msg += payload
                if b0 & 0x80:
                    return json.loads(msg)

    def call(self, method, **params):
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        while True:
            m = self.recv()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise SystemExit("devtools: %s: %s" % (method, m["error"]))
                return m["result"]

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r["result"].get("value")


def key(ws, k, code, vk, text=None):
    down = {"type": "keyDown", "key": k, "code": code, "windowsVirtualKeyCode": vk}
    if text:
        down["text"] = text
    ws.call("Input.dispatchKeyEvent", **down)
    ws.call("Input.dispatchKeyEvent", type="keyUp", key=k, code=code, windowsVirtualKeyCode=vk)


# --chord names: modifiers (DevTools' bit, key, code, virtual key code)
# and the few named keys a chord may end in
MODIFIERS = {"alt": (1, "Alt", "AltLeft", 18), "ctrl": (2, "Control", "ControlLeft", 17),
             "shift": (8, "Shift", "ShiftLeft", 16)}
NAMED = {"insert": ("Insert", "Insert", 45), "enter": ("Enter", "Enter", 13), "tab": ("Tab", "Tab", 9)}


def chord(ws, spec):
    """Modifiers held, the last key pressed and released, modifiers let go."""
    *mods, last = spec.split("+")
    bits = 0
    for m in mods:
        if m.lower() not in MODIFIERS:
            raise SystemExit("novnc-shot: --chord %s: %r is not alt, ctrl or shift" % (spec, m))
        bit, k, code, vk = MODIFIERS[m.lower()]
        bits |= bit
        ws.call("Input.dispatchKeyEvent", type="rawKeyDown", key=k, code=code, windowsVirtualKeyCode=vk,
                modifiers=bits)
    if last.lower() in NAMED:
        k, code, vk = NAMED[last.lower()]
    elif len(last) == 1 and last.isalnum():
        k, code, vk = last, ("Key" if last.isalpha() else "Digit") + last.upper(), ord(last.upper())
    else:
        raise SystemExit("novnc-shot: --chord %s: cannot press %r" % (spec, last))
    ws.call("Input.dispatchKeyEvent", type="rawKeyDown", key=k, code=code, windowsVirtualKeyCode=vk, modifiers=bits)
    ws.call("Input.dispatchKeyEvent", type="keyUp", key=k, code=code, windowsVirtualKeyCode=vk, modifiers=bits)
    for m in reversed(mods):
        bit, k, code, vk = MODIFIERS[m.lower()]
        bits &= ~bit
        ws.call("Input.dispatchKeyEvent", type="keyUp", key=k, code=code, windowsVirtualKeyCode=vk, modifiers=bits)


def page_point(ws, x, y):
    """Desktop point -> page point through the canvas' box and scale."""
    box = ws.js("""(() => { const c = document.querySelector('#noVNC_container canvas, canvas');
        const r = c.getBoundingClientRect(); return [r.left, r.top, r.width / c.width, r.height / c.height]; })()""")
    return box[0] + x * box[2], box[1] + y * box[3]


def mouse(ws, kind, x, y, count=0, held=False):
    """A mouse event; held: the left button is down during a move."""
    ws.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, clickCount=count,
            button="left" if kind != "mouseMoved" or held else "none",
            buttons=1 if held or kind == "mousePressed" else 0)


def act(ws, a):
    """One user action on the noVNC page, in desktop coordinates."""
    if a[0] in ("click", "dblclick"):
        x, y = page_point(ws, a[1], a[2])
        mouse(ws, "mouseMoved", x, y)
        for n in range(1, 3 if a[0] == "dblclick" else 2):
            mouse(ws, "mousePressed", x, y, n)
            mouse(ws, "mouseReleased", x, y, n)
    elif a[0] == "drag":
        x1, y1 = page_point(ws, a[1], a[2])
        x2, y2 = page_point(ws, a[3], a[4])
        mouse(ws, "mouseMoved", x1, y1)
        mouse(ws, "mousePressed", x1, y1, 1)
        for i in range(1, 21):
            mouse(ws, "mouseMoved", x1 + (x2 - x1) * i / 20, y1 + (y2 - y1) * i / 20, held=True)
            time.sleep(0.03)
        mouse(ws, "mouseReleased", x2, y2, 1)
    elif a[0] == "chord":
        chord(ws, a[1])
    elif a[0] == "wait":
        time.sleep(a[1])
    elif a[0] == "type":
        for ch in a[1]:
            if ch == " ":
                key(ws, " ", "Space", 32, " ")
            elif ch.isalpha():
                key(ws, ch, "Key" + ch.upper(), ord(ch.upper()), ch)
            elif ch.isdigit():
                key(ws, ch, "Digit" + ch, ord(ch), ch)
            elif ch == "/":
                key(ws, "/", "Slash", 191, "/")
            elif ch == ".":
                key(ws, ".", "Period", 190, ".")
            elif ch == "-":
                key(ws, "-", "Minus", 189, "-")
            else:
                raise SystemExit("novnc-shot: cannot type %r" % ch)
    elif a[0] == "enter":
        key(ws, "Enter", "Enter", 13, "\r")
    elif a[0] == "until-file":
        deadline = time.time() + 300
        while not os.path.exists(a[1]):
            if time.time() > deadline:
                raise SystemExit("novnc-shot: %s did not appear within 300 s" % a[1])
            time.sleep(0.1)  # a file has no other sign


# Counts the page's leaving the connected state: noVNC's UI takes the
# class noVNC_connected off <html> on its RFB's "disconnect" event.
WATCH = """(() => { window.scmDrops = 0; const h = document.documentElement;
    new MutationObserver(() => { if (!h.classList.contains('noVNC_connected') && !window.scmDown) {
        window.scmDown = true; window.scmDrops++; } else if (h.classList.contains('noVNC_connected')) window.scmDown = false; })
    .observe(h, { attributes: true, attributeFilter: ['class'] });
    window.scmDown = !h.classList.contains('noVNC_connected'); return window.scmDown; })()"""


def shoot(ws, out):
    shot = ws.call("Page.captureScreenshot", format="png")
    with open(out, "wb") as f:
        f.write(base64.b64decode(shot["data"]))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    url, out = argv[1], argv[2]
    points, actions, i = [], [], 3
    window, resized, shot_each = "1600,1000", False, None
    while i < len(argv):
        if argv[i] == "--window":
            window = argv[i + 1]
            i += 2
        elif argv[i] == "--resized":
            resized = True
            i += 1
        elif argv[i] in ("--click", "--dblclick", "--drag"):
            xy = tuple(map(int, argv[i + 1].split(",")))
            if len(xy) != (4 if argv[i] == "--drag" else 2):
                raise SystemExit("novnc-shot: %s %s: wrong number of coordinates" % (argv[i], argv[i + 1]))
            actions.append((argv[i][2:],) + xy)
            i += 2
        elif argv[i] == "--chord":
            actions.append(("chord", argv[i + 1]))
            i += 2
        elif argv[i] == "--wait":
            actions.append(("wait", float(argv[i + 1])))
            i += 2
        elif argv[i] == "--type":
            actions.append(("type", argv[i + 1]))
            i += 2
        elif argv[i] == "--until-file":
            actions.append(("until-file", argv[i + 1]))
            i += 2
        elif argv[i] == "--shot-each":
            shot_each = argv[i + 1]
            i += 2
        elif argv[i] == "--enter":
            actions.append(("enter",))
            i += 1
        else:
            points.append(tuple(map(int, argv[i].split(","))))
            i += 1
    # a test's teardown (or timeout) ends us with SIGTERM: Chromium too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("novnc-shot: terminated"))
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    port = free_port()
    profile = tempfile.mkdtemp(prefix="scm-novnc-")
    proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                             "--disable-background-networking", "--disable-component-update",
                             "--disable-sync", "--no-first-run", "--user-data-dir=" + profile,
                             "--remote-debugging-port=%d" % port, "--window-size=" + window, "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        targets = None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=2) as r:
                    targets = [t for t in json.load(r) if t.get("type") == "page"]
                if targets:
                    break
            except OSError:
                pass
            time.sleep(0.1)  # Chromium gives no other sign that it listens
        if not targets:
            raise SystemExit("novnc-shot: Chromium's DevTools did not come up")
        ws = WS(targets[0]["webSocketDebuggerUrl"])
        deadline = time.time() + 45  # the page, noVNC's handshake, the first frame
        ws.call("Page.enable")
        ws.call("Page.navigate", url=url)
        # noVNC draws into a canvas sized like the remote desktop once the
        # RFB session is up; wait for that and for pixels in it.
        probe = """(() => { const c = document.querySelector('#noVNC_container canvas, canvas');
            if (!c || c.width < 2) return null;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let lit = 0; for (let i = 0; i < d.length; i += 4 * 97) if (d[i] | d[i+1] | d[i+2]) lit++;
            return lit > 0 ? [c.width, c.height] : null; })()"""
        size = None
        while time.time() < deadline and not size:
            size = ws.js(probe)
            if not size:
                time.sleep(0.2)
        if not size:
            # what the page says, for whoever reads the failure
            status = ws.js("""(() => { const s = document.getElementById('noVNC_status');
                const c = document.querySelector('#noVNC_container canvas, canvas');
                return [document.readyState, document.title, location.href.split('#')[0],
                        s ? s.textContent : null, c ? [c.width, c.height] : null]; })()""")
            raise SystemExit("novnc-shot: noVNC did not show a desktop within 45 s (page: %r)" % (status,))
        time.sleep(0.5)  # let the first full update finish drawing
        print("canvas %dx%d" % (size[0], size[1]))
        if resized:
            # The canvas follows the server's new size, which is the size
            # of noVNC's view once the server said yes; steady for 1 s.
            dims = """(() => { const c = document.querySelector('#noVNC_container canvas, canvas');
                const v = document.getElementById('noVNC_container') || c.parentElement;
                return [c.width, c.height, v.clientWidth, v.clientHeight]; })()"""
            now, since = ws.js(dims), time.time()
            while time.time() < deadline + 30 and (now[:2] != now[2:] or time.time() - since < 1.0):
                time.sleep(0.2)
                d = ws.js(dims)
                if d != now:
                    now, since = d, time.time()
            if now[:2] != now[2:]:
                raise SystemExit("novnc-shot: the desktop is %dx%d, not the view's %dx%d" % tuple(now))
            print("resized %dx%d" % (now[0], now[1]))
            sys.stdout.flush()
        if ws.js(WATCH):
            print("novnc-shot: the page shows the desktop but is not connected", file=sys.stderr)
        n = 0
        for a in actions:
            if a[0] == "until-file" and shot_each:
                shoot(ws, "%s.%d.png" % (shot_each, n))
                n += 1
            act(ws, a)
            sys.stdout.flush()
        if shot_each:
            time.sleep(0.5)
            shoot(ws, "%s.%d.png" % (shot_each, n))
        print("disconnects %d" % ws.js("window.scmDrops"))
        print("status %s" % ws.js("(() => { const s = document.getElementById('noVNC_status');"
                                  " return (document.documentElement.classList.contains('noVNC_connected')"
                                  " ? 'connected' : 'not-connected') + ' ' + (s ? JSON.stringify(s.textContent) : '-'); })()"))
        if actions:
            time.sleep(0.5)  # the app answers through the proxy
        for x, y in points:
            px = ws.js("Array.from(document.querySelector('#noVNC_container canvas, canvas')"
                       ".getContext('2d').getImageData(%d, %d, 1, 1).data)" % (x, y))
            print("pixel %d %d %02x%02x%02x" % (x, y, px[0], px[1], px[2]))
        shoot(ws, out)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)

# gfx-vnc.bash: viewers with the session's secret, for the gfx tests.
# gvnccapture asks for a VNC password on its terminal only, and turns echo
# off with TCSAFLUSH, which throws away what was typed ahead; so it runs on
# a pseudo-terminal and gets the password once echo is off.

# gvnc_capture PORT PASSWORD OUT.png: 0 when gvnccapture saved the desktop.
# With GVNC_CA=FILE (root only) gvnccapture trusts that certificate for
# X509Vnc: gtk-vnc reads its CA from ~/.pki/CA/cacert.pem of the user's
# passwd home, so it runs in a private mount namespace with a tmpfs there.
gvnc_capture() {
	timeout 60 python3 - "$@" <<'PY'
import os, pty, sys, termios, time
port, password, out = sys.argv[1], sys.argv[2], sys.argv[3]
ca = os.environ.get("GVNC_CA")
pid, fd = pty.fork()
if pid == 0:
    target = "127.0.0.1:%d" % (int(port) - 5900)
    if ca:
        import pwd
        home = pwd.getpwuid(os.getuid()).pw_dir
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c",
                              'mount -t tmpfs -o mode=0700 none "$0" && mkdir -p "$0/.pki/CA" && '
                              'cp "$1" "$0/.pki/CA/cacert.pem" && shift && exec gvnccapture "$@"',
                              home, ca, target, out])
    os.execvp("gvnccapture", ["gvnccapture", target, out])
buf = b""
try:
    while b"Password:" not in buf:
        d = os.read(fd, 256)
        if not d:
            break
        buf += d
    if b"Password:" in buf:
        for _ in range(500):
            if not termios.tcgetattr(fd)[3] & termios.ECHO:
                break
            time.sleep(0.01)
        os.write(fd, (password + "\n").encode())
    while True:
        d = os.read(fd, 1024)
        if not d:
            break
        buf += d
except OSError:
    pass
_, st = os.waitpid(pid, 0)
sys.stdout.write(buf.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(st))
PY
}

# rfb_security_types PORT: the security types the server offers an RFB
# 3.8 viewer; then it answers with None (1) and prints what came back
# ("refused" when no ServerInit followed, "serverinit" when one did).
rfb_security_types() {
	timeout 30 python3 - "$1" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
def recv(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            break
        b += c
    return b
assert recv(12)[:4] == b"RFB "
s.sendall(b"RFB 003.008\n")
n = recv(1)[0]
types = list(recv(n))
print("types", " ".join(map(str, types)))
s.sendall(b"\x01")
rest = b""
while True:
    try:
        c = s.recv(65536)
    except OSError:
        break
    if not c:
        break
    rest += c
# A SecurityResult of 1 (failed) with its reason, or nothing; a ServerInit
# would follow a result of 0.
print("refused" if len(rest) < 4 or rest[:4] != b"\0\0\0\0" else "serverinit", len(rest))
PY
}

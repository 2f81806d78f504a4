#!/usr/bin/env bats
# The graphics proxy engine end to end, without the broker: the test
# server composites two synthetic clients and serves them over RFB; a real
# VNC client (gvnccapture) captures the desktop, and scm-gfx-pngcheck
# checks its pixels: both client regions painted, each framed in its own
# border colour, and the capture identical to the proxy's own PNG snapshot.
# Every viewer authenticates (VNC authentication; no security type None),
# and Raw, zlib, ZRLE and Tight, decoded by libvncclient, all give the
# snapshot's pixels exactly.
load gfx-vnc

setup() {
	B=${SCM_BUILD:?}
	SRV=$B/libexec/scm-gfx-testserver
	CHK=$B/libexec/scm-gfx-pngcheck
	command -v gvnccapture >/dev/null || { echo "gvnccapture missing (package gvncviewer)"; return 1; }
	command -v jq >/dev/null || { echo "jq missing"; return 1; }
	T=$(mktemp -d)
	mkfifo "$T/out"
}

teardown() {
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	exec 8<&- 2>/dev/null
	rm -rf "$T"
}

start() { # extra args for the test server
	"$SRV" --size 640x400 --info "$T/info.json" --snapshot "$T/snap.png" \
		--client alpha:240x160:1:c03030 --client beta:200x220:3:30a040 "$@" >"$T/out" 2>"$T/err" 3>&- &
	PID=$!
	# fd 3 belongs to bats; the server's first line gives its port.
	exec 8<"$T/out"
	read -r -t 20 -u 8 line || { cat "$T/err"; return 1; }
	PORT=${line##*:}
	[ "$PORT" -gt 5900 ]
	read -r -t 20 -u 8 _ PASSWORD TOKEN WSPORT || { cat "$T/err"; return 1; }
	[ ${#PASSWORD} -eq 8 ]
}

client() { # NAME FIELD
	jq -r --arg n "$1" ".clients[] | select(.caller == \$n) | .$2" "$T/info.json"
}

@test "gfx: gvnccapture captures both clients framed in their container colours" {
	start
	run gvnc_capture "$PORT" "$PASSWORD" "$T/cap.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$T/cap.png")" = "640 400" ]
	for n in alpha beta; do
		x=$(client $n x) y=$(client $n y) w=$(client $n width) h=$(client $n height)
		border=$(client $n border); border=${border#\#}
		colour=$([ $n = alpha ] && echo c03030 || echo 30a040)
		# The region is the client's: mostly its colour, and more than one colour (stripes).
		painted=$("$CHK" count "$T/cap.png" "$x" "$y" "$w" "$h" "$colour")
		[ "$painted" -gt $((w * h / 2)) ]
		[ "$("$CHK" distinct "$T/cap.png" "$x" "$y" "$w" "$h")" -ge 2 ]
		# The frame all round is the border colour and nothing else.
		[ "$("$CHK" pixel "$T/cap.png" $((x - 1)) $((y - 1)))" = "$border" ]
		[ "$("$CHK" pixel "$T/cap.png" $((x + w)) $((y + h)))" = "$border" ]
		[ "$("$CHK" pixel "$T/cap.png" $((x - 4)) $((y + h / 2)))" = "$border" ]
		[ "$("$CHK" count "$T/cap.png" "$x" $((y - 4)) "$w" 4 "$border")" -eq $((w * 4)) ]
		[ "$("$CHK" count "$T/cap.png" $((x + w)) "$y" 4 "$h" "$border")" -eq $((h * 4)) ]
		# One pixel further out is the desktop background.
		[ "$("$CHK" pixel "$T/cap.png" $((x - 5)) $((y - 5)))" = "2b2b2b" ]
	done
	[ "$(client alpha border)" != "$(client beta border)" ]
}

@test "gfx: the VNC capture equals the proxy's own PNG snapshot pixel for pixel" {
	start
	run gvnc_capture "$PORT" "$PASSWORD" "$T/cap.png"
	[ "$status" -eq 0 ]
	# gtk-vnc takes no cursor shape, so libvncserver paints the pointer in
	# at 0,0: everything outside that corner is exact, the corner nearly.
	[ "$("$CHK" diff "$T/cap.png" "$T/snap.png" 0 32 640 368)" = "0" ]
	[ "$("$CHK" diff "$T/cap.png" "$T/snap.png" 32 0 608 32)" = "0" ]
	[ "$("$CHK" diff "$T/cap.png" "$T/snap.png")" -lt 100 ]
}

@test "gfx: an animated desktop keeps serving several viewers in a row" {
	start --animate 20
	for i in 1 2 3; do
		run gvnc_capture "$PORT" "$PASSWORD" "$T/cap$i.png"
		echo "$output"
		[ "$status" -eq 0 ]
		x=$(client alpha x) y=$(client alpha y)
		[ "$("$CHK" count "$T/cap$i.png" "$x" "$y" 240 160 c03030)" -gt 9000 ]
	done
	kill -USR1 "$PID"
	# The stats say both clients were served and the animation presented.
	for _ in $(seq 50); do
		[ "$(jq '[.clients[].presents] | min' "$T/info.json")" -gt 1 ] && break
		sleep 0.1
	done
	[ "$(jq '[.clients[].presents] | min' "$T/info.json")" -gt 1 ]
	[ "$(jq '[.clients[].served] | min' "$T/info.json")" -gt 1 ]
}

@test "gfx: a viewer without the password gets no pixels: VNC authentication is the only way in" {
	start
	run rfb_security_types "$PORT"
	echo "$output"
	[ "${lines[0]}" = "types 2" ]
	[[ "${lines[1]}" == refused* ]]
	# gvnccapture with no password, and with a wrong one: nothing saved
	run gvnc_capture "$PORT" "" "$T/none.png"
	[ "$status" -ne 0 ]
	[ ! -e "$T/none.png" ]
	run gvnc_capture "$PORT" "wrongpw1" "$T/wrong.png"
	[ "$status" -ne 0 ]
	[ ! -e "$T/wrong.png" ]
	SCM_VNC_PASSWORD=wrongpw1 run "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/wrong2.png"
	[ "$status" -eq 3 ]
	[ ! -e "$T/wrong2.png" ]
	# and the right one works
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/ok.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" diff "$T/ok.png" "$T/snap.png")" = "0" ]
}

@test "gfx: Raw, zlib, ZRLE and Tight are negotiated and decode to the snapshot pixel for pixel" {
	start
	for enc in raw zlib zrle tight; do
		SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --encodings "$enc" --no-jpeg \
			--capture "$T/$enc.png"
		echo "$enc: $output"
		[ "$status" -eq 0 ]
		[ "$("$CHK" diff "$T/$enc.png" "$T/snap.png")" = "0" ]
	done
	kill -USR1 "$PID"
	for _ in $(seq 100); do jq -e '.encodings_sent.tight' "$T/info.json" >/dev/null 2>&1 && break; sleep 0.05; done
	cat "$T/info.json"
	# each encoding carried rectangles, and the compressed ones far fewer
	# bytes than the same pixels raw
	for enc in raw zlib zrle tight; do
		[ "$(jq ".encodings_sent.$enc.rects" "$T/info.json")" -gt 0 ]
	done
	for enc in zlib zrle tight; do
		b=$(jq ".encodings_sent.$enc.bytes" "$T/info.json") raw=$(jq ".encodings_sent.$enc.bytes_if_raw" "$T/info.json")
		[ $((b * 10)) -lt "$raw" ]
	done
}

# A client that dribbles its ProtocolVersion a byte at a time (each byte
# inside libvncserver's 2 s per-read wait) must not freeze the proxy: it
# is held until its message is complete, so another viewer is served at
# once. On the old code the capture waited for the whole dribble (~20 s).
@test "gfx: a client dribbling its handshake byte by byte does not stall another viewer" {
	start
	python3 - "$PORT" >"$T/slow.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.recv(12)
print("connected", flush=True)
for b in b"RFB 003.008\n":
    s.send(bytes([b]))
    time.sleep(1.8)
PY
	SLOW=$!
	for _ in $(seq 100); do grep -q connected "$T/slow.out" && break; sleep 0.05; done
	grep -q connected "$T/slow.out"
	sleep 2 # two bytes in: on the old code the proxy is now inside libvncserver's read
	t0=$(date +%s%N)
	SCM_VNC_PASSWORD=$PASSWORD run timeout 30 "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/ok.png"
	t1=$(date +%s%N)
	kill "$SLOW" 2>/dev/null || true
	wait "$SLOW" 2>/dev/null || true
	echo "status $status, capture took $(((t1 - t0) / 1000000)) ms"
	[ "$status" -eq 0 ]
	[ "$("$CHK" diff "$T/ok.png" "$T/snap.png")" = "0" ]
	[ $((t1 - t0)) -lt 1500000000 ]
}

# Idle connections that never authenticate cannot use up the viewer
# slots: at most GFX_RFB_PREAUTH_MAX wait in the handshake (a new one
# closes the oldest), and only authenticated viewers count against 16.
@test "gfx: 20 idle unauthenticated connections do not lock out a viewer with the password" {
	start
	python3 - "$PORT" >"$T/idle.out" 2>&1 <<'PY' &
import socket, sys, time
socks = []
for _ in range(20):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.recv(12)
    socks.append(s)
print("held", len(socks), flush=True)
time.sleep(60)
PY
	IDLE=$!
	for _ in $(seq 200); do grep -q held "$T/idle.out" && break; sleep 0.05; done
	grep -q "held 20" "$T/idle.out"
	SCM_VNC_PASSWORD=$PASSWORD run timeout 30 "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/ok.png"
	echo "$output"
	kill "$IDLE" 2>/dev/null || true
	wait "$IDLE" 2>/dev/null || true
	[ "$status" -eq 0 ]
	[ "$("$CHK" diff "$T/ok.png" "$T/snap.png")" = "0" ]
}

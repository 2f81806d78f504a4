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
load wait

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

# info_is JQ-EXPR: the last info.json the server wrote says so.
info_is() { jq -e "$1" "$T/info.json" >/dev/null 2>&1; }
# info_now JQ-EXPR: asks the server for a new info.json, then as info_is
# (what it wrote for the previous ask, once the server got there).
info_now() { kill -USR1 "$PID"; info_is "$1"; }

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
	wait_until 60 info_is '[.clients[].presents] | min > 1'
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
	wait_until 60 info_is '.encodings_sent.tight'
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
print("dribbled", flush=True)
PY
	SLOW=$!
	wait_until 60 grep -q connected "$T/slow.out"
	grep -q connected "$T/slow.out"
	sleep 2 # two bytes in: on the old code the proxy is now inside libvncserver's read
	t0=$(date +%s%N)
	SCM_VNC_PASSWORD=$PASSWORD run timeout 30 "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/ok.png"
	t1=$(date +%s%N)
	# served while the slow one is still dribbling (~20 s in all), not after
	! grep -q dribbled "$T/slow.out"
	kill "$SLOW" 2>/dev/null || true
	wait "$SLOW" 2>/dev/null || true
	echo "status $status, capture took $(((t1 - t0) / 1000000)) ms"
	[ "$status" -eq 0 ]
	[ "$("$CHK" diff "$T/ok.png" "$T/snap.png")" = "0" ]
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
	wait_until 60 grep -q held "$T/idle.out"
	grep -q "held 20" "$T/idle.out"
	SCM_VNC_PASSWORD=$PASSWORD run timeout 30 "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/ok.png"
	echo "$output"
	kill "$IDLE" 2>/dev/null || true
	wait "$IDLE" 2>/dev/null || true
	[ "$status" -eq 0 ]
	[ "$("$CHK" diff "$T/ok.png" "$T/snap.png")" = "0" ]
}

# Tight with JPEG is lossy inside the windows, but the frames the proxy
# draws (which say whose window it is) and the desktop round them must
# come out exact: the proxy sends frames as rectangles of their own.
@test "gfx: Tight with JPEG stays close inside windows and exact on their frames and the desktop" {
	start --photo
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --encodings tight --quality 6 \
		--capture "$T/jpeg.png"
	echo "$output"
	[ "$status" -eq 0 ]
	# JPEG was used: the gradients are not bit-exact, but close
	[ "$("$CHK" diff "$T/jpeg.png" "$T/snap.png")" -gt 1000 ]
	[ "$("$CHK" maxdelta "$T/jpeg.png" "$T/snap.png")" -le 24 ]
	for n in alpha beta; do
		x=$(client $n x) y=$(client $n y) w=$(client $n width) h=$(client $n height)
		echo "$n: top bottom left right"
		[ "$("$CHK" diff "$T/jpeg.png" "$T/snap.png" $((x - 4)) $((y - 4)) $((w + 8)) 4)" = 0 ]
		[ "$("$CHK" diff "$T/jpeg.png" "$T/snap.png" $((x - 4)) $((y + h)) $((w + 8)) 4)" = 0 ]
		[ "$("$CHK" diff "$T/jpeg.png" "$T/snap.png" $((x - 4)) "$y" 4 "$h")" = 0 ]
		[ "$("$CHK" diff "$T/jpeg.png" "$T/snap.png" $((x + w)) "$y" 4 "$h")" = 0 ]
	done
	# the desktop below the windows
	[ "$("$CHK" diff "$T/jpeg.png" "$T/snap.png" 0 260 640 140)" = 0 ]
	# and the same desktop lossless is exact everywhere
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --encodings tight --no-jpeg \
		--capture "$T/lossless.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" diff "$T/lossless.png" "$T/snap.png")" = 0 ]
}

@test "gfx: a viewer resizes the desktop when the session allows it, and every viewer sees the new size" {
	start --resize --animate 50
	SCM_VNC_PASSWORD=$PASSWORD "$B/libexec/scm-gfx-rfb-input" "$PORT" --encodings zrle --stay 30 >"$T/watch.out" 2>&1 &
	W=$!
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --encodings zrle --resize 800 600 \
		--capture "$T/big.png"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "resized 800x600" ]
	[ "$("$CHK" size "$T/big.png")" = "800 600" ]
	# the windows stay where they were, framed; the new area is desktop
	# above the taskbar, which moved to the new bottom edge
	x=$(client alpha x) y=$(client alpha y)
	[ "$("$CHK" pixel "$T/big.png" $((x - 1)) $((y - 1)))" = "$(client alpha border | tr -d '#')" ]
	[ "$("$CHK" count "$T/big.png" 640 400 160 180 2b2b2b)" -eq $((160 * 180)) ]
	[ "$("$CHK" count "$T/big.png" 0 580 800 20 2b2b2b)" -eq 0 ]
	[ "$("$CHK" pixel "$T/big.png" 790 590)" = "$("$CHK" pixel "$T/big.png" 630 590)" ]
	[ "$("$CHK" pixel "$T/big.png" 630 390)" = 2b2b2b ]
	# a later viewer gets the new size, and the stats count the resize
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --encodings tight --no-jpeg --capture "$T/later.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$T/later.png")" = "800 600" ]
	kill -USR1 "$PID"
	wait_until 60 info_is '.width == 800'
	[ "$(jq .resizes "$T/info.json")" = 1 ]
	[ "$(jq .height "$T/info.json")" = 600 ]
	# the viewer that watched all along followed the resize and is still connected
	[ "$(jq .viewers "$T/info.json")" = 1 ]
	kill "$W"; wait "$W" || true
	# too small a size is refused, and nothing changes
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --resize 32 32
	[ "$status" -eq 4 ]
	[[ "$output" == *"still 800x600"* ]]
}

@test "gfx: a smaller desktop keeps every window's title bar in reach, above the taskbar" {
	start --resize
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --encodings zrle --resize 240 160 \
		--capture "$T/small.png"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$T/small.png")" = "240 160" ]
	kill -USR1 "$PID"
	wait_until 60 info_is '.width == 240'
	[ "$(jq .width "$T/info.json")" = 240 ]
	# beta was right of x=240 on the old desktop: now every title bar
	# starts on the desktop and ends above the taskbar (160 - 20)
	jq -e '[.clients[].windows[].title_bar] | length == 2 and
		all(.[0] < 240 and .[0] + .[2] > 0 and .[1] >= 0 and .[1] + .[3] <= 140)' "$T/info.json"
	[ "$(jq -r '.taskbar[0].rect[1]' "$T/info.json")" -ge 140 ]
	# and what a viewer decodes is the proxy's snapshot (written with the
	# info), the moved windows included
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --encodings zrle --capture "$T/small2.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$T/snap.png")" = "240 160" ]
	[ "$("$CHK" diff "$T/small2.png" "$T/snap.png")" = 0 ]
}

@test "gfx: without the session's consent, or with the view-only secret, resizing is refused" {
	start
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --resize 800 600
	echo "$output"
	[ "$status" -eq 4 ]
	[[ "$output" == *"still 640x400"* ]]
	kill "$PID"; wait "$PID" || true; PID=
	exec 8<&-
	start --resize --viewonly viewonl1
	SCM_VNC_PASSWORD=viewonl1 run "$B/libexec/scm-gfx-rfb-input" "$PORT" --resize 800 600
	echo "$output"
	[ "$status" -eq 4 ]
	SCM_VNC_PASSWORD=viewonl1 run "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/vo.png"
	[ "$("$CHK" size "$T/vo.png")" = "640 400" ]
}

@test "gfx: two viewers at once see the same desktop, and a viewer that comes back finds it unchanged" {
	start
	SCM_VNC_PASSWORD=$PASSWORD "$B/libexec/scm-gfx-rfb-input" "$PORT" --encodings zrle --capture "$T/a.png" --stay 30 &
	A=$!
	wait_until 60 test -s "$T/a.png"
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --encodings tight --no-jpeg --capture "$T/b.png"
	[ "$status" -eq 0 ]
	wait_until 60 info_now '.viewers == 1'
	kill "$A"; wait "$A" || true
	[ "$("$CHK" diff "$T/a.png" "$T/snap.png")" = 0 ]
	[ "$("$CHK" diff "$T/b.png" "$T/snap.png")" = 0 ]
	# both gone; the desktop runs on, and the next viewer sees it as it was
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/c.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" diff "$T/c.png" "$T/snap.png")" = 0 ]
}

# A scrolling window is sent as a CopyRect of what the viewer had plus the
# new rows (copyfind.c); viewers that watched every frame through
# incremental updates alone must end with the compositor's pixels exactly.
# Both clients scroll 7 rows per frame for 40 frames.
@test "gfx: viewers that watched windows scroll, through CopyRect with ZRLE and Tight, have the exact desktop" {
	start --scroll 7:40 --animate 25
	for enc in zrle tight; do
		SCM_VNC_PASSWORD=$PASSWORD "$B/libexec/scm-gfx-rfb-input" "$PORT" --encodings "$enc copyrect" --no-jpeg \
			--until-file "$T/done" --settle 500 --shot "$T/$enc.png" >"$T/$enc.out" 2>&1 &
		echo $! >>"$T/watchers"
	done
	wait_until 60 info_now '.viewers == 2'
	kill -USR2 "$PID"
	read -r -t 60 -u 8 line
	[ "$line" = scrolled ]
	rm -f "$T/info.json"
	kill -USR1 "$PID"
	wait_until 60 test -s "$T/info.json"
	touch "$T/done"
	for w in $(cat "$T/watchers"); do wait "$w"; done
	for enc in zrle tight; do
		cat "$T/$enc.out"
		[ "$("$CHK" diff "$T/$enc.png" "$T/snap.png")" = 0 ]
	done
	wait_until 60 info_now '.viewers == 0'
	jq '{copies, copied_pixels, encodings_sent}' "$T/info.json"
	# the scroll went as copies, to both
	[ "$(jq .copies "$T/info.json")" -gt 0 ]
	[ "$(jq .encodings_sent.copyrect.rects "$T/info.json")" -ge 2 ]
}

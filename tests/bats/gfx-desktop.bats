#!/usr/bin/env bats
# Desktops, as far as they go without the container runtime: `scmctl
# desktop launch --no-containers` has the session manager start
# examples/desktops/two-apps.json against a real scmd: a gfx proxy of its
# own, one endpoint per app, and per app a real Xvfb with the real X11
# program (xclock, xterm) and scm-desktop-agent, as host processes.
# A real VNC client and noVNC in headless Chromium must see both apps in
# their border colours, and text typed through VNC must reach the xterm.
# Viewers need the session's secret: the VNC password for RFB, the token
# (and the password) for noVNC; each app's X server needs its cookie.
load helpers
load gfx-vnc

setup() {
	for t in gvnccapture Xvfb xauth xdpyinfo xclock xterm chromium python3; do
		command -v $t >/dev/null || { echo "$t missing (scripts/deps/test-gfx.txt)"; return 1; }
	done
	start_scmd
	CHK=$SCM_BUILD/libexec/scm-gfx-pngcheck
}

teardown() {
	"$SCMCTL" desktop stop two-apps >/dev/null 2>&1 || true
	"$SCMCTL" desktop stop ct >/dev/null 2>&1 || true
	stop_scmd
}

# Starts the example desktop ($SPEC if set); fills APP_X/APP_Y/APP_BORDER[app] and PORT.
launch() {
	declare -gA APP_X APP_Y APP_BORDER APP_DISPLAY
	# (The manager gives host apps an empty HOME of the desktop's own: the
	# xterm's shell does not wait on the host user's ~/.bashrc.)
	timeout 90 "$SCMCTL" desktop launch "${SPEC:-$SCM_SRC/examples/desktops/two-apps.json}" --no-containers "$@" \
		>"$SCMT/run.out" 2>"$SCMT/run.err" 3>&- || true
	cat "$SCMT/run.out" "$SCMT/run.err"
	grep -q '^ready' "$SCMT/run.out"
	while read -r kind name at xy _ border; do
		[ "$kind" = app ] || continue
		APP_X[$name]=${xy%,*} APP_Y[$name]=${xy#*,} APP_BORDER[$name]=${border#\#}
	done <"$SCMT/run.out"
	while read -r kind name disp; do
		[ "$kind" = display ] && APP_DISPLAY[$name]=$disp
	done <"$SCMT/run.out"
	PORT=$(sed -n 's/^vnc 127.0.0.1://p' "$SCMT/run.out")
	WSPORT=$(sed -n 's/^websocket 127.0.0.1://p' "$SCMT/run.out")
	PASSWORD=$(sed -n 's/^password //p' "$SCMT/run.out")
	TOKEN=$(sed -n 's/^token //p' "$SCMT/run.out")
	[ ${#PASSWORD} -eq 8 ] && [ ${#TOKEN} -eq 32 ]
}

# capture FILE: the desktop as an authenticated viewer decodes it.
capture() {
	SCM_VNC_PASSWORD=$PASSWORD timeout 60 "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --encodings "tight zrle" \
		--no-jpeg --capture "$1"
}

# The agent is up before its app has drawn; typing into a window that is
# not mapped yet goes nowhere. Waits until the xterm shows its white page.
wait_term_drawn() {
	wait_until 60 term_drawn
}
term_drawn() {
	capture "$SCMT/wait.png" >/dev/null 2>&1 &&
		[ "$("$CHK" count "$SCMT/wait.png" "${APP_X[term]}" "${APP_Y[term]}" 640 420 ffffff)" -gt 100000 ]
}

@test "gfx desktop: xclock and xterm in their own endpoints, captured by a VNC client" {
	launch
	run gvnc_capture "$PORT" "$PASSWORD" "$SCMT/cap.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$SCMT/cap.png")" = "1280 720" ]
	for app in clock term; do
		x=${APP_X[$app]} y=${APP_Y[$app]} b=${APP_BORDER[$app]}
		w=$([ $app = clock ] && echo 360 || echo 640) h=$([ $app = clock ] && echo 360 || echo 420)
		# A real app drew there: several colours, and not the desktop background
		[ "$("$CHK" distinct "$SCMT/cap.png" "$x" "$y" "$w" "$h")" -ge 2 ]
		# (a few anti-aliased pixels of xclock's hands may match the background grey)
		[ "$("$CHK" count "$SCMT/cap.png" "$x" "$y" "$w" "$h" 2b2b2b)" -lt $((w * h / 100)) ]
		[ "$("$CHK" count "$SCMT/cap.png" $((x - 4)) $((y - 4)) $((w + 8)) 4 "$b")" -eq $(((w + 8) * 4)) ]
		[ "$("$CHK" count "$SCMT/cap.png" $((x + w)) "$y" 4 "$h" "$b")" -eq $((h * 4)) ]
	done
	[ "${APP_BORDER[clock]}" != "${APP_BORDER[term]}" ]
	# xclock paints white around its face.
	[ "$("$CHK" count "$SCMT/cap.png" "${APP_X[clock]}" "${APP_Y[clock]}" 360 360 ffffff)" -gt 10000 ]
}

@test "gfx desktop: text typed through VNC reaches the focused xterm" {
	launch
	wait_term_drawn
	typed=/tmp/scmgfxtyped$RANDOM$RANDOM
	rm -f "$typed" "$typed.viewonly"
	# The view-only secret shows the desktop but its input goes nowhere.
	viewonly=$(sed -n 's/^viewonly //p' "$SCMT/run.out")
	SCM_VNC_PASSWORD=$viewonly "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" \
		--click $((APP_X[term] + 100)) $((APP_Y[term] + 100)) --type "touch $typed.viewonly" --return \
		--capture "$SCMT/viewonly.png"
	[ "$("$CHK" size "$SCMT/viewonly.png")" = "1280 720" ]
	SCM_VNC_PASSWORD=$PASSWORD "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" \
		--click $((APP_X[term] + 100)) $((APP_Y[term] + 100)) --type "touch $typed" --return
	wait_until 60 test -e "$typed"
	[ -e "$typed" ]
	# typed before, by the view-only viewer: never arrived
	[ ! -e "$typed.viewonly" ]
	rm -f "$typed"
	# Only the focused app heard anything.
	"$SCMCTL" call gfx-two-apps stats | python3 -c '
import json, sys
c = {x["caller"]: x for x in json.load(sys.stdin)["stats"]["clients"]}
assert c["desktop-two-apps-clock"]["input_events"] == 0, c
assert c["desktop-two-apps-term"]["input_events"] > 20, c'
	# The terminal shows what was typed: its region changed since launch.
	run capture "$SCMT/cap.png"
	[ "$("$CHK" distinct "$SCMT/cap.png" "${APP_X[term]}" "${APP_Y[term]}" 640 40)" -ge 2 ]
}

@test "gfx desktop: noVNC in headless Chromium shows the desktop, and typing there reaches the xterm" {
	wport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	launch --novnc "$wport"
	wait_term_drawn
	url=$(sed -n 's/^novnc //p' "$SCMT/run.out")
	cx=${APP_X[clock]} cy=${APP_Y[clock]} tx=${APP_X[term]} ty=${APP_Y[term]}
	typed=/tmp/scmgfxnovnc$RANDOM$RANDOM
	rm -f "$typed"
	run timeout 90 "$SCM_BUILD/libexec/scm-desktop-novnc-shot" "$url" "$SCMT/novnc.png" \
		--click $((tx + 100)),$((ty + 100)) --type "touch $typed" --enter \
		$((cx - 2)),$((cy + 50)) $((tx - 2)),$((ty + 50)) 5,5
	echo "$output"
	[ "$status" -eq 0 ]
	wait_until 60 test -e "$typed"
	[ -e "$typed" ]
	rm -f "$typed"
	[[ "$output" == *"canvas 1280x720"* ]]
	[[ "$output" == *"pixel $((cx - 2)) $((cy + 50)) ${APP_BORDER[clock]}"* ]]
	[[ "$output" == *"pixel $((tx - 2)) $((ty + 50)) ${APP_BORDER[term]}"* ]]
	[[ "$output" == *"pixel 5 5 2b2b2b"* ]]
	[ "$("$CHK" distinct "$SCMT/novnc.png" 0 0 4000 4000)" -ge 4 ]
}

# noVNC with resize=remote asks the proxy for the size of its view
# (SetDesktopSize); a spec with "resize": true lets it. The session
# manager then reports the size the desktop has now, not the spec's.
@test "gfx desktop: noVNC resizes the desktop to its window, and desktop show and list report the new size" {
	sed 's/"size": "1280x720",/"size": "1280x720", "resize": true,/' \
		"$SCM_SRC/examples/desktops/two-apps.json" >"$SCMT/resize.json"
	grep -q '"resize": true' "$SCMT/resize.json"
	wport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	SPEC=$SCMT/resize.json launch --novnc "$wport"
	run "$SCMCTL" --json desktop show two-apps
	[ "$(jq -r .size <<<"$output")" = 1280x720 ]
	url=$(sed -n 's/^novnc //p' "$SCMT/run.out")
	run timeout 120 "$SCM_BUILD/libexec/scm-desktop-novnc-shot" "$url&resize=remote" "$SCMT/novnc.png" \
		--window 1100,700 --resized 5,5
	echo "$output"
	[ "$status" -eq 0 ]
	size=$(sed -n 's/^resized //p' <<<"$output")
	[ -n "$size" ] && [ "$size" != 1280x720 ]
	# the proxy has it: a viewer that comes now gets the new size
	SCM_VNC_PASSWORD=$PASSWORD run timeout 60 "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --capture "$SCMT/after.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$SCMT/after.png")" = "${size/x/ }" ]
	# and the session manager reports it, with the spec's size beside it
	run "$SCMCTL" --json desktop show two-apps
	echo "$output"
	[ "$(jq -r .size <<<"$output")" = "$size" ]
	[ "$(jq -r .spec_size <<<"$output")" = 1280x720 ]
	[ "$(jq -r .stats.resizes <<<"$output")" -ge 1 ]
	run "$SCMCTL" --json desktop list
	[ "$(jq -r '.desktops[0].size' <<<"$output")" = "$size" ]
	run "$SCMCTL" desktop list
	echo "$output"
	[[ "$(sed -n 2p <<<"$output")" =~ ^two-apps\ +running\ +[0-9]+\ +[0-9]+\ +$size\  ]]
}

# The printed noVNC URL carries the password and the token in its
# fragment, which the browser never sends: after noVNC connected with it,
# no file the session keeps (the page server's log among them) holds
# either secret. The old URL had them in its query, logged per request.
@test "gfx desktop: opening the noVNC URL leaves neither the password nor the token in the session's files" {
	wport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	launch --novnc "$wport"
	url=$(sed -n 's/^novnc //p' "$SCMT/run.out")
	run timeout 90 "$SCM_BUILD/libexec/scm-desktop-novnc-shot" "$url" "$SCMT/novnc.png" 5,5
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"pixel 5 5 2b2b2b"* ]]
	state=$SCM_RUNTIME_DIR/desktops/two-apps.d
	[ -d "$state" ] && [ -e "$state/novnc-http.log" ]
	ls -la "$state"
	run grep -rlF -e "$PASSWORD" -e "$TOKEN" "$state"
	echo "$output"
	[ "$status" -eq 1 ]
}

@test "gfx desktop: stopping the session removes its endpoints and its proxy" {
	launch
	"$SCMCTL" service list | grep -q gfx-two-apps
	"$SCMCTL" desktop stop two-apps
	! "$SCMCTL" endpoint list | grep -q desktop-two-apps
	! "$SCMCTL" service list | grep -q gfx-two-apps
	scmd_alive
}

# Profiles for apps in containers: gfx access, the weight fixed by policy
# both ways a profile can fix it: gfx-w1 constrains create_surface's weight
# argument, gfx-w3 gives the grant the interface's "weight" setting (which
# wins over whatever the app asks for); and the proxy's own profile (with
# --containers it runs in a container too).
container_profiles() {
	mkdir -p "$SCMT/cfg/profiles"
	cp "$SCM_SRC/examples/profiles/gfx-proxy.json" "$SCMT/cfg/profiles/"
	cat >"$SCMT/cfg/profiles/gfx-w1.json" <<JSON
{ "name": "gfx-w1", "priority": 11, "description": "a desktop app with 1 share of the proxy",
  "services": [ { "service": "gfx*", "methods": ["present", "poll_input"], "action": "allow" },
                { "service": "gfx*", "methods": ["create_surface"], "action": "allow",
                  "args": { "weight": { "eq": 1 } } } ] }
JSON
	cat >"$SCMT/cfg/profiles/gfx-w3.json" <<JSON
{ "name": "gfx-w3", "priority": 13, "description": "a desktop app with 3 shares of the proxy",
  "services": [ { "service": "gfx*", "methods": ["create_surface", "present", "poll_input"], "action": "allow",
                  "settings": { "weight": 3 } } ] }
JSON
	"$SCMCTL" policy reload >/dev/null
	cat >"$SCMT/ct.json" <<'JSON'
{ "name": "ct", "size": "900x500", "apps": [
  { "name": "clock", "command": ["xclock", "-update", "1"], "size": "300x300", "profiles": ["gfx-w1"], "weight": 1 },
  { "name": "eyes", "command": ["xeyes"], "size": "400x300", "profiles": ["gfx-w3"], "weight": 9 } ] }
JSON
}

@test "gfx desktop: apps in two containers, gfx granted and weighted by their profiles" {
	container_profiles
	timeout 90 "$SCMCTL" desktop launch "$SCMT/ct.json" >"$SCMT/run.out" 2>"$SCMT/run.err" 3>&- || true
	cat "$SCMT/run.out" "$SCMT/run.err"
	grep -q '^ready' "$SCMT/run.out"
	run "$SCMCTL" container list
	[[ "$output" == *"ct-clock"*"running"* ]]
	[[ "$output" == *"ct-eyes"*"running"* ]]
	# the proxy is in a container of its own, under the gfx-proxy profile
	"$SCMCTL" --json container list | python3 -c '
import json, sys
c = [x for x in json.load(sys.stdin)["containers"] if x.get("provides") == "gfx-ct"]
assert len(c) == 1 and c[0]["state"] == "running" and c[0]["profiles"] == ["gfx-proxy"], c'
	stats=$("$SCMCTL" call gfx-ct stats)
	echo "$stats" | python3 -c '
import json, sys
c = {x["caller"]: x for x in json.load(sys.stdin)["stats"]["clients"]}
assert c["ct-clock"]["weight"] == 1 and c["ct-eyes"]["weight"] == 3, c
assert c["ct-clock"]["border"] != c["ct-eyes"]["border"], c'
	port=$(sed -n 's/^vnc 127.0.0.1://p' "$SCMT/run.out") password=$(sed -n 's/^password //p' "$SCMT/run.out")
	run gvnc_capture "$port" "$password" "$SCMT/cap.png"
	[ "$status" -eq 0 ]
	while read -r kind name at xy _ border; do
		[ "$kind" = app ] || continue
		x=${xy%,*} y=${xy#*,} b=${border#\#}
		w=$([ $name = clock ] && echo 300 || echo 400) h=300
		[ "$("$CHK" distinct "$SCMT/cap.png" "$x" "$y" "$w" "$h")" -ge 2 ]
		[ "$("$CHK" count "$SCMT/cap.png" $((x - 4)) $((y - 4)) $((w + 8)) 4 "$b")" -eq $(((w + 8) * 4)) ]
	done <"$SCMT/run.out"
	"$SCMCTL" desktop stop ct
	# the apps' containers and the proxy's (provider-gfx-ct-1) are gone
	! "$SCMCTL" container list | grep -q ct-
}

@test "gfx desktop: without the gfx-proxy profile a containerized session fails at once, and says why" {
	container_profiles
	rm "$SCMT/cfg/profiles/gfx-proxy.json"
	"$SCMCTL" policy reload >/dev/null
	run timeout 60 "$SCMCTL" desktop launch "$SCMT/ct.json"
	[ "$status" -ne 0 ]
	[[ "$output" == *"gfx-ct did not start"*"gfx-proxy"* ]]
	# nothing was started for the apps, and nothing stays behind
	run "$SCMCTL" container list
	[[ "$output" != *"ct-clock"* && "$output" != *"ct-eyes"* ]]
	run "$SCMCTL" service list
	[[ "$output" != *"gfx-ct"* ]]
	scmd_alive
}

@test "gfx desktop: a container may not pick a weight its profile does not grant" {
	container_profiles
	cat >"$SCMT/gfx.json" <<JSON
{ "name": "gfx", "interface": "gfx", "exec": ["$SCM_BUILD/libexec/scm-gfx-proxy", "--size", "640x400"], "allow": ["host"] }
JSON
	"$SCMCTL" service register "$SCMT/gfx.json" >/dev/null
	"$SCMCTL" container run -d --name greedy --profile gfx-w1 --env SCM_GFX_WEIGHT=50 \
		-- "$SCM_BUILD/libexec/scm-desktop-app" --size 200x200 -- xeyes >/dev/null
	greedy_exited() { "$SCMCTL" container list | grep -q 'greedy.*exited'; }
	wait_until 60 greedy_exited
	run "$SCMCTL" container logs greedy
	[[ "$output" == *"parameter 'weight' is not the allowed value"* ]]
	run "$SCMCTL" call gfx stats
	[[ "$output" != *greedy* ]]
	"$SCMCTL" container rm greedy >/dev/null
}

@test "gfx desktop: without the secret a viewer gets no pixels, and a websocket without the token gets 403" {
	wport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	launch --novnc "$wport"
	run rfb_security_types "$PORT"
	echo "$output"
	# VeNCrypt (TLS, tls "preferred") and VNC authentication; never None
	[ "${lines[0]}" = "types 19 2" ]
	[[ "${lines[1]}" == refused* ]]
	run gvnc_capture "$PORT" "notthis1" "$SCMT/wrong.png"
	[ "$status" -ne 0 ]
	[ ! -e "$SCMT/wrong.png" ]
	# The websocket: no token, a wrong one, a right one (the upgrade).
	ws() {
		python3 - "$WSPORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n" % sys.argv[2]).encode())
print(s.recv(4096).split(b"\r\n")[0].decode())
PY
	}
	[ "$(ws /websockify)" = "HTTP/1.1 403 Forbidden" ]
	[ "$(ws "/websockify?token=${TOKEN%?}x")" = "HTTP/1.1 403 Forbidden" ]
	[[ "$(ws "/websockify?token=$TOKEN")" == "HTTP/1.1 101"* ]]
	# noVNC itself, with the printed URL but a wrong token, shows no desktop.
	url=$(sed -n 's/^novnc //p' "$SCMT/run.out")
	[[ "$url" == *"token%3D$TOKEN"*"password=$PASSWORD"* ]]
	run timeout 90 "$SCM_BUILD/libexec/scm-desktop-novnc-shot" "${url/$TOKEN/${TOKEN%?}x}" "$SCMT/bad.png" 5,5
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" != *"pixel 5 5"* ]]
	"$SCMCTL" call gfx-two-apps stats | python3 -c '
import json, sys
s = json.load(sys.stdin)["stats"]
assert s["viewers_refused"] >= 4, s'
}

@test "gfx desktop: an app's X display refuses clients without its cookie, other users, and has no abstract socket" {
	launch
	d=${APP_DISPLAY[term]}
	[ -n "$d" ]
	# the server listens on its socket file only: no abstract @/tmp/.X11-unix/X socket, no TCP
	grep -q " /tmp/.X11-unix/X${d#:}\$" /proc/net/unix
	! grep -q "@/tmp/.X11-unix/X${d#:}\$" /proc/net/unix
	! ss -ltn | grep -q ":$((6000 + ${d#:})) "
	# without the cookie: refused, for this user and for another one
	run env XAUTHORITY=/dev/null xdpyinfo -display "$d"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Authorization required"* || "$output" == *"unable to open display"* ]]
	if [ "$(id -u)" = 0 ]; then
		run setpriv --reuid 65534 --regid 65534 --clear-groups env HOME=/ XAUTHORITY=/nonexistent xdpyinfo -display "$d"
		[ "$status" -ne 0 ]
	fi
	# the app itself is fine: the xterm is drawn
	wait_term_drawn
}

@test "gfx desktop: tls required: X509Vnc with the desktop's own certificate (0600, its fingerprint shown); plain VNC authentication refused" {
	jq '. + {"tls": "required"}' "$SCM_SRC/examples/desktops/two-apps.json" >"$SCMT/tls.json"
	timeout 90 "$SCMCTL" desktop launch "$SCMT/tls.json" --no-containers >"$SCMT/run.out" 2>"$SCMT/run.err" 3>&- || true
	cat "$SCMT/run.out" "$SCMT/run.err"
	grep -q '^ready' "$SCMT/run.out"
	grep -qx 'security X509Vnc,TLSVnc' "$SCMT/run.out"
	PORT=$(sed -n 's/^vnc 127.0.0.1://p' "$SCMT/run.out")
	PASSWORD=$(sed -n 's/^password //p' "$SCMT/run.out")
	fp=$(sed -n 's/^tls_fingerprint //p' "$SCMT/run.out")
	pem=$(sed -n 's/^tls_certificate //p' "$SCMT/run.out")
	[ ${#fp} -eq 64 ]
	# beside the state file, the owner's, 0600
	[ "$(dirname "$pem")" = "$(dirname "$(ls "$SCM_RUNTIME_DIR"/desktops/two-apps.json)")" ]
	[ "$(stat -c '%a %u' "$pem")" = "600 $(id -u)" ]
	[ "$(certtool --fingerprint --hash sha256 --infile "$pem")" = "$fp" ]
	[ "$("$SCMCTL" desktop show two-apps | jq -r .tls_fingerprint)" = "$fp" ]
	# what a TLS client is shown on the wire is that certificate
	coproc ST { python3 "$BATS_TEST_DIRNAME/rfb-tls.py" starttls "$PORT" 261; }
	read -r -t 20 -u "${ST[0]}" lp
	timeout 20 gnutls-cli --insecure --print-cert -p "$lp" 127.0.0.1 </dev/null 2>&1 |
		sed -n '/BEGIN CERT/,/END CERT/p' >"$SCMT/got.pem"
	[ "$(certtool --fingerprint --hash sha256 --infile "$SCMT/got.pem")" = "$fp" ]
	# plain VNC authentication is not offered, and asking for it is refused
	run python3 "$BATS_TEST_DIRNAME/rfb-tls.py" choose "$PORT" 2
	[ "$output" = "refused security type 2 was not offered" ]
	# a viewer that trusts the certificate sees both apps
	if [ "$(id -u)" -eq 0 ]; then
		GVNC_CA=$pem run gvnc_capture "$PORT" "$PASSWORD" "$SCMT/cap.png"
		echo "$output"
		[ "$status" -eq 0 ]
		[ "$("$CHK" size "$SCMT/cap.png")" = "1280 720" ]
	fi
	"$SCMCTL" desktop stop two-apps
	[ ! -e "$pem" ]
}

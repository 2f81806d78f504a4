#!/usr/bin/env bats
# Containerized desktops through `scmctl desktop`: two X11 apps, each in a
# container of its own running as nobody under the example profiles,
# composited by the graphics proxy in a container of its own (profile
# gfx-proxy); a snapshot with both apps in their
# containers' border colours, a real VNC client, typing through VNC into
# the focused app only, and a clean stop.
load helpers
load gfx-vnc

pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	cp "$SCM_SRC"/examples/profiles/*.json "$SCMT/cfg/profiles/"
}
setup() {
	for t in gvnccapture Xvfb xclock xterm; do
		command -v $t >/dev/null || { echo "$t missing (scripts/deps/test-gfx.txt)"; return 1; }
	done
	start_scmd
	CHK=$SCM_BUILD/libexec/scm-gfx-pngcheck
}
teardown() {
	"$SCMCTL" desktop stop two-apps >/dev/null 2>&1 || true
	stop_scmd
}

launch() { # [SPEC]
	declare -gA APP_X APP_Y APP_BORDER APP_DISPLAY
	run timeout 90 "$SCMCTL" desktop launch "${1:-$SCM_SRC/examples/desktops/two-apps.json}"
	echo "$output"
	[ "$status" -eq 0 ]
	while read -r kind name at xy _ border; do
		[ "$kind" = app ] || continue
		APP_X[$name]=${xy%,*} APP_Y[$name]=${xy#*,} APP_BORDER[$name]=${border#\#}
	done <<<"$output"
	PORT=$(sed -n 's/^vnc 127.0.0.1://p' <<<"$output")
	PASSWORD=$(sed -n 's/^password //p' <<<"$output")
	while read -r kind name disp; do
		[ "$kind" = display ] && APP_DISPLAY[$name]=$disp
	done <<<"$output"
	[ -n "$PORT" ] && [ ${#PASSWORD} -eq 8 ]
}

@test "desktop launch: two apps in two containers, listed and shown" {
	launch
	run "$SCMCTL" desktop list
	[[ "$output" == *"two-apps"*"running"* ]]
	run "$SCMCTL" --json container list
	echo "$output" | python3 -c '
import json,sys
c = {x["name"]: x for x in json.load(sys.stdin)["containers"]}
for app in ("two-apps-clock", "two-apps-term"):
    assert c[app]["state"] == "running", c
    assert c[app]["profiles"] == ["base", "desktop-app"], c[app]'
	run "$SCMCTL" container exec two-apps-term -- id -u
	[ "$output" = "65534" ]
	run "$SCMCTL" desktop show two-apps
	[ "$status" -eq 0 ]
	echo "$output" | python3 -c '
import json,sys
s = json.load(sys.stdin)["stats"]
callers = sorted(c["caller"] for c in s["clients"])
assert callers == ["two-apps-clock", "two-apps-term"], callers'
}

@test "desktop launch: the graphics proxy runs in a container of its own, and viewers still reach it" {
	# "resize": true in the spec reaches the proxy (--resize on its exec line)
	sed 's/"size": "1280x720",/"size": "1280x720", "resize": true,/' \
		"$SCM_SRC/examples/desktops/two-apps.json" >"$SCMT/resize.json"
	grep -q '"resize": true' "$SCMT/resize.json"
	launch "$SCMT/resize.json"
	# scmd lists the proxy's container as the provider of gfx-two-apps,
	# confined by the gfx-proxy profile
	run "$SCMCTL" --json container list
	proxy=$(echo "$output" | python3 -c '
import json,sys
c = [x for x in json.load(sys.stdin)["containers"] if x.get("provides") == "gfx-two-apps"]
assert len(c) == 1, c
assert c[0]["state"] == "running" and c[0]["profiles"] == ["gfx-proxy"], c
print(c[0]["name"], c[0]["pid"])')
	read -r pname ppid <<<"$proxy"
	[ "$ppid" -gt 0 ]
	# the scm-gfx-proxy process is that container's (itself or below its
	# PID 1), and it is not a child of scmd on the host
	proxies=$(ps -eo pid=,ppid=,comm= | awk '$3 == "scm-gfx-proxy" { print $1, $2 }')
	found=
	while read -r pid parent; do
		[ -n "$pid" ] || continue
		[ "$parent" != "$SCMD_PID" ]
		[ "$pid" = "$ppid" ] || [ "$parent" = "$ppid" ] || continue
		found=$pid
	done <<<"$proxies"
	[ -n "$found" ]
	# its own mount and pid namespaces, the host's network (for the RFB
	# port on the host's loopback), no capabilities
	[ "$(readlink /proc/$found/ns/mnt)" != "$(readlink /proc/$SCMD_PID/ns/mnt)" ]
	[ "$(readlink /proc/$found/ns/pid)" != "$(readlink /proc/$SCMD_PID/ns/pid)" ]
	[ "$(readlink /proc/$found/ns/net)" = "$(readlink /proc/$SCMD_PID/ns/net)" ]
	[ "$(awk '/^CapEff:/ { print $2 }' /proc/$found/status)" = 0000000000000000 ]
	# the port the session printed is the one the proxy reports, and a
	# real VNC client gets the desktop through it
	run "$SCMCTL" call gfx-two-apps viewer
	[[ "$output" == *"$PORT"* ]]
	run gvnc_capture "$PORT" "$PASSWORD" "$SCMT/cap.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$SCMT/cap.png")" = "1280 720" ]
	# the spec allows resizing: a viewer resizes the desktop
	SCM_VNC_PASSWORD=$PASSWORD run "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --resize 1024 600 \
		--capture "$SCMT/resized.png"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$SCMT/resized.png")" = "1024 600" ]
	# stopping the desktop stops the proxy's container and drops its record
	"$SCMCTL" desktop stop two-apps
	run "$SCMCTL" container list
	[[ "$output" != *"$pname"* ]]
	! kill -0 "$found" 2>/dev/null
}

# Takes a screenshot to $SCMT/shot.png: 0 when both apps drew inside
# their frames.
both_drawn() {
	local app x y b w h
	"$SCMCTL" desktop screenshot two-apps "$SCMT/shot.png" || return 1
	for app in clock term; do
		x=${APP_X[$app]} y=${APP_Y[$app]} b=${APP_BORDER[$app]}
		w=$([ $app = clock ] && echo 360 || echo 640) h=$([ $app = clock ] && echo 360 || echo 420)
		[ "$("$CHK" distinct "$SCMT/shot.png" "$x" "$y" "$w" "$h")" -ge 2 ] || return 1
		[ "$("$CHK" count "$SCMT/shot.png" $((x - 4)) $((y - 4)) $((w + 8)) 4 "$b")" -eq $(((w + 8) * 4)) ] || return 1
	done
}

@test "desktop screenshot: both regions drawn, framed in their containers' colours" {
	launch
	wait_until 60 both_drawn || true # (the checks below say what is missing)
	run "$SCMCTL" desktop screenshot two-apps "$SCMT/shot.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$SCMT/shot.png")" = "1280 720" ]
	for app in clock term; do
		x=${APP_X[$app]} y=${APP_Y[$app]} b=${APP_BORDER[$app]}
		w=$([ $app = clock ] && echo 360 || echo 640) h=$([ $app = clock ] && echo 360 || echo 420)
		[ "$("$CHK" distinct "$SCMT/shot.png" "$x" "$y" "$w" "$h")" -ge 2 ]
		[ "$("$CHK" count "$SCMT/shot.png" $((x - 4)) $((y - 4)) $((w + 8)) 4 "$b")" -eq $(((w + 8) * 4)) ]
	done
	[ "${APP_BORDER[clock]}" != "${APP_BORDER[term]}" ]
	# a real VNC client sees the same desktop
	run gvnc_capture "$PORT" "$PASSWORD" "$SCMT/cap.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$SCMT/cap.png")" = "1280 720" ]
	# the spec says nothing of resizing: a viewer's resize is refused
	SCM_VNC_PASSWORD=$PASSWORD run "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --resize 1024 600
	echo "$output"
	[ "$status" -eq 4 ]
	run "$SCMCTL" desktop screenshot nosuch "$SCMT/x.png"
	[ "$status" -eq 5 ]
}

@test "typing through VNC reaches the focused app in its container, and only it" {
	launch
	# (keys sent before the xterm is mapped go nowhere)
	wait_until 60 both_drawn
	SCM_VNC_PASSWORD=$PASSWORD "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --click $((APP_X[term] + 100)) $((APP_Y[term] + 100)) \
		--type "touch /tmp/typed-through-vnc" --return
	typed() { "$SCMCTL" container exec two-apps-term -- test -e /tmp/typed-through-vnc; }
	wait_until 60 typed
	"$SCMCTL" container exec two-apps-term -- test -e /tmp/typed-through-vnc
	# the file is in the app's private /tmp, not the host's, nor the other app's
	[ ! -e /tmp/typed-through-vnc ]
	! "$SCMCTL" container exec two-apps-clock -- test -e /tmp/typed-through-vnc
	"$SCMCTL" desktop show two-apps | python3 -c '
import json,sys
c = {x["caller"]: x for x in json.load(sys.stdin)["stats"]["clients"]}
assert c["two-apps-clock"]["input_events"] == 0, c
assert c["two-apps-term"]["input_events"] > 10, c'
}

@test "desktop stop: the apps' containers, the proxy and the state are gone" {
	launch
	run "$SCMCTL" desktop stop two-apps
	[ "$status" -eq 0 ]
	run "$SCMCTL" --json container list
	! echo "$output" | grep -q '"state":"running"'
	run "$SCMCTL" service list
	[[ "$output" != *"gfx-two-apps"* ]]
	run "$SCMCTL" desktop list
	[[ "$output" != *"two-apps"* ]]
	# and a second launch works
	launch
}

@test "a bad desktop spec is refused with the field named" {
	echo '{"name":"x","size":"800x600","apps":"none"}' >"$SCMT/bad.json"
	run "$SCMCTL" desktop launch "$SCMT/bad.json"
	[ "$status" -ne 0 ]
	echo "$output"
	[[ "$output" == *"/apps"* ]]
	[[ "$output" != *"did not come up"* ]]
	run "$SCMCTL" desktop launch "$SCMT/nonexistent.json"
	[ "$status" -ne 0 ]
	run "$SCMCTL" --json container list
	[[ "$output" != *'"state":"running"'* ]]
}

@test "desktop show: the secrets are in a 0600 state file and in show, not in list; list counts viewers" {
	launch
	f=$SCM_RUNTIME_DIR/desktops/two-apps.json
	[ "$(stat -c %a "$f")" = 600 ]
	run "$SCMCTL" desktop show two-apps
	echo "$output" | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["password"] == sys.argv[1] and len(s["token"]) == 32 and len(s["viewonly_password"]) == 8, s' "$PASSWORD"
	run "$SCMCTL" --json desktop list
	[[ "$output" != *"$PASSWORD"* ]]
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)["desktops"][0]
assert d["viewers"] == 0 and "token" not in d and "password" not in d, d'
	# while a viewer watches, list counts it and names its encoding
	SCM_VNC_PASSWORD=$PASSWORD "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --encodings zrle \
		--capture "$SCMT/a.png" --stay 60 &
	vpid=$!
	wait_until 60 test -s "$SCMT/a.png"
	"$SCMCTL" --json desktop list | python3 -c '
import json, sys
d = json.load(sys.stdin)["desktops"][0]
assert d["viewers"] == 1 and d["viewer_list"][0]["encoding"] == "zrle", d'
	run "$SCMCTL" desktop list
	echo "$output"
	[[ "$(sed -n 2p <<<"$output")" =~ ^two-apps\ +running\ +[0-9]+\ +1\  ]]
	# a second viewer at the same time, then both gone: the session stays,
	# and the next viewer finds it as it was
	SCM_VNC_PASSWORD=$PASSWORD "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --capture "$SCMT/b.png" --stay 60 &
	vpid2=$!
	wait_until 60 test -s "$SCMT/b.png"
	[ "$("$SCMCTL" --json desktop list | python3 -c 'import json,sys; print(json.load(sys.stdin)["desktops"][0]["viewers"])')" = 2 ]
	kill "$vpid" "$vpid2"; wait "$vpid" "$vpid2" || true
	no_viewers() { [ "$("$SCMCTL" --json desktop list | python3 -c 'import json,sys; print(json.load(sys.stdin)["desktops"][0]["viewers"])')" = 0 ]; }
	wait_until 60 no_viewers
	run "$SCMCTL" --json desktop list
	[[ "$output" == *'"viewers":0'* || "$output" == *'"viewers": 0'* ]]
	[[ "$output" == *'"state":"running"'* || "$output" == *'"state": "running"'* ]]
	SCM_VNC_PASSWORD=$PASSWORD "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --capture "$SCMT/c.png"
	[ "$("$CHK" size "$SCMT/c.png")" = "1280 720" ]
}

@test "desktop: a desktop-app container outside the desktop cannot draw on it" {
	launch
	"$SCMCTL" container run -d --name intruder --user 65534 --profile base --profile desktop-app \
		--env SCM_GFX_SERVICE=gfx-two-apps -- "$SCM_BUILD/libexec/scm-desktop-app" --size 200x200 -- xeyes >/dev/null
	intruder_exited() { "$SCMCTL" container list | grep -q 'intruder.*exited'; }
	wait_until 60 intruder_exited
	run "$SCMCTL" container logs intruder
	echo "$output"
	[[ "$output" == *"'intruder' is not an app of this desktop"* ]]
	# the desktop still has exactly its own two apps
	"$SCMCTL" desktop show two-apps | python3 -c '
import json,sys
s = json.load(sys.stdin)["stats"]
assert sorted(c["caller"] for c in s["clients"]) == ["two-apps-clock", "two-apps-term"], s["clients"]'
	# and the viewer secrets are the host's only
	run "$SCMCTL" container run --name peek --user 65534 --profile base --profile desktop-app \
		--env SCM_GFX_SERVICE=gfx-two-apps -- "$SCM_BUILD/libexec/scm-gfx-client" viewer
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" != *"$PASSWORD"* ]]
	"$SCMCTL" container rm intruder >/dev/null
	"$SCMCTL" container rm peek >/dev/null 2>&1 || true
}

@test "desktop: an X client in another container, or without the cookie, cannot open an app's display" {
	launch
	d=${APP_DISPLAY[term]}
	[ -n "$d" ]
	# another container with the same profiles
	run "$SCMCTL" container run --name xpeek --user 65534 --profile base --profile desktop-app -- \
		xdpyinfo -display "$d"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"unable to open display"* ]]
	"$SCMCTL" container rm xpeek >/dev/null 2>&1 || true
	# inside the app's own container, without its cookie
	run "$SCMCTL" container exec two-apps-term -- env XAUTHORITY=/dev/null xdpyinfo -display "$d"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"unable to open display"* ]]
	# and on the host: no socket of it at all (private /tmp, own network namespace)
	run env XAUTHORITY=/dev/null xdpyinfo -display "$d"
	[ "$status" -ne 0 ]
}

# A client dribbling its RFB ProtocolVersion a byte every 1.8 s (inside
# libvncserver's 2 s wait per read) held the proxy's only thread: a
# viewer's capture and `scmctl desktop screenshot` waited ~18 s. Now the
# proxy holds that client until its message is complete.
@test "desktop screenshot: a client dribbling its RFB handshake stalls neither it nor a viewer" {
	launch
	python3 - "$PORT" >"$SCMT/slow.out" 2>&1 3>&- <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.recv(12)
print("connected", flush=True)
for b in b"RFB 003.008\n":
    s.send(bytes([b]))
    time.sleep(1.8)
PY
	SLOW=$!
	wait_until 60 grep -q connected "$SCMT/slow.out"
	grep -q connected "$SCMT/slow.out"
	sleep 2 # two bytes in: on the old code the proxy is inside libvncserver's read
	t0=$(date +%s%N)
	run timeout 60 "$SCMCTL" desktop screenshot two-apps "$SCMT/shot.png"
	t1=$(date +%s%N)
	echo "screenshot: status $status, $(((t1 - t0) / 1000000)) ms"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$SCMT/shot.png")" = "1280 720" ]
	SCM_VNC_PASSWORD=$PASSWORD run timeout 60 "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --capture "$SCMT/cap.png"
	t2=$(date +%s%N)
	echo "capture: status $status, $(((t2 - t1) / 1000000)) ms"
	kill "$SLOW" 2>/dev/null || true
	wait "$SLOW" 2>/dev/null || true
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$SCMT/cap.png")" = "1280 720" ]
	[ $((t1 - t0)) -lt 1500000000 ]
	[ $((t2 - t1)) -lt 1500000000 ]
}

# The noVNC URL carries the secrets in its fragment now: list cuts it
# there (it cut at the query only, which would have shown them).
@test "desktop list: the noVNC URL is shown without its secrets" {
	wport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	run timeout 90 "$SCMCTL" desktop launch "$SCM_SRC/examples/desktops/two-apps.json" --novnc "$wport"
	echo "$output"
	[ "$status" -eq 0 ]
	PASSWORD=$(sed -n 's/^password //p' <<<"$output") TOKEN=$(sed -n 's/^token //p' <<<"$output")
	[ ${#PASSWORD} -eq 8 ] && [ ${#TOKEN} -eq 32 ]
	[[ "$output" == *"/vnc.html#"*"$TOKEN"*"password=$PASSWORD"* ]]
	run "$SCMCTL" --json desktop list
	echo "$output"
	[[ "$output" != *"$PASSWORD"* ]] && [[ "$output" != *"$TOKEN"* ]]
	[ "$(jq -r '.desktops[0].novnc' <<<"$output")" = "http://127.0.0.1:$wport/vnc.html" ]
}

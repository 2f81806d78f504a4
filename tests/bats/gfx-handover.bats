#!/usr/bin/env bats
# The graphics proxy restarted with its channels, clients and viewers
# (docs/gfx.md "Restarting the proxy", docs/handover.md): a real desktop
# (Xvfb, xclock and xterm, `desktop launch --no-containers`), a real VNC
# viewer connected with plain VNC authentication across every restart,
# typing into the xterm; after each `scmctl service restart` of the proxy
# its keys still reach the shell (a file appears), the xterm keeps
# drawing, the secrets and ports did not change, and the viewer never
# reconnected; the same for a websocket viewer (the ws port with the
# token, binary frames as noVNC sends them), and noVNC itself in headless
# Chromium across two proxy restarts and one of scmd, its page never
# leaving the connected state. A new process that refuses
# the state (another program; a proxy that refuses after it adopted the
# viewer's socket) leaves the old one serving, its viewer too.
load helpers
load gfx-handover

@test "gfx handover: a viewer stays connected and keeps typing into the xterm across proxy restarts" {
	launch
	wait_until 60 term_white
	before=$(secrets)
	rounds=${SCM_SAN:+2}
	rounds=${rounds:-5}
	typed=/tmp/scmgfxho$RANDOM$RANDOM
	rm -f "$typed".*
	# One viewer, one connection: it types a command, then waits for the
	# test's go before the next; it fails if the connection drops.
	args=(--security vnc --encodings "tight zrle hextile" --cut-text "carried over" --click $((TX + 100)) $((TY + 100))
		--type "touch $typed.0" --return)
	for i in $(seq 1 "$rounds"); do
		args+=(--until-file "$SCMT/go.$i" --type "touch $typed.$i" --return)
	done
	args+=(--settle 300 --shot "$SCMT/last.png")
	SCM_VNC_PASSWORD=$PASSWORD "$VIEW" "$PORT" "${args[@]}" >"$SCMT/viewer.out" 2>&1 < <(bare sleep 600) &
	BG=$!
	wait_until 60 test -e "$typed.0"
	pid=$(proxy_pid)
	for i in $(seq 1 "$rounds"); do
		presents=$(clock_presents)
		proxy_restart
		grep -q "took over 2 clients and 1 viewers (0 dropped" "$SCMT/run/logs/gfx-two-apps.log"
		[ "$(secrets)" = "$before" ]
		touch "$SCMT/go.$i"
		wait_until 60 test -e "$typed.$i" || { cat "$SCMT/viewer.out" "$SCMT/run/logs/gfx-two-apps.log"; false; }
		# the viewer is still the same connection
		kill -0 "$BG"
	done
	grep 'took over' "$SCMT/run/logs/gfx-two-apps.log" | sed 's/^/# /' >&3
	# the desktop clipboard the viewer set went over too
	"$SCMCTL" call gfx-two-apps stats | python3 -c '
import json, sys
c = json.load(sys.stdin)["stats"]["clipboard"]
assert c["size"] == 12 and c["source"] == "@viewer", c'
	# the clock keeps drawing into the surface it had: its presents (the
	# count carried over) go on in the newest proxy
	[ "$(clock_presents)" -ge "$presents" ]
	wait_until 30 clock_presents_over "$(clock_presents)"
	wait "$BG"
	BG=
	cat "$SCMT/viewer.out"
	# the xterm shows what was typed, as the carried viewer decoded it
	[ "$("$CHK" distinct "$SCMT/last.png" "$TX" "$TY" 640 100)" -ge 2 ]
	rm -f "$typed".*
	# a new viewer gets in with the same password
	SCM_VNC_PASSWORD=$PASSWORD timeout 60 "$VIEW" "$PORT" --capture "$SCMT/new.png"
	[ "$("$CHK" count "$SCMT/new.png" "$TX" "$TY" 640 420 ffffff)" -gt 1000 ]
}

@test "gfx handover: a websocket viewer (the ws port, as noVNC) stays connected and keeps typing across proxy restarts" {
	launch
	wait_until 60 term_white
	before=$(secrets)
	read -r _ wsport _ _ token _ <<<"$before"
	typed=/tmp/scmgfxws$RANDOM$RANDOM
	rm -f "$typed".*
	# one websocket with the token, binary frames; the bridge exits 1 if
	# it closes and never opens another
	python3 "$SCM_SRC/tests/bats/ws-bridge.py" "$wsport" "/websockify?token=$token" "$SCMT/bridge.port" \
		>"$SCMT/bridge.out" 2>&1 < <(bare sleep 600) &
	BRIDGE=$!
	BG=$BRIDGE
	wait_until 30 test -s "$SCMT/bridge.port"
	args=(--security vnc --encodings "tight zrle hextile" --click $((TX + 100)) $((TY + 100))
		--type "touch $typed.0" --return)
	for i in 1 2; do
		args+=(--until-file "$SCMT/go.$i" --type "touch $typed.$i" --return)
	done
	args+=(--settle 300 --shot "$SCMT/last.png")
	SCM_VNC_PASSWORD=$PASSWORD "$VIEW" "$(cat "$SCMT/bridge.port")" "${args[@]}" >"$SCMT/viewer.out" 2>&1 \
		< <(bare sleep 600) &
	BG="$BRIDGE $!"
	viewer=$!
	wait_until 60 test -e "$typed.0" || { cat "$SCMT/viewer.out" "$SCMT/bridge.out"; false; }
	grep -q "upgraded" "$SCMT/bridge.out"
	for i in 1 2; do
		run "$SCMCTL" service restart gfx-two-apps
		echo "$output"
		[ "$status" -eq 0 ]
		[[ "$output" == *"restarted with its channels"* ]]
		grep -q "took over 2 clients and 1 viewers (0 dropped, 0 left to reconnect; 1 websockets carried, 0 left)" \
			"$SCMT/run/logs/gfx-two-apps.log" || { grep "took over" "$SCMT/run/logs/gfx-two-apps.log"; false; }
		[ "$(secrets)" = "$before" ]
		touch "$SCMT/go.$i"
		wait_until 60 test -e "$typed.$i" || { cat "$SCMT/viewer.out" "$SCMT/bridge.out"; false; }
		# the same websocket: the bridge has not seen it close
		kill -0 "$BRIDGE"
	done
	[ "$(grep -c 'websockets carried' "$SCMT/run/logs/gfx-two-apps.log")" -eq 2 ]
	grep 'took over' "$SCMT/run/logs/gfx-two-apps.log" | sed 's/^/# /' >&3
	wait "$viewer"
	BG=$BRIDGE
	# the viewer's leaving ends the bridge (status 0), not a closed websocket
	wait "$BRIDGE" || { cat "$SCMT/bridge.out"; false; }
	BG=
	cat "$SCMT/viewer.out" "$SCMT/bridge.out"
	grep -q "the viewer left" "$SCMT/bridge.out"
	# one upgrade, ever
	[ "$(grep -c upgraded "$SCMT/bridge.out")" -eq 1 ]
	[ "$("$CHK" distinct "$SCMT/last.png" "$TX" "$TY" 640 100)" -ge 2 ]
	rm -f "$typed".*
}

@test "gfx handover: a new process that refuses the state leaves the old proxy serving its viewer" {
	launch
	wait_until 60 term_white
	before=$(secrets)
	pid=$(proxy_pid)
	typed=/tmp/scmgfxho$RANDOM$RANDOM
	SCM_VNC_PASSWORD=$PASSWORD "$VIEW" "$PORT" --security vnc --click $((TX + 100)) $((TY + 100)) \
		--until-file "$SCMT/go" --type "touch $typed" --return --settle 300 >"$SCMT/viewer.out" 2>&1 < <(bare sleep 600) &
	BG=$!
	wait_until 60 grep -q 'viewers' <("$SCMCTL" call gfx-two-apps stats)
	# a binary that does not take over (the echo provider): refused
	run "$SCMCTL" service restart gfx-two-apps --exec "$SCM_BUILD/libexec/scm-echo-provider"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"goes on"* ]]
	[ "$(proxy_pid)" = "$pid" ]
	[ "$(secrets)" = "$before" ]
	# a proxy that refuses after it adopted the viewer's socket: it must
	# let go of it without ending the connection
	printf '#!/bin/sh\nSCM_GFX_RESTORE_FAIL=1 exec %s "$@"\n' "$SCM_BUILD/libexec/scm-gfx-proxy" >"$SCMT/failing-proxy"
	chmod +x "$SCMT/failing-proxy"
	run "$SCMCTL" service restart gfx-two-apps --exec "$SCMT/failing-proxy"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"refused after adopting the viewers"* ]]
	grep -q "took over 2 clients and 1 viewers" "$SCMT/run/logs/gfx-two-apps.log"
	[ "$(proxy_pid)" = "$pid" ]
	[ "$(secrets)" = "$before" ]
	touch "$SCMT/go"
	wait_until 60 test -e "$typed"
	wait "$BG"
	BG=
	rm -f "$typed"
}

@test "gfx handover: noVNC in headless Chromium stays connected and keeps typing across proxy and scmd restarts" {
	command -v "${CHROMIUM:-chromium}" >/dev/null && [ -e /usr/share/novnc/vnc.html ] ||
		{ echo "chromium or novnc missing (scripts/deps/test-gfx.txt)"; false; }
	wport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	launch --novnc "$wport"
	wait_until 60 term_white
	url=$(sed -n 's/^novnc //p' "$SCMT/run.out")
	# the page README points to: noVNC with reconnect=true, so a dropped
	# websocket would come back unseen by typing; the page's state tells
	[[ "$url" == *"reconnect=true"* ]]
	before=$(secrets)
	typed=/tmp/scmgfxnovnc$RANDOM$RANDOM
	rm -f "$typed".*
	args=(--click $((TX + 100)),$((TY + 100)) --type "touch $typed.0" --enter)
	for i in 1 2 3; do
		args+=(--until-file "$SCMT/go.$i" --type "touch $typed.$i" --enter)
	done
	timeout 400 "$SCM_BUILD/libexec/scm-desktop-novnc-shot" "$url" "$SCMT/novnc.png" --shot-each "$SCMT/novnc" \
		--wait 1 "${args[@]}" >"$SCMT/novnc.out" 2>&1 < <(bare sleep 600) &
	BG=$!
	wait_until 90 test -e "$typed.0" || { cat "$SCMT/novnc.out"; false; }
	pid=$(proxy_pid)
	# two restarts of the proxy around one of scmd
	for i in 1 2 3; do
		if [ "$i" -eq 2 ]; then
			scmd_restart_keeps_proxy
		else
			proxy_restart
		fi
		[ "$(secrets)" = "$before" ]
		touch "$SCMT/go.$i"
		wait_until 60 test -e "$typed.$i" || { cat "$SCMT/novnc.out"; false; }
	done
	wait "$BG"
	BG=
	cat "$SCMT/novnc.out"
	grep 'took over' "$SCMT/run/logs/gfx-two-apps.log" | sed 's/^/# /' >&3
	# noVNC's websocket went over in binary frames both times: never closed
	[ "$(grep -c 'took over 2 clients and 1 viewers (0 dropped, 0 left to reconnect; 1 websockets carried, 0 left)' \
		"$SCMT/run/logs/gfx-two-apps.log")" -eq 2 ]
	# and the page never left the connected state (no reconnect either)
	grep -qx 'disconnects 0' "$SCMT/novnc.out"
	grep -q '^status connected' "$SCMT/novnc.out"
	rm -f "$typed".*
}

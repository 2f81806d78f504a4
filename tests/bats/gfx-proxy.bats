#!/usr/bin/env bats
# The graphics proxy as an scm service: scmd activates scm-gfx-proxy on the
# first connect, two clients in their own endpoints (as two containers
# would be) draw through sealed memfd surfaces; a real VNC client sees both
# framed in their own colours, keys typed through RFB reach the focused
# client only, and hostile or flooding clients neither crash the proxy
# nor starve the others.
load helpers
load gfx-vnc

setup() {
	command -v gvnccapture >/dev/null || { echo "gvnccapture missing (package gvncviewer)"; return 1; }
	start_scmd
	GC=$SCM_BUILD/libexec/scm-gfx-client
	CHK=$SCM_BUILD/libexec/scm-gfx-pngcheck
	cat >"$SCMT/gfx.json" <<JSON
{ "name": "gfx", "interface": "gfx",
  "exec": ["$SCM_BUILD/libexec/scm-gfx-proxy", "--size", "640x400", "--state", "$SCMT/gfx.state"],
  "allow": ["appA", "appB", "admin", "host"] }
JSON
	"$SCMCTL" service register "$SCMT/gfx.json" >/dev/null
	for e in appA appB admin; do "$SCMCTL" endpoint create $e >/dev/null; done
	HOLDERS=()
}

teardown() {
	for p in "${HOLDERS[@]}"; do kill "$p" 2>/dev/null; done
	stop_scmd
}

# paint ENDPOINT W H COLOUR [FLOOD]: a client that holds its surface until
# the test ends; waits for its "surface X Y BORDER" line.
paint() {
	local ep=$1; shift
	SCM_ENDPOINT=$(ep "$ep") "$GC" paint "$@" >"$SCMT/$ep.out" 2>&1 < <(bare sleep 120) 3>&- &
	HOLDERS+=($!)
	wait_until 60 grep -q '^surface ' "$SCMT/$ep.out" && return 0
	cat "$SCMT/$ep.out"; return 1
}
field() { # ENDPOINT N: field N of the surface line (2=x 3=y 4=border 6=dropped)
	awk -v n="$2" '/^surface /{print $n}' "$SCMT/$1.out"
}
viewer_port() { "$SCMCTL" call gfx viewer | python3 -c 'import json,sys; print(json.load(sys.stdin)["port"])'; }
# The VNC password: the viewer method gives it to the host identity only.
viewer_password() { "$SCMCTL" call gfx viewer | python3 -c 'import json,sys; print(json.load(sys.stdin)["password"])'; }

@test "gfx proxy: two clients through scmd, seen by a real VNC client in their container colours" {
	paint appA 200 150 c03030
	paint appB 180 120 30a040
	port=$(viewer_port)
	[ "$port" -gt 5900 ]
	run gvnc_capture "$port" "$(viewer_password)" "$SCMT/cap.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$SCMT/cap.png")" = "640 400" ]
	for e in appA appB; do
		x=$(field $e 2) y=$(field $e 3) border=$(field $e 4)
		w=$([ $e = appA ] && echo 200 || echo 180) h=$([ $e = appA ] && echo 150 || echo 120)
		colour=$([ $e = appA ] && echo c03030 || echo 30a040)
		[ "$("$CHK" count "$SCMT/cap.png" "$x" "$y" "$w" "$h" "$colour")" -gt $((w * h / 2)) ]
		[ "$("$CHK" distinct "$SCMT/cap.png" "$x" "$y" "$w" "$h")" -ge 2 ]
		[ "$("$CHK" count "$SCMT/cap.png" $((x - 4)) $((y - 4)) $((w + 8)) 4 "${border#\#}")" -eq $(((w + 8) * 4)) ]
		[ "$("$CHK" count "$SCMT/cap.png" $((x + w)) "$y" 4 "$h" "${border#\#}")" -eq $((h * 4)) ]
	done
	[ "$(field appA 4)" != "$(field appB 4)" ]
	# The proxy's own snapshot, asked for by an admin client, is the same picture.
	SCM_ENDPOINT=$(ep admin) "$GC" snapshot "$SCMT/snap.png"
	# (but for the pointer, which libvncserver paints in at 0,0 for a
	# viewer that takes no cursor shape, as gtk-vnc here)
	[ "$("$CHK" diff "$SCMT/cap.png" "$SCMT/snap.png" 0 32 640 368)" = "0" ]
	[ "$("$CHK" diff "$SCMT/cap.png" "$SCMT/snap.png" 32 0 608 32)" = "0" ]
}

@test "gfx proxy: keys typed through RFB reach the focused client only" {
	paint appA 200 150 c03030
	paint appB 180 120 30a040
	port=$(viewer_port)
	bx=$(( $(field appB 2) + 10 )) by=$(( $(field appB 3) + 10 ))
	# An authenticated viewer: click into appB, then type "hi".
	SCM_VNC_PASSWORD=$(viewer_password) "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$port" --click "$bx" "$by" --type hi
	typed_i() { [ "$(grep -c '"keysym":105' "$SCMT/appB.out")" -ge 2 ]; }
	wait_until 60 typed_i
	grep -q '"type":"pointer","x":10,"y":10,"buttons":1' "$SCMT/appB.out"
	[ "$(grep -c '"keysym":104' "$SCMT/appB.out")" -eq 2 ]   # down and up
	[ "$(grep -c '"keysym":105' "$SCMT/appB.out")" -eq 2 ]
	! grep -q '^input' "$SCMT/appA.out"
}

@test "gfx proxy: hostile requests are refused field by field and the proxy serves on" {
	run env SCM_ENDPOINT="$(ep appA)" "$GC" hostile
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"/damage/0/3: must be a 32-bit integer"* ]]
	[[ "$output" == *"shrink the memfd: Operation not permitted"* ]]
	[[ "$output" == *"/windows/0/z: unknown key"* ]]
	[[ "$output" == *"/windows: 17 windows, at most 16"* ]]
	[[ "$output" == *"hostile ok"* ]]
	paint appB 100 100 30a040
	"$SCMCTL" call gfx stats | grep -q '"caller":"appB"'
}

@test "gfx proxy: a client flooding presents does not starve the other" {
	paint appA 200 150 c03030 20000
	paint appB 180 120 30a040
	port=$(viewer_port)
	run gvnc_capture "$port" "$(viewer_password)" "$SCMT/cap.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" count "$SCMT/cap.png" "$(field appB 2)" "$(field appB 3)" 180 120 30a040)" -gt 10000 ]
	stats=$("$SCMCTL" call gfx stats)
	echo "$stats" | python3 -c '
import json, sys
c = {x["caller"]: x for x in json.load(sys.stdin)["stats"]["clients"]}
# The flood arrived (rects wholly outside the surface are dropped before
# they count); whether frames merged depends on who was faster.
assert c["appA"]["presents"] > 5000, c
assert c["appB"]["served"] >= 1 and c["appB"]["frames_dropped"] == 0, c'
	scmd_alive
}

# The proxy started with --resize (what a spec with "resize": true asks
# the session manager for): a viewer's SetDesktopSize resizes the desktop the
# apps draw on, the proxy's own snapshot has the new size, and what the
# viewer decoded equals it.
@test "gfx proxy: with --resize a viewer resizes the desktop, and the snapshot agrees" {
	"$SCMCTL" service unregister gfx >/dev/null
	sed -i 's|"--size", "640x400",|"--size", "640x400", "--resize",|' "$SCMT/gfx.json"
	"$SCMCTL" service register "$SCMT/gfx.json" >/dev/null
	paint appA 200 150 c03030
	port=$(viewer_port)
	SCM_VNC_PASSWORD=$(viewer_password) run "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$port" --encodings zrle \
		--resize 1024 576 --capture "$SCMT/big.png"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$("$CHK" size "$SCMT/big.png")" = "1024 576" ]
	SCM_ENDPOINT=$(ep admin) "$GC" snapshot "$SCMT/snap.png"
	[ "$("$CHK" size "$SCMT/snap.png")" = "1024 576" ]
	[ "$("$CHK" diff "$SCMT/big.png" "$SCMT/snap.png")" = 0 ]
	x=$(field appA 2) y=$(field appA 3) border=$(field appA 4)
	[ "$("$CHK" count "$SCMT/big.png" "$x" "$y" 200 150 c03030)" -gt 15000 ]
	[ "$("$CHK" pixel "$SCMT/big.png" $((x - 1)) $((y - 1)))" = "${border#\#}" ]
	"$SCMCTL" call gfx stats | python3 -c '
import json, sys
s = json.load(sys.stdin)["stats"]
assert (s["width"], s["height"], s["resizes"]) == (1024, 576, 1), s'
}

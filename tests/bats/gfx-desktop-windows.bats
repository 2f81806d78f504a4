#!/usr/bin/env bats
# An X app's own windows on the desktop: one app (xlogo and xclock on one
# private Xvfb, in one endpoint) opens two top-level windows; the agent
# reports them (set_windows) and the proxy frames and titles each in the
# app's colour. A viewer drags one by its title bar, and its close button
# reaches the X client as WM_DELETE_WINDOW: the window goes, the other
# stays.
load helpers

setup() {
	for t in Xvfb xauth xlogo xclock jq; do
		command -v $t >/dev/null || { echo "$t missing (scripts/deps/test-gfx.txt)"; return 1; }
	done
	start_scmd
	CHK=$SCM_BUILD/libexec/scm-gfx-pngcheck
	VIEW=$SCM_BUILD/libexec/scm-gfx-rfb-input
	cat >"$SCMT/pair.json" <<'JSON'
{ "name": "pair", "size": "800x500",
  "apps": [ { "name": "two", "size": "400x300",
              "command": ["sh", "-c", "xlogo -geometry 150x120+0+0 & exec xclock -geometry 150x150+0+0"] } ] }
JSON
}

teardown() {
	"$SCMCTL" desktop stop pair >/dev/null 2>&1 || true
	"$SCMCTL" desktop stop menu >/dev/null 2>&1 || true
	stop_scmd
}

stats() { "$SCMCTL" call gfx-pair stats | jq -c '.stats'; }
windows_are() {
	[ "$(stats | jq '[.clients[0].windows[] | select(.title != "[desktop-pair-two]")] | length')" = "$1" ] &&
		[ "$(stats | jq '.clients[0].windows | length')" = "$1" ]
}
# wait_windows N: until the app shows N windows, all titled.
wait_windows() {
	wait_until 60 windows_are "$1" && return 0
	stats
	return 1
}
win() { # TITLE FIELD
	stats | jq -c --arg t "[desktop-pair-two] $1" ".clients[0].windows[] | select(.title == \$t) | .$2"
}
centre() { jq -r '"\(.[0] + (.[2] / 2 | floor)) \(.[1] + (.[3] / 2 | floor))"' <<<"$1"; }

@test "gfx desktop windows: two X windows of one app, each framed; drag one, close the other" {
	timeout 90 "$SCMCTL" desktop launch "$SCMT/pair.json" --no-containers >"$SCMT/run.out" 2>"$SCMT/run.err" 3>&- || true
	grep -q '^ready' "$SCMT/run.out" || { cat "$SCMT/run.out" "$SCMT/run.err"; false; }
	PORT=$(sed -n 's/^vnc 127.0.0.1://p' "$SCMT/run.out")
	export SCM_VNC_PASSWORD=$(sed -n 's/^password //p' "$SCMT/run.out")
	wait_windows 2
	border=$(stats | jq -r '.clients[0].border'); border=${border#\#}
	# Both at +0+0 in the app's screen: the agent moved the second aside,
	# so the two rects of the surface do not overlap.
	stats | jq -e '.clients[0].windows as $w | ($w[0].x + $w[0].width <= $w[1].x) or ($w[1].x + $w[1].width <= $w[0].x) or ($w[0].y + $w[0].height <= $w[1].y) or ($w[1].y + $w[1].height <= $w[0].y)'
	timeout 30 "$VIEW" "$PORT" --capture "$SCMT/cap.png"
	for t in xlogo xclock; do
		x=$(win $t x) y=$(win $t y) w=$(win $t width) h=$(win $t height)
		[ "$("$CHK" count "$SCMT/cap.png" $((x - 4)) $((y - 4)) $((w + 8)) 4 "$border")" -eq $(((w + 8) * 4)) ]
		[ "$("$CHK" count "$SCMT/cap.png" $((x + w)) "$y" 4 "$h" "$border")" -eq $((h * 4)) ]
		[ "$("$CHK" distinct "$SCMT/cap.png" "$x" "$y" "$w" "$h")" -ge 2 ]
	done
	[ "$(stats | jq -r '.taskbar | map(.title) | sort | join(",")')" = "[desktop-pair-two] xclock,[desktop-pair-two] xlogo" ]
	# Drag the clock by its title bar; the logo stays.
	lx=$(win xlogo x) ly=$(win xlogo y) cx0=$(win xclock x) cy0=$(win xclock y)
	read -r tx ty < <(centre "$(win xclock title_bar)")
	timeout 30 "$VIEW" "$PORT" --drag $((tx - 30)) "$ty" $((tx - 30 + 300)) $((ty + 150)) --capture "$SCMT/moved.png"
	[ "$(win xclock x)" -eq $((cx0 + 300)) ] && [ "$(win xclock y)" -eq $((cy0 + 150)) ]
	[ "$(win xlogo x)" -eq "$lx" ] && [ "$(win xlogo y)" -eq "$ly" ]
	x=$(win xclock x) y=$(win xclock y)
	[ "$("$CHK" count "$SCMT/moved.png" $((x - 4)) $((y - 4)) 158 4 "$border")" -eq $((158 * 4)) ]
	[ "$("$CHK" distinct "$SCMT/moved.png" "$x" "$y" 150 150)" -ge 2 ]
	# Close the logo: xlogo takes WM_DELETE_WINDOW and quits.
	read -r qx qy < <(centre "$(win xlogo close)")
	timeout 30 "$VIEW" "$PORT" --click "$qx" "$qy"
	wait_windows 1
	[ -n "$(win xclock x)" ]
	[ -z "$(win xlogo x)" ]
}

@test "gfx desktop windows: an X pop-up menu is a framed pop-up of its window, without a title bar" {
	command -v xterm >/dev/null || skip "xterm missing"
	cat >"$SCMT/menu.json" <<'JSON'
{ "name": "menu", "size": "800x500",
  "apps": [ { "name": "term", "size": "480x320", "command": ["xterm", "-geometry", "50x12+0+0"] } ] }
JSON
	timeout 90 "$SCMCTL" desktop launch "$SCMT/menu.json" --no-containers >"$SCMT/run.out" 2>"$SCMT/run.err" 3>&- || true
	grep -q '^ready' "$SCMT/run.out" || { cat "$SCMT/run.out" "$SCMT/run.err"; false; }
	PORT=$(sed -n 's/^vnc 127.0.0.1://p' "$SCMT/run.out")
	export SCM_VNC_PASSWORD=$(sed -n 's/^password //p' "$SCMT/run.out")
	mstats() { "$SCMCTL" call gfx-menu stats | jq -c '.stats'; }
	xterm_shown() { [ "$(mstats | jq '[.clients[0].windows[] | select(.title == "[desktop-menu-term] xterm")] | length')" = 1 ]; }
	wait_until 60 xterm_shown
	x=$(mstats | jq '.clients[0].windows[0].x') y=$(mstats | jq '.clients[0].windows[0].y')
	# Ctrl + button 1 held in the xterm: its main menu, an override-redirect
	# window, stays open until the test has looked.
	timeout 90 "$VIEW" "$PORT" --click $((x + 40)) $((y + 40)) --key-down 0xffe3 --down $((x + 40)) $((y + 40)) \
		--until-file "$SCMT/seen" --up $((x + 400)) $((y + 40)) --key-up 0xffe3 &
	held=$!
	popup=
	popup_open() { popup=$(mstats | jq -c '.clients[0].windows[] | select(.popup)'); [ -n "$popup" ]; }
	wait_until 60 popup_open || { mstats; false; }
	[ -n "$popup" ] || { mstats; false; }
	timeout 30 "$VIEW" "$PORT" --capture "$SCMT/menu.png"
	touch "$SCMT/seen"
	wait "$held"
	# No title bar, no taskbar entry; framed in the app's colour all round.
	[ "$(jq -r '.title_bar' <<<"$popup")" = null ]
	[ "$(mstats | jq '.taskbar | length')" -eq 1 ]
	border=$(mstats | jq -r '.clients[0].border'); border=${border#\#}
	px=$(jq '.x' <<<"$popup") py=$(jq '.y' <<<"$popup") pw=$(jq '.width' <<<"$popup") ph=$(jq '.height' <<<"$popup")
	[ "$("$CHK" count "$SCMT/menu.png" $((px - 4)) $((py - 4)) $((pw + 8)) 4 "$border")" -eq $(((pw + 8) * 4)) ]
	[ "$("$CHK" count "$SCMT/menu.png" $((px + pw)) "$py" 4 "$ph" "$border")" -eq $((ph * 4)) ]
	[ "$("$CHK" distinct "$SCMT/menu.png" "$px" "$py" "$pw" "$ph")" -ge 2 ]
	# It opened where the pointer was, over its window.
	[ "$px" -le $((x + 40)) ] && [ "$py" -le $((y + 40)) ] && [ $((px + pw)) -gt $((x + 40)) ]
	# Released away from it (the pointer still the xterm's while held, as
	# the proxy keeps it for the window pressed), the menu goes, nothing chosen.
	popup_gone() { [ -z "$(mstats | jq -c '.clients[0].windows[] | select(.popup)')" ]; }
	wait_until 60 popup_gone || { mstats; false; }
	[ -z "$(mstats | jq -c '.clients[0].windows[] | select(.popup)')" ] || { mstats; false; }
	"$SCMCTL" desktop stop menu >/dev/null
}

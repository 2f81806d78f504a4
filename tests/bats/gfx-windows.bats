#!/usr/bin/env bats
# Windows you can use, end to end without the broker: the test server
# composites synthetic clients whose windows carry title bars and taskbar
# entries drawn by the compositor; a real VNC client (libvncclient, with
# the password) drags a title bar, raises, minimises, restores from the
# taskbar and closes, and the decoded pixels and the engine's own stats
# must show each step. An app's two windows are framed each, and a click
# in one reaches the app in surface coordinates with that window named.
load gfx-vnc
load wait

setup() {
	B=${SCM_BUILD:?}
	SRV=$B/libexec/scm-gfx-testserver
	CHK=$B/libexec/scm-gfx-pngcheck
	VIEW=$B/libexec/scm-gfx-rfb-input
	command -v jq >/dev/null || { echo "jq missing"; return 1; }
	T=$(mktemp -d)
	mkfifo "$T/fifo"
}

teardown() {
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	exec 8<&- 2>/dev/null
	rm -rf "$T"
}

start() { # extra args for the test server
	"$SRV" --size 640x400 --info "$T/info.json" --snapshot "$T/snap.png" "$@" >"$T/fifo" 2>"$T/err" 3>&- &
	PID=$!
	exec 8<"$T/fifo"
	read -r -t 20 -u 8 line || { cat "$T/err"; return 1; }
	PORT=${line##*:}
	read -r -t 20 -u 8 _ PASSWORD _ _ || { cat "$T/err"; return 1; }
	# Everything else the server says (input it routed, closes) goes to a file.
	cat <&8 >"$T/out" &
}

# refresh: the engine's stats and its snapshot, as they are now.
refresh() {
	rm -f "$T/info.json"
	kill -USR1 "$PID"
	wait_until 60 test -s "$T/info.json"
}
win() { # CLIENT N FIELD: field of the client's window N (0 = bottom)
	jq -r --arg n "$1" ".clients[] | select(.caller == \$n) | .windows[$2].$3" "$T/info.json"
}
centre() { # "[x,y,w,h]" -> "cx cy"
	jq -r '"\(.[0] + (.[2] / 2 | floor)) \(.[1] + (.[3] / 2 | floor))"' <<<"$1"
}
view() { SCM_VNC_PASSWORD=$PASSWORD timeout 30 "$VIEW" "$PORT" "$@"; }

@test "gfx windows: a title bar in the container's colour, outside the app's surface, and a taskbar" {
	start --client alpha:200x150:1:c03030 --client beta:180x120:1:30a040
	refresh
	view --capture "$T/cap.png"
	for n in alpha beta; do
		x=$(win $n 0 x) y=$(win $n 0 y) w=$(win $n 0 width)
		border=$(jq -r --arg n $n '.clients[] | select(.caller == $n) | .border' "$T/info.json")
		read -r tx ty tw th < <(win $n 0 title_bar | jq -r '@sh "\(.[0]) \(.[1]) \(.[2]) \(.[3])"')
		# Above the frame's top border, as wide as the frame, 16 rows.
		[ "$tx" -eq $((x - 4)) ] && [ "$ty" -eq $((y - 4 - 16)) ] && [ "$tw" -eq $((w + 8)) ] && [ "$th" -eq 16 ]
		# Mostly the border colour, with text in it ("[alpha]"), and buttons.
		bar=$("$CHK" count "$T/cap.png" "$tx" "$ty" "$tw" "$th" "${border#\#}")
		[ "$bar" -gt $((tw * th / 2)) ] && [ "$bar" -lt $((tw * th)) ]
		[ "$(win $n 0 title)" = "[$n]" ]
	done
	# The taskbar: the bottom 20 rows, an entry per window, in order.
	[ "$(jq -r '.taskbar | map(.title) | join(",")' "$T/info.json")" = "[alpha],[beta]" ]
	[ "$("$CHK" distinct "$T/cap.png" 0 380 640 20)" -ge 4 ]
	# What the viewer decoded is the compositor's own picture.
	[ "$("$CHK" diff "$T/cap.png" "$T/snap.png" 0 0 640 400)" = "0" ]
}

@test "gfx windows: dragging the title bar moves the window; the pixels follow" {
	start --client alpha:200x150:1:c03030 --client beta:180x120:1:30a040
	refresh
	x0=$(win alpha 0 x) y0=$(win alpha 0 y)
	read -r cx cy < <(centre "$(win alpha 0 title_bar)")
	cx=$((cx - 40)) # clear of the buttons
	view --drag "$cx" "$cy" $((cx + 150)) $((cy + 170)) --capture "$T/cap.png"
	refresh
	x=$(win alpha 0 x) y=$(win alpha 0 y)
	[ "$x" -eq $((x0 + 150)) ] && [ "$y" -eq $((y0 + 170)) ]
	# The content is where the window went, the old place is background
	# (what beta does not cover), and the title bar moved along.
	[ "$("$CHK" count "$T/cap.png" "$x" "$y" 200 150 c03030)" -gt 15000 ]
	[ "$("$CHK" count "$T/cap.png" "$x0" "$y0" 100 100 2b2b2b)" -eq 10000 ]
	border=$(jq -r '.clients[] | select(.caller == "alpha") | .border' "$T/info.json")
	[ "$("$CHK" pixel "$T/cap.png" $((x + 2)) $((y - 4 - 16 + 1)))" = "${border#\#}" ]
	[ "$("$CHK" diff "$T/cap.png" "$T/snap.png" 0 0 640 400)" = "0" ]
	# A drag moves windows only: alpha's app heard a focus, no pointer.
	! grep -q '^input alpha .*"pointer"' "$T/out"
	# Dragged far off, the title bar stays on the desktop.
	read -r cx cy < <(centre "$(win alpha 0 title_bar)")
	view --drag $((cx - 40)) "$cy" $((cx - 40)) -500
	refresh
	[ "$(win alpha 0 y)" -eq $((4 + 16)) ]
}

@test "gfx windows: a click raises and focuses; the buttons minimise and close; the taskbar restores" {
	start --client alpha:200x150:1:c03030 --client beta:180x120:1:30a040
	refresh
	# Move beta over alpha, then click alpha's content: alpha comes on top.
	ax=$(win alpha 0 x) ay=$(win alpha 0 y)
	read -r cx cy < <(centre "$(win beta 0 title_bar)")
	bx=$(win beta 0 x) by=$(win beta 0 y)
	view --drag $((cx - 40)) "$cy" $((cx - 40 - (bx - ax) + 50)) $((cy - (by - ay) + 40))
	refresh
	bx=$(win beta 0 x) by=$(win beta 0 y)
	[ "$(win beta 0 focused)" = true ]
	view --capture "$T/over.png"
	[ "$("$CHK" pixel "$T/over.png" $((bx + 3)) $((by + 2)))" = 30a040 ]
	view --click $((ax + 10)) $((ay + 10)) --capture "$T/raised.png"
	refresh
	[ "$(win alpha 0 focused)" = true ]
	[ "$("$CHK" pixel "$T/raised.png" $((bx + 3)) $((by + 2)))" = c03030 ]
	grep -q '^input alpha {"type":"focus","window":0}' "$T/out"
	grep -q '^input alpha {"type":"pointer","x":10,"y":10,"buttons":1,"window":0}' "$T/out"
	# Minimise alpha: gone from the desktop, greyed in the taskbar, beta focused.
	read -r mx my < <(centre "$(win alpha 0 minimise)")
	view --click "$mx" "$my" --capture "$T/min.png"
	refresh
	[ "$(win alpha 0 hidden)" = true ]
	[ "$(win beta 0 focused)" = true ]
	[ "$(jq -r '.taskbar[0].hidden' "$T/info.json")" = true ]
	[ "$("$CHK" pixel "$T/min.png" $((bx + 3)) $((by + 2)))" = 30a040 ]
	[ "$("$CHK" count "$T/min.png" "$ax" "$ay" 40 40 c03030)" -eq 0 ]
	# Its taskbar entry brings it back, on top and focused.
	read -r ex ey < <(centre "$(jq -c '.taskbar[0].rect' "$T/info.json")")
	view --click "$ex" "$ey" --capture "$T/restored.png"
	refresh
	[ "$(win alpha 0 hidden)" = false ] && [ "$(win alpha 0 focused)" = true ]
	[ "$("$CHK" pixel "$T/restored.png" $((bx + 3)) $((by + 2)))" = c03030 ]
	# Close asks the app; this one closes, and its window and entry go.
	read -r qx qy < <(centre "$(win alpha 0 close)")
	view --click "$qx" "$qy" --capture "$T/closed.png"
	wait_until 60 grep -q '^closed alpha' "$T/out"
	grep -q '^input alpha {"type":"close","window":0}' "$T/out"
	refresh
	[ "$(jq -r '.taskbar | map(.title) | join(",")' "$T/info.json")" = "[beta]" ]
	view --capture "$T/closed.png"
	[ "$("$CHK" count "$T/closed.png" 0 0 640 380 c03030)" -eq 0 ]
	# Presses on the title bars and buttons never reached beta's app.
	! grep -q '^input beta .*"pointer"' "$T/out"
}

@test "gfx windows: two windows of one app, each framed and titled; input names the window" {
	start --client app:300x200:1:3050c0 --window "app:7:0,0,120,80:first" --window "app:9:150,20,100,90:second"
	refresh
	[ "$(jq '.clients[0].windows | length' "$T/info.json")" -eq 2 ]
	[ "$(jq -r '.taskbar | map(.title) | join(",")' "$T/info.json")" = "[app] first,[app] second" ]
	border=$(jq -r '.clients[0].border' "$T/info.json"); border=${border#\#}
	view --capture "$T/cap.png"
	for i in 0 1; do
		x=$(win app $i x) y=$(win app $i y) w=$(win app $i width) h=$(win app $i height)
		[ "$("$CHK" count "$T/cap.png" $((x - 4)) $((y - 4)) $((w + 8)) 4 "$border")" -eq $(((w + 8) * 4)) ]
		[ "$("$CHK" count "$T/cap.png" $((x + w)) "$y" 4 "$h" "$border")" -eq $((h * 4)) ]
		[ "$("$CHK" count "$T/cap.png" "$x" "$y" "$w" "$h" 3050c0)" -gt $((w * h / 2)) ]
	done
	# A window shows its part of the surface: the second starts at
	# surface (150,20), so the app's layout carries over.
	[ "$(win app 1 x)" -eq $(($(win app 0 x) + 150)) ]
	# A click 5,6 into the second window reaches the app at surface
	# (155,26), with the window named.
	view --click $(($(win app 1 x) + 5)) $(($(win app 1 y) + 6))
	grep -q '^input app {"type":"focus","window":9}' "$T/out"
	grep -q '^input app {"type":"pointer","x":155,"y":26,"buttons":1,"window":9}' "$T/out"
	# Moving the second leaves the first where it was.
	x1=$(win app 0 x)
	read -r cx cy < <(centre "$(win app 1 title_bar)")
	view --drag $((cx - 20)) "$cy" $((cx + 80)) $((cy + 100))
	refresh
	[ "$(win app 0 x)" -eq "$x1" ]
	[ "$(win app 1 y)" -gt 100 ]
	# Closing one window leaves the other.
	read -r qx qy < <(centre "$(win app 1 close)")
	view --click "$qx" "$qy"
	wait_until 60 grep -q '^closed app 9' "$T/out"
	refresh
	[ "$(jq -r '.taskbar | map(.title) | join(",")' "$T/info.json")" = "[app] first" ]
}

# A drag moves the window at most every 50 ms (server.c, DRAG_FRAME_NS):
# motion in between waits, and the last of it is applied when due even
# if the pointer then stops with the button held.
@test "gfx windows: a window dragged in a burst of motion and held still ends under the pointer" {
	start --client alpha:200x150:1:c03030
	refresh
	x0=$(win alpha 0 x) y0=$(win alpha 0 y)
	read -r cx cy < <(centre "$(win alpha 0 title_bar)")
	cx=$((cx - 40))
	view --down "$cx" "$cy" --down $((cx + 10)) $((cy + 5)) --down $((cx + 20)) $((cy + 10)) \
		--down $((cx + 30)) $((cy + 15)) --down $((cx + 37)) $((cy + 21)) --settle 300
	x=$x0 y=$y0
	for _ in $(seq 60); do
		refresh
		x=$(win alpha 0 x) y=$(win alpha 0 y)
		[ "$x" -eq $((x0 + 37)) ] && [ "$y" -eq $((y0 + 21)) ] && break
		sleep 0.5
	done
	[ "$x" -eq $((x0 + 37)) ] && [ "$y" -eq $((y0 + 21)) ]
	view --up $((cx + 37)) $((cy + 21))
	refresh
	[ "$(win alpha 0 x)" -eq $((x0 + 37)) ] && [ "$(win alpha 0 y)" -eq $((y0 + 21)) ]
}

# A dragged window is sent as a CopyRect of the frame the viewer had (the
# window manager's move, verified against the pixels); viewers that
# watched the whole drag through incremental updates must end with the
# compositor's pixels exactly. The drag crosses beta and comes back.
@test "gfx windows: viewers that watched a slow drag through CopyRect (ZRLE, Tight) have the exact desktop" {
	start --client alpha:200x150:1:c03030 --client beta:180x120:1:30a040
	refresh
	for enc in zrle tight; do
		view --encodings "$enc copyrect" --no-jpeg --until-file "$T/done" --settle 500 --shot "$T/$enc.png" \
			>"$T/$enc.out" 2>&1 &
		echo $! >>"$T/watchers"
	done
	two_viewers() { refresh && [ "$(jq .viewers "$T/info.json")" = 2 ]; }
	wait_until 60 two_viewers
	read -r cx cy < <(centre "$(win alpha 0 title_bar)")
	view --drag-steps $((cx - 40)) "$cy" $((cx + 160)) $((cy + 130)) 20 30 --drag $((cx - 40)) "$cy" $((cx + 3)) $((cy + 41))
	refresh
	touch "$T/done"
	for w in $(cat "$T/watchers"); do wait "$w"; done
	for enc in zrle tight; do
		cat "$T/$enc.out"
		[ "$("$CHK" diff "$T/$enc.png" "$T/snap.png" 0 0 640 400)" = 0 ]
	done
	refresh
	jq '{copies, copied_pixels, encodings_sent}' "$T/info.json"
	[ "$(jq .copies "$T/info.json")" -gt 0 ]
	[ "$(jq .encodings_sent.copyrect.rects "$T/info.json")" -ge 2 ]
}

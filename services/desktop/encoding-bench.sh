#!/usr/bin/env bash
# gfx-encoding-bench (make bench): the desktop as a person at a viewer
# sees it, against x11vnc in the same run.
#
# At 1280x720 and 1920x1080, two servers run the same apps (xclock
# ticking every second, an xterm):
#   proxy   a private scmd runs the two-app desktop (`scmctl desktop launch
#           --no-containers`): each app on its own Xvfb with the agent,
#           composited by scm-gfx-proxy;
#   x11vnc  Debian's x11vnc serving one Xvfb that runs the same two apps.
# For each, first the idle cost: CPU time of the proxy and the agents (and
# the session manager when it is found below scmd; x11vnc for the other)
# over 10 s with no viewer and no input, in % of one CPU (from
# /proc/PID/task/*/schedstat). Then per encoding (Raw; ZRLE; Tight with JPEG at
# quality 6; the ZRLE and Tight viewers also take CopyRect, as noVNC,
# TigerVNC and gvncviewer do) a measuring viewer stays connected while a
# second viewer types a line into the xterm at 25 keys/s ("typing"), then
# runs a loop printing a listing of 500 lines 5 ms apart ("scrolling",
# until the loop says it is done), then drags the xterm's window 384 px
# left and 192 px down across the clock in 48 steps of 40 ms, with 1 s
# for the last frames ("dragging"; then back, not measured; three times,
# the round with the median bytes/s counts): through the
# proxy's title bar, while x11vnc's Xvfb has no window manager, so there
# xdotool moves the xterm along the same path at the same pace (x11vnc's
# default -wireframe shows the move only once it has ended, as one
# update, and a second viewer watches as the dragging one does for the
# proxy). The clock alone ticks
# for 3 s before ("clock"). The clock is stopped (SIGSTOP to xclock, in
# both servers) while the typing and the listing are measured, so those
# lines are the terminal's own bytes: a tick redraws the antialiased
# hands, 50-60 KB raw, and would otherwise make up most of the typing
# line; it ticks again for the drag, which crosses it. Bytes per second are what the measuring
# viewer read (/proc/PID/io, the same measure for both servers); cpu is
# the servers' processes (as for idle) over the same span. Then the
# typing viewer types 20 letters one at a time and times each from key
# to the decoded update of the xterm ("latency", median/p90/max ms).
#
# The measuring viewer takes VNC authentication without TLS from both
# servers (x11vnc here offers nothing else), so the encodings are compared
# like for like; "tight+jpeg+tls" is the proxy's default for viewers that
# can (VeNCrypt TLSVnc): the same with each update in a TLS record, which
# costs 29 bytes an update (AES-GCM), a large part of a typed letter's.
#
# SCM_GFX_BENCH_SIZES (default "1280x720 1920x1080") and SCM_GFX_BENCH_MODES
# (default "raw zrle tight+jpeg tight+jpeg+tls") pick a part of the run.
#
# Lines:  gfx-enc SIZE SERVER ENCODING WORKLOAD BYTES_PER_S B/s cpu PERCENT % over SECONDS s
#         gfx-lat SIZE SERVER ENCODING median MS p90 MS max MS
#         gfx-idle SIZE SERVER CPU_PERCENT % (PROCESS PERCENT, ...)
set -euo pipefail
B=${SCM_BUILD:-$PWD/build}
SRC=${SCM_SRC:-$PWD}
RUN=$(mktemp -d /tmp/scm-encbench.XXXXXX)
in=$B/libexec/scm-gfx-rfb-input
pids=()
cleanup() {
	[ -z "${clock_pid:-}" ] || kill -CONT "$clock_pid" 2>/dev/null || true
	"$B/bin/scmctl" desktop stop two-apps >/dev/null 2>&1 || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$RUN"
}
trap cleanup EXIT
now() { date +%s.%N; }
hz=1000000000 # cpu_ticks counts ns

descendants() { # PID...: every process below them
	local all
	all=$(ps -e -o pid=,ppid=)
	local -a queue=("$@")
	while [ ${#queue[@]} -gt 0 ]; do
		local p=${queue[0]}
		queue=("${queue[@]:1}")
		for c in $(awk -v p="$p" '$2 == p { print $1 }' <<<"$all"); do
			echo "$c"
			queue+=("$c")
		done
	done
}
cpu_ticks() { # PID...: CPU time of all their threads, in ns
	# (schedstat, to the nanosecond: utime and stime in /proc/PID/stat
	# count 10 ms ticks, charged to whoever runs when one fires, which
	# makes a tenth of a percent read as 0 or 1 % over 10 s)
	{ cat $(printf '/proc/%s/task/*/schedstat ' "$@") 2>/dev/null || true; } | awk '{ t += $1 } END { printf "%.0f\n", t }'
}
idle_cpu() { # PID...: "TOTAL% (comm P%, ...)" of one CPU over 10 s
	local -a a b ps=("$@")
	local t0 t1 p i parts="" tot=0
	for p in "$@"; do a+=("$(cpu_ticks "$p")"); done
	t0=$(now)
	sleep 10
	for p in "$@"; do b+=("$(cpu_ticks "$p")"); done
	t1=$(now)
	local s
	s=$(awk "BEGIN { print $t1 - $t0 }")
	for i in "${!a[@]}"; do
		tot=$((tot + b[i] - a[i]))
		parts+="${parts:+, }$(cat "/proc/${ps[i]}/comm" 2>/dev/null || echo gone) $(awk -v d=$((b[i] - a[i])) -v hz="$hz" -v s="$s" 'BEGIN { printf "%.2f", 100 * d / hz / s }')"
	done
	awk -v d="$tot" -v hz="$hz" -v s="$s" -v parts="$parts" 'BEGIN { printf "%.2f %% (%s)", 100 * d / hz / s, parts }'
}
rchar() { awk '$1 == "rchar:" { print $2 }' "/proc/$1/io"; }

start_proxy() { # SIZE -> port, SCM_VNC_PASSWORD, term rect, idle pids
	local size=$1 dir=$RUN/proxy-$1
	mkdir -p "$dir/cfg" "$dir/home"
	export SCM_RUNTIME_DIR=$dir/run
	sed "s/\"size\": \"1280x720\"/\"size\": \"$size\"/" "$SRC/examples/desktops/two-apps.json" >"$dir/spec.json"
	"$B/bin/scmd" --runtime-dir "$SCM_RUNTIME_DIR" --config "$dir/cfg" --idl-path "$SRC/stubs/idl" \
		2>"$dir/scmd.log" &
	scmd=$!
	pids+=($scmd)
	for _ in $(seq 200); do [ -S "$SCM_RUNTIME_DIR/control.sock" ] && break; sleep 0.02; done
	"$B/bin/scmctl" desktop launch "$dir/spec.json" --no-containers >"$dir/run.out" 2>"$dir/run.err" || true
	grep -q '^ready' "$dir/run.out" || { cat "$dir/run.err" >&2; exit 1; }
	port=$(sed -n 's/^vnc 127.0.0.1://p' "$dir/run.out")
	SCM_VNC_PASSWORD=$(sed -n 's/^password //p' "$dir/run.out")
	read -r tx ty <<<"$(awk '$1 == "app" && $2 == "term" { split($4, a, ","); print a[1], a[2] }' "$dir/run.out")"
	tw=640 th=420
	# The title bar is above the content (border and 16 px of title).
	# The dragging viewer asks for the measured encodings too. drag -1:
	# the way back, not measured.
	drag() {
		local a=(--drag-steps $((tx + 100)) $((ty - 12)) $((tx + 100 - 384)) $((ty - 12 + 192)) 48 40)
		[ "${1:-}" = -1 ] && a=(--drag-steps $((tx + 100 - 384)) $((ty - 12 + 192)) $((tx + 100)) $((ty - 12)) 48 40)
		"$in" "$port" "${args[@]}" "${a[@]}"
	}
	# scmd starts the session manager and the proxy; the session manager
	# the apps (their Xvfb, app and agent).
	mapfile -t idle_pids < <(for p in $(descendants "$scmd"); do
		case $(cat "/proc/$p/comm" 2>/dev/null) in scm-gfx-proxy | scm-desktop-age* | scm-desktop-ses*) echo "$p" ;; esac
	done)
	clock_pid=$(for p in $(descendants "$scmd"); do
		case $(cat "/proc/$p/comm" 2>/dev/null) in xclock) echo "$p" ;; esac
	done | head -n1)
	[ -n "$clock_pid" ] || { echo "gfx-encoding-bench: the desktop's xclock not found" >&2; exit 1; }
	stop_server() {
		"$B/bin/scmctl" desktop stop two-apps >/dev/null 2>&1 || true
		kill "$scmd"
		wait "$scmd" || true
	}
}

start_x11vnc() { # SIZE
	local size=$1 dir=$RUN/x11vnc-$1 d
	mkdir -p "$dir"
	Xvfb -displayfd 5 -screen 0 "${size}x24" -nolisten tcp 5>"$dir/display" 2>"$dir/xvfb.err" &
	xvfb=$!
	pids+=($xvfb)
	for _ in $(seq 200); do [ -s "$dir/display" ] && break; sleep 0.02; done
	d=:$(cat "$dir/display")
	# where the proxy puts them: the clock at 20,20, the terminal beside it
	DISPLAY=$d xclock -update 1 -geometry 360x360+20+20 &
	clock_pid=$!
	pids+=($!)
	DISPLAY=$d xterm -geometry 106x32+404+20 &
	pids+=($!)
	SCM_VNC_PASSWORD=bench$RANDOM
	x11vnc -display "$d" -localhost -rfbport $((20000 + RANDOM % 20000)) -passwd "$SCM_VNC_PASSWORD" \
		-forever -shared -noxrecord -o "$dir/x11vnc.log" >"$dir/x11vnc.out" 2>&1 &
	x11=$!
	pids+=($x11)
	for _ in $(seq 300); do grep -q '^PORT=' "$dir/x11vnc.out" 2>/dev/null && break; sleep 0.05; done
	port=$(sed -n 's/^PORT=//p' "$dir/x11vnc.out")
	[ -n "$port" ] || { cat "$dir/x11vnc.out" >&2; exit 1; }
	tx=404 ty=20 tw=640 th=420
	local wid
	wid=$(DISPLAY=$d xdotool search --sync --class XTerm | head -n1)
	# No window manager: the window itself moves, along the proxy's path.
	drag_args=() back_args=()
	for f in $(seq 48); do
		drag_args+=(windowmove "$wid" $((tx - 384 * f / 48)) $((ty + 192 * f / 48)) sleep 0.04)
		back_args+=(windowmove "$wid" $((tx - 384 + 384 * f / 48)) $((ty + 192 - 192 * f / 48)) sleep 0.04)
	done
	xdisplay=$d
	# A second viewer watches meanwhile, as the dragging one does above.
	drag() {
		local steps=("${drag_args[@]}")
		[ "${1:-}" = -1 ] && steps=("${back_args[@]}")
		"$in" "$port" "${args[@]}" --stay 6 &
		local v=$!
		sleep 0.3
		DISPLAY=$xdisplay xdotool "${steps[@]}"
		kill "$v"
		wait "$v" || true
	}
	idle_pids=("$x11")
	stop_server() { kill "$x11" "$xvfb" 2>/dev/null; wait "$x11" "$xvfb" 2>/dev/null || true; }
}

workload() { # SIZE SERVER
	export SCM_VNC_PASSWORD
	sleep 2 # the xterm up
	"$in" "$port" --click $((tx + 100)) $((ty + 100)) --type "clear" --return
	sleep 3
	echo "gfx-idle $1 $2 $(idle_cpu "${idle_pids[@]}") over 10 s, no viewer, the clock ticking"
	for mode in ${SCM_GFX_BENCH_MODES:-raw zrle tight+jpeg tight+jpeg+tls}; do
		case $mode in
		raw) args=(--security vnc --encodings raw) ;;
		zrle) args=(--security vnc --encodings "zrle copyrect") ;;
		tight+jpeg) args=(--security vnc --encodings "tight copyrect" --quality 6) ;;
		tight+jpeg+tls)
			[ "$2" = proxy ] || continue # x11vnc here serves no TLS
			args=(--security tls --encodings "tight copyrect" --quality 6) ;;
		esac
		"$in" "$port" "${args[@]}" --stay 120 &
		vp=$!
		# its first (whole) frame in, however busy the machine
		sleep 2.5
		ri=$(rchar $vp) ti=$(now) ci=$(cpu_ticks "${idle_pids[@]}")
		sleep 3
		# the clock stops for typing and scrolling; the tick being drawn
		# reaches the viewer before the typing window opens
		kill -STOP "$clock_pid"
		sleep 1.2
		r0=$(rchar $vp) t0=$(now) c0=$(cpu_ticks "${idle_pids[@]}")
		"$in" "$port" --key-delay 40 --type "echo the quick brown fox jumps over the lazy dog 0123456789 again and again" \
			--return
		r1=$(rchar $vp) t1=$(now) c1=$(cpu_ticks "${idle_pids[@]}")
		# 500 lines, 5 ms apart; the pause is read's timeout on the
		# terminal, where nobody types meanwhile (no process per line:
		# a loaded machine slows forks, not this; and no < or >, which
		# a keysym-to-keycode mapping may type as the other), and the
		# shell says when the listing is done. Typed at 100 keys/s: at
		# full speed its ~300 key events can outrun the proxy's input
		# queue (GFX_INPUT_QUEUE) while the app is busy.
		rm -f "$RUN/listed"
		"$in" "$port" --key-delay 10 --type 'for i in $(seq 500); do echo "line $i of a long listing that scrolls by"; read -t 0.005; done; touch '"$RUN/listed" \
			--return
		for _ in $(seq 600); do [ -e "$RUN/listed" ] && break; sleep 0.1; done
		sleep 0.3
		r2=$(rchar $vp) t2=$(now) c2=$(cpu_ticks "${idle_pids[@]}")
		kill -CONT "$clock_pid"
		# then the window full of the listing is dragged, three times:
		# the clock's ticks in a drag's window weigh as much as the drag
		# and swing with the hands' angle, so the median round counts
		drags=()
		for _ in 1 2 3; do
			sleep 1
			r3=$(rchar $vp) t3=$(now) c3=$(cpu_ticks "${idle_pids[@]}")
			drag
			# what the drag left for the viewer (x11vnc sends a move when it ends)
			sleep 1
			r4=$(rchar $vp) t4=$(now) c4=$(cpu_ticks "${idle_pids[@]}")
			drags+=("$(awk "BEGIN { printf \"%d %s %d\", $r4 - $r3, $t4 - $t3, $c4 - $c3 }")")
			drag -1
		done
		read -r dd ds dc <<<"$(printf '%s\n' "${drags[@]}" | awk '{ print $1 / $2, $0 }' | sort -n | sed -n '2s/^[^ ]* //p')"
		"$in" "$port" --type "clear" --return
		sleep 0.5
		lat=$("$in" "$port" "${args[@]}" --latency 20 "$tx" "$ty" "$tw" "$th" | sed -n 's/^latency //p')
		kill "$vp"; wait "$vp" 2>/dev/null || true
		"$in" "$port" --type "clear" --return
		sleep 0.5
		for w in clock typing scrolling dragging; do
			case $w in
			clock) d=$((r0 - ri)) s=$(awk "BEGIN { print $t0 - $ti }") c=$((c0 - ci)) ;;
			typing) d=$((r1 - r0)) s=$(awk "BEGIN { print $t1 - $t0 }") c=$((c1 - c0)) ;;
			scrolling) d=$((r2 - r1)) s=$(awk "BEGIN { print $t2 - $t1 }") c=$((c2 - c1)) ;;
			dragging) d=$dd s=$ds c=$dc ;;
			esac
			printf 'gfx-enc %-9s %-6s %-10s %-9s %10d B/s cpu %5.1f %% over %.1f s\n' "$1" "$2" "$mode" "$w" \
				"$(awk "BEGIN { printf \"%d\", $d / $s }")" "$(awk "BEGIN { print 100 * $c / $hz / $s }")" "$s"
		done
		read -r n med p90 max <<<"${lat:-0 - - -}"
		printf 'gfx-lat %-9s %-6s %-10s median %s ms p90 %s ms max %s ms (%s keys)\n' "$1" "$2" "$mode" "$med" "$p90" "$max" "$n"
	done
}

for size in ${SCM_GFX_BENCH_SIZES:-1280x720 1920x1080}; do
	start_proxy "$size"
	workload "$size" proxy
	stop_server
	if command -v x11vnc >/dev/null; then
		start_x11vnc "$size"
		workload "$size" x11vnc
		stop_server
	else
		echo "gfx-enc $size x11vnc: not measured (x11vnc missing: scripts/install-deps.sh bench)"
	fi
done

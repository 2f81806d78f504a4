#!/usr/bin/env bash
# gfx-encoding-bench (make bench): bytes per second a viewer receives for
# the same desktop work in Raw, ZRLE, Tight (lossless) and Tight with JPEG:
# the clock ticking alone ("clock"), typing, scrolling.
# A private scmd runs examples/desktops/two-apps.json without containers
# (xclock ticking, xterm); per encoding a measuring viewer stays connected
# (scm-gfx-rfb-input --stay) while a second viewer types a line into the
# xterm at 25 keys per second ("typing"), then runs a command that prints
# a long listing line by line for 5 s ("scrolling"). The proxy's stats
# give the measuring viewer's bytes. Prints one line per encoding and
# workload: "gfx-enc ENCODING WORKLOAD BYTES_PER_S (RATIO x fewer than raw)".
set -euo pipefail
B=${SCM_BUILD:-$PWD/build}
SRC=${SCM_SRC:-$PWD}
RUN=$(mktemp -d /tmp/scm-encbench.XXXXXX)
export SCM_RUNTIME_DIR=$RUN/run
mkdir -p "$RUN/cfg" "$RUN/home"
pids=()
cleanup() {
	"$B/bin/scmctl" desktop stop two-apps >/dev/null 2>&1 || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$RUN"
}
trap cleanup EXIT
"$B/bin/scmd" --runtime-dir "$SCM_RUNTIME_DIR" --config "$RUN/cfg" --idl-path "$SRC/stubs/idl" 2>"$RUN/scmd.log" &
pids+=($!)
for _ in $(seq 200); do [ -S "$SCM_RUNTIME_DIR/control.sock" ] && break; sleep 0.02; done
"$B/bin/scmctl" desktop launch "$SRC/examples/desktops/two-apps.json" --no-containers >"$RUN/run.out" 2>"$RUN/run.err" || true
grep -q '^ready' "$RUN/run.out" || { cat "$RUN/run.err" >&2; exit 1; }
port=$(sed -n 's/^vnc 127.0.0.1://p' "$RUN/run.out")
export SCM_VNC_PASSWORD
SCM_VNC_PASSWORD=$(sed -n 's/^password //p' "$RUN/run.out")
read -r tx ty <<<"$(awk '$1 == "app" && $2 == "term" { split($4, a, ","); print a[1] + 100, a[2] + 100 }' "$RUN/run.out")"
in=$B/libexec/scm-gfx-rfb-input
# Let the xterm come up and take the focus.
sleep 2
"$in" "$port" --click "$tx" "$ty" --type "clear" --return

bytes() { # the measuring viewer's bytes so far (the one with ENCODING)
	"$B/bin/scmctl" call gfx-two-apps stats | python3 -c '
import json, sys
v = [x for x in json.load(sys.stdin)["stats"]["viewer_list"] if x["encoding"] == sys.argv[1]]
print(v[0]["bytes_sent"] if v else 0)' "$1"
}
now() { date +%s.%N; }

declare -A raw_rate
for mode in raw zrle tight tight+jpeg; do
	case $mode in
	raw) args=(--encodings raw) enc=raw ;;
	zrle) args=(--encodings zrle) enc=zrle ;;
	tight) args=(--encodings tight --no-jpeg) enc=tight ;;
	tight+jpeg) args=(--encodings tight --quality 6) enc=tight ;;
	esac
	"$in" "$port" "${args[@]}" --stay 60 &
	vp=$!
	sleep 1
	bi=$(bytes "$enc") ti=$(now)
	sleep 3
	b0=$(bytes "$enc") t0=$(now)
	"$in" "$port" --key-delay 40 --type "echo the quick brown fox jumps over the lazy dog 0123456789 again and again" \
		--return
	b1=$(bytes "$enc") t1=$(now)
	"$in" "$port" --type 'for i in $(seq 500); do echo "line $i of a long listing that scrolls by"; sleep 0.005; done' \
		--return
	sleep 5
	b2=$(bytes "$enc") t2=$(now)
	kill "$vp"; wait "$vp" 2>/dev/null || true
	"$in" "$port" --type "clear" --return
	sleep 1
	for w in clock typing scrolling; do
		case $w in
		clock) d=$((b0 - bi)) s=$(awk "BEGIN { print $t0 - $ti }") ;;
		typing) d=$((b1 - b0)) s=$(awk "BEGIN { print $t1 - $t0 }") ;;
		scrolling) d=$((b2 - b1)) s=$(awk "BEGIN { print $t2 - $t1 }") ;;
		esac
		rate=$(awk "BEGIN { printf \"%d\", $d / $s }")
		[ "$mode" = raw ] && raw_rate[$w]=$rate
		ratio=$(awk "BEGIN { printf \"%.1f\", ${raw_rate[$w]} / ($rate > 0 ? $rate : 1) }")
		printf 'gfx-enc %-11s %-9s %10s B/s  (%sx fewer than raw)\n' "$mode" "$w" "$rate" "$ratio"
	done
done

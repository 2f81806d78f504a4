#!/usr/bin/env bash
# scmd-bench: what scmd itself costs per object it keeps, and container
# launch through the whole stack (scmctl -> scmd -> runtime -> exit status).
#   scmd memory per idle container (RSS of scmd, 64 sleeping containers)
#   scmd memory and fds per live channel (RSS of scmd, 2000 held channels)
#   container run -- /bin/true through scmctl, median of 40, vs scm-run
#   control-socket round trips (p50/p99) while 2 clients launch containers
#   back to back, against the same with no launches
set -u
B=${SCM_BUILD:-$PWD/build}
BIN=$B/bin
T=$(mktemp -d /tmp/scmd-bench.XXXXXX)
export SCM_RUNTIME_DIR=$T/run
mkdir -p "$T/cfg"
"$BIN/scmd" --runtime-dir "$T/run" --config "$T/cfg" --idl-path "${SCM_SRC:-.}/stubs/idl" 2>"$T/scmd.log" &
SCMD=$!
cleanup() {
	for n in $("$BIN/scmctl" --json container list 2>/dev/null | sed -n 's/.*"name":"\([^"]*\)".*"state":"running".*/\1/p'); do
		"$BIN/scmctl" container kill "$n" >/dev/null 2>&1
	done
	kill "$SCMD" 2>/dev/null; wait "$SCMD" 2>/dev/null; rm -rf "$T"
}
trap cleanup EXIT
for _ in $(seq 200); do [ -S "$T/run/control.sock" ] && break; sleep 0.02; done
rss() { awk '/^VmRSS/ {print $2}' /proc/$SCMD/status; }
nfd() { ls /proc/$SCMD/fd | wc -l; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# containers
r0=$(rss) f0=$(nfd)
for i in $(seq 64); do "$BIN/scmctl" container run -d --name idle$i -- /bin/sleep 600 >/dev/null || exit 1; done
sleep 0.5
r1=$(rss) f1=$(nfd)
echo "container scmd memory per idle container: $(( (r1 - r0) / 64 )) KiB RSS, $(( (f1 - f0) / 64 )) fds (64 idle containers)"
for i in $(seq 64); do "$BIN/scmctl" container kill idle$i >/dev/null; done

# launch through the stack, interleaved with the runtime alone
for i in $(seq 40); do
	a=$(date +%s%N); "$BIN/scmctl" container run -- /bin/true; b=$(date +%s%N)
	"$BIN/scm-run" -- /bin/true; c=$(date +%s%N)
	echo "$(( (b - a) / 1000 )) $(( (c - b) / 1000 ))"
done >"$T/launch"
s=$(cut -d' ' -f1 "$T/launch" | median) r=$(cut -d' ' -f2 "$T/launch" | median)
echo "container run /bin/true via scmctl+scmd: $s us median (40), scm-run alone $r us: $(awk "BEGIN{printf \"%.2f\", $s/$r}")x"

# control latency under launch load: `status` round trips on the control
# socket (one connection, 2 ms apart) with no launches, then while two
# clients each launch containers back to back. scmd's loop never waits on
# a launch, so the two should look alike.
PING=$B/libexec/scm-ctl-ping
if [ -x "$PING" ]; then
	idle=$("$PING" "$T/run/control.sock" 500 2)
	for k in 1 2; do
		( trap - EXIT # the script's cleanup is not this subshell's
		  while [ ! -e "$T/stop-launch" ]; do "$BIN/scmctl" container run -- /bin/true >/dev/null 2>&1 && echo >>"$T/launches"; done ) &
		eval "L$k=\$!"
	done
	sleep 0.2
	busy=$("$PING" "$T/run/control.sock" 500 2)
	touch "$T/stop-launch"
	wait "$L1" "$L2"
	launched=$(wc -l <"$T/launches")
	f() { sed -n "s/.*p50_us=\([0-9]*\) p99_us=\([0-9]*\).*/\1 us p50, \2 us p99/p"; }
	echo "scmd control round trip while 2 containers launch back to back: $(echo "$busy" | f); with no launches: $(echo "$idle" | f) (500 status calls; $launched launches meanwhile)"
else
	echo "scmd control round trip while 2 containers launch back to back: n/a (no scm-ctl-ping)"
fi

# channels
cat >"$T/echo.json" <<JSON
{"name":"echo","interface":"echo","exec":["scm-echo-provider"],"allow":["bench"]}
JSON
"$BIN/scmctl" service register "$T/echo.json" >/dev/null
"$BIN/scmctl" endpoint create bench --quota-channels 100000 --quota-connections 1000 >/dev/null
"$BIN/scmctl" call --endpoint bench echo ping >/dev/null
r0=$(rss) f0=$(nfd)
SCM_ENDPOINT=$T/run/endpoints/bench.sock "$B/libexec/scm-test-client" hold 2000 < <(sleep 3) >"$T/hold" &
HOLD=$!
for _ in $(seq 100); do grep -q opened "$T/hold" && break; sleep 0.05; done
r1=$(rss) f1=$(nfd)
echo "channel scmd memory per live channel: $(( (r1 - r0) * 1024 / 2000 )) bytes RSS, $(awk "BEGIN{printf \"%.2f\", ($f1 - $f0)/2000}") fds ($(cat "$T/hold"))"
wait "$HOLD" # not a bare wait: scmd is our child too

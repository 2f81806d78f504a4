#!/usr/bin/env bats
# Containers that change while they run (docs/containers.md, "Pause,
# resume, update"): pause freezes every process (their CPU time stops),
# resume lets them go on; update applies limits the kernel then enforces,
# and a new profile list whose narrowed grants revoke live channels and
# whose narrowed seccomp rules hold for what starts next. What cannot
# change without a restart is said, and not pretended.
load helpers

pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	cat >"$SCMT/cfg/profiles/caller.json" <<'JSON'
{"name":"caller","priority":10,"services":[{"service":"echo","methods":["ping","whoami"],"action":"allow"}],
 "sandbox":{"limits":{"pids":32,"memory":67108864}}}
JSON
	# the same sandbox, no grant for echo, and one more system call denied
	cat >"$SCMT/cfg/profiles/quiet.json" <<'JSON'
{"name":"quiet","priority":10,"services":[],
 "sandbox":{"limits":{"pids":32,"memory":67108864},"syscalls":{"deny":["mknodat","mknod"]}}}
JSON
	# asks for more: a capability and a system call the default denies
	cat >"$SCMT/cfg/profiles/wide.json" <<'JSON'
{"name":"wide","priority":10,"services":[],
 "sandbox":{"limits":{"pids":32,"memory":67108864},"syscalls":{"allow":["syslog"]}}}
JSON
}
setup() { start_scmd; }
teardown() {
	"$SCMCTL" --json container list 2>/dev/null | python3 -c '
import json,sys
for c in json.load(sys.stdin)["containers"]:
    if c["state"]!="exited": print(c["name"])' | while read -r n; do "$SCMCTL" container kill "$n" >/dev/null 2>&1 || true; done
	stop_scmd
}

wait_state() { # NAME STATE
	wait_until 60 state_is "$1" "$2" && return 0
	"$SCMCTL" container show "$1"
	return 1
}
state_is() { "$SCMCTL" container show "$1" 2>/dev/null | grep -q "\"state\":\"$2\""; }

profiles_of() { "$SCMCTL" --json container show "$1" | python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["profiles"]))'; }

# CPU ticks (user + system) of every process of a container but its PID 1
cpu_ticks() { # NAME
	local pid1 t=0 p
	pid1=$("$SCMCTL" --json container show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	for p in $(pgrep -P "$pid1"); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}

@test "pause stops every process (no CPU time), resume lets them go on; exec waits for resume; stop works paused" {
	"$SCMCTL" container run -d --name spin -- /bin/sh -c 'while :; do :; done' >/dev/null
	wait_state spin running
	sleep 0.2
	run "$SCMCTL" container pause spin
	echo "$output"
	[ "$status" -eq 0 ] && [ "$output" = "paused" ]
	run "$SCMCTL" --json container list
	[[ "$output" == *'"state":"paused"'* ]]
	a=$(cpu_ticks spin)
	sleep 0.5
	b=$(cpu_ticks spin)
	echo "paused: $a -> $b ticks"
	[ "$a" -eq "$b" ]
	# frozen processes are stopped in the kernel's freezer
	pid1=$("$SCMCTL" --json container show spin | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	for p in $(pgrep -P "$pid1"); do grep -q '^State:.*[DS]' "/proc/$p/status"; done
	run "$SCMCTL" container pause spin
	[ "$status" -ne 0 ] && [[ "$output" == *"is paused already"* ]]
	run "$SCMCTL" container exec spin -- /bin/true
	[ "$status" -ne 0 ] && [[ "$output" == *"is paused; resume it first"* ]]
	run "$SCMCTL" container resume spin
	[ "$status" -eq 0 ] && [ "$output" = "running" ]
	cpu_grew() { c=$(cpu_ticks spin); [ "$c" -gt "$b" ]; }
	wait_until 60 cpu_grew || true # (the check below shows the ticks)
	echo "resumed: $b -> $c ticks"
	[ "$c" -gt "$b" ]
	# stop of a paused container: the signal is taken once it is thawed
	"$SCMCTL" container pause spin >/dev/null
	run "$SCMCTL" container stop spin --timeout 2000
	[ "$status" -ne 1 ] || { echo "$output"; false; }
	wait_state spin exited
	run "$SCMCTL" container resume spin
	[ "$status" -ne 0 ] && [[ "$output" == *"no running container 'spin'"* ]]
	[ "$(grep -c '"event":"container-pause","container":"spin"' "$SCMT/run/audit.log")" -eq 2 ]
	grep -q '"event":"container-resume","container":"spin"' "$SCMT/run/audit.log"
}

@test "update: live limits the kernel enforces; a limit without its cgroup needs a restart; bad values refused" {
	"$SCMCTL" container run -d --name lim --profile caller -- /bin/sh -c 'sleep 1000' >/dev/null
	wait_state lim running
	pid1=$("$SCMCTL" --json container show lim | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	pids_dir=/sys/fs/cgroup/pids$(awk -F: '$2=="pids"{print $3}' "/proc/$pid1/cgroup")
	mem_dir=/sys/fs/cgroup/memory$(awk -F: '$2=="memory"{print $3}' "/proc/$pid1/cgroup")
	[ "$(cat "$pids_dir/pids.max")" = 32 ]
	run "$SCMCTL" container update lim --pids 6 --memory 48M
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"applied memory"* && "$output" == *"applied pids"* ]]
	[ "$(cat "$pids_dir/pids.max")" = 6 ]
	[ "$(cat "$mem_dir/memory.limit_in_bytes")" = $((48 << 20)) ]
	# the kernel holds the container to it: the seventh process is refused
	run "$SCMCTL" container exec lim -- /bin/sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; wait'
	echo "$output"
	[[ "$output" == *"fork"* || "$output" == *"Resource temporarily unavailable"* ]]
	[ "$(cat "$pids_dir/pids.current")" -le 6 ]
	# no cpu limit at start: no cpu cgroup to change
	run "$SCMCTL" container update lim --cpu-weight 50
	echo "$output"
	[ "$status" -ne 0 ] && [[ "$output" == *"started without a cpu cgroup"*"needs a restart"* ]]
	run "$SCMCTL" container update lim --cpu-weight 0
	[ "$status" -eq 2 ] && [[ "$output" == *"not a positive number"* ]]
	run "$SCMCTL" container update lim --memory lots
	[ "$status" -eq 2 ] && [[ "$output" == *"--memory 'lots' is not a size"* ]]
	run "$SCMCTL" container update lim
	[ "$status" -ne 0 ] && [[ "$output" == *"nothing to change"* ]]
	run "$SCMCTL" container update nosuch --pids 5
	[ "$status" -ne 0 ] && [[ "$output" == *"no running container 'nosuch'"* ]]
	[ "$(cat "$pids_dir/pids.max")" = 6 ]
}

@test "update --profile: a narrowed profile revokes the live channel it no longer allows; seccomp narrows for what starts next" {
	cat >"$SCMT/echo.json" <<JSON
{"name":"echo","interface":"echo","exec":["scm-echo-provider"],"allow":["host"]}
JSON
	"$SCMCTL" service register "$SCMT/echo.json" >/dev/null
	"$SCMCTL" container run -d --name app --profile caller --bind "$SCM_SRC/stubs/idl" \
		--env SCM_IDL_PATH="$SCM_SRC/stubs/idl" -- \
		/bin/sh -c "sleep 1000 | $SCMCTL call --hold echo ping" >/dev/null
	has_echo() { "$SCMCTL" channel list | grep -q echo; }
	wait_until 60 has_echo
	run "$SCMCTL" channel list
	[[ "$output" == *echo* ]]
	# mknod works before (a fifo: no device rights needed)
	run "$SCMCTL" container exec app -- /bin/sh -c 'mkfifo /tmp/f1 && echo made'
	[[ "$output" == *made* ]]
	run "$SCMCTL" container update app --profile quiet
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"channels revoked 1"* ]]
	[[ "$output" == *"applied seccomp (narrowed"* ]]
	# the channel is gone for real: not in scmd's table, and the client saw it end
	run "$SCMCTL" channel list
	[[ "$output" != *echo* ]]
	was_cut() { "$SCMCTL" container logs app | grep -q 'was cut'; }
	wait_until 60 was_cut
	run "$SCMCTL" container logs app
	echo "$output"
	[[ "$output" == *"was cut: container update: method echo.ping is no longer allowed [revoked]"* ]]
	# a new connect is decided by the new profile: denied
	run "$SCMCTL" container exec app -- "$SCMCTL" call echo ping
	[ "$status" -ne 0 ]
	# what starts now gets the narrowed filter: mknod is refused
	run "$SCMCTL" container exec app -- /bin/sh -c 'mkfifo /tmp/f2 && echo made'
	echo "$output"
	[[ "$output" != *made* ]]
	[ "$(profiles_of app)" = quiet ]
	# widening is not done live: said, and the old filter stays
	run "$SCMCTL" container update app --profile wide
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"needs a restart: seccomp"*"allows syslog"* ]]
	run "$SCMCTL" container exec app -- /bin/sh -c 'mkfifo /tmp/f3 && echo made'
	[[ "$output" != *made* ]]
	# a profile that does not exist changes nothing
	run "$SCMCTL" container update app --profile nosuch
	[ "$status" -ne 0 ] && [[ "$output" == *nosuch* ]]
	[ "$(profiles_of app)" = wide ]
	# each change is audited, with what it did
	grep '"event":"container-update"' "$SCMT/run/audit.log" | grep -q '"channels_revoked":1'
	grep -q '"event":"container-update","container":"app","result":{.*needs\|restart_needed":\[{"what":"seccomp"' "$SCMT/run/audit.log"
}

#!/usr/bin/env bats
# Stress: hostile and random frames at a live scmd's endpoint and control
# socket, connect/revoke churn, container runs and peers that never read.
# After each, scmd must be alive, serve a well-behaved client, and hold no
# more fds than before (an fd leak in scmd is a slow denial of service).
# Bounded: a few hundred peers per test, all on this machine's AF_UNIX
# sockets. Needs root (the control socket and containers).
load helpers

STRESS="python3 $SCM_SRC/tests/bats/core-stress.py"

setup() {
	start_scmd
	"$SCMCTL" service register "$(manifest echo)" >/dev/null
	"$SCMCTL" endpoint create demo >/dev/null
	# warm: the provider is up, so its fds count in the baseline
	"$SCMCTL" call --endpoint demo echo ping >/dev/null
}
teardown() { stop_scmd; }

fds() { ls "/proc/$SCMD_PID/fd" | wc -l; }

# Waits until scmd holds at most $1 fds again: peers close asynchronously.
fds_at_most() { [ "$(fds)" -le "$1" ]; }
fds_settle() {
	wait_until 60 fds_at_most "$1" && return 0
	echo "scmd holds $(fds) fds, had $1:"
	ls -l "/proc/$SCMD_PID/fd"
	return 1
}

serves() {
	scmd_alive
	run timeout 20 "$SCMCTL" call --endpoint demo echo greet '{"name":"after"}'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"hello, after"* ]]
}

@test "random and mutated frames at an endpoint: scmd survives, serves others, keeps no fd" {
	base=$(fds)
	run timeout 300 $STRESS frames "$(ep demo)" 400 1
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"answered"* ]]
	serves
	fds_settle "$base"
}

@test "hostile frames on brokered channels: the provider skeleton refuses them and keeps serving" {
	base=$(fds)
	pid=$("$SCMCTL" --json service list | python3 -c 'import json,sys; print(json.load(sys.stdin)["services"][0]["pid"])')
	run timeout 300 $STRESS chanframes "$(ep demo)" 600 3
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"provider serves"* ]]
	# the same provider process: nothing a client sent made it exit
	now=$("$SCMCTL" --json service list | python3 -c 'import json,sys; print(json.load(sys.stdin)["services"][0]["pid"])')
	[ "$pid" = "$now" ]
	serves
	fds_settle "$base"
}

@test "random control requests: scmd survives and keeps no fd beyond the endpoints they made" {
	base=$(fds)
	eps=$("$SCMCTL" --json endpoint list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["endpoints"]))')
	run timeout 300 $STRESS control "$SCMT/run/control.sock" 400 2
	echo "$output"
	[ "$status" -eq 0 ]
	serves
	now=$("$SCMCTL" --json endpoint list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["endpoints"]))')
	# each endpoint a request created holds its listening socket
	fds_settle $((base + now - eps))
}

@test "connect and revoke churn: every channel is forgotten, no fd left behind" {
	base=$(fds)
	run timeout 300 $STRESS churn "$(ep demo)" "$SCMT/run/control.sock" 300
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"churn: 300 channels"* ]]
	fds_settle "$base"
	n=$("$SCMCTL" --json channel list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["channels"]))')
	[ "$n" -eq 0 ]
	serves
}

@test "container runs: no fd left behind" {
	base=$(fds)
	for i in $(seq 20); do
		run timeout 60 "$SCMCTL" container run --name "c$i" -- /bin/sh -c "echo run $i"
		[ "$status" -eq 0 ]
		[[ "$output" == *"run $i"* ]]
	done
	for i in $(seq 20); do "$SCMCTL" container rm "c$i" >/dev/null; done
	fds_settle "$base"
	serves
}

@test "peers that send and never read do not block scmd or other endpoints" {
	"$SCMCTL" endpoint create greedy >/dev/null
	base=$(fds)
	coproc HANG { timeout 120 $STRESS hang "$(ep greedy)" 100; }
	read -r line <&"${HANG[0]}"
	echo "$line"
	[[ "$line" == "hang: "*" silent peers" ]]
	serves
	run timeout 20 "$SCMCTL" status
	[ "$status" -eq 0 ]
	exec {HANG[1]}>&-
	wait "$HANG_PID" || true
	fds_settle $((base))
}

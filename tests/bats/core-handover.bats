#!/usr/bin/env bats
# Providers restart with their channels (docs/handover.md): `scmctl
# service restart NAME [--exec PATH]` starts a new provider process, the
# old one finishes its calls and hands its state over through libscm, and
# clients keep their channels without a failed call. A new process that
# cannot take the state refuses, and the old one goes on.
load helpers

setup() {
	start_scmd
	cat >"$SCMT/echo.json" <<JSON
{ "name": "echo", "interface": "echo", "exec": ["$SCM_BUILD/libexec/scm-echo-handover"], "allow": ["demo", "host"] }
JSON
	"$SCMCTL" service register "$SCMT/echo.json" >/dev/null
	"$SCMCTL" endpoint create demo >/dev/null
}
teardown() {
	[ -z "${CHURN_PID:-}" ] || kill "$CHURN_PID" 2>/dev/null || true
	stop_scmd
}

# (no python in the loops: it takes seconds to start on a busy machine)
provider_pid() { "$SCMCTL" service list | awk -v s="${1:-echo}" '$1 == s { print $4 }'; }
# "in all" of a greet: the calls every provider process so far served
in_all() {
	"$SCMCTL" call echo greet '{"name":"t"}' | sed -n 's/.*, \([0-9]*\) in all.*/\1/p'
}

@test "20 service restarts: a client calling in a loop sees no failure, and the provider's counts carry on" {
	rounds=20
	[ -z "${SCM_SAN:-}" ] || rounds=8
	[ "$(in_all)" = 1 ]
	rm -f "$SCMT/stop"
	SCM_ENDPOINT=$(ep demo) "$TC" churn "$SCMT/stop" >"$SCMT/churn.out" 2>&1 &
	CHURN_PID=$!
	wait_until 30 grep -q started "$SCMT/churn.out"
	prev=$(provider_pid)
	for i in $(seq "$rounds"); do
		run "$SCMCTL" service restart echo
		[ "$status" -eq 0 ] || { echo "restart $i: $output"; false; }
		[[ "$output" == "service echo restarted with its channels: pid $prev -> "* ]]
		now=$(sed -n 's/.* -> \([0-9]*\),.*/\1/p' <<<"$output")
		[ -n "$now" ] && [ "$now" != "$prev" ]
		prev=$now
	done
	touch "$SCMT/stop"
	wait "$CHURN_PID"
	CHURN_PID=
	cat "$SCMT/churn.out"
	grep -q ' failed 0 ' "$SCMT/churn.out"
	echo "# across $rounds service restarts: $(tail -1 "$SCMT/churn.out")" >&3
	# every call any of the processes served is counted by the last one:
	# the client's two pings a round, the first greet and this one
	calls=$(sed -n 's/^calls \([0-9]*\) .*/\1/p' "$SCMT/churn.out")
	[ "$(in_all)" = $((calls / 3 * 2 + 2)) ]
	[ "$("$SCMCTL" --json service show echo | python3 -c 'import json,sys; print(json.load(sys.stdin)["restarts"])')" = "$rounds" ]
	# replaced processes are gone (reaped by scmd, not left as zombies;
	# under ASan each one's exit runs the leak check first)
	wait_until 60 scmd_children_at_most 1
	[ "$(scmd_children)" -eq 1 ]
	grep -q '"event":"service-restart"' "$SCMT/run/audit.log"
}

scmd_children() { pgrep -c -P "$SCMD_PID"; }
scmd_children_at_most() { [ "$(scmd_children)" -le "$1" ]; }

# the provider's containers (name state)
echo_ctrs() { "$SCMCTL" container list | awk '$1 ~ /^provider-echo-[0-9]+$/ { print $1, $2 }'; }
one_echo_ctr() { [ "$(echo_ctrs | wc -l)" -eq 1 ]; }

@test "a provider in a container of its own restarts into a new container with its channels; one that fails is removed" {
	"$SCMCTL" service unregister echo >/dev/null
	cat >"$SCMT/echo.json" <<JSON
{ "name": "echo", "interface": "echo", "exec": ["$SCM_BUILD/libexec/scm-echo-handover"], "allow": ["demo", "host"],
  "container": {} }
JSON
	"$SCMCTL" service register "$SCMT/echo.json" >/dev/null
	[ "$(in_all)" = 1 ]
	rm -f "$SCMT/stop"
	SCM_ENDPOINT=$(ep demo) "$TC" churn "$SCMT/stop" >"$SCMT/churn.out" 2>&1 &
	CHURN_PID=$!
	wait_until 30 grep -q started "$SCMT/churn.out"
	prev=$(provider_pid)
	ctr=$(echo_ctrs | awk '{ print $1 }')
	for i in 1 2 3; do
		run "$SCMCTL" service restart echo
		echo "$output"
		[ "$status" -eq 0 ]
		[[ "$output" == "service echo restarted with its channels: pid $prev -> "* ]]
		prev=$(provider_pid)
		old=$ctr
		ctr=$(echo_ctrs | awk '$2 == "running" { print $1 }')
		[ "$ctr" != "$old" ]
		# the old container exits once it handed over, and its record goes
		wait_until 30 one_echo_ctr
		[ "$i" -ne 2 ] || "$SCMCTL" daemon restart
	done
	# a successor that refuses, one that dies: the old container goes on,
	# theirs are removed
	run "$SCMCTL" service restart echo --exec "$SCM_BUILD/libexec/scm-echo-provider"
	[ "$status" -ne 0 ]
	[[ "$output" == *"its provider (pid $prev) goes on"*"does not implement it"* ]]
	run "$SCMCTL" service restart echo --exec /bin/false
	[ "$status" -ne 0 ]
	[[ "$output" == *"its provider (pid $prev) goes on"*"exited with status 1 before it took over"* ]]
	wait_until 30 one_echo_ctr
	[ "$(echo_ctrs)" = "$ctr running" ]
	touch "$SCMT/stop"
	wait "$CHURN_PID"
	CHURN_PID=
	cat "$SCMT/churn.out"
	grep -q ' failed 0 ' "$SCMT/churn.out"
	# every call went to one of the providers, counted on by the last one
	calls=$(sed -n 's/^calls \([0-9]*\) .*/\1/p' "$SCMT/churn.out")
	[ "$(in_all)" = $((calls / 3 * 2 + 2)) ]
	[ "$("$SCMCTL" --json service show echo | python3 -c 'import json,sys; print(json.load(sys.stdin)["restarts"])')" = 3 ]
}

echo_channel() { "$SCMCTL" channel list | grep -q ' echo '; }

@test "a call in progress is answered by the old process; the restart waits for it" {
	"$SCMCTL" call echo sleep '{"ms":1500}' >"$SCMT/sleep.out" 2>&1 &
	sleeper=$!
	wait_until 30 echo_channel
	sleep 0.3 # most often the old process has it by now; either way it must not fail
	old=$(provider_pid)
	run "$SCMCTL" service restart echo
	[ "$status" -eq 0 ]
	wait "$sleeper"
	[ "$(provider_pid)" != "$old" ]
	# the restart could only finish once the sleep was answered
	"$SCMCTL" call echo ping
}

@test "a new provider that cannot take the state refuses, and the old one goes on" {
	"$SCMCTL" call echo greet '{"name":"a"}' >/dev/null
	old=$(provider_pid)
	# a provider that does not implement the handover
	run "$SCMCTL" service restart echo --exec "$SCM_BUILD/libexec/scm-echo-provider"
	[ "$status" -ne 0 ]
	[[ "$output" == *"restart of service 'echo' refused; its provider (pid $old) goes on"* ]]
	[[ "$output" == *"does not implement it"* ]]
	[ "$(provider_pid)" = "$old" ]
	[ "$(in_all)" = 2 ]
	# a newer provider (state version 2) takes version 1; going back is refused
	printf '#!/bin/sh\nexec %s --state-version 2 "$@"\n' "$SCM_BUILD/libexec/scm-echo-handover" >"$SCMT/v2"
	chmod +x "$SCMT/v2"
	run "$SCMCTL" service restart echo --exec "$SCMT/v2"
	[ "$status" -eq 0 ]
	v2=$(provider_pid)
	run "$SCMCTL" service restart echo
	[ "$status" -ne 0 ]
	[[ "$output" == *"state version 2: this provider reads versions 1 to 1"* ]]
	[[ "$output" == *"its provider (pid $v2) goes on"* ]]
	[ "$(provider_pid)" = "$v2" ]
	[ "$(in_all)" = 3 ]
	# not a binary at all
	run "$SCMCTL" service restart echo --exec /nonexistent
	[ "$status" -ne 0 ]
	[[ "$output" == *"--exec /nonexistent"* ]]
	run "$SCMCTL" service restart echo --exec /bin/true
	[ "$status" -ne 0 ]
	[[ "$output" == *"exited with status 0 before it took over"* || "$output" == *"closed its control socket"* ]]
	[ "$(provider_pid)" = "$v2" ]
	"$SCMCTL" call echo ping
}

quick_greet() { "$SCMCTL" call quick greet '{"name":"a"}' >/dev/null; }
no_hang() { ! pgrep -P "$SCMD_PID" -f "sleep 30" >/dev/null; }

@test "a new provider that never takes over is killed after timeout_ms; the old one goes on" {
	cat >"$SCMT/quick.json" <<JSON
{ "name": "quick", "interface": "echo", "exec": ["$SCM_BUILD/libexec/scm-echo-handover"], "allow": ["demo", "host"],
  "timeout_ms": 2000 }
JSON
	"$SCMCTL" service register "$SCMT/quick.json" >/dev/null
	# the same timeout_ms bounds the first activation: on a loaded machine
	# (ASan) one may not say ready in time and is killed; the next call
	# starts another. No call was served by a killed one (never ready)
	wait_until 60 quick_greet
	old=$(provider_pid quick)
	printf '#!/bin/sh\nexec sleep 30\n' >"$SCMT/hang"
	chmod +x "$SCMT/hang"
	run "$SCMCTL" service restart quick --exec "$SCMT/hang"
	[ "$status" -ne 0 ]
	[[ "$output" == *"did not start within 2000 ms"* ]]
	[[ "$output" == *"its provider (pid $old) goes on"* ]]
	[ "$(provider_pid quick)" = "$old" ]
	"$SCMCTL" call quick greet '{"name":"a"}' | grep -q '2 in all'
	# the hung process was killed and reaped
	wait_until 60 no_hang
	no_hang
}

@test "a provider without the handover says so; nothing to restart when none runs; scmd restarts after" {
	"$SCMCTL" service register "$(manifest plain)" >/dev/null
	run "$SCMCTL" service restart plain
	[ "$status" -ne 0 ]
	[[ "$output" == *"has no provider serving"* ]]
	"$SCMCTL" call plain ping
	pid=$(provider_pid plain)
	run "$SCMCTL" service restart plain --exec "$SCM_BUILD/libexec/scm-echo-handover"
	[ "$status" -ne 0 ]
	[[ "$output" == *"cannot hand its channels over"* ]]
	"$SCMCTL" call plain ping
	[ "$(provider_pid plain)" = "$pid" ]
	run "$SCMCTL" service restart nosuch
	[ "$status" -ne 0 ]
	[[ "$output" == *"no service 'nosuch'"* ]]
	# scmd's own restart in place carries a restarted provider on
	"$SCMCTL" call echo ping
	"$SCMCTL" service restart echo >/dev/null
	run "$SCMCTL" daemon restart
	[ "$status" -eq 0 ]
	"$SCMCTL" call echo ping
	"$SCMCTL" service restart echo >/dev/null
	"$SCMCTL" call echo ping
}

# fds of scmd's own process
scmd_fds() { ls "/proc/$SCMD_PID/fd" | wc -l; }
fds_at_most() { [ "$(scmd_fds)" -le "$1" ]; }

@test "scmd keeps no more fds than a state may carry, and refuses a state whose fds do not match; the old provider goes on" {
	for mode in many lie; do
		cat >"$SCMT/rogue-$mode.json" <<JSON
{ "name": "rogue-$mode", "interface": "echo", "activation": "always",
  "exec": ["/bin/sh", "-c", "exec env SCM_ROGUE=$mode $SCM_BUILD/libexec/scm-rogue-provider"], "allow": ["demo"] }
JSON
		"$SCMCTL" service register "$SCMT/rogue-$mode.json" >/dev/null
		wait_until 30 rogue_ready "rogue-$mode"
		old=$(provider_pid "rogue-$mode")
		before=$(scmd_fds)
		run "$SCMCTL" service restart "rogue-$mode"
		echo "$output"
		[ "$status" -ne 0 ]
		[[ "$output" == *"refused; its provider (pid $old) goes on"* ]]
		if [ "$mode" = many ]; then
			[[ "$output" == *"it sent more than 256"* ]]
		else
			[[ "$output" == *"state names 3 fds, it sent 2"* ]]
		fi
		[ "$(provider_pid "rogue-$mode")" = "$old" ]
		# what it sent is closed again: scmd holds no more fds than before
		wait_until 30 fds_at_most "$before"
	done
}
rogue_ready() { "$SCMCTL" service list | grep -q "^$1 .* running "; }

#!/usr/bin/env bats
# scmd restarts in place (docs/restart.md): `scmctl daemon restart
# [--exec PATH]` and SIGUSR2 exec a new scmd (loaded while a copy of scmd
# serves) that takes over every socket, channel and container; a binary that cannot read the state is refused
# while scmd goes on; under a supervisor with systemd's fd store, a kill -9
# keeps endpoints and containers.
load helpers

setup() {
	start_scmd
	"$SCMCTL" service register "$(manifest echo)" >/dev/null
	"$SCMCTL" endpoint create demo >/dev/null
}
teardown() {
	[ -z "${CHURN_PID:-}" ] || kill "$CHURN_PID" 2>/dev/null || true
	[ -z "${SUP_PID:-}" ] || { kill "$SUP_PID" 2>/dev/null; wait "$SUP_PID" 2>/dev/null || true; }
	stop_scmd
}

# The generation scmd says it runs as (0 before any restart).
generation() { grep -o 'generation [0-9]*' "$SCMT/scmd.log" | tail -1 | cut -d' ' -f2; }

# scmd's nice value (a restart must leave it as it was: its providers and
# containers inherit it)
scmd_nice() { ps -o ni= -p "$SCMD_PID" | tr -d ' '; }

ctr_pid() {
	"$SCMCTL" --json container show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'
}

# not_saying FILE WORDS: an scmd at FILE whose dry run leaves "; WORDS" out
# of what it says it takes (standing for an older build)
not_saying() {
	printf '#!/bin/sh\nif [ "$1" = --check-state ]; then "%s" "$@" | sed "s/; %s//"; exit 0; fi\nexec "%s" "$@"\n' \
		"$SCMD" "$2" "$SCMD" >"$1"
	chmod +x "$1"
}

# A container that ends with status 7 when asked to stop.
run_looper() {
	"$SCMCTL" container run -d --name "$1" -- /bin/sh -c 'trap "exit 7" TERM; while :; do sleep 0.1; done' >/dev/null
}

@test "20 restarts in place: a calling client sees no failure, a container keeps running and stops with its status" {
	run_looper c1
	pid=$(ctr_pid c1)
	nice0=$(scmd_nice)
	rm -f "$SCMT/stop"
	SCM_ENDPOINT=$(ep demo) "$TC" churn "$SCMT/stop" >"$SCMT/churn.out" 2>&1 &
	CHURN_PID=$!
	wait_until 60 grep -q started "$SCMT/churn.out"
	for i in $(seq 20); do
		run "$SCMCTL" daemon restart
		[ "$status" -eq 0 ] || { echo "restart $i: $output"; false; }
		[[ "$output" == *"restarted in place: pid $SCMD_PID, generation $i,"* ]]
	done
	touch "$SCMT/stop"
	wait "$CHURN_PID"
	CHURN_PID=
	cat "$SCMT/churn.out"
	grep -q ' failed 0 ' "$SCMT/churn.out"
	echo "# across 20 restarts: $(tail -1 "$SCMT/churn.out")" >&3
	# the same scmd process, at its priority, the same container, still running
	scmd_alive
	[ "$(scmd_nice)" = "$nice0" ]
	[ "$(ctr_pid c1)" = "$pid" ]
	"$SCMCTL" container list | grep -E "^c1 +running +$pid "
	# an endpoint still accepts, a new endpoint works, the service too
	"$SCMCTL" call --endpoint demo echo ping
	"$SCMCTL" endpoint create late >/dev/null
	"$SCMCTL" call echo ping
	# the adopted container: exec into it, then stop it; its status is reported
	run "$SCMCTL" container exec c1 -- /bin/echo inside
	[ "$status" -eq 0 ] && [[ "$output" == *inside* ]]
	"$SCMCTL" container stop c1
	run "$SCMCTL" --json container show c1
	[[ "$output" == *'"exit_code":7'* ]]
	! kill -0 "$pid" 2>/dev/null
}

@test "a channel held across a restart keeps working and stays revocable" {
	id=$(hold_start demo)
	"$SCMCTL" daemon restart >/dev/null
	"$SCMCTL" --json channel list | grep -q "\"id\":$id"
	"$SCMCTL" channel revoke "$id"
	run hold_wait
	[[ "$output" == *"revoked"* ]]
}

# How many live channels scmd lists for endpoint $1.
channels_of() {
	"$SCMCTL" --json channel list |
		python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin)["channels"] if c.get("endpoint")==sys.argv[1]))' "$1"
}

@test "channels restored before their hang-up watches: charged to the quota at once, and freed by the loop's batches when their client ends" {
	# more channels than the successor watches per loop iteration
	# (CHAN_WATCH_BATCH): it serves before it has registered them all
	"$SCMCTL" endpoint create many --quota-channels 300 >/dev/null
	"$SCMCTL" service unregister echo >/dev/null
	cat >"$SCMT/e.json" <<JSON
{"name":"echo","interface":"echo","exec":["$SCM_BUILD/libexec/scm-echo-provider"],"allow":["many","demo"]}
JSON
	"$SCMCTL" service register "$SCMT/e.json" >/dev/null
	mkfifo "$SCMT/holdin"
	SCM_ENDPOINT=$(ep many) "$TC" hold 300 <"$SCMT/holdin" >"$SCMT/many.out" 2>&1 &
	CHURN_PID=$!
	exec 8>"$SCMT/holdin"
	wait_until 60 grep -q '^opened' "$SCMT/many.out"
	grep -q '^opened 300$' "$SCMT/many.out"
	"$SCMCTL" daemon restart >/dev/null
	# the first connect after the restart finds the 300 charged
	run env SCM_ENDPOINT="$(ep many)" "$TC" hold 1 </dev/null
	echo "$output"
	[ "$status" -eq 1 ] && [[ "$output" == *"has 300 live channels, its limit"* ]]
	# and every one is watched by the loop's batches (no control call
	# before this: a control call finishes the batches first): the client
	# ends, scmd sees all 300 go, and 300 new ones fit the quota again
	exec 8>&-
	wait "$CHURN_PID"
	CHURN_PID=
	all_fit() { SCM_ENDPOINT=$(ep many) "$TC" hold 300 </dev/null | grep -q '^opened 300$'; }
	wait_until 60 all_fit
	none_left() { [ "$(channels_of many)" -eq 0 ]; }
	wait_until 60 none_left
	SCM_ENDPOINT=$(ep many) "$TC" loop 3 echo | grep -q "^connected 3, refused 0"
}

@test "an early part the old scmd could not send whole is dropped, and the state carries everything" {
	# a test hook cuts the early part after its first 250 fds, as a send
	# failing half way (ENOBUFS) would: the successor must read past it
	# (it once took the state's header for the missing fds and hung)
	stop_scmd
	SCMD_TEST_CUT_EARLY=1 start_scmd
	"$SCMCTL" endpoint create demo >/dev/null
	"$SCMCTL" endpoint create many --quota-channels 300 >/dev/null
	cat >"$SCMT/e.json" <<JSON
{"name":"echo","interface":"echo","exec":["$SCM_BUILD/libexec/scm-echo-provider"],"allow":["many","demo"]}
JSON
	"$SCMCTL" service register "$SCMT/e.json" >/dev/null
	run_looper keep
	mkfifo "$SCMT/holdin"
	SCM_ENDPOINT=$(ep many) "$TC" hold 300 <"$SCMT/holdin" >"$SCMT/many.out" 2>&1 &
	CHURN_PID=$!
	exec 8>"$SCMT/holdin"
	wait_until 60 grep -q '^opened' "$SCMT/many.out"
	grep -q '^opened 300$' "$SCMT/many.out"
	pid=$(ctr_pid keep)
	run timeout 60 "$SCMCTL" daemon restart
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q "early part was cut short after 250 of its" "$SCMT/scmd.log"
	[ "$(generation)" = 1 ]
	[ "$(channels_of many)" -eq 300 ]
	[ "$(ctr_pid keep)" = "$pid" ]
	SCM_ENDPOINT=$(ep demo) "$TC" loop 3 echo | grep -q "^connected 3, refused 0"
	# and the 300 are watched: their client ends, all go
	exec 8>&-
	wait "$CHURN_PID"
	CHURN_PID=
	none_left() { [ "$(channels_of many)" -eq 0 ]; }
	wait_until 60 none_left
	run "$SCMCTL" container stop keep
	[ "$status" -eq 0 ]
}

@test "a connect pending on a slow activation completes after a restart" {
	"$SCMCTL" service register "$(EXTRA_ARGS=', "--ready-after", "1500"' manifest slowecho '"timeout_ms": 20000')" >/dev/null
	( "$SCMCTL" call --endpoint demo slowecho ping >"$SCMT/pending.out" 2>&1; echo "exit $?" >>"$SCMT/pending.out" ) &
	one_pending() { "$SCMCTL" --json endpoint list | grep -q '"pending":1'; }
	wait_until 60 one_pending
	"$SCMCTL" --json endpoint list | grep -q '"pending":1'
	"$SCMCTL" daemon restart >/dev/null
	wait_until 60 grep -q '^exit' "$SCMT/pending.out" || { cat "$SCMT/pending.out"; false; }
	cat "$SCMT/pending.out"
	grep -q '^exit 0' "$SCMT/pending.out"
}

@test "a stop waiting for a container's exit is answered by the successor" {
	"$SCMCTL" container run -d --name slow -- /bin/sh -c 'trap "sleep 1; exit 5" TERM; while :; do sleep 0.1; done' >/dev/null
	( "$SCMCTL" container stop slow >"$SCMT/stop.out" 2>&1; echo "exit $?" >>"$SCMT/stop.out" ) &
	sleep 0.2
	"$SCMCTL" daemon restart >/dev/null
	wait_until 60 grep -q '^exit' "$SCMT/stop.out" || { cat "$SCMT/stop.out"; false; }
	cat "$SCMT/stop.out"
	grep -q '^exit 0' "$SCMT/stop.out"
	run "$SCMCTL" --json container show slow
	[[ "$output" == *'"exit_code":5'* ]]
}

@test "the successor loads while a copy of scmd serves the endpoints; control calls wait for the successor" {
	# a successor that stays in its loading phase until told: the window
	# in which the copy (a child of scmd's pid) is the one serving
	printf '#!/bin/sh\n[ "$1" = --check-state ] || { : >"%s/loading"; while [ ! -e "%s/go" ]; do sleep 0.05; done; }\nexec "%s" "$@"\n' \
		"$SCMT" "$SCMT" "$SCMD" >"$SCMT/slow-scmd"
	chmod +x "$SCMT/slow-scmd"
	# the provider runs (the copy starts none: a connect to a stopped
	# one waits for the successor)
	"$SCMCTL" call --endpoint demo echo ping
	( "$SCMCTL" daemon restart --exec "$SCMT/slow-scmd" >"$SCMT/restart.out" 2>&1; echo "exit $?" >>"$SCMT/restart.out" ) &
	wait_until 60 test -e "$SCMT/loading"
	copy=$(pgrep -P "$SCMD_PID" -x scmd)
	[ -n "$copy" ] && [ "$copy" != "$SCMD_PID" ]
	# the copy serves a new connection: connects, channels, calls
	SCM_ENDPOINT=$(ep demo) "$TC" async 3
	SCM_ENDPOINT=$(ep demo) "$TC" loop 3 echo | grep -q "^connected 3, refused 0"
	# a control call waits in the socket's queue for the successor
	( "$SCMCTL" endpoint list >"$SCMT/list.out" 2>&1; echo "exit $?" >>"$SCMT/list.out" ) &
	: >"$SCMT/go"
	wait_until 60 grep -q '^exit' "$SCMT/restart.out"
	cat "$SCMT/restart.out"
	grep -q '^exit 0' "$SCMT/restart.out"
	grep -q "restarted in place: pid $SCMD_PID," "$SCMT/restart.out"
	wait_until 60 grep -q '^exit' "$SCMT/list.out"
	grep -q '^exit 0' "$SCMT/list.out" && grep -q '^demo' "$SCMT/list.out"
	# the copy went, and was reaped by scmd (no zombie left)
	copy_gone() { [ ! -e "/proc/$copy" ]; }
	wait_until 60 copy_gone
	[ "$(readlink "/proc/$SCMD_PID/exe")" = "$SCMD" ]
	"$SCMCTL" call --endpoint demo echo ping
	grep -q 'switch took' "$SCMT/scmd.log"
}

@test "a successor that cannot take the state over falls back on the previous binary, and scmd goes on" {
	id=$(hold_start demo)
	# a container: sent to the successor early, taken back with the state
	run_looper c1
	pid=$(ctr_pid c1)
	# it passes the dry run, then cannot register the services again (no IDL)
	mkdir -p "$SCMT/no-idl"
	printf '#!/bin/sh\n[ "$1" = --check-state ] && exec "%s" "$@"\nexec "%s" "$@" --idl-path "%s"\n' \
		"$SCMD" "$SCMD" "$SCMT/no-idl" >"$SCMT/bad-scmd"
	chmod +x "$SCMT/bad-scmd"
	run "$SCMCTL" daemon restart --exec "$SCMT/bad-scmd"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"refused, scmd $SCMD_PID goes on with its previous binary"* ]]
	[[ "$output" == *"could not take over"* ]]
	scmd_alive
	[ "$(readlink "/proc/$SCMD_PID/exe")" = "$SCMD" ]
	# everything came back: the held channel, the endpoint, the service
	"$SCMCTL" --json channel list | grep -q "\"id\":$id"
	"$SCMCTL" call --endpoint demo echo ping
	grep -q 'daemon-restart-refused' "$SCMT/run/audit.log"
	[ "$(ctr_pid c1)" = "$pid" ]
	# and the next restart is an ordinary one
	run "$SCMCTL" daemon restart
	[ "$status" -eq 0 ]
	[ "$(ctr_pid c1)" = "$pid" ]
	"$SCMCTL" container stop c1
	run "$SCMCTL" --json container show c1
	[[ "$output" == *'"exit_code":7'* ]]
}

@test "a successor whose policy does not load falls back on the previous binary, and scmd goes on" {
	id=$(hold_start demo)
	# a container: the successor fails before it reads what the old scmd
	# sent early; the previous binary drops that and takes it with the state
	run_looper c1
	pid=$(ctr_pid c1)
	nice0=$(scmd_nice)
	# it passes the dry run, then its profiles do not load (before it takes the state)
	mkdir -p "$SCMT/bad-cfg/profiles"
	echo '{ not json' >"$SCMT/bad-cfg/profiles/broken.json"
	printf '#!/bin/sh\n[ "$1" = --check-state ] && exec "%s" "$@"\nexec "%s" "$@" --config "%s"\n' \
		"$SCMD" "$SCMD" "$SCMT/bad-cfg" >"$SCMT/bad-policy-scmd"
	chmod +x "$SCMT/bad-policy-scmd"
	run "$SCMCTL" daemon restart --exec "$SCMT/bad-policy-scmd"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"refused, scmd $SCMD_PID goes on with its previous binary"* ]]
	[[ "$output" == *"do not load"* ]]
	scmd_alive
	# it failed while loading: the previous binary runs at scmd's own
	# priority (its providers and containers inherit it)
	[ "$(scmd_nice)" = "$nice0" ]
	[ "$(readlink "/proc/$SCMD_PID/exe")" = "$SCMD" ]
	"$SCMCTL" --json channel list | grep -q "\"id\":$id"
	"$SCMCTL" call --endpoint demo echo ping
	[ "$(ctr_pid c1)" = "$pid" ]
	run "$SCMCTL" daemon restart
	[ "$status" -eq 0 ]
	[ "$(ctr_pid c1)" = "$pid" ]
	"$SCMCTL" container stop c1
	run "$SCMCTL" --json container show c1
	[[ "$output" == *'"exit_code":7'* ]]
}

@test "a successor that takes --standby but not the containers early gets them with the state" {
	not_saying "$SCMT/standby-scmd" "takes containers early"
	run_looper c1
	pid=$(ctr_pid c1)
	id=$(hold_start demo)
	run "$SCMCTL" daemon restart --exec "$SCMT/standby-scmd"
	echo "$output"
	[ "$status" -eq 0 ] && [[ "$output" == *"restarted in place: pid $SCMD_PID,"* ]]
	grep -q "while a copy" "$SCMT/scmd.log"
	[ "$(ctr_pid c1)" = "$pid" ]
	"$SCMCTL" --json channel list | grep -q "\"id\":$id"
	run "$SCMCTL" container exec c1 -- /bin/echo inside
	[ "$status" -eq 0 ] && [[ "$output" == *inside* ]]
	"$SCMCTL" container stop c1
	run "$SCMCTL" --json container show c1
	[[ "$output" == *'"exit_code":7'* ]]
}

@test "a successor whose dry run does not say it takes --standby (an older scmd) is exec'd in place with --restore" {
	not_saying "$SCMT/older-scmd" "takes --standby"
	id=$(hold_start demo)
	run "$SCMCTL" daemon restart --exec "$SCMT/older-scmd"
	echo "$output"
	[ "$status" -eq 0 ] && [[ "$output" == *"restarted in place: pid $SCMD_PID,"* ]]
	# the exec in place (the state's size in its log line), not a copy serving
	grep -q "restarting in place: exec $SCMT/older-scmd (state version [0-9]*, [0-9]* bytes" "$SCMT/scmd.log"
	! grep -q "while a copy" "$SCMT/scmd.log"
	"$SCMCTL" --json channel list | grep -q "\"id\":$id"
	"$SCMCTL" call --endpoint demo echo ping
}

@test "a restart asked while a container launches waits for the launch" {
	"$SCMCTL" container run -d --name quick -- /bin/sleep 60 >/dev/null &
	runner=$!
	"$SCMCTL" daemon restart >/dev/null
	wait "$runner"
	cat "$SCMT/scmd.log"
	"$SCMCTL" container list | grep -E '^quick +running'
	"$SCMCTL" container stop quick
}

@test "SIGUSR2 restarts in place like the command" {
	g=$(generation)
	kill -USR2 "$SCMD_PID"
	next_generation() { [ "$(generation)" = "$((${g:-0} + 1))" ]; }
	wait_until 60 next_generation
	[ "$(generation)" = "$((${g:-0} + 1))" ]
	scmd_alive
	"$SCMCTL" call --endpoint demo echo ping
}

@test "--exec: a build with the next state version takes over; the old reader refuses its state and scmd goes on" {
	next=$SCM_BUILD/libexec/scmd-state-next
	run "$SCMCTL" daemon restart --exec "$next"
	[ "$status" -eq 0 ] && [[ "$output" == *"state version 3"* ]]
	[ "$(readlink /proc/$SCMD_PID/exe)" = "$next" ]
	run "$SCMCTL" daemon restart --exec "$SCMD"
	[ "$status" -eq 1 ]
	[[ "$output" == *"refused, scmd $SCMD_PID goes on"* ]]
	[[ "$output" == *"state version 3: this scmd reads versions 1 to 2"* ]]
	scmd_alive
	[ "$(readlink /proc/$SCMD_PID/exe)" = "$next" ]
	"$SCMCTL" call --endpoint demo echo ping
	# a plain restart stays on the binary it runs
	run "$SCMCTL" daemon restart
	[ "$status" -eq 0 ] && [[ "$output" == *"state version 3"* ]]
}

@test "an scmd of state version 1 (channels as JSON) hands its channels and containers to this one; version 1 refuses version 2" {
	v1=$SCM_BUILD/libexec/scmd-state-v1
	# this scmd's state (version 2, the channel table) is one v1 cannot read
	id=$(hold_start demo)
	run "$SCMCTL" daemon restart --exec "$v1"
	[ "$status" -eq 1 ]
	[[ "$output" == *"state version 2: this scmd reads versions 1 to 1"* ]]
	kill "$HOLD_PID" 2>/dev/null || true
	HOLD_PID=
	# an scmd that writes version 1, with live channels and a container
	stop_scmd
	SCMD=$v1 start_scmd
	"$SCMCTL" service register "$(manifest echo)" >/dev/null
	"$SCMCTL" endpoint create demo >/dev/null
	run_looper c1
	pid=$(ctr_pid c1)
	id=$(hold_start demo)
	SCM_ENDPOINT=$(ep demo) "$TC" hold 5 < <(bare sleep 60) >"$SCMT/hold5.out" &
	CHURN_PID=$!
	wait_until 60 grep -q 'opened 5' "$SCMT/hold5.out"
	before=$("$SCMCTL" --json channel list | grep -o '"id":' | wc -l)
	[ "$before" -eq 6 ]
	run "$SCMCTL" daemon restart --exec "$SCMD"
	echo "$output"
	[ "$status" -eq 0 ] && [[ "$output" == *"state version 2"* ]]
	[ "$(readlink "/proc/$SCMD_PID/exe")" = "$SCMD" ]
	grep -q "exec $SCMD (state version 1)" "$SCMT/scmd.log"
	# every channel came over (read from version 1's JSON), still revocable
	[ "$("$SCMCTL" --json channel list | grep -o '"id":' | wc -l)" -eq 6 ]
	"$SCMCTL" channel revoke "$id"
	run hold_wait
	[[ "$output" == *"revoked"* ]]
	[ "$(ctr_pid c1)" = "$pid" ]
	"$SCMCTL" call --endpoint demo echo ping
	# and the next restart writes version 2 and reads it back
	run "$SCMCTL" daemon restart
	[ "$status" -eq 0 ] && [[ "$output" == *"state version 2"* ]]
	[ "$("$SCMCTL" --json channel list | grep -o '"id":' | wc -l)" -eq 5 ]
	"$SCMCTL" container stop c1
}

@test "a binary that is not an scmd is refused, saying why, and scmd goes on" {
	printf '#!/bin/sh\necho "not an scmd at all" >&2\nexit 3\n' >"$SCMT/fake"
	chmod +x "$SCMT/fake"
	run "$SCMCTL" daemon restart --exec "$SCMT/fake"
	[ "$status" -eq 1 ]
	[[ "$output" == *"exited with status 3: not an scmd at all"* ]]
	run "$SCMCTL" daemon restart --exec /bin/true
	[ "$status" -eq 1 ]
	[[ "$output" == *"did not say"* ]]
	run "$SCMCTL" daemon restart --exec "$SCMT/nonexistent"
	[ "$status" -ne 0 ]
	scmd_alive
	"$SCMCTL" call --endpoint demo echo ping
	grep -q 'daemon-restart-refused' "$SCMT/run/audit.log"
}

@test "systemd's fd store: after kill -9 the restarted scmd keeps endpoints and running containers" {
	stop_scmd
	SCMT=$(mktemp -d /tmp/scm-bats.XXXXXX)
	chmod 711 "$SCMT"
	export SCMT SCM_RUNTIME_DIR=$SCMT/run
	mkdir -p "$SCMT/cfg/services" "$SCMT/sup"
	"$SCM_SRC/tests/bats/fdstore-supervisor.py" "$SCMT/sup" -- "$SCMD" --runtime-dir "$SCMT/run" \
		--state-dir "$SCMT/state" --config "$SCMT/cfg" --idl-path "$SCM_SRC/stubs/idl" 2>"$SCMT/scmd.log" &
	SUP_PID=$!
	wait_until 60 test -s "$SCMT/sup/ready"
	SCMD_PID=$(cat "$SCMT/sup/ready")
	"$SCMCTL" service register "$(manifest echo)" >/dev/null
	"$SCMCTL" endpoint create demo >/dev/null
	run_looper c1
	pid=$(ctr_pid c1)
	# the store holds the container's fds (pidfd, status pipe, output, log) once fed
	store_fed() { [ "$(grep -c '^fd' "$SCMT/sup/store")" -ge 7 ]; }
	wait_until 60 store_fed
	[ "$(grep -c '^fd' "$SCMT/sup/store")" -ge 7 ]
	old=$SCMD_PID
	rm "$SCMT/sup/ready"
	kill -9 "$old"
	# a call made while no scmd runs waits in the endpoint's queue
	( "$SCMCTL" call --endpoint demo echo ping >"$SCMT/call.out" 2>&1; echo "exit $?" >>"$SCMT/call.out" ) &
	wait_until 60 test -s "$SCMT/sup/ready"
	SCMD_PID=$(cat "$SCMT/sup/ready")
	[ "$SCMD_PID" != "$old" ]
	wait_until 60 grep -q '^exit' "$SCMT/call.out" || { cat "$SCMT/call.out"; false; }
	cat "$SCMT/call.out"
	grep -q '^exit 0' "$SCMT/call.out"
	grep -q "restored from systemd's fd store" "$SCMT/scmd.log"
	"$SCMCTL" endpoint list | grep -q '^demo '
	[ "$(ctr_pid c1)" = "$pid" ]
	kill -0 "$pid"
	"$SCMCTL" container stop c1
	run "$SCMCTL" --json container show c1
	[[ "$output" == *'"exit_code":7'* ]]
	! kill -0 "$pid" 2>/dev/null
	kill "$SUP_PID"
	wait "$SUP_PID" || true
	SUP_PID=
	SCMD_PID=
}

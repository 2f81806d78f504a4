#!/usr/bin/env bats
# A provider that crashes gets its channels back (docs/handover.md, "A
# provider that crashes"): with "recover": true in its manifest it sends
# checkpoints to scmd (held across a daemon restart); when it is SIGKILLed, scmd keeps the channels, tells
# the clients (the call in progress fails with provider-gone) and a new
# process takes them over from the checkpoint. Without "recover", with a
# checkpoint over scmd's bound, or at a second crash right after a
# recovery, the channels are revoked as for any crash.
load helpers

setup() {
	start_scmd
	"$SCMCTL" endpoint create demo >/dev/null
}
teardown() {
	[ -z "${CLIENT_PID:-}" ] || kill "$CLIENT_PID" 2>/dev/null || true
	[ -z "${HOLD_PID:-}" ] || kill "$HOLD_PID" 2>/dev/null || true
	stop_scmd
}

# register_echo EXTRA-MANIFEST-FIELDS [PROVIDER-ARGS]: the echo-handover
# example as service "echo"
register_echo() {
	cat >"$SCMT/echo.json" <<JSON
{ "name": "echo", "interface": "echo", "exec": ["$SCM_BUILD/libexec/scm-echo-handover" ${2:-}],
  "allow": ["demo", "host"] ${1:+, $1} }
JSON
	"$SCMCTL" service register "$SCMT/echo.json" >/dev/null
}
provider_pid() { "$SCMCTL" service list | awk '$1 == "echo" { print $4 }'; }
# service show's member: show_num recoveries
show_num() { "$SCMCTL" --json service show echo | grep -o "\"$1\": *[0-9]*" | grep -o '[0-9]*$'; }
# answered_after T: the client had a call answered that ended after T
# (CLOCK_REALTIME us); prints when
answered_after() {
	awk -v t="$1" '($1 == "round" && $4 == "ok" && $3 > t) { print $3; f = 1; exit }
		($1 == "answered" && $3 > t) { print $3; f = 1; exit } END { exit !f }' "$SCMT/client.out"
}
now_us() { echo $(( ${EPOCHREALTIME/./} )); }
recovered() { [ "$(show_num recoveries)" = "$1" ] && [ -n "$(provider_pid)" ] && [ "$(provider_pid)" != 0 ]; }
new_pid() { p=$(provider_pid); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$1" ]; }

# Starts the test client's recover mode: one channel, pinged in a loop
start_client() {
	rm -f "$SCMT/stop"
	SCM_ENDPOINT=$(ep demo) bare "$TC" recover "$SCMT/stop" >"$SCMT/client.out" 2>&1 &
	CLIENT_PID=$!
	wait_until 60 grep -q '^started' "$SCMT/client.out"
}
# stops it: its exit status in $status, what it said in $output
stop_client() {
	touch "$SCMT/stop"
	status=0
	wait "$CLIENT_PID" || status=$?
	CLIENT_PID=
	output=$(cat "$SCMT/client.out")
	grep -v '^round ' "$SCMT/client.out"
}

@test "kill -9 of a provider with \"recover\": the client's next calls on its channel are answered, with the state" {
	register_echo '"recover": true'
	start_client
	grep -q '^first hello, r (call 1 here, 1 in all)' "$SCMT/client.out"
	ch=$("$SCMCTL" channel list | awk '$0 ~ / echo / { print $1 }')
	[ -n "$ch" ]
	old=$(provider_pid)
	kill -9 "$old"
	t0=$(now_us)
	wait_until 60 recovered 1
	[ "$(provider_pid)" != "$old" ]
	# the client is answered by the new process on the same channel
	wait_until 60 answered_after "$t0" >/dev/null
	"$SCMCTL" channel list | awk -v c="$ch" '$1 == c && $2 == "echo" { f = 1 } END { exit !f }'
	stop_client
	[ "$status" -eq 0 ]
	# at most the call in progress at the crash failed, with provider-gone
	[[ "$output" =~ calls\ [0-9]+\ failed\ [01]\ after\ [1-9][0-9]*$ ]]
	if grep -q '^failed' <<<"$output"; then
		grep -q '^failed \[provider-gone\]: .*crashed during the call: it may or may not have taken effect' <<<"$output"
	fi
	# its count came back from the checkpoint (a provider without the
	# state would say "call 1 here")
	n=$(sed -n 's/^last hello, r (call \([0-9]*\) here.*/\1/p' <<<"$output")
	[ -n "$n" ] && [ "$n" -ge 2 ]
	grep -q "service 'echo' recovered its channels: pid $old crashed" "$SCMT/scmd.log"
	grep -q '"event":"service-recover"' "$SCMT/run/audit.log"
	# the figure: from the SIGKILL to the first call answered after it
	# the round that waited for the new process: the longest answered one
	# that ended after the kill
	first=$(awk -v t="$t0" '$1 == "round" && $4 == "ok" && $3 > t && $3 - $2 > m { m = $3 - $2; e = $3 }
		END { print e }' <<<"$output")
	echo "# crash to the first answered call: $(( (first - t0) / 1000 )) ms (scmd: $(sed -n 's/.*checkpoint of .* in \([0-9]*\) us$/\1/p' "$SCMT/scmd.log") us from reaping to ready)" >&3
}

@test "the checkpoint scmd holds is carried across a daemon restart: kill -9 after it still recovers, with the state" {
	register_echo '"recover": true'
	rm -f "$SCMT/go"
	# the client greets (one call: one checkpoint), then waits for go
	rm -f "$SCMT/stop"
	SCM_ENDPOINT=$(ep demo) RECOVER_GO=$SCMT/go bare "$TC" recover "$SCMT/stop" >"$SCMT/client.out" 2>&1 &
	CLIENT_PID=$!
	wait_until 60 grep -q '^started' "$SCMT/client.out"
	grep -q '^first hello, r (call 1 here, 1 in all)' "$SCMT/client.out"
	taken_one() { [ "$(show_num taken)" = 1 ]; }
	wait_until 60 taken_one
	old=$(provider_pid)
	run "$SCMCTL" daemon restart
	[ "$status" -eq 0 ]
	# the successor holds it: nothing was sent since (the client is idle)
	"$SCMCTL" --json service show echo | grep -q '"held": *true'
	[ "$(show_num taken)" = 1 ]
	[ "$(provider_pid)" = "$old" ]
	kill -9 "$old"
	wait_until 60 recovered 1
	[ "$(provider_pid)" != "$old" ]
	grep -q "service 'echo' recovered its channels: pid $old crashed" "$SCMT/scmd.log"
	touch "$SCMT/go"
	stop_client
	[ "$status" -eq 0 ]
	[[ "$output" =~ calls\ [0-9]+\ failed\ 0\ after ]]
	# the channel's count came from the checkpoint written before the
	# restart: the first greet, every ping, the last greet
	calls=$(sed -n 's/^calls \([0-9]*\) failed.*/\1/p' <<<"$output")
	grep -q "^last hello, r (call $((calls + 2)) here" <<<"$output"
}

@test "a held channel outlives the crash without a call in progress; connects made during it wait and work" {
	register_echo '"recover": true'
	hold_start demo >/dev/null
	# a second client reads nothing until after the recovery: scmd's
	# event waits in its channel, queued before its next call
	rm -f "$SCMT/go"
	SCM_ENDPOINT=$(ep demo) bare "$TC" recover-idle "$SCMT/go" >"$SCMT/idle.out" 2>&1 &
	CLIENT_PID=$!
	wait_until 60 grep -q '^started' "$SCMT/idle.out"
	old=$(provider_pid)
	kill -9 "$old"
	"$SCMCTL" call echo ping # waits for the recovery, or starts a provider
	wait_until 60 recovered 1
	# the held client saw the event, and kept its channel
	! grep -q 'the channel ended' "$SCMT/hold.out"
	[ "$("$SCMCTL" --json channel list | grep -o '"id"' | wc -l)" -eq 2 ]
	kill "$HOLD_PID"
	HOLD_PID=
	# the idle client's call went after the crash: answered, not failed,
	# on the same channel, by the new process with the state
	touch "$SCMT/go"
	wait "$CLIENT_PID"
	CLIENT_PID=
	cat "$SCMT/idle.out"
	grep -q '^ping ok$' "$SCMT/idle.out"
	grep -q '^last hello, r (call 3 here' "$SCMT/idle.out"
}

@test "a client in a time namespace of its own: its call sent after the crash is answered, not failed" {
	unshare --time --monotonic -60 true 2>/dev/null || skip "no time namespaces here"
	register_echo '"recover": true'
	# the idle client's CLOCK_MONOTONIC is a minute behind scmd's: the
	# crash time scmd tells it must be shifted back by that minute, or its
	# call, sent after the crash, looks sent before it and is failed (so
	# would it with the shift the wrong way, or with no time at all)
	rm -f "$SCMT/go"
	SCM_ENDPOINT=$(ep demo) bare unshare --time --monotonic -60 "$TC" recover-idle "$SCMT/go" >"$SCMT/idle.out" 2>&1 &
	CLIENT_PID=$!
	wait_until 60 grep -q '^started' "$SCMT/idle.out"
	pid=$(pgrep -f "recover-idle $SCMT/go" | tail -1)
	grep -q '^monotonic *-60 ' "/proc/$pid/timens_offsets"
	old=$(provider_pid)
	kill -9 "$old"
	wait_until 60 recovered 1
	touch "$SCMT/go"
	wait "$CLIENT_PID"
	CLIENT_PID=
	cat "$SCMT/idle.out"
	grep -q '^ping ok$' "$SCMT/idle.out"
	! grep -q '^failed' "$SCMT/idle.out"
}

@test "a provider without \"recover\" still has its channels revoked" {
	register_echo ''
	start_client
	kill -9 "$(provider_pid)"
	stop_client
	[ "$status" -ne 0 ]
	grep -q 'was cut: the provider of .echo. (pid [0-9]*) was killed by signal 9' <<<"$output"
	grep -q '^last: ' <<<"$output"
	! "$SCMCTL" --json service show echo | grep -q '"recoveries"'
}

@test "a checkpoint over scmd's bound is refused and logged, and a crash then revokes" {
	register_echo '"recover": true' ', "--pad", "4300000"'
	hold_start demo >/dev/null
	wait_until 60 grep -q "checkpoint of its provider (pid [0-9]*) refused: [0-9]* bytes, over the bound of 4194304" \
		"$SCMT/scmd.log"
	[ "$(show_num refused)" -ge 1 ]
	"$SCMCTL" --json service show echo | grep -q '"held": *false'
	kill -9 "$(provider_pid)"
	hold_wait | grep -q 'was cut: the provider of .echo. (pid [0-9]*) was killed by signal 9'
	HOLD_PID=
	grep -q "crashed with no checkpoint held; its channels are revoked" "$SCMT/scmd.log"
}

@test "a second crash within 10 s of a recovery revokes the channels" {
	register_echo '"recover": true'
	start_client
	old=$(provider_pid)
	t0=$(now_us)
	kill -9 "$old"
	wait_until 60 recovered 1
	wait_until 60 answered_after "$t0" >/dev/null
	kill -9 "$(provider_pid)"
	stop_client
	[ "$status" -ne 0 ]
	grep -q 'was cut: the provider of .echo. (pid [0-9]*) was killed by signal 9' <<<"$output"
	grep -q "crashed again within 10 s of a recovery; its channels are revoked" "$SCMT/scmd.log"
	[ "$(show_num recoveries)" = 1 ]
}

@test "manifest: \"recover\" must be a boolean, and is refused for a provider in a container" {
	cat >"$SCMT/bad.json" <<JSON
{ "name": "bad", "interface": "echo", "exec": ["scm-echo-handover"], "recover": "yes" }
JSON
	run "$SCMCTL" service register "$SCMT/bad.json"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/recover: expected true or false"* ]]
	cat >"$SCMT/bad.json" <<JSON
{ "name": "bad", "interface": "echo", "exec": ["scm-echo-handover"], "recover": true, "container": true }
JSON
	run "$SCMCTL" service register "$SCMT/bad.json"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/recover: a provider in a container cannot be recovered"* ]]
}

# devnulls: how many /dev/null scmd holds (the rogue's fds are /dev/null)
devnulls() { for f in /proc/"$SCMD_PID"/fd/*; do readlink "$f"; done | grep -c '^/dev/null$' || true; }

@test "checkpoints over the rate, unsealed or with too many fds are refused and logged; scmd keeps none of their fds" {
	before=$(devnulls)
	for mode in ckpt-burst ckpt-unsealed ckpt-fds; do
		cat >"$SCMT/$mode.json" <<JSON
{ "name": "$mode", "interface": "echo", "activation": "always", "recover": true,
  "exec": ["/bin/sh", "-c", "exec env SCM_ROGUE=$mode $SCM_BUILD/libexec/scm-rogue-provider"], "allow": ["demo"] }
JSON
		"$SCMCTL" service register "$SCMT/$mode.json" >/dev/null
	done
	wait_until 60 grep -q "service 'ckpt-burst': checkpoint of its provider (pid [0-9]*) refused: more than 50 a second (a burst of 10)" "$SCMT/scmd.log"
	wait_until 60 grep -q "service 'ckpt-unsealed': checkpoint of its provider (pid [0-9]*) refused: its file is not a sealed memfd" "$SCMT/scmd.log"
	wait_until 60 grep -q "service 'ckpt-fds': checkpoint of its provider (pid [0-9]*) refused: it names 264 fds, more than 256 came with it" "$SCMT/scmd.log"
	# the burst's first ones were taken, the rest refused, and none is held
	j=$("$SCMCTL" --json service show ckpt-burst)
	[[ "$j" =~ \"taken\":\ *10[,}] ]] && [[ "$j" =~ \"refused\":\ *20[,}] ]] && [[ "$j" =~ \"held\":\ *false ]]
	[ "$(devnulls)" -eq "$before" ]
}

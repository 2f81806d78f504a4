#!/usr/bin/env bats
# scmd's live events (events.subscribe, `scmctl events`): the audit records
# as they are written, filtered by pattern; a reader that does not read is
# dropped, not fed without bound, and the others and scmd's answers go on;
# the number of readers is bounded; a subscribed connection carries events
# only.
load helpers

setup() {
	start_scmd
	EC="$SCM_SRC/tests/bats/events-client.py"
	SOCK=$SCMT/run/control.sock
}
teardown() {
	touch "$SCMT/go" # a reader the test left waiting reads to its end and exits
	stop_scmd
}

subscribers() { "$SCMCTL" --json status | jq -r .event_subscribers; }

@test "scmctl events prints records as they are written, only those its patterns name" {
	bare "$SCMCTL" events --json --count 3 'service-*' 'connect' >"$SCMT/ev.json" 2>"$SCMT/ev.err" </dev/null &
	local reader=$!
	wait_until 30 sh -c "[ \"\$('$SCMCTL' --json status | jq -r .event_subscribers)\" = 1 ]"
	"$SCMCTL" endpoint create app >/dev/null # not asked for
	"$SCMCTL" service register "$(manifest echo)" >/dev/null
	run "$SCMCTL" call --endpoint app echo ping # no grant for app: a denied connect
	[ "$status" -eq 4 ]
	"$SCMCTL" service unregister echo >/dev/null
	wait "$reader"
	cat "$SCMT/ev.json"
	[ "$(jq -r .event "$SCMT/ev.json" | tr '\n' ' ')" = "service-register connect service-unregister " ]
	jq -se 'map(select(.event == "connect"))[0] | .decision == "deny" and .endpoint == "app" and .service == "echo"' "$SCMT/ev.json"
	# the same records are in the audit trail
	grep -q '"event":"service-register"' "$SCMT/run/audit.log"
	# --count ended it, and scmd has no subscriber left
	wait_until 30 sh -c "[ \"\$('$SCMCTL' --json status | jq -r .event_subscribers)\" = 0 ]"
	# the human form: time, event, members
	bare "$SCMCTL" events --count 1 'endpoint-*' >"$SCMT/ev.txt" 2>&1 </dev/null &
	reader=$!
	wait_until 30 sh -c "[ \"\$('$SCMCTL' --json status | jq -r .event_subscribers)\" = 1 ]"
	"$SCMCTL" endpoint create web >/dev/null
	wait "$reader"
	grep -Eq '^20[0-9-]+T[0-9:.]+Z endpoint-create endpoint=web ' "$SCMT/ev.txt"
}

@test "a reader that does not read is dropped at its queue's bound; another reader gets every record; scmd answers on" {
	bare "$SCMCTL" events --json 'endpoint-*' >"$SCMT/fast.json" 2>"$SCMT/fast.err" </dev/null &
	local fast=$!
	bare "$EC" subscribe "$SOCK" 1 "$SCMT/go" >"$SCMT/slow.txt" 2>&1 </dev/null &
	local slow=$!
	wait_until 30 sh -c "[ \"\$('$SCMCTL' --json status | jq -r .event_subscribers)\" = 2 ]"
	# in rounds, each waiting for the reading reader to catch up: it must
	# never be the one behind (a loaded machine may stall it for a moment)
	local round
	for round in $(seq 10); do
		"$EC" flood "$SOCK" 100
		wait_until 60 sh -c "[ \$(grep -c . '$SCMT/fast.json') -ge $((round * 200)) ]"
	done
	# the slow one was dropped, with a line saying so; the fast one stays
	wait_until 30 grep -q 'dropped an event subscriber' "$SCMT/scmd.log"
	[ "$(subscribers)" = 1 ]
	run "$SCMCTL" status
	[ "$status" -eq 0 ]
	touch "$SCMT/go"
	wait "$slow"
	cat "$SCMT/slow.txt"
	# it got what was queued before the bound (well short of the 2000), then the end
	grep -Eq '^conn 0: [0-9]+ events, end$' "$SCMT/slow.txt"
	got=$(sed -n 's/^conn 0: \([0-9]*\) events.*/\1/p' "$SCMT/slow.txt")
	[ "$got" -gt 0 ] && [ "$got" -lt 2000 ]
	# every record reached the reader that reads
	wait_until 30 sh -c "[ \$(grep -c . '$SCMT/fast.json') -ge 2000 ]"
	[ "$(jq -r .event "$SCMT/fast.json" | sort | uniq -c | awk '{print $1}' | tr '\n' ' ')" = "1000 1000 " ]
	kill "$fast"
}

@test "readers are bounded; a subscribed connection takes no other request" {
	bare "$EC" subscribe "$SOCK" 40 "$SCMT/go" >"$SCMT/many.txt" 2>&1 </dev/null &
	local many=$!
	wait_until 30 sh -c "[ \$(grep -c . '$SCMT/many.txt') -ge 40 ]"
	cat "$SCMT/many.txt"
	[ "$(grep -c '^subscribed$' "$SCMT/many.txt")" -eq 32 ]
	[ "$(grep -c '^refused: 32 event subscribers already' "$SCMT/many.txt")" -eq 8 ]
	[ "$(subscribers)" = 32 ]
	# control requests still answered while 32 readers hold scmd's feed
	"$SCMCTL" endpoint create more >/dev/null
	touch "$SCMT/go"
	wait "$many"
	wait_until 30 sh -c "[ \"\$('$SCMCTL' --json status | jq -r .event_subscribers)\" = 0 ]"
	run "$EC" request-after-subscribe "$SOCK"
	echo "$output"
	[[ "$output" == "error: this connection carries scmd's events"* ]]
	run "$SCMCTL" events --count x
	[ "$status" -eq 2 ]
	[[ "$output" == *"--count: 'x' is not a positive number"* ]]
}

#!/usr/bin/env bats
# Policy enforced by the running scmd: endpoints with profiles, explain and
# effective against a live endpoint, reload that revokes live channels, and
# a broken profile set that changes nothing.
load helpers

profile() { # profile NAME PRIORITY SERVICES-JSON
	mkdir -p "$SCMT/cfg/profiles"
	printf '{"name":"%s","priority":%s,"services":%s}\n' "$1" "$2" "$3" >"$SCMT/cfg/profiles/$1.json"
}

pre_start() {
	profile app 10 '[{"service":"echo","methods":["ping","whoami"],"action":"allow"},
	                 {"service":"echo","methods":["greet"],"action":"allow","args":{"name":{"prefix":"user-"}}}]'
	profile strict 20 '[{"service":"echo","methods":["greet"],"action":"deny"}]'
}
setup() {
	start_scmd
	"$SCMCTL" service register "$(manifest echo)" >/dev/null
}
teardown() { stop_scmd; }

@test "an endpoint's profiles decide: methods and argument constraints" {
	"$SCMCTL" endpoint create app --profiles app >/dev/null
	run "$SCMCTL" call --endpoint app echo greet '{"name":"user-1"}'
	[ "$status" -eq 0 ]
	run "$SCMCTL" call --endpoint app echo greet '{"name":"root"}'
	[ "$status" -eq 4 ]
	[[ "$output" == *"parameter 'name' does not have the allowed prefix"* ]]
	run "$SCMCTL" call --endpoint app echo echo '{"data":"x"}'
	[ "$status" -eq 4 ]
	[[ "$output" == *"not in this channel's grant"* ]]
	grep -q '"endpoint":"app".*"profiles":\["app"\].*"decision":"allow","origin":"allowed by profile' "$SCMT/run/audit.log"
}

@test "higher priority wins; explain shows the winning rule and what it overrode" {
	"$SCMCTL" endpoint create both --profiles app,strict >/dev/null
	run "$SCMCTL" call --endpoint both echo greet '{"name":"user-1"}'
	[ "$status" -eq 4 ]
	run "$SCMCTL" policy explain both echo greet
	echo "$output"
	[[ "$output" == *"deny"* ]]
	[[ "$output" == *"strict.json#/services/0"* ]]
	[[ "$output" == *"overrode"* ]]
	[[ "$output" == *"app.json#/services/1"* ]]
	run "$SCMCTL" policy effective both --json
	[ "$status" -eq 0 ]
	echo "$output" | python3 -c 'import json,sys; json.load(sys.stdin)'
}

@test "an endpoint naming an unknown profile is refused and not created" {
	run "$SCMCTL" endpoint create ghost --profiles nope
	[ "$status" -ne 0 ]
	[[ "$output" == *'no profile named "nope"'* ]]
	[ ! -e "$(ep ghost)" ]
}

@test "reload revokes a live channel that is no longer allowed, keeps the others" {
	"$SCMCTL" endpoint create app --profiles app >/dev/null
	id=$(hold_start app)
	# take ping away from app
	profile app 10 '[{"service":"echo","methods":["whoami"],"action":"allow"}]'
	run "$SCMCTL" policy reload
	[ "$status" -eq 0 ]
	[[ "$output" == *'"channels_revoked": 1'* ]]
	out=$(hold_wait)
	[[ "$out" == *"policy reload"* ]]
	[[ "$out" == *"[revoked]"* ]]
	grep -q '"event":"policy-reload","result":"ok","revoked":1' "$SCMT/run/audit.log"
	run "$SCMCTL" call --endpoint app echo whoami
	[ "$status" -eq 0 ]
}

@test "a profile set that would conflict on a live endpoint is refused by reload and changes nothing" {
	profile extra 10 '[{"service":"echo","methods":["sleep"],"action":"allow"}]'
	run "$SCMCTL" policy reload
	[ "$status" -eq 0 ]
	"$SCMCTL" endpoint create app --profiles app,extra >/dev/null
	id=$(hold_start app)
	# extra now denies what app allows, at the same priority
	profile extra 10 '[{"service":"echo","methods":["ping"],"action":"deny"}]'
	run "$SCMCTL" policy lint --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl" --profiles app,extra
	[ "$status" -ne 0 ]
	echo "$output"
	[[ "$output" == *"app.json"* && "$output" == *"extra.json"* && "$output" == *"conflict"* ]]
	run "$SCMCTL" policy reload
	[ "$status" -ne 0 ]
	[[ "$output" == *"the old policy stays"* ]]
	[[ "$output" == *"conflict"* ]]
	# the channel lives on and the old rules still decide
	run "$SCMCTL" --json channel list
	[[ "$output" == *"\"id\":$id"* ]]
	run "$SCMCTL" call --endpoint app echo greet '{"name":"user-2"}'
	[ "$status" -eq 0 ]
	# fixed by priority, it loads
	profile extra 11 '[{"service":"echo","methods":["ping"],"action":"deny"}]'
	run "$SCMCTL" policy reload
	[ "$status" -eq 0 ]
	[[ "$output" == *'"channels_revoked": 1'* ]]
	run "$SCMCTL" policy explain app echo ping
	[[ "$output" == *"extra.json"* && "$output" == *"overrode"* ]]
}

@test "hostile profile files keep scmd from loading them at all" {
	printf '{"name":"deep","priority":1,"services":%s}' "$(printf '[%.0s' $(seq 100))" >"$SCMT/cfg/profiles/deep.json"
	run "$SCMCTL" policy reload
	[ "$status" -ne 0 ]
	rm "$SCMT/cfg/profiles/deep.json"
	head -c 10485760 /dev/zero | tr '\0' ' ' >"$SCMT/cfg/profiles/huge.json"
	run "$SCMCTL" policy reload
	[ "$status" -ne 0 ]
	rm "$SCMT/cfg/profiles/huge.json"
	printf '{"name":"dup","priority":1,"priority":2,"services":[]}' >"$SCMT/cfg/profiles/dup.json"
	run "$SCMCTL" policy reload
	[ "$status" -ne 0 ]
	[[ "$output" == *"dup"* ]]
	scmd_alive
}

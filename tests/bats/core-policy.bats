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
teardown() {
	[ -z "${upid:-}" ] || kill "$upid" 2>/dev/null || true
	stop_scmd
}

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

# ---- issue 10: policy that never fails open -------------------------------

H=$SCM_BUILD/libexec/scm-test-helper

# profile_json NAME JSON: a profile in any shape (sandbox too)
profile_json() { printf '%s\n' "$2" >"$SCMT/cfg/profiles/$1.json"; }

@test "a low profile cannot respell a high profile's read-only mount to make it writable" {
	mkdir -p "$SCMT/data"
	chmod 0755 "$SCMT"
	chmod 0777 "$SCMT/data"
	profile_json lock '{"name":"lock","priority":100,"sandbox":{"mounts":[{"source":"'"$SCMT"'/data","destination":"/tmp/x","readonly":true}]}}'
	profile_json loose '{"name":"loose","priority":0,"sandbox":{"mounts":[{"source":"'"$SCMT"'/data","destination":"/tmp/x/","readonly":false}]}}'
	run "$SCMCTL" policy reload
	[ "$status" -eq 0 ]
	# the control: alone, the loose profile's mount is writable
	run "$SCMCTL" container run --name ctl --profile loose -- "$H" write /tmp/x/ctl
	echo "$output"
	[ "$status" -eq 0 ]
	[ -e "$SCMT/data/ctl" ]
	# together, "/x/" is the same mount point as "/x": the higher read-only one wins
	for spelling in /tmp/x/ /tmp/x/. /tmp//x// /./tmp/x; do
		profile_json loose '{"name":"loose","priority":0,"sandbox":{"mounts":[{"source":"'"$SCMT"'/data","destination":"'"$spelling"'","readonly":false}]}}'
		run "$SCMCTL" policy reload
		[ "$status" -eq 0 ]
		run "$SCMCTL" container run --name "try$RANDOM" --profile loose,lock -- "$H" write /tmp/x/f
		echo "$spelling: $output"
		[ "$status" -ne 0 ]
		[[ "$output" == *"write /tmp/x/f: EROFS"* ]]
		[ ! -e "$SCMT/data/f" ]
	done
	run "$SCMCTL" policy effective --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl" --profiles loose,lock
	echo "$output"
	[[ "$output" == *"/tmp/x"* ]]
	[[ "$output" != *"/tmp/x/"* && "$output" != *"/./"* && "$output" != *"//"* ]]
	# ".." is refused outright, with the place named
	profile_json loose '{"name":"loose","priority":0,"sandbox":{"mounts":[{"source":"'"$SCMT"'/data","destination":"/tmp/x/../../etc","readonly":false}]}}'
	run "$SCMCTL" policy reload
	[ "$status" -ne 0 ]
	[[ "$output" == *'/sandbox/mounts/0/destination: destination "/tmp/x/../../etc" has a ".." component'* ]]
}

@test "a typo in a capability deny is refused; the container never gets CAP_SYS_ADMIN" {
	profile_json base '{"name":"base","priority":0,"sandbox":{"capabilities":{"allow":["CAP_SYS_ADMIN","CAP_CHOWN"]}}}'
	run "$SCMCTL" policy reload
	[ "$status" -eq 0 ]
	profile_json tight '{"name":"tight","priority":10,"sandbox":{"capabilities":{"deny":["CAP_SYS_ADMN"]}}}'
	run "$SCMCTL" policy lint --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *'tight.json:1:'*'/sandbox/capabilities/deny/0: unknown capability "CAP_SYS_ADMN" (did you mean CAP_SYS_ADMIN?)'* ]]
	run "$SCMCTL" policy reload
	[ "$status" -ne 0 ]
	[[ "$output" == *"CAP_SYS_ADMN"* && "$output" == *"the old policy stays"* ]]
	# the set was not loaded: no container runs with the typo'd profile
	run "$SCMCTL" container run --name typo --profile base,tight -- "$H" caps
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" != *"effective="* ]]
	# spelled right, the deny wins and the capability is really gone
	profile_json tight '{"name":"tight","priority":10,"sandbox":{"capabilities":{"deny":["CAP_SYS_ADMIN"]}}}'
	run "$SCMCTL" policy reload
	[ "$status" -eq 0 ]
	run "$SCMCTL" container run --name right --profile base,tight -- "$H" caps
	echo "$output"
	[ "$status" -eq 0 ]
	eff=$(sed -n 's/^effective=//p' <<<"$output")
	bnd=$(sed -n 's/^bounding=//p' <<<"$output")
	[ -n "$eff" ] && [ -n "$bnd" ]
	# bit 21 is CAP_SYS_ADMIN, bit 0 CAP_CHOWN (still allowed by base)
	(( (0x$eff >> 21 & 1) == 0 && (0x$bnd >> 21 & 1) == 0 ))
	(( (0x$bnd & 1) == 1 ))
	# unknown system calls likewise
	profile_json tight '{"name":"tight","priority":10,"sandbox":{"syscalls":{"deny":["ptrac"]}}}'
	run "$SCMCTL" policy reload
	[ "$status" -ne 0 ]
	[[ "$output" == *'unknown system call "ptrac"'* ]]
}

@test "lint and scmd agree on a conflict that a higher third profile masks" {
	profile a 10 '[{"service":"echo","methods":["ping"],"action":"allow"}]'
	profile c 20 '[{"service":"echo","methods":["ping"],"action":"allow"}]'
	run "$SCMCTL" policy reload
	[ "$status" -eq 0 ]
	"$SCMCTL" endpoint create ac --profiles a,c >/dev/null
	profile b 10 '[{"service":"echo","methods":["ping"],"action":"deny"}]'
	# a and b conflict; c, higher, hides it in a merge of all three
	run "$SCMCTL" policy lint --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"a.json"*"conflicts with deny profile 'b'"*"a container that carries both is denied"*"[conflict]"* ]]
	# what a container carrying a and b would get, offline: denied, and lint says why
	run "$SCMCTL" policy check --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl" --profiles a,b echo ping
	[ "$status" -eq 1 ]
	[[ "$output" == *"fail closed"* ]]
	run "$SCMCTL" policy lint --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl" --profiles a,b
	[ "$status" -eq 1 ]
	# all three: c decides, lint has no error and scmd would allow
	run "$SCMCTL" policy lint --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl" --profiles a,b,c
	[ "$status" -eq 0 ]
	run "$SCMCTL" policy check --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl" --profiles a,b,c echo ping
	[ "$status" -eq 0 ]
	# scmd refuses the set lint refuses: no endpoint can be made to carry a,b
	run "$SCMCTL" policy reload
	[ "$status" -ne 0 ]
	[[ "$output" == *"the old policy stays"* ]]
	run "$SCMCTL" endpoint create ab --profiles a,b
	[ "$status" -ne 0 ]
	[[ "$output" == *'no profile named "b"'* ]]
	run "$SCMCTL" call --endpoint ac echo ping
	[ "$status" -eq 0 ]
	# fixed by priority, lint is clean and scmd decides as check says
	profile b 11 '[{"service":"echo","methods":["ping"],"action":"deny"}]'
	run "$SCMCTL" policy lint --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl"
	[ "$status" -eq 0 ]
	run "$SCMCTL" policy reload
	[ "$status" -eq 0 ]
	"$SCMCTL" endpoint create ab --profiles a,b >/dev/null
	run "$SCMCTL" policy check --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl" --profiles a,b echo ping
	[ "$status" -eq 1 ]
	run "$SCMCTL" call --endpoint ab echo ping
	[ "$status" -eq 4 ]
}

@test "check and the provider agree: ms=2^64-1 under [0, 2^63-1], and a NUL in a string" {
	profile big 10 '[{"service":"echo","methods":["sleep"],"action":"allow","args":{"ms":{"range":[0,9223372036854775807]}}},
	                 {"service":"echo","methods":["greet"],"action":"allow","args":{"name":{"prefix":"user-"}}}]'
	run "$SCMCTL" policy reload
	[ "$status" -eq 0 ]
	"$SCMCTL" endpoint create big --profiles big >/dev/null
	for args in '{"ms":18446744073709551615}' '{"ms":9223372036854775808}'; do
		run "$SCMCTL" policy check --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl" --profiles big echo sleep "$args"
		echo "check $args: $output"
		[ "$status" -eq 1 ]
		[[ "$output" == *"out of the allowed range"* ]]
		run "$SCMCTL" policy explain big echo sleep "$args"
		[[ "$output" == *"out of the allowed range"* ]]
		run "$SCMCTL" call --endpoint big echo sleep "$args"
		echo "call $args: $output"
		[ "$status" -eq 4 ]
		[[ "$output" == *"parameter 'ms' is out of the allowed range"* ]]
	done
	# the control: in range, both allow and the provider really sleeps
	run "$SCMCTL" policy check --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl" --profiles big echo sleep '{"ms":1}'
	[ "$status" -eq 0 ]
	run "$SCMCTL" call --endpoint big echo sleep '{"ms":1}'
	[ "$status" -eq 0 ]
	# a NUL hides the rest of the string from C: both refuse it
	nul='{"name":"user-a\u0000/../root"}'
	run "$SCMCTL" policy check --config "$SCMT/cfg" --idl "$SCM_SRC/stubs/idl" --profiles big echo greet "$nul"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"holds a NUL"* ]]
	run "$SCMCTL" call --endpoint big echo greet "$nul"
	echo "$output"
	[ "$status" -eq 4 ]
	[[ "$output" == *"holds a NUL"* ]]
	run "$SCMCTL" call --endpoint big echo greet '{"name":"user-a"}'
	[ "$status" -eq 0 ]
}

@test "deleting a live endpoint's only profile revokes its channels and denies it; the rest of the reload applies" {
	profile gone 10 '[{"service":"echo","methods":["ping","whoami"],"action":"allow"}]'
	run "$SCMCTL" policy reload
	[ "$status" -eq 0 ]
	"$SCMCTL" endpoint create gone --profiles gone >/dev/null
	"$SCMCTL" endpoint create app --profiles app >/dev/null
	id=$(hold_start gone)
	run "$SCMCTL" call --endpoint app echo sleep '{"ms":1}'
	[ "$status" -eq 4 ]
	# delete the only profile of "gone", and widen "app" in the same reload
	rm "$SCMT/cfg/profiles/gone.json"
	profile app 10 '[{"service":"echo","methods":["ping","whoami","sleep"],"action":"allow"}]'
	run "$SCMCTL" policy reload
	echo "$output"
	[ "$status" -eq 0 ]
	python3 -c 'import json,sys; o=json.loads(sys.argv[1][sys.argv[1].index("{"):]); assert o["endpoints_denied"]==[{"endpoint":"gone","missing_profiles":["gone"]}], o' "$output"
	[[ "$output" == *"endpoint 'gone': its profile(s) [\"gone\"] were deleted"* ]]
	# the held channel is cut, saying why
	out=$(hold_wait)
	echo "$out"
	[[ "$out" == *"were deleted"* && "$out" == *"[revoked]"* ]]
	run "$SCMCTL" --json channel list
	[[ "$output" != *"\"id\":$id,"* ]]
	# new calls of "gone" are denied, "app" has its new rule
	run "$SCMCTL" call --endpoint gone echo ping
	[ "$status" -eq 4 ]
	run "$SCMCTL" call --endpoint app echo sleep '{"ms":1}'
	[ "$status" -eq 0 ]
	grep -q '"event":"policy-reload","result":"ok","revoked":1,.*"endpoints_denied":\[{"endpoint":"gone","missing_profiles":\["gone"\]}\]' "$SCMT/run/audit.log"
	# the profile back, the endpoint is decided by it again
	profile gone 10 '[{"service":"echo","methods":["ping"],"action":"allow"}]'
	run "$SCMCTL" policy reload
	[ "$status" -eq 0 ]
	python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["endpoints_denied"]==[], o' "$output"
	run "$SCMCTL" call --endpoint gone echo ping
	[ "$status" -eq 0 ]
}

@test "rootless: a respelled mount stays read-only and a typo'd capability deny is refused" {
	id scmtest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin scmtest
	D=$(mktemp -d /tmp/scm-rootless.XXXXXX)
	mkdir -p "$D/cfg/profiles" "$D/data"
	printf '%s\n' '{"name":"lock","priority":100,"sandbox":{"mounts":[{"source":"'"$D"'/data","destination":"/tmp/x","readonly":true}],
	  "capabilities":{"deny":["CAP_SYS_ADMIN"]}}}' >"$D/cfg/profiles/lock.json"
	printf '%s\n' '{"name":"loose","priority":0,"sandbox":{"mounts":[{"source":"'"$D"'/data","destination":"/tmp/x/.","readonly":false}],
	  "capabilities":{"allow":["CAP_SYS_ADMIN"]}}}' >"$D/cfg/profiles/loose.json"
	chmod 755 "$D"; chown -R scmtest "$D"
	as_user() { setpriv --reuid scmtest --regid scmtest --clear-groups env SCM_RUNTIME_DIR="$D/run" "$@"; }
	setpriv --reuid scmtest --regid scmtest --clear-groups "$SCMD" --runtime-dir "$D/run" --state-dir "$D/state" --config "$D/cfg" \
		--idl-path "$SCM_SRC/stubs/idl" 2>"$D/scmd.log" &
	upid=$!
	wait_until 60 test -S "$D/run/control.sock"
	# control: loose alone mounts it writable
	run as_user "$SCMCTL" container run --profile loose -- "$H" write /tmp/x/ctl
	echo "$output"
	[ "$status" -eq 0 ]
	[ -e "$D/data/ctl" ]
	run as_user "$SCMCTL" container run --profile loose,lock -- /bin/sh -c "$H write /tmp/x/f; $H caps"
	echo "$output"
	[[ "$output" == *"write /tmp/x/f: EROFS"* ]]
	[ ! -e "$D/data/f" ]
	eff=$(sed -n 's/^effective=//p' <<<"$output")
	[ -n "$eff" ]
	(( (0x$eff >> 21 & 1) == 0 ))
	# the typo is refused by the user's scmd as well
	printf '%s\n' '{"name":"lock","priority":100,"sandbox":{"capabilities":{"deny":["CAP_SYS_ADMN"]}}}' >"$D/cfg/profiles/lock.json"
	run as_user "$SCMCTL" policy reload
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *'unknown capability "CAP_SYS_ADMN"'* ]]
	kill "$upid"; wait "$upid" || true
	rm -rf "$D"
}

@test "deleting one of an endpoint's two profiles denies it everything, not what the other allows" {
	"$SCMCTL" endpoint create both --profiles app,strict >/dev/null
	run "$SCMCTL" call --endpoint both echo ping
	[ "$status" -eq 0 ]
	run "$SCMCTL" call --endpoint both echo greet '{"name":"user-1"}'
	[ "$status" -eq 4 ]
	# strict was the narrowing one: app alone would allow greet
	rm "$SCMT/cfg/profiles/strict.json"
	run "$SCMCTL" policy reload
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"endpoint 'both': its profile(s) [\"strict\"] were deleted"* ]]
	run "$SCMCTL" call --endpoint both echo greet '{"name":"user-1"}'
	[ "$status" -eq 4 ]
	run "$SCMCTL" call --endpoint both echo ping
	[ "$status" -eq 4 ]
	run "$SCMCTL" policy explain both echo ping
	echo "$output"
	[[ "$output" == *"deny"* ]]
}

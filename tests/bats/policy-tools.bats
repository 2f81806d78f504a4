#!/usr/bin/env bats
# End-to-end tests of the offline `scmctl policy` tools (lint, effective,
# explain, check, graph, suggest) on profile files, as a user runs them.

setup() {
	: "${SCM_BUILD:?set SCM_BUILD (tests/run-all does)}" "${SCM_SRC:?}"
	if [ -x "$SCM_BUILD/bin/scmctl" ]; then
		POL=("$SCM_BUILD/bin/scmctl" policy)
	else
		POL=("$SCM_BUILD/bin/scm-policy")
	fi
	[ -x "${POL[0]}" ] || { echo "missing ${POL[0]}: build first" >&2; return 1; }
	D=$(mktemp -d)
	mkdir -p "$D/profiles"
	IDL="$SCM_SRC/stubs/idl"
}

teardown() {
	rm -rf "$D"
}

pol() {
	"${POL[@]}" "$@"
}

profile() { # NAME JSON
	printf '%s\n' "$2" >"$D/profiles/$1.json"
}

@test "lint: the shipped examples have no errors" {
	run pol lint --config "$SCM_SRC/examples/profiles" --idl "$IDL"
	[ "$status" -eq 0 ]
	[[ "$output" != *"error:"* ]]
}

@test "lint: a syntax error is reported with file, line and column" {
	printf '{\n  "name": "a",\n  "priority": 1,\n  "services": [ { "service": "echo" ]\n}\n' >"$D/profiles/a.json"
	run pol lint --config "$D" --idl "$IDL"
	[ "$status" -eq 1 ]
	[[ "$output" == *"a.json:4:37: syntax error: expected ',' or '}' in an object"* ]]
}

@test "lint: every bad file is reported, not just the first" {
	printf '{"name":"a","priority":1,"priority":2}' >"$D/profiles/a.json"
	printf '{"name":"b","priority":"x"}' >"$D/profiles/b.json"
	run pol lint --config "$D" --idl "$IDL"
	[ "$status" -eq 1 ]
	[[ "$output" == *"a.json:1:26: syntax error: duplicate key \"priority\""* ]]
	[[ "$output" == *"b.json:1:24: /priority: expected an integer, got string [parse]"* ]]
}

@test "lint: unknown services and methods against the IDLs" {
	profile a '{"name":"a","priority":0,"services":[{"service":"ecko","methods":"*","action":"allow"},
	  {"service":"echo","methods":["pong"],"action":"allow"}]}'
	run pol lint --config "$D" --idl "$IDL"
	[ "$status" -eq 1 ]
	[[ "$output" == *"a.json:1:49: error: /services/0/service: no interface defines service \"ecko\" [unknown-service]"* ]]
	[[ "$output" == *"/services/1/methods/0: service \"echo\" has no method \"pong\" [unknown-method]"* ]]
}

@test "lint: FILES given on the command line" {
	profile a '{"name":"a","priority":0,"services":[{"service":"echo","methods":["ping"],"action":"allow"}]}'
	profile b '{"name":"b","priority":0,"services":[{"service":"echo","methods":["ping"],"action":"deny"}]}'
	run pol lint --idl "$IDL" "$D/profiles/a.json"
	[ "$status" -eq 0 ]
	run pol lint --idl "$IDL" "$D/profiles/a.json" "$D/profiles/b.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"error: /services/0: allow echo.ping conflicts with deny profile 'b'"*"a container that carries both is denied"*"[conflict]"* ]]
	# as one container carries them
	run pol lint --idl "$IDL" --profiles a,b "$D/profiles/a.json" "$D/profiles/b.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"error: /services/0: allow echo.ping conflicts with deny profile 'b'"*"[conflict]"* ]]
	run pol lint --idl "$IDL" --profiles a,nosuch "$D/profiles/a.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *'no profile named "nosuch"'* ]]
}

@test "tutorial: a conflict is named on both sides, fixed by priority, then explained" {
	profile browser '{"name":"browser","priority":10,"services":[{"service":"echo","methods":["greet","ping"],"action":"allow"}]}'
	profile locked '{"name":"locked","priority":10,"services":[{"service":"echo","methods":["greet"],"action":"deny"}]}'
	run pol lint --config "$D" --idl "$IDL"
	[ "$status" -eq 1 ]
	[[ "$output" == *"browser.json:1:45: error: /services/0: allow echo.greet conflicts with deny profile 'locked' ("*"locked.json#/services/0, priority 10) at equal priority 10"*"[conflict]"* ]]
	run pol lint --config "$D" --idl "$IDL" --profiles browser,locked
	[ "$status" -eq 1 ]
	[[ "$output" == *"browser.json:1:45: error: /services/0: allow echo.greet conflicts with deny profile 'locked' ("*"locked.json#/services/0, priority 10) at equal priority 10"*"[conflict]"* ]]
	# at run time the conflict fails closed
	run pol check --config "$D" --profiles browser,locked echo greet '{"name":"x"}'
	[ "$status" -eq 1 ]
	[[ "$output" == "deny: denied (fail closed): profile 'browser' ("*"browser.json#/services/0, priority 10) conflicts with profile 'locked' ("*"locked.json#/services/0, priority 10) at equal priority" ]]
	# fix: the lock wins
	profile locked '{"name":"locked","priority":20,"services":[{"service":"echo","methods":["greet"],"action":"deny"}]}'
	run pol lint --config "$D" --idl "$IDL"
	[ "$status" -eq 0 ]
	[[ "$output" != *"conflict"* ]]
	run pol explain --config "$D" --idl "$IDL" --profiles browser,locked echo greet
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "echo.greet: deny" ]]
	[[ "$output" == *"from: profile 'locked' ("*"locked.json#/services/0, priority 20)"* ]]
	[[ "$output" == *"overrode:"*"allow echo: profile 'browser' ("*"browser.json#/services/0, priority 10)"* ]]
	run pol check --config "$D" --profiles browser,locked echo ping
	[ "$status" -eq 0 ]
}

@test "effective: merged profile with origins, text and JSON" {
	run pol effective --config "$SCM_SRC/examples/profiles" --idl "$IDL" --profiles lockdown,base,desktop-app
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "profiles (merge order): lockdown (priority 100), desktop-app (priority 10), base (priority 0)" ]]
	[[ "$output" == *"crash            deny         profile 'lockdown'"* ]]
	[[ "$output" == *"network                      none         profile 'lockdown'"* ]]
	run pol effective --config "$SCM_SRC/examples/profiles" --idl "$IDL" --profiles base,desktop-app,lockdown --json
	[ "$status" -eq 0 ]
	# the order of --profiles does not matter
	a=$(pol effective --config "$SCM_SRC/examples/profiles" --idl "$IDL" --profiles base,desktop-app,lockdown --json)
	b=$(pol effective --config "$SCM_SRC/examples/profiles" --idl "$IDL" --profiles desktop-app,lockdown,base --json)
	[ "$a" = "$b" ]
	echo "$a" | python3 -c '
import json, sys
e = json.load(sys.stdin)
echo = [s for s in e["services"] if s["service"] == "echo"][0]
sleep = [m for m in echo["methods"] if m["method"] == "sleep"][0]
assert sleep["decision"] == "allow", sleep
assert sleep["rule"]["profile"] == "lockdown"
assert sleep["rule"]["pointer"] == "/services/1"
assert [o["profile"] for o in sleep["overrode"]] == ["desktop-app"]
assert echo["grant"]["constraints"]["sleep"] == {"ms": {"range": [0, 1000]}}
assert e["conflicts"] == 0
'
}

@test "effective: unknown profile name is an error" {
	run pol effective --config "$SCM_SRC/examples/profiles" --idl "$IDL" --profiles base,nosuch
	[ "$status" -eq 1 ]
	[[ "$output" == *'no profile named "nosuch"'* ]]
}

@test "explain: arguments against constraints" {
	run pol explain --config "$SCM_SRC/examples/profiles" --idl "$IDL" --profiles base,desktop-app,lockdown echo greet '{"name":"root"}'
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "echo.greet: deny" ]]
	[[ "$output" == *'why: parameter "name" = "root" does not satisfy {"prefix":"user-"}'* ]]
	run pol explain --config "$SCM_SRC/examples/profiles" --idl "$IDL" --profiles base echo
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "echo: allow" ]]
	[[ "$output" == *'grant: {"methods":["ping","whoami"],"constraints":{}}'* ]]
	run pol explain --config "$SCM_SRC/examples/profiles" --profiles base echo greet 'not json'
	[ "$status" -eq 1 ]
	[[ "$output" == *"arguments are not a JSON object"* ]]
}

@test "check: exit 0 allow, 1 deny, 2 usage" {
	run pol check --config "$SCM_SRC/examples/profiles" --idl "$IDL" --profiles base,desktop-app,lockdown echo sleep '{"ms":10}'
	[ "$status" -eq 0 ]
	[[ "$output" == "allow: allowed by profile 'lockdown'"* ]]
	run pol check --config "$SCM_SRC/examples/profiles" --idl "$IDL" --profiles base,desktop-app,lockdown echo sleep '{"ms":10000}'
	[ "$status" -eq 1 ]
	run pol check --config "$SCM_SRC/examples/profiles" --idl "$IDL" --profiles base echo read_fd
	[ "$status" -eq 1 ]
	[[ "$output" == "deny: denied by default: no rule allows echo.read_fd" ]]
	run pol check --config "$SCM_SRC/examples/profiles" --profiles base echo
	[ "$status" -eq 2 ]
}

@test "graph: DOT, and SVG through dot" {
	run pol graph --config "$SCM_SRC/examples/profiles" --idl "$IDL"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "digraph scm_policy {" ]]
	[[ "$output" == *'"profile:lockdown" -> "service:echo" [style=dashed, color=red, label="deny"];'* ]]
	[[ "$output" == *'"profile:base" -> "service:echo" [label="ping\nwhoami"];'* ]]
	command -v dot >/dev/null || { echo "graphviz (dot) is not installed: scripts/deps/test-policy.txt" >&2; false; }
	run pol graph --config "$SCM_SRC/examples/profiles" --idl "$IDL" --svg "$D/g.svg"
	[ "$status" -eq 0 ]
	grep -q '<svg' "$D/g.svg"
	grep -q 'lockdown' "$D/g.svg"
}

@test "suggest: rules that would have allowed the logged denials" {
	cat >"$D/audit.log" <<-'LOG'
	{"ts":1,"event":"connect","caller":"app1","profiles":["base"],"service":"echo","decision":"allow"}
	{"ts":2,"event":"connect","caller":"app1","profiles":["base"],"service":"vdisk","decision":"deny"}
	{"ts":3,"event":"connect","caller":"app2","profiles":["base"],"service":"vdisk","decision":"deny","method":"open"}

	{"ts":4,"event":"start","container":"x"}
	{"ts":5,"event":"connect","caller":"app1","profiles":["base","desktop-app"],"service":"gfx","decision":"deny"}
	LOG
	run pol suggest "$D/audit.log"
	[ "$status" -eq 0 ]
	[[ "$output" == *'# 2 denied connect(s) to vdisk by ["app1","app2"] with profiles ["base"]'* ]]
	[[ "$output" == *'{ "service": "vdisk", "methods": "*", "action": "allow" }'* ]]
	[[ "$output" == *'# 1 denied connect(s) to gfx by ["app1"] with profiles ["base","desktop-app"]'* ]]
	[[ "$output" != *'to echo'* ]]
	run pol suggest "$D/audit.log" --json
	[ "$status" -eq 0 ]
	echo "$output" | python3 -c 'import json,sys; s=json.load(sys.stdin); assert len(s)==2 and s[0]["denials"]==2, s'
}

@test "suggest --config: names the rule that denies today" {
	printf '%s\n' '{"ts":2,"event":"connect","caller":"app1","profiles":["base","lockdown"],"service":"echo","method":"crash","decision":"deny"}' >"$D/audit.log"
	run pol suggest "$D/audit.log" --config "$SCM_SRC/examples/profiles" --idl "$IDL"
	[ "$status" -eq 0 ]
	[[ "$output" == *"# today: denied by profile 'lockdown' ("*"lockdown.json#/services/0, priority 100)"* ]]
	[[ "$output" == *'{ "service": "echo", "methods": [ "crash" ], "action": "allow" }'* ]]
}

@test "suggest: a corrupt audit line is an error naming the line" {
	printf '{"event":"connect","decision":"deny","service":"a","profiles":[]}\n{"event":\n' >"$D/audit.log"
	run pol suggest "$D/audit.log"
	[ "$status" -eq 1 ]
	[[ "$output" == *"audit.log:2: not a JSON object"* ]]
	run pol suggest "$D/nosuch.log"
	[ "$status" -eq 1 ]
}

@test "hostile profiles: clear errors, never a crash" {
	python3 - "$D/profiles" <<-'PY'
	import sys
	d = sys.argv[1]
	open(d + "/deep.json", "w").write('{"name":"deep","priority":1,"x":' + "[" * 5000 + "]" * 5000 + "}")
	open(d + "/huge.json", "w").write('{"name":"huge","priority":1' + " " * (10 * 1024 * 1024) + "}")
	open(d + "/num.json", "w").write('{"name":"num","priority":99999999999999999999999}')
	open(d + "/utf.json", "wb").write(b'{"name":"utf","priority":1,"description":"\xc3\x28"}')
	open(d + "/dup.json", "w").write('{"name":"dup","priority":1,"services":[],"services":[]}')
	PY
	run pol lint --config "$D" --idl "$IDL"
	[ "$status" -eq 1 ]
	[[ "$output" == *"deep.json:1:48: syntax error: nesting deeper than 16 levels"* ]]
	[[ "$output" == *"huge.json: 10485788 bytes, more than the 1048576 a profile may have"* ]]
	[[ "$output" == *"num.json:1:26: syntax error: integer 99999999999999999999999 out of range"* ]]
	[[ "$output" == *"utf.json:1:43: syntax error: invalid UTF-8 in a string"* ]]
	[[ "$output" == *"dup.json:1:42: syntax error: duplicate key \"services\" (first at line 1 column 28)"* ]]
}

@test "usage errors exit 2" {
	run pol frobnicate
	[ "$status" -eq 2 ]
	run pol lint --bogus
	[ "$status" -eq 2 ]
	run pol
	[ "$status" -eq 2 ]
}

@test "lint: prefix on a path parameter is an error pointing to path_prefix" {
	profile disks '{"name":"disks","priority":1,"services":[{"service":"vdisk","methods":["open"],"action":"allow",
	  "args":{"path":{"prefix":"/srv/disks/"},"readonly":{"eq":true}}}]}'
	run pol lint --config "$D" --idl "$IDL"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *'disks.json:2:'*'error: /services/0/args/path: vdisk.open parameter "path" is a file path: "prefix" admits "/srv/disks/../../etc/x"; use {"path_prefix": "/srv/disks/"}'*'[prefix-on-path]'* ]]
	# what it would have let through, and what path_prefix does with it
	run pol check --config "$D" --profiles disks vdisk open '{"path":"/srv/disks/../../etc/shadow","readonly":true}'
	[ "$status" -eq 0 ]
	profile disks '{"name":"disks","priority":1,"services":[{"service":"vdisk","methods":["open"],"action":"allow",
	  "args":{"path":{"path_prefix":"/srv/disks/"},"readonly":{"eq":true}}}]}'
	run pol lint --config "$D" --idl "$IDL"
	[ "$status" -eq 0 ]
	run pol check --config "$D" --profiles disks vdisk open '{"path":"/srv/disks/../../etc/shadow","readonly":true}'
	[ "$status" -eq 1 ]
	[[ "$output" == *"is not a clean path under the allowed directory"* ]]
	run pol check --config "$D" --profiles disks vdisk open '{"path":"/srv/disks/a.vhdx","readonly":true}'
	[ "$status" -eq 0 ]
}

@test "lint: unknown capability and syscall names, with the place and a suggestion" {
	profile caps '{"name":"caps","priority":1,"sandbox":{"capabilities":{"allow":["CAP_CHOWN"],"deny":["CAP_NET_RAWW"]}}}'
	run pol lint --config "$D" --idl "$IDL"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *'caps.json:1:'*'/sandbox/capabilities/deny/0: unknown capability "CAP_NET_RAWW" (did you mean CAP_NET_RAW?)'* ]]
	profile caps '{"name":"caps","priority":1,"sandbox":{"syscalls":{"deny":["open_by_handle"]}}}'
	run pol lint --config "$D" --idl "$IDL"
	[ "$status" -eq 1 ]
	[[ "$output" == *'/sandbox/syscalls/deny/0: unknown system call "open_by_handle"'* ]]
	profile caps '{"name":"caps","priority":1,"sandbox":{"syscalls":{"deny":["open_by_handle_at"]},"capabilities":{"deny":["CAP_NET_RAW"]}}}'
	run pol lint --config "$D" --idl "$IDL"
	[ "$status" -eq 0 ]
}

@test "lint: a conflict between two profiles is an error even when a third, higher one covers it" {
	profile a '{"name":"a","priority":10,"services":[{"service":"echo","methods":["ping"],"action":"allow"}]}'
	profile b '{"name":"b","priority":10,"services":[{"service":"echo","methods":["ping"],"action":"deny"}]}'
	profile c '{"name":"c","priority":20,"services":[{"service":"echo","methods":["ping"],"action":"allow"}]}'
	run pol lint --config "$D" --idl "$IDL"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$(grep -c '\[conflict\]' <<<"$output")" -eq 1 ]
	[[ "$output" == *"a.json:1:"*"allow echo.ping conflicts with deny profile 'b'"* ]]
	run pol check --config "$D" --profiles a,b echo ping
	[ "$status" -eq 1 ]
}

@test "check and explain decide like the provider: uint64 past int64, NUL in strings" {
	profile n '{"name":"n","priority":1,"services":[{"service":"echo","methods":["sleep"],"action":"allow","args":{"ms":{"range":[0,9223372036854775807]}}},
	  {"service":"echo","methods":["greet"],"action":"allow","args":{"name":{"eq":"abc"}}}]}'
	run pol check --config "$D" --profiles n echo sleep '{"ms":18446744073709551615}'
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *'"ms" = 18446744073709551615 does not satisfy {"range":[0,9223372036854775807]}: it is out of the allowed range'* ]]
	run pol explain --config "$D" --profiles n echo sleep '{"ms":18446744073709551615}'
	[[ "$output" == *"is out of the allowed range"* ]]
	run pol check --config "$D" --profiles n echo sleep '{"ms":9223372036854775807}'
	[ "$status" -eq 0 ]
	run pol check --config "$D" --profiles n echo greet '{"name":"abc\u0000def"}'
	[ "$status" -eq 1 ]
	run pol check --config "$D" --profiles n echo greet '{"name":"abc"}'
	[ "$status" -eq 0 ]
	# a range bound past int64 is refused, not clamped
	profile n '{"name":"n","priority":1,"services":[{"service":"echo","methods":["sleep"],"action":"allow","args":{"ms":{"range":[0,18446744073709551615]}}}]}'
	run pol lint --config "$D" --idl "$IDL"
	[ "$status" -eq 1 ]
	[[ "$output" == *"out of range (64-bit signed)"* ]]
}

#!/usr/bin/env bats
# Desktop session specs: the example is valid, bad specs are refused with
# the field named and a non-zero exit, and a refused launch leaves nothing
# behind in scmd.
load helpers

setup() { SPEC=$SCM_BUILD/libexec/scm-desktop-spec; T=$(mktemp -d); }
teardown() { rm -rf "$T"; [ -z "${SCMD_PID:-}" ] || stop_scmd; }

@test "gfx spec: the example two-app desktop is valid" {
	run "$SPEC" "$SCM_SRC/examples/desktops/two-apps.json"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "desktop two-apps 1280x720" ]
	[[ "${lines[1]}" == "app clock 360x360 1 base,desktop-app -- 'xclock' "* ]]
	[[ "${lines[2]}" == "app term 640x420 3 base,desktop-app -- 'xterm' "* ]]
}

@test "gfx spec: bad specs are refused with the field named" {
	while IFS='|' read -r json field; do
		printf '%s' "$json" >"$T/s.json"
		run "$SPEC" "$T/s.json"
		echo "$json -> $output"
		[ "$status" -eq 1 ]
		[[ "$output" == *"$field"* ]]
	done <<'CASES'
{"name":"x","size":"800x600","apps":[{"name":"a","command":["xclock"],"size":"100x100","weight":"3"}]}|/apps/0/weight
{"name":"x","size":"800x600","apps":[{"name":"a","command":"xclock","size":"100x100"}]}|/apps/0/command
{"name":"x","size":"80x60000","apps":[]}|/size
{"name":"x","size":"800x600","apps":[{"name":"A B","command":["x"],"size":"100x100"}]}|/apps/0/name
{"name":"x","size":"800x600","apps":[],"extra":1}|/extra
not json|/: not a JSON document
CASES
	run "$SPEC" "$T/missing.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"No such file"* ]]
}

@test "gfx spec: a refused launch registers nothing" {
	start_scmd
	printf '{"name":"x","size":"800x600","apps":[]}' >"$T/s.json"
	run "$SCMCTL" desktop launch "$T/s.json"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/apps"* ]]
	! "$SCMCTL" service list | grep -q gfx-x
	# a container is named DESKTOP-APP, at most 48 characters
	printf '{"name":"abcdefghijklmnopqrstuvwxyz012345","size":"800x600","apps":[{"name":"an-app-name-that-is-long","command":["xeyes"],"size":"100x100"}]}' >"$T/long.json"
	run "$SCMCTL" desktop launch "$T/long.json"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/apps/0/name: 'abcdefghijklmnopqrstuvwxyz012345-an-app-name-that-is-long' is over 48 characters"* ]]
	! "$SCMCTL" service list | grep -q gfx-abc
	run "$SCMCTL" desktop launch "$SCM_SRC/examples/desktops/two-apps.json" --bogus
	[ "$status" -eq 2 ]
	[[ "$output" == *"usage: desktop launch"* ]]
}

#!/usr/bin/env bats
# The desktop session manager (scm-desktop-session, the service "desktop")
# driven through scmctl: launch, viewers, app add and remove on a live
# desktop (the window appears and goes in a screenshot), stop leaving no
# container, endpoint or service behind, and callers without the right
# refused: by scmd's policy (default deny), and by the manager itself for
# lifecycle and secrets whatever a profile grants.
load helpers

pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	cp "$SCM_SRC"/examples/profiles/*.json "$SCMT/cfg/profiles/"
	# A profile that lets a caller reach the manager at all, with every
	# method: the manager still keeps lifecycle and secrets to the host.
	cat >"$SCMT/cfg/profiles/desktop-watch.json" <<'JSON'
{ "name": "desktop-watch", "priority": 10, "description": "test: reach the desktop session manager",
  "services": [ { "service": "desktop", "methods": ["list", "viewers", "show", "stop", "app_add", "app_remove",
                  "screenshot", "launch"], "action": "allow" } ] }
JSON
}
setup() {
	for t in Xvfb xclock xterm xeyes; do
		command -v $t >/dev/null || { echo "$t missing (scripts/deps/test-gfx.txt)"; return 1; }
	done
	start_scmd
	CHK=$SCM_BUILD/libexec/scm-gfx-pngcheck
	EYES='{"name":"eyes","command":["xeyes","-geometry","200x200+0+0"],"size":"200x200","profiles":["base","desktop-app"]}'
}
teardown() {
	"$SCMCTL" desktop stop two-apps >/dev/null 2>&1 || true
	# a sanitizer report from the manager fails the test that provoked it
	if grep -qE "ERROR: AddressSanitizer|runtime error:" "$SCM_RUNTIME_DIR/logs/desktop.log" 2>/dev/null; then
		echo "the session manager reported a memory error:"; cat "$SCM_RUNTIME_DIR/logs/desktop.log"
		stop_scmd
		return 1
	fi
	stop_scmd
}

launch() {
	run timeout 90 "$SCMCTL" desktop launch "$SCM_SRC/examples/desktops/two-apps.json" "$@"
	echo "$output"
	[ "$status" -eq 0 ]
	PORT=$(sed -n 's/^vnc 127.0.0.1://p' <<<"$output")
	PASSWORD=$(sed -n 's/^password //p' <<<"$output")
	[ -n "$PORT" ] && [ ${#PASSWORD} -eq 8 ]
}

# viewers: the number `desktop list` reports for two-apps.
viewers() {
	"$SCMCTL" --json desktop list | python3 -c 'import json,sys; print(json.load(sys.stdin)["desktops"][0]["viewers"])'
}

@test "desktop session: launch registers the manager as a service; list and viewers show who watches" {
	launch
	run "$SCMCTL" --json service list
	echo "$output" | python3 -c '
import json,sys
s = {x["name"]: x for x in json.load(sys.stdin)["services"]}
assert s["desktop"]["interface"] == "desktop" and s["desktop"]["state"] == "running", s
assert s["gfx-two-apps"]["interface"] == "gfx", s'
	# the desktop is the manager's, not a process of scmctl's
	run "$SCMCTL" --json desktop list
	mpid=$(echo "$output" | python3 -c 'import json,sys; print(json.load(sys.stdin)["desktops"][0]["pid"])')
	[ "$(basename "$(readlink /proc/$mpid/exe)")" = scm-desktop-session ]
	[ "$(viewers)" = 0 ]
	run "$SCMCTL" desktop viewers two-apps
	[ "$(echo "$output" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ]
	SCM_VNC_PASSWORD=$PASSWORD "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --encodings zrle \
		--capture "$SCMT/a.png" --stay 60 &
	vpid=$!
	for _ in $(seq 200); do [ -s "$SCMT/a.png" ] && break; sleep 0.05; done
	[ "$(viewers)" = 1 ]
	run "$SCMCTL" desktop viewers two-apps
	echo "$output"
	echo "$output" | python3 -c '
import json,sys
v = json.load(sys.stdin)
assert len(v) == 1 and v[0]["encoding"] == "zrle", v'
	run "$SCMCTL" desktop list
	[[ "$(sed -n 2p <<<"$output")" =~ ^two-apps\ +running\ +[0-9]+\ +1\  ]]
	# the viewer leaves; the desktop stays, as it was
	kill "$vpid"; wait "$vpid" || true
	for _ in $(seq 100); do [ "$(viewers)" = 0 ] && break; sleep 0.05; done
	[ "$(viewers)" = 0 ]
	run "$SCMCTL" --json container list
	[ "$(echo "$output" | grep -c '"state":"running"')" -ge 3 ] || [ "$(echo "$output" | grep -c '"state": "running"')" -ge 3 ]
	SCM_VNC_PASSWORD=$PASSWORD "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --capture "$SCMT/b.png"
	[ "$("$CHK" size "$SCMT/b.png")" = "1280 720" ]
	# a second launch of the same desktop is refused, the first untouched
	run "$SCMCTL" desktop launch "$SCM_SRC/examples/desktops/two-apps.json"
	[ "$status" -ne 0 ]
	[[ "$output" == *"running already"* ]]
	[ "$(viewers)" = 0 ]
}

# app_window_shown FILE X Y BORDER: the 4-pixel frame above the window is
# all BORDER and the window has content.
frame_pixels() {
	"$CHK" count "$1" $(($2 - 4)) $(($3 - 4)) 208 4 "$4"
}

@test "desktop app add and remove: the window appears and goes on a live desktop" {
	launch
	run "$SCMCTL" desktop app add two-apps "$EYES"
	echo "$output"
	[ "$status" -eq 0 ]
	read -r _ name _ xy _ border <<<"$(head -n1 <<<"$output")"
	[ "$name" = eyes ]
	x=${xy%,*} y=${xy#*,} border=${border#\#}
	run "$SCMCTL" --json container list
	[[ "$output" == *'"two-apps-eyes"'* ]]
	shown=
	for _ in $(seq 100); do
		"$SCMCTL" desktop screenshot two-apps "$SCMT/with.png"
		[ "$(frame_pixels "$SCMT/with.png" "$x" "$y" "$border")" -eq $((208 * 4)) ] &&
			[ "$("$CHK" distinct "$SCMT/with.png" "$x" "$y" 200 200)" -ge 2 ] && shown=1 && break
		sleep 0.1
	done
	[ -n "$shown" ]
	"$SCMCTL" desktop show two-apps | python3 -c '
import json,sys
d = json.load(sys.stdin)
assert [a["name"] for a in d["apps"]] == ["clock", "term", "eyes"], d["apps"]
assert sorted(c["caller"] for c in d["stats"]["clients"]) == ["two-apps-clock", "two-apps-eyes", "two-apps-term"], d["stats"]'
	# the same name twice is refused; a bad app names its field
	run "$SCMCTL" desktop app add two-apps "$EYES"
	[ "$status" -ne 0 ] && [[ "$output" == *"already"* ]]
	run "$SCMCTL" desktop app add two-apps '{"name":"big","command":["xeyes"],"size":"5000x5000"}'
	[ "$status" -ne 0 ] && [[ "$output" == *"/app/size"* ]]
	# an app that cannot start (no such profile) leaves nothing behind
	run "$SCMCTL" desktop app add two-apps '{"name":"nope","command":["xeyes"],"size":"100x100","profiles":["nosuch"]}'
	echo "$output"
	[ "$status" -ne 0 ] && [[ "$output" == *"starting app nope"* ]]
	run "$SCMCTL" --json container list
	[[ "$output" != *'"two-apps-nope"'* ]]
	run "$SCMCTL" desktop app remove two-apps eyes
	[ "$status" -eq 0 ]
	gone=
	for _ in $(seq 100); do
		"$SCMCTL" desktop screenshot two-apps "$SCMT/without.png"
		[ "$(frame_pixels "$SCMT/without.png" "$x" "$y" "$border")" -eq 0 ] && gone=1 && break
		sleep 0.1
	done
	[ -n "$gone" ]
	run "$SCMCTL" --json container list
	[[ "$output" != *'"two-apps-eyes"'* ]]
	run "$SCMCTL" desktop app remove two-apps eyes
	[ "$status" -eq 5 ]
	# the other two are still there
	"$SCMCTL" desktop show two-apps | python3 -c '
import json,sys
d = json.load(sys.stdin)
assert sorted(c["caller"] for c in d["stats"]["clients"]) == ["two-apps-clock", "two-apps-term"], d["stats"]'
}

@test "desktop stop: no container, endpoint, service or state file is left, with or without containers" {
	launch
	"$SCMCTL" desktop app add two-apps "$EYES" >/dev/null
	run "$SCMCTL" desktop stop two-apps
	[ "$status" -eq 0 ]
	run "$SCMCTL" --json container list
	echo "$output"
	[ "$(echo "$output" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["containers"]))')" = 0 ]
	run "$SCMCTL" service list
	[[ "$output" != *"gfx-two-apps"* ]]
	[ ! -e "$SCM_RUNTIME_DIR/desktops/two-apps.json" ] && [ ! -e "$SCM_RUNTIME_DIR/desktops/two-apps.d" ]
	run "$SCMCTL" desktop list
	[[ "$output" != *"two-apps"* ]]
	# without containers: the apps are endpoints and host processes
	launch --no-containers
	"$SCMCTL" desktop app add two-apps "$EYES" >/dev/null
	run "$SCMCTL" endpoint list
	[[ "$output" == *"desktop-two-apps-eyes"* ]]
	mpid=$("$SCMCTL" --json desktop list | python3 -c 'import json,sys; print(json.load(sys.stdin)["desktops"][0]["pid"])')
	[ -n "$(pgrep -P "$mpid")" ]
	"$SCMCTL" desktop stop two-apps
	run "$SCMCTL" endpoint list
	[ "$(wc -l <<<"$output")" -eq 1 ]
	[ -z "$(pgrep -P "$mpid")" ]
	run "$SCMCTL" service list
	[[ "$output" != *"gfx-two-apps"* ]]
	run "$SCMCTL" desktop stop two-apps
	[ "$status" -eq 5 ]
}

@test "desktop session: a caller without the right is refused, and the desktop is untouched" {
	launch
	# no profile: the manifest allows the host only (default deny)
	"$SCMCTL" endpoint create stranger >/dev/null
	run "$SCMCTL" call --endpoint stranger desktop stop '{"name":"two-apps"}'
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"not on the allow list"* ]]
	# a container of the desktop-app profile (the apps' own) is denied too
	run "$SCMCTL" container run --name peek --user 65534 --profile base --profile desktop-app -- \
		"$SCMCTL" call --endpoint /run/scm/scm.sock desktop show '{"name":"two-apps"}'
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" != *"$PASSWORD"* ]]
	"$SCMCTL" container rm peek >/dev/null 2>&1 || true
	# a profile that grants every method: list (no secrets) yes; the
	# secrets, the pixels and the lifecycle stay the host's
	"$SCMCTL" endpoint create watcher --profiles desktop-watch >/dev/null
	run "$SCMCTL" call --endpoint watcher desktop list
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"two-apps"* ]] && [[ "$output" != *"$PASSWORD"* ]]
	for m in show stop; do
		run "$SCMCTL" call --endpoint watcher desktop $m '{"name":"two-apps"}'
		echo "$output"
		[ "$status" -ne 0 ]
		[[ "$output" == *"for the host only"* ]] && [[ "$output" != *"$PASSWORD"* ]]
	done
	run "$SCMCTL" call --endpoint watcher desktop app_remove '{"name":"two-apps","app":"term"}'
	[ "$status" -ne 0 ] && [[ "$output" == *"for the host only"* ]]
	run "$SCMCTL" call --endpoint watcher desktop app_add "{\"name\":\"two-apps\",\"app\":$EYES}"
	[ "$status" -ne 0 ] && [[ "$output" == *"for the host only"* ]]
	run "$SCMCTL" call --endpoint watcher desktop screenshot "{\"name\":\"two-apps\",\"file\":\"/dev/null\"}"
	[ "$status" -ne 0 ] && [[ "$output" == *"for the host only"* ]]
	# nor may anyone but the host change who draws on the proxy
	run "$SCMCTL" call --endpoint watcher gfx-two-apps set_apps '{"apps":["watcher"]}'
	[ "$status" -ne 0 ]
	# the desktop is as it was
	"$SCMCTL" desktop show two-apps | python3 -c '
import json,sys
d = json.load(sys.stdin)
assert [a["name"] for a in d["apps"]] == ["clock", "term"], d
assert sorted(c["caller"] for c in d["stats"]["clients"]) == ["two-apps-clock", "two-apps-term"], d["stats"]'
}

@test "desktop session: what a killed manager left is torn down by the next one" {
	launch
	mpid=$("$SCMCTL" --json desktop list | python3 -c 'import json,sys; print(json.load(sys.stdin)["desktops"][0]["pid"])')
	kill -9 "$mpid"
	for _ in $(seq 100); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.05; done
	# its desktop is still there, owned by nobody
	run "$SCMCTL" container list
	[[ "$output" == *"two-apps-term"*"running"* ]]
	# the next manager (started by this call) stops it before it answers
	run "$SCMCTL" --json desktop list
	echo "$output"
	[ "$(echo "$output" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["desktops"]))')" = 0 ]
	run "$SCMCTL" --json container list
	[ "$(echo "$output" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["containers"]))')" = 0 ]
	run "$SCMCTL" service list
	[[ "$output" != *"gfx-two-apps"* ]]
	[ ! -e "$SCM_RUNTIME_DIR/desktops/two-apps.json" ]
	grep -q "left by an earlier session manager" "$SCM_RUNTIME_DIR/logs/desktop.log"
	# and the desktop can be launched again
	launch
}

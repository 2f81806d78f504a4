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
	wait_until 60 test -s "$SCMT/a.png"
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
	no_viewers() { [ "$(viewers)" = 0 ]; }
	wait_until 60 no_viewers
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
stopped() { ! kill -0 "$1" 2>/dev/null; }
agent_waits() { pgrep -f "$G/agent" >/dev/null; }

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
	eyes_shown() {
		"$SCMCTL" desktop screenshot two-apps "$SCMT/with.png" || return 1
		[ "$(frame_pixels "$SCMT/with.png" "$x" "$y" "$border")" -eq $((208 * 4)) ] &&
			[ "$("$CHK" distinct "$SCMT/with.png" "$x" "$y" 200 200)" -ge 2 ] && shown=1
	}
	wait_until 60 eyes_shown
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
	eyes_gone() {
		"$SCMCTL" desktop screenshot two-apps "$SCMT/without.png" || return 1
		[ "$(frame_pixels "$SCMT/without.png" "$x" "$y" "$border")" -eq 0 ] && gone=1
	}
	wait_until 60 eyes_gone
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
	wait_until 60 stopped "$mpid"
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

@test "desktop session: a slow launch holds up no one; a second launch of the name is refused at once" {
	# The apps' agent waits for a gate the test opens: the launch cannot
	# answer before, whatever the machine's speed. (Without containers the
	# apps are the manager's children and get scmd's environment.)
	G=$(mktemp -d /tmp/scm-gate.XXXXXX)
	cat >"$G/agent" <<SH
#!/bin/sh
while [ ! -e "$G/gate" ]; do sleep 0.05; done
exec "$SCM_BUILD/libexec/scm-desktop-agent" "\$@"
SH
	chmod 755 "$G" "$G/agent"
	stop_scmd
	SCM_DESKTOP_AGENT=$G/agent start_scmd
	timeout 90 "$SCMCTL" desktop launch "$SCM_SRC/examples/desktops/two-apps.json" --no-containers >"$SCMT/launch.out" 2>&1 &
	lpid=$!
	# list answers while the launch waits, and shows the desktop starting
	listed=
	listed_starting() { "$SCMCTL" --json desktop list >"$SCMT/list.json" 2>&1 && grep -q '"starting"' "$SCMT/list.json" && listed=1; }
	wait_until 60 listed_starting || { cat "$SCMT/list.json"; false; }
	cat "$SCMT/list.json"
	[ -n "$listed" ]
	run "$SCMCTL" desktop list
	echo "$output"
	[[ "$(sed -n 2p <<<"$output")" =~ ^two-apps\ +starting ]]
	# the same name again: refused now, not after the first is done
	run "$SCMCTL" desktop launch "$SCM_SRC/examples/desktops/two-apps.json" --no-containers
	echo "$output"
	[ "$status" -ne 0 ] && [[ "$output" == *"being launched already"* ]]
	run "$SCMCTL" desktop show two-apps
	[ "$status" -eq 5 ] && [[ "$output" == *"not running yet"* ]]
	# all of that while the launch had not answered
	kill -0 "$lpid"
	[ ! -s "$SCMT/launch.out" ]
	touch "$G/gate"
	wait "$lpid"
	cat "$SCMT/launch.out"
	grep -qx ready "$SCMT/launch.out"
	"$SCMCTL" --json desktop list | python3 -c '
import json,sys
d = json.load(sys.stdin)["desktops"]
assert [(x["name"], x["state"]) for x in d] == [("two-apps", "running")], d'
	# an app add waits for its app the same way (the gate is shut again);
	# a stop sent meanwhile comes after it, and list answers throughout
	rm "$G/gate"
	"$SCMCTL" desktop app add two-apps "$EYES" >"$SCMT/add.out" 2>&1 &
	apid=$!
	# (its agent waiting at the gate: the manager is at the app add)
	wait_until 60 agent_waits
	pgrep -f "$G/agent" >/dev/null
	"$SCMCTL" desktop stop two-apps >"$SCMT/stop.out" 2>&1 &
	spid=$!
	run "$SCMCTL" desktop list
	[ "$status" -eq 0 ] && [[ "$(sed -n 2p <<<"$output")" =~ ^two-apps\ +running ]]
	run "$SCMCTL" desktop app add two-apps "$EYES"
	[ "$status" -eq 5 ] && [[ "$output" == *"being stopped"* ]]
	kill -0 "$apid" && kill -0 "$spid"
	[ ! -s "$SCMT/add.out" ]
	touch "$G/gate"
	wait "$apid"
	grep -q '^app eyes at' "$SCMT/add.out"
	wait "$spid"
	run "$SCMCTL" desktop list
	[[ "$output" != *two-apps* ]]
	# in that order: the launch, the app, the stop
	grep -E '^desktop two-apps: (launched|app eyes added|stopped)' "$SCM_RUNTIME_DIR/logs/desktop.log" | cut -d' ' -f3 >"$SCMT/order"
	[ "$(tr '\n' ' ' <"$SCMT/order")" = "launched app stopped " ]
	rm -rf "$G"
}

@test "desktop session: a graphics proxy that dies comes back with its apps; show prints secrets that work" {
	launch
	old=$PASSWORD
	# the manager's channel to the proxy revoked, the proxy alive: it
	# takes a new channel and changes nothing
	ch=$("$SCMCTL" --json channel list | python3 -c '
import json,sys
print([c for c in json.load(sys.stdin)["channels"] if c["service"] == "gfx-two-apps" and c["endpoint"] == "host"][0]["id"])')
	"$SCMCTL" channel revoke "$ch"
	wait_until 60 grep -q "the proxy is the same" "$SCM_RUNTIME_DIR/logs/desktop.log"
	grep -q "the proxy is the same" "$SCM_RUNTIME_DIR/logs/desktop.log"
	"$SCMCTL" desktop show two-apps | python3 -c '
import json,sys
d = json.load(sys.stdin)
assert d["password"] == sys.argv[1] and "proxy_restarts" not in d and "proxy" not in d, d
assert sorted(c["caller"] for c in d["stats"]["clients"]) == ["two-apps-clock", "two-apps-term"], d["stats"]' "$old"
	ppid=$("$SCMCTL" --json service list | python3 -c '
import json,sys
print([s for s in json.load(sys.stdin)["services"] if s["name"] == "gfx-two-apps"][0]["pid"])')
	[ "$ppid" -gt 0 ]
	kill -9 "$ppid"
	# the manager notices, starts the proxy again and tells it its apps
	back=
	proxy_back() {
		"$SCMCTL" desktop show two-apps >"$SCMT/show.json" 2>/dev/null &&
			python3 -c '
import json,sys
d = json.load(open(sys.argv[1]))
assert d["password"] != sys.argv[2] and d.get("proxy_restarts") == 1
assert sorted(c["caller"] for c in d["stats"]["clients"]) == ["two-apps-clock", "two-apps-term"]' "$SCMT/show.json" "$old" 2>/dev/null &&
			back=1
	}
	wait_until 60 proxy_back || { cat "$SCMT/show.json"; false; }
	cat "$SCMT/show.json"
	[ -n "$back" ]
	read -r PORT PASSWORD < <(python3 -c '
import json,sys
d = json.load(open(sys.argv[1])); print(d["vnc"].split(":")[1], d["password"])' "$SCMT/show.json")
	# the state file holds the new secrets, still 0600
	python3 -c '
import json,sys
d = json.load(open(sys.argv[1]))
assert d["password"] == sys.argv[2] and d["vnc"] == "127.0.0.1:" + sys.argv[3], d' \
		"$SCM_RUNTIME_DIR/desktops/two-apps.json" "$PASSWORD" "$PORT"
	[ "$(stat -c %a "$SCM_RUNTIME_DIR/desktops/two-apps.json")" = 600 ]
	# a viewer authenticates with what show printed, and not with the old one
	SCM_VNC_PASSWORD=$PASSWORD "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --capture "$SCMT/after.png"
	[ "$("$CHK" size "$SCMT/after.png")" = "1280 720" ]
	run env SCM_VNC_PASSWORD=$old "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --capture "$SCMT/old.png"
	[ "$status" -eq 3 ]
	grep -q "its graphics proxy was restarted" "$SCM_RUNTIME_DIR/logs/desktop.log"
}

@test "desktop session: a desktop is its owner's and root's (a rootless scmd's user and root)" {
	id scmtest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin scmtest
	D=$(mktemp -d /tmp/scm-dsown.XXXXXX)
	mkdir -p "$D/cfg"
	chmod 755 "$D"; chown -R scmtest "$D"
	as_user() { setpriv --reuid scmtest --regid scmtest --clear-groups env SCM_RUNTIME_DIR="$D/run" "$@"; }
	setpriv --reuid scmtest --regid scmtest --clear-groups "$SCMD" --runtime-dir "$D/run" --state-dir "$D/state" \
		--config "$D/cfg" --idl-path "$SCM_SRC/stubs/idl" 2>"$D/scmd.log" &
	upid=$!
	wait_until 60 test -S "$D/run/control.sock"
	run as_user timeout 90 "$SCMCTL" desktop launch "$SCM_SRC/examples/desktops/two-apps.json" --no-containers
	echo "$output"
	[ "$status" -eq 0 ]
	upw=$(sed -n 's/^password //p' <<<"$output")
	# the state file: 0600, the owner's
	[ "$(stat -c '%a %U' "$D/run/desktops/two-apps.json")" = "600 scmtest" ]
	# root (allowed on the control socket) sees and may drive it
	run env SCM_RUNTIME_DIR="$D/run" "$SCMCTL" desktop show two-apps
	[ "$status" -eq 0 ] && [[ "$output" == *"$upw"* ]]
	# root's own desktop there is root's: scmd's user may not show or stop it
	sed 's/"two-apps"/"roots"/' "$SCM_SRC/examples/desktops/two-apps.json" >"$D/roots.json"
	run env SCM_RUNTIME_DIR="$D/run" timeout 90 "$SCMCTL" desktop launch "$D/roots.json" --no-containers
	echo "$output"
	[ "$status" -eq 0 ]
	rpw=$(sed -n 's/^password //p' <<<"$output")
	for m in show viewers stop; do
		run as_user "$SCMCTL" desktop $m roots
		echo "$output"
		[ "$status" -ne 0 ] && [[ "$output" == *"for its owner (uid 0) and root only, not uid $(id -u scmtest)"* ]]
		[[ "$output" != *"$rpw"* ]]
	done
	# the list shows how many watch root's desktop, not who
	run as_user "$SCMCTL" desktop list --json
	[ "$status" -eq 0 ]
	python3 -c 'import json,sys; d={x["name"]: x for x in json.load(sys.stdin)["desktops"]}; assert "viewer_list" not in d["roots"] and "viewer_list" in d["two-apps"], d' <<<"$output"
	# another non-root uid does not get in at all
	run setpriv --reuid nobody --regid nogroup --clear-groups env SCM_RUNTIME_DIR="$D/run" "$SCMCTL" desktop show two-apps
	[ "$status" -ne 0 ] && [[ "$output" != *"$upw"* ]]
	run as_user "$SCMCTL" desktop stop two-apps
	[ "$status" -eq 0 ]
	run env SCM_RUNTIME_DIR="$D/run" "$SCMCTL" desktop stop roots
	[ "$status" -eq 0 ]
	kill "$upid"; wait "$upid" || true
	cat "$D/run/logs/desktop.log"
	! grep -qE "ERROR: AddressSanitizer|runtime error:" "$D/run/logs/desktop.log"
	rm -rf "$D"
}

@test "desktop session: a manager killed halfway through a launch leaves what the next one tears down" {
	"$SCMCTL" desktop launch "$SCM_SRC/examples/desktops/two-apps.json" >"$SCMT/launch.out" 2>&1 &
	lpid=$!
	# the state file is written from the launch's first step on
	wait_until 60 test -e "$SCM_RUNTIME_DIR/desktops/two-apps.json"
	mpid=$("$SCMCTL" --json desktop list | python3 -c 'import json,sys; d = json.load(sys.stdin)["desktops"][0]; assert d["state"] == "starting", d; print(d["pid"])')
	kill -9 "$mpid"
	wait "$lpid" || true
	[ "$(stat -c %a "$SCM_RUNTIME_DIR/desktops/two-apps.json")" = 600 ]
	# the next manager (started by this call) tears it down before it answers
	run "$SCMCTL" --json desktop list
	echo "$output"
	[ "$(echo "$output" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["desktops"]))')" = 0 ]
	grep -q "left by an earlier session manager" "$SCM_RUNTIME_DIR/logs/desktop.log"
	run "$SCMCTL" service list
	[[ "$output" != *"gfx-two-apps"* ]]
	# an app container scmd was still starting ends as well
	none_left() {
		n=$("$SCMCTL" --json container list | python3 -c 'import json,sys; print(len([c for c in json.load(sys.stdin)["containers"] if c["state"] != "exited"]))')
		[ "$n" = 0 ]
	}
	wait_until 60 none_left
	"$SCMCTL" --json container list
	[ "$n" = 0 ]
	launch
}

@test "desktop session: a manager told to end during a launch gives up its waits, answers and leaves nothing" {
	G=$(mktemp -d /tmp/scm-gate.XXXXXX)
	printf '#!/bin/sh\nwhile :; do sleep 0.05; done\n' >"$G/agent"
	chmod 755 "$G" "$G/agent"
	stop_scmd
	SCM_DESKTOP_AGENT=$G/agent start_scmd
	timeout 60 "$SCMCTL" desktop launch "$SCM_SRC/examples/desktops/two-apps.json" --no-containers >"$SCMT/launch.out" 2>&1 &
	lpid=$!
	wait_until 60 agent_waits
	pgrep -f "$G/agent" >/dev/null
	mpid=$("$SCMCTL" --json desktop list | python3 -c 'import json,sys; print(json.load(sys.stdin)["desktops"][0]["pid"])')
	kill -TERM "$mpid"
	# the launch is answered (it failed) well before an app's 20 s are up
	run wait "$lpid"
	cat "$SCMT/launch.out"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	wait_until 60 stopped "$mpid"
	! kill -0 "$mpid" 2>/dev/null
	! pgrep -f "$G/agent"
	run "$SCMCTL" endpoint list
	[[ "$output" != *desktop-two-apps* ]]
	run "$SCMCTL" service list
	[[ "$output" != *gfx-two-apps* ]]
	[ ! -e "$SCM_RUNTIME_DIR/desktops/two-apps.json" ]
	rm -rf "$G"
}

#!/usr/bin/env bats
# The desktop clipboard with every app in a container of its own, as
# `scmctl desktop launch` runs them (docs/gfx.md, Clipboard): the clipboard
# rules reach the proxy in the grants of the apps' containers, and text
# copied in one container's X server arrives in another's only where both
# containers' profiles allow it.
load helpers

pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	cp "$SCM_SRC"/examples/profiles/*.json "$SCMT/cfg/profiles/"
	cat >"$SCMT/cfg/profiles/clip-ct.json" <<'JSON'
{ "name": "clip-ct", "priority": 20, "clipboard": [ { "from": "cc-src", "to": "cc-*", "action": "allow" } ] }
JSON
}
setup() {
	for t in Xvfb xclip; do
		command -v $t >/dev/null || { echo "$t missing (scripts/deps/test-gfx.txt)"; return 1; }
	done
	start_scmd
	cat >"$SCMT/cc.json" <<'JSON'
{ "name": "cc", "size": "800x300", "apps": [
  { "name": "src", "command": ["xlogo", "-geometry", "100x80+0+0"], "size": "200x100", "profiles": ["base", "desktop-app", "clip-ct"] },
  { "name": "dst", "command": ["xlogo", "-geometry", "100x80+0+0"], "size": "200x100", "profiles": ["base", "desktop-app", "clip-ct"] },
  { "name": "other", "command": ["xlogo", "-geometry", "100x80+0+0"], "size": "200x100", "profiles": ["base", "desktop-app"] } ] }
JSON
}
teardown() {
	"$SCMCTL" desktop stop cc >/dev/null 2>&1 || true
	stop_scmd
}

# inapp APP CMD: a shell command in the app's container, with its display and cookie.
inapp() {
	"$SCMCTL" container exec "cc-$1" -- sh -c \
		"export DISPLAY=${DISP[$1]} XAUTHORITY=\$(ls -d /tmp/scm-desktop.*)/Xauthority; $2"
}

clip_holds() {
	"$SCMCTL" call gfx-cc stats >"$SCMT/stats.json" || return 1
	python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))['stats']['clipboard']
sys.exit(0 if ($1) else 1)" "$SCMT/stats.json"
}
# clip_stats EXPR: waits until the Python expression over the proxy's
# clipboard stats (c) holds.
clip_stats() {
	wait_until 60 clip_holds "$1" && return 0
	cat "$SCMT/stats.json"
	return 1
}

@test "clipboard in containers: allowed between two containers whose profiles say so, refused into a third" {
	run timeout 120 "$SCMCTL" desktop launch "$SCMT/cc.json"
	echo "$output"
	[ "$status" -eq 0 ]
	declare -gA AX AY DISP
	while read -r kind name at xy _; do
		[ "$kind" = app ] && AX[$name]=${xy%,*} AY[$name]=${xy#*,}
	done <<<"$output"
	while read -r kind name disp; do [ "$kind" = display ] && DISP[$name]=$disp; done <<<"$output"
	PORT=$(sed -n 's/^vnc 127.0.0.1://p' <<<"$output") PASSWORD=$(sed -n 's/^password //p' <<<"$output")
	v() { SCM_VNC_PASSWORD=$PASSWORD timeout 60 "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" "$@"; }
	# xclip serves the selection from the background for a few requests (our checks, the copy)
	inapp src "printf in-src | xclip -selection clipboard -i -loops 3 >/dev/null 2>&1 &"
	clip_in() { [ "$(inapp "$1" 'xclip -selection clipboard -o' 2>/dev/null)" = "$2" ]; }
	wait_until 60 clip_in src in-src
	inapp other "printf other-own | xclip -selection clipboard -i -loops 10 >/dev/null 2>&1 &"
	v --click $((AX[src] + 50)) $((AY[src] + 50)) --chord ctrl+shift+c
	clip_stats "c['source'] == 'cc-src' and c['size'] == 6"
	v --click $((AX[dst] + 50)) $((AY[dst] + 50)) --chord ctrl+shift+v
	wait_until 60 clip_in dst in-src
	[ "$(inapp dst 'xclip -selection clipboard -o')" = in-src ]
	v --click $((AX[other] + 50)) $((AY[other] + 50)) --chord ctrl+shift+v
	clip_stats "any(r['op'] == 'paste' and r['to'] == 'cc-other' and r['decision'] == 'refuse' for r in c['log'])"
	[ "$(inapp other 'xclip -selection clipboard -o')" = other-own ]
	# the proxy's audit lines are in its container's log, which scmd keeps
	"$SCMCTL" container logs provider-gfx-cc-1 | grep -q 'audit .*"op":"paste","from":"cc-src","to":"cc-dst","size":6,"decision":"allow"'
}

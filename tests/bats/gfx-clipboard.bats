#!/usr/bin/env bats
# The desktop clipboard (docs/gfx.md, Clipboard): three apps, each with its
# own Xvfb and agent, on a proxy of their own, behind endpoints that carry
# profiles. Text is put into an app's X selection with xclip, copied with
# Ctrl+Shift+C and pasted with Ctrl+Shift+V, pressed in a real VNC viewer;
# the destination's own selection is read back with xclip. The profiles'
# "clipboard" rules decide, and every transfer leaves an audit record.
load helpers

setup() {
	for t in Xvfb xauth xclip python3; do
		command -v $t >/dev/null || { echo "$t missing (scripts/deps/test-gfx.txt)"; return 1; }
	done
	start_scmd
	APP_PIDS=()
	mkdir -p "$SCMT/cfg/profiles"
	cat >"$SCMT/cfg/profiles/clip-app.json" <<'JSON'
{ "name": "clip-app", "priority": 10,
  "services": [ { "service": "gfx-*", "action": "allow",
                  "methods": ["create_surface", "present", "poll_input", "clipboard_put", "clipboard_get"] } ] }
JSON
	# The apps here draw no X window (sleep): without set_windows their
	# agent cannot declare an empty window list, so the proxy shows each
	# whole surface as one window a click can focus. The hostile client
	# gets set_windows (clip-win) to try malformed window lists.
	cat >"$SCMT/cfg/profiles/clip-win.json" <<'JSON'
{ "name": "clip-win", "priority": 10,
  "services": [ { "service": "gfx-*", "action": "allow", "methods": ["set_windows"] } ] }
JSON
	# cb-a may send to cb-b, and cb-b receive from cb-a: both ends carry it.
	cat >"$SCMT/cfg/profiles/clip-ab.json" <<'JSON'
{ "name": "clip-ab", "priority": 20,
  "clipboard": [ { "from": "cb-a", "to": "cb-?", "action": "allow" } ] }
JSON
	# the viewers' clipboard: from cb-a, and into cb-b
	cat >"$SCMT/cfg/profiles/clip-viewer.json" <<'JSON'
{ "name": "clip-viewer", "priority": 20,
  "clipboard": [ { "from": "cb-a", "to": "@viewer", "action": "allow" },
                 { "from": "@viewer", "to": "cb-b", "action": "allow" } ] }
JSON
	"$SCMCTL" policy reload >/dev/null
	cat >"$SCMT/gfx.json" <<JSON
{ "name": "gfx-cb", "interface": "gfx", "allow": ["host"],
  "exec": ["$SCM_BUILD/libexec/scm-gfx-proxy", "--size", "800x300", "--apps", "cb-a,cb-b,cb-c,cb-h"] }
JSON
	"$SCMCTL" service register "$SCMT/gfx.json" >/dev/null
	read -r PORT PASSWORD VIEWONLY < <("$SCMCTL" call gfx-cb viewer | python3 -c '
import json, sys; v = json.load(sys.stdin); print(v["port"], v["password"], v["viewonly_password"])')
	declare -gA AX AY
}

teardown() {
	for p in "${APP_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	# The proxy ends with its service; a sanitizer report of its (ASan
	# builds) lands in its log and fails the test.
	local pid
	pid=$(pgrep -f "scm-gfx-proxy --size 800x300 --apps cb-a,cb-b,cb-c,cb-h" | head -1)
	"$SCMCTL" service unregister gfx-cb >/dev/null 2>&1
	local bad=0
	proxy_gone() { [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; }
	wait_until 60 proxy_gone || { echo "the proxy did not end with its service"; bad=1; }
	if grep -qE "ERROR: AddressSanitizer|LeakSanitizer|runtime error:" "$SCMT/run/logs/gfx-cb.log" 2>/dev/null; then
		cat "$SCMT/run/logs/gfx-cb.log"
		bad=1
	fi
	stop_scmd
	return $bad
}

agent_up() { grep -q '^agent ' "$SCMT/$1.out" && [ -e "$SCMT/$1.env" ]; }
# app NAME PROFILES: an endpoint with those profiles and an app on it whose
# X display (and cookie) the test may use: $SCMT/NAME.env.
app() {
	"$SCMCTL" endpoint create "$1" --profiles "$2" >/dev/null
	SCM_ENDPOINT=$SCMT/run/endpoints/$1.sock SCM_GFX_SERVICE=gfx-cb \
		"$SCM_BUILD/libexec/scm-desktop-app" --size 200x100 -- \
		sh -c "echo \"\$DISPLAY \$XAUTHORITY\" >'$SCMT/$1.env.tmp'; mv '$SCMT/$1.env.tmp' '$SCMT/$1.env'; exec sleep 600" \
		>"$SCMT/$1.out" 2>"$SCMT/$1.err" 3>&- &
	APP_PIDS+=($!)
	wait_until 60 agent_up "$1" || { cat "$SCMT/$1.err"; false; }
	cat "$SCMT/$1.err"
	local at
	at=$(sed -n 's/^agent .* at \([0-9]*,[0-9]*\) .*/\1/p' "$SCMT/$1.out")
	[ -n "$at" ]
	AX[$1]=${at%,*} AY[$1]=${at#*,}
}

# xsel NAME [TEXT]: reads the app's CLIPBOARD selection, or sets it
# ($SEL: another selection, e.g. primary).
xsel() {
	local d a sel=${SEL:-clipboard}
	read -r d a <"$SCMT/$1.env"
	if [ $# -gt 1 ]; then
		printf '%s' "$2" | DISPLAY=$d XAUTHORITY=$a xclip -selection "$sel" -i -quiet 2>/dev/null &
		APP_PIDS+=($!)
		# owned once xclip answers for it
		wait_until 60 xsel_is "$1" "$2"
		return
	fi
	DISPLAY=$d XAUTHORITY=$a timeout 10 xclip -selection "$sel" -o 2>/dev/null
}

xsel_is() { [ "$(xsel "$1")" = "$2" ]; }

# viewer ARGS...: the VNC viewer with the session's password.
viewer() {
	SCM_VNC_PASSWORD=$PASSWORD timeout 60 "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" "$@"
}

# focus NAME: a click inside the app's surface.
focus() {
	viewer --click $((AX[$1] + 50)) $((AY[$1] + 50))
}

clip_holds() {
	"$SCMCTL" call gfx-cb stats >"$SCMT/stats.json" || return 1
	python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))['stats']['clipboard']
sys.exit(0 if ($1) else 1)" "$SCMT/stats.json"
}
# clip_stats EXPR: waits until the Python expression over the proxy's
# clipboard stats (c) holds; prints them.
clip_stats() {
	wait_until 60 clip_holds "$1" && return 0
	cat "$SCMT/stats.json" "$SCMT"/cb-*.err "$SCMT/run/logs/gfx-cb.log"
	return 1
}

@test "clipboard: an allowed flow copies app A's selection into app B's, and is audited" {
	app cb-a clip-app,clip-ab
	app cb-b clip-app,clip-ab
	text="from-a-$RANDOM"
	xsel cb-b "b-own"
	xsel cb-a "$text"
	focus cb-a
	viewer --chord ctrl+shift+c
	clip_stats "c['copies'] == 1 and c['source'] == 'cb-a' and c['size'] == len('$text')"
	# the chord itself reached no app: cb-a heard the click, the modifiers, no 'c'
	focus cb-b
	viewer --chord ctrl+shift+v
	wait_until 60 xsel_is cb-b "$text"
	[ "$(xsel cb-b)" = "$text" ]
	clip_stats "any(r['op'] == 'paste' and r['from'] == 'cb-a' and r['to'] == 'cb-b' and r['decision'] == 'allow'
	                and r['size'] == len('$text') for r in c['log'])"
	# the proxy's audit stream, in the log scmd keeps for the service
	grep -q '"op":"paste","from":"cb-a","to":"cb-b","size":'${#text}',"decision":"allow"' "$SCMT/run/logs/gfx-cb.log"
}

@test "clipboard: an app's PRIMARY selection (xterm's) is copied when it owns no CLIPBOARD; a paste fills both" {
	app cb-a clip-app,clip-ab
	app cb-b clip-app,clip-ab
	SEL=primary xsel cb-a "primary-$RANDOM"
	want=$(SEL=primary xsel cb-a)
	focus cb-a
	viewer --chord ctrl+shift+c
	clip_stats "c['copies'] == 1 and c['size'] == len('$want')"
	focus cb-b
	viewer --chord ctrl+shift+v
	wait_until 60 xsel_is cb-b "$want"
	[ "$(xsel cb-b)" = "$want" ]
	[ "$(SEL=primary xsel cb-b)" = "$want" ]
}

@test "clipboard: 700 KB arrive whole (INCR from the app's X server); over 1 MiB is refused and audited as such" {
	app cb-a clip-app,clip-ab
	app cb-b clip-app,clip-ab
	read -r d a <"$SCMT/cb-a.env"
	read -r db ab <"$SCMT/cb-b.env"
	python3 -c 'import sys; sys.stdout.write("".join("line %06d of the big selection\n" % i for i in range(22000)))' >"$SCMT/big"
	size=$(stat -c %s "$SCMT/big")
	[ "$size" -gt 600000 ] && [ "$size" -lt 1048576 ]
	DISPLAY=$d XAUTHORITY=$a xclip -selection clipboard -i -quiet "$SCMT/big" 2>/dev/null &
	APP_PIDS+=($!)
	serves() { DISPLAY=$1 XAUTHORITY=$2 xclip -selection clipboard -o 2>/dev/null | cmp -s - "$3"; }
	wait_until 60 serves "$d" "$a" "$SCMT/big"
	focus cb-a
	viewer --chord ctrl+shift+c
	clip_stats "c['copies'] == 1 and c['size'] == $size"
	focus cb-b
	viewer --chord ctrl+shift+v
	wait_until 60 serves "$db" "$ab" "$SCMT/big"
	DISPLAY=$db XAUTHORITY=$ab xclip -selection clipboard -o | cmp - "$SCMT/big"
	# 1.5 MB: the agent stops reading at the cap, the proxy refuses and says why
	cat "$SCMT/big" "$SCMT/big" >"$SCMT/huge"
	DISPLAY=$d XAUTHORITY=$a xclip -selection clipboard -i -quiet "$SCMT/huge" 2>/dev/null &
	APP_PIDS+=($!)
	wait_until 60 serves "$d" "$a" "$SCMT/huge"
	focus cb-a
	viewer --chord ctrl+shift+c
	clip_stats "any(r['op'] == 'copy' and r['decision'] == 'refuse' and 'over the 1 MiB' in r['why'] for r in c['log'])"
	# the desktop clipboard still holds the 700 KB
	clip_stats "c['copies'] == 1 and c['size'] == $size"
}

@test "clipboard: a flow the profiles do not allow is refused, the destination unchanged, and audited" {
	app cb-a clip-app,clip-ab
	app cb-c clip-app
	xsel cb-c "c-own"
	xsel cb-a "secret-$RANDOM"
	focus cb-a
	viewer --chord ctrl+shift+c
	clip_stats "c['copies'] == 1 and c['source'] == 'cb-a'"
	focus cb-c
	viewer --chord ctrl+shift+v
	clip_stats "any(r['op'] == 'paste' and r['to'] == 'cb-c' and r['decision'] == 'refuse' for r in c['log'])"
	[ "$(xsel cb-c)" = "c-own" ]
	clip_stats "c['pastes'] == 0 and c['refused'] >= 1"
	# the reason names cb-c's side: nothing in its profiles lets it receive
	grep '"to":"cb-c"' "$SCMT/run/logs/gfx-cb.log" | grep -q '"decision":"refuse".*no clipboard rule matches cb-a -> cb-c'
}

@test "clipboard: an app can neither fill the desktop clipboard unasked nor fetch it ungranted" {
	app cb-a clip-app,clip-ab
	xsel cb-a "copied-$RANDOM"
	focus cb-a
	viewer --chord ctrl+shift+c
	clip_stats "c['copies'] == 1"
	"$SCMCTL" endpoint create cb-h --profiles clip-app,clip-ab,clip-win >/dev/null
	run env SCM_ENDPOINT=$SCMT/run/endpoints/cb-h.sock SCM_GFX_SERVICE=gfx-cb "$SCM_BUILD/libexec/scm-gfx-client" hostile
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"clipboard_put unasked: 107"*"no copy was asked of this app"* ]]
	[[ "$output" == *"clipboard_get ungranted: 107"*"no paste was granted to this app"* ]]
	clip_stats "c['copies'] == 1 and c['source'] == 'cb-a'"
}

@test "clipboard: the viewer's clipboard joins only where the profiles allow it" {
	app cb-a clip-app,clip-viewer
	app cb-c clip-app
	app cb-b clip-app,clip-viewer
	# cb-a -> @viewer is allowed: the viewer's clipboard gets the text; a
	# view-only viewer watching at the time does not (it sees pixels only)
	xsel cb-a "to-viewer-$RANDOM"
	want=$(xsel cb-a)
	SCM_VNC_PASSWORD=$VIEWONLY timeout 60 "$SCM_BUILD/libexec/scm-gfx-rfb-input" "$PORT" --wait-cut-text 4 \
		>"$SCMT/viewonly.out" 2>&1 &
	vo=$!
	# (not a wait_until: the view-only viewer leaves after its 4 s, so a
	# loaded machine may never show it counted)
	for _ in $(seq 200); do
		"$SCMCTL" call gfx-cb stats | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["stats"]["viewers"] != 1)' && break
		sleep 0.05
	done
	focus cb-a
	run viewer --chord ctrl+shift+c --wait-cut-text 30
	echo "$output"
	[[ "$output" == *"cuttext $want"* ]]
	wait "$vo"
	cat "$SCMT/viewonly.out"
	grep -q '^cuttext-none' "$SCMT/viewonly.out"
	# cb-c's profiles say nothing of the viewer: nothing reaches it
	xsel cb-c "c-private"
	focus cb-c
	run viewer --chord ctrl+shift+c --wait-cut-text 3
	echo "$output"
	[[ "$output" == *"cuttext-none"* ]]
	clip_stats "any(r['op'] == 'send' and r['from'] == 'cb-c' and r['to'] == '@viewer' and r['decision'] == 'refuse'
	                for r in c['log'])"
	# the viewer's cut text: into cb-b (allowed), not into cb-c
	viewer --cut-text "from-viewer"
	clip_stats "c['source'] == '@viewer' and c['size'] == 11"
	focus cb-b
	viewer --chord ctrl+shift+v
	wait_until 60 xsel_is cb-b from-viewer
	[ "$(xsel cb-b)" = "from-viewer" ]
	focus cb-c
	viewer --chord ctrl+shift+v
	clip_stats "any(r['op'] == 'paste' and r['from'] == '@viewer' and r['to'] == 'cb-c' and r['decision'] == 'refuse'
	                for r in c['log'])"
	[ "$(xsel cb-c)" = "c-private" ]
}

@test "clipboard: a reload that changes an app's clipboard rules revokes its gfx channel; others are kept" {
	app cb-a clip-app,clip-ab
	app cb-c clip-app
	run "$SCMCTL" policy reload
	[[ "$output" == *'"channels_revoked": 0'* ]]
	sed -i 's/"cb-?"/"cb-*"/' "$SCMT/cfg/profiles/clip-ab.json"
	run "$SCMCTL" policy reload
	echo "$output"
	[[ "$output" == *'"channels_revoked": 1'* ]]
	# cb-a's agent learns it and ends; cb-c, whose rules did not change, stays
	wait_until 60 grep -q "clipboard rules for gfx-cb changed" "$SCMT/cb-a.err"
	grep -q "clipboard rules for gfx-cb changed" "$SCMT/cb-a.err"
	"$SCMCTL" call gfx-cb stats | python3 -c '
import json, sys
c = [x["caller"] for x in json.load(sys.stdin)["stats"]["clients"]]
assert c == ["cb-c"], c'
}

@test "clipboard: scmctl policy explain names the rule that decides a flow" {
	run "$SCMCTL" policy explain --config "$SCMT/cfg" --profiles clip-app,clip-ab @clipboard cb-a cb-b
	[ "$status" -eq 0 ]
	[[ "$output" == *"clipboard cb-a -> cb-b: allow"* ]]
	[[ "$output" == *"clip-ab.json#/clipboard/0"* ]]
	run "$SCMCTL" policy check --config "$SCMT/cfg" --profiles clip-app @clipboard cb-a cb-b
	[ "$status" -eq 1 ]
	[[ "$output" == *"no clipboard rule matches"* ]]
	# a running endpoint, asked through scmd
	"$SCMCTL" endpoint create cb-x --profiles clip-app,clip-viewer >/dev/null
	run "$SCMCTL" policy explain cb-x @clipboard @viewer cb-b
	[ "$status" -eq 0 ]
	[[ "$output" == *"clipboard @viewer -> cb-b: allow"* ]]
}

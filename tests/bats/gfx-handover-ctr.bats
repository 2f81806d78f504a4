#!/usr/bin/env bats
# The graphics proxy restarted with its channels while it runs in a
# container of its own, as `scmctl desktop launch` (without
# --no-containers) runs it (docs/handover.md, "A provider in a
# container"): a real desktop (Xvfb, xclock and xterm each in a
# container), a real VNC viewer typing into the xterm across `scmctl
# service restart` of the proxy and `scmctl daemon restart`. Each restart
# starts the new proxy in a new container; the viewer's connection, the
# listening ports and the apps' surfaces go over; the keys still reach
# the shell, the viewer never reconnects, and the replaced containers are
# gone.
load helpers
load gfx-handover

pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	cp "$SCM_SRC"/examples/profiles/*.json "$SCMT/cfg/profiles/"
}
CONTAINERS=1

# the proxy's containers (name state), the one running last
proxy_ctrs() { "$SCMCTL" container list | awk '$1 ~ /^provider-gfx-two-apps-[0-9]+$/ { print $1, $2 }'; }
proxy_ctr() { proxy_ctrs | awk '$2 == "running" { print $1 }'; }
one_proxy_ctr() { [ "$(proxy_ctrs | wc -l)" -eq 1 ]; }
# a file the shell in the xterm's container made
typed() { "$SCMCTL" container exec two-apps-term -- test -e "$1"; }

@test "gfx handover in containers: a viewer keeps typing into the xterm across proxy and scmd restarts" {
	launch
	wait_until 60 term_white
	before=$(secrets)
	ctr=$(proxy_ctr)
	[ -n "$ctr" ]
	restarts=${SCM_SAN:+2}
	restarts=${restarts:-3}
	rounds=$((restarts + 1)) # and one scmd restart, in the middle
	f=/tmp/typed$RANDOM
	args=(--security vnc --encodings "tight zrle hextile" --click $((TX + 100)) $((TY + 100))
		--type "touch $f.0" --return)
	for i in $(seq 1 "$rounds"); do
		args+=(--until-file "$SCMT/go.$i" --type "touch $f.$i" --return)
	done
	args+=(--settle 300 --shot "$SCMT/last.png")
	SCM_VNC_PASSWORD=$PASSWORD "$VIEW" "$PORT" "${args[@]}" >"$SCMT/viewer.out" 2>&1 < <(bare sleep 600) &
	BG=$!
	wait_until 60 typed "$f.0"
	pid=$(proxy_pid)
	for i in $(seq 1 "$rounds"); do
		if [ "$i" -eq $((rounds / 2 + 1)) ]; then
			scmd_restart_keeps_proxy
		else
			proxy_restart
			# a new container took over; the old one went, record and all
			old=$ctr
			ctr=$(proxy_ctr)
			[ -n "$ctr" ] && [ "$ctr" != "$old" ]
			"$SCMCTL" container logs "$ctr" | grep -q "took over 2 clients and 1 viewers (0 dropped"
			wait_until 30 one_proxy_ctr
		fi
		[ "$(secrets)" = "$before" ]
		touch "$SCMT/go.$i"
		wait_until 60 typed "$f.$i" || { cat "$SCMT/viewer.out"; "$SCMCTL" container logs "$ctr"; false; }
		# the viewer is still the same connection
		kill -0 "$BG"
	done
	wait "$BG"
	BG=
	cat "$SCMT/viewer.out"
	[ "$("$CHK" distinct "$SCMT/last.png" "$TX" "$TY" 640 100)" -ge 2 ]
	[ "$("$SCMCTL" --json service show gfx-two-apps | python3 -c 'import json,sys; print(json.load(sys.stdin)["restarts"])')" = "$restarts" ]
	# a new viewer gets in with the same password
	SCM_VNC_PASSWORD=$PASSWORD timeout 60 "$VIEW" "$PORT" --capture "$SCMT/new.png"
	[ "$("$CHK" count "$SCMT/new.png" "$TX" "$TY" 640 420 ffffff)" -gt 1000 ]
}

@test "gfx handover in containers: a new proxy that refuses or dies leaves the old one serving, and its container goes" {
	launch
	wait_until 60 term_white
	before=$(secrets)
	pid=$(proxy_pid)
	ctr=$(proxy_ctr)
	# a binary that does not take over (the echo provider): refused
	run "$SCMCTL" service restart gfx-two-apps --exec "$SCM_BUILD/libexec/scm-echo-provider"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"goes on"* ]]
	# one that dies: its last words are in the error
	run "$SCMCTL" service restart gfx-two-apps --exec /bin/false
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"goes on"*"container provider-gfx-two-apps-"*"exited with status 1 before it took over"* ]]
	[ "$(proxy_pid)" = "$pid" ]
	[ "$(proxy_ctr)" = "$ctr" ]
	wait_until 30 one_proxy_ctr
	[ "$(secrets)" = "$before" ]
	# it still serves: a viewer gets in and the next restart works
	SCM_VNC_PASSWORD=$PASSWORD timeout 60 "$VIEW" "$PORT" --capture "$SCMT/new.png"
	[ "$("$CHK" count "$SCMT/new.png" "$TX" "$TY" 640 420 ffffff)" -gt 1000 ]
	run "$SCMCTL" service restart gfx-two-apps
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(proxy_ctr)" != "$ctr" ]
}

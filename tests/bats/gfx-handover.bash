# gfx-handover.bash: the desktop the graphics proxy's handover tests run
# (gfx-handover.bats with processes, gfx-handover-ctr.bats with
# containers), a viewer's helpers, and what the proxy says of itself.

setup() {
	for t in Xvfb xauth xclock xterm python3; do
		command -v $t >/dev/null || { echo "$t missing (scripts/deps/test-gfx.txt)"; return 1; }
	done
	start_scmd
	CHK=$SCM_BUILD/libexec/scm-gfx-pngcheck
	VIEW=$SCM_BUILD/libexec/scm-gfx-rfb-input
}

teardown() {
	for p in ${BG:-}; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	"$SCMCTL" desktop stop two-apps >/dev/null 2>&1 || true
	stop_scmd_sanitized "$SCMT"/run/logs/gfx-two-apps.log*
}

# The example desktop, as the demo runs it (VeNCrypt offered, then VNC
# authentication: the viewers here pick the latter); with CONTAINERS=1
# the proxy and the apps each in a container of their own; more
# arguments go to `desktop launch` (--novnc PORT).
launch() {
	local how=(--no-containers)
	[ -z "${CONTAINERS:-}" ] || how=()
	timeout 90 "$SCMCTL" desktop launch "$SCM_SRC/examples/desktops/two-apps.json" "${how[@]}" "$@" \
		>"$SCMT/run.out" 2>"$SCMT/run.err" 3>&- || true
	cat "$SCMT/run.out" "$SCMT/run.err"
	grep -q '^ready' "$SCMT/run.out"
	read -r TX TY < <(awk '$1 == "app" && $2 == "term" { split($4, a, ","); print a[1], a[2] }' "$SCMT/run.out")
	PORT=$(sed -n 's/^vnc 127.0.0.1://p' "$SCMT/run.out")
	PASSWORD=$(sed -n 's/^password //p' "$SCMT/run.out")
	[ ${#PASSWORD} -eq 8 ] && [ -n "$TX" ]
}

# proxy_restart: `service restart` of the proxy, which says it kept its
# channels and leaves a new process serving; $pid (the old one) is set to
# the new one.
proxy_restart() {
	run "$SCMCTL" service restart gfx-two-apps
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"restarted with its channels"* ]]
	local new
	new=$(proxy_pid)
	[ -n "$new" ] && [ "$new" != "$pid" ]
	pid=$new
}

# scmd_restart_keeps_proxy: `daemon restart`, the proxy's process ($pid)
# left as it was.
scmd_restart_keeps_proxy() {
	run "$SCMCTL" daemon restart
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(proxy_pid)" = "$pid" ]
}

# the viewer secrets and ports as the proxy tells them (the host's call)
secrets() {
	"$SCMCTL" call gfx-two-apps viewer | python3 -c '
import json, sys
v = json.load(sys.stdin)
print(v["port"], v["ws_port"], v["password"], v["viewonly_password"], v["token"], v["security"])'
}

proxy_pid() { "$SCMCTL" service list | awk '$1 == "gfx-two-apps" { print $4 }'; }

# the clock's presents as the proxy counts them (carried over a restart)
clock_presents() {
	"$SCMCTL" call gfx-two-apps stats | python3 -c '
import json, sys
c = {x["caller"]: x for x in json.load(sys.stdin)["stats"]["clients"]}
print(c["desktop-two-apps-clock"]["presents"])'
}
clock_presents_over() { [ "$(clock_presents)" -gt "$1" ]; }

term_white() {
	SCM_VNC_PASSWORD=$PASSWORD timeout 60 "$VIEW" "$PORT" --security vnc --capture "$SCMT/w.png" >/dev/null 2>&1 &&
		[ "$("$CHK" count "$SCMT/w.png" "$TX" "$TY" 640 420 ffffff)" -gt 100000 ]
}

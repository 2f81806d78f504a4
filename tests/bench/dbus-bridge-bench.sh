#!/usr/bin/env bash
# dbus-bridge-bench: a D-Bus method call through scm's D-Bus bridge against
# the same call directly on the bus and through xdg-dbus-proxy (Flatpak's
# filtering proxy, --filter --talk=NAME), in the same run (docs/dbus.md,
# docs/performance.md): on a private dbus-broker (no systemd: its
# controller is scm-dbus-broker-run), then on a private dbus-daemon. The
# test notification daemon serves the call; scmd has the bridge registered
# and a labelled endpoint whose profile grants the call (a container's
# endpoint takes the same path through scmd and the bridge).
set -u
B=${SCM_BUILD:-$PWD/build}
SRC=${SCM_SRC:-.}
ROUNDS=${DBUS_BRIDGE_ROUNDS:-2000}
T=$(mktemp -d /tmp/dbus-bridge-bench.XXXXXX)
pids=()
cleanup() {
	kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$T"
}
trap cleanup EXIT
waitfor() { for _ in $(seq 500); do "$@" && return 0; sleep 0.02; done; echo "dbus-bridge-bench: gave up waiting for: $*" >&2; return 1; }

# one round: a bus ($1: dbus-broker or dbus-daemon) at $T/$1/bus.sock
run_on() {
	local kind=$1 D=$T/$1
	local A=unix:path=$D/bus.sock
	mkdir -p "$D/cfg/profiles"
	cat >"$D/cfg/profiles/bench-dbus.json" <<JSON
{"name":"bench-dbus","priority":1,"services":[{"service":"dbus","methods":["call"],"action":"allow"}],
 "dbus":[{"bus":"$A","destination":"org.freedesktop.Notifications","path_prefix":"/org/freedesktop/Notifications",
  "interface":"org.freedesktop.Notifications","methods":["GetCapabilities"],"action":"allow"}]}
JSON
	if [ "$kind" = dbus-broker ]; then
		"$B/libexec/scm-dbus-broker-run" "$D/bus.sock" >"$D/bus.out" 2>"$D/bus.log" &
		pids+=($!)
		waitfor grep -q ready "$D/bus.out" || return 1
	else
		cat >"$D/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>$A</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_type="*"/></policy>
</busconfig>
XML
		dbus-daemon --config-file="$D/bus.conf" --nofork --nopidfile 2>"$D/bus.log" &
		pids+=($!)
	fi
	"$B/bin/scmd" --runtime-dir "$D/run" --config "$D/cfg" --idl-path "$SRC/stubs/idl" 2>"$D/scmd.log" &
	pids+=($!)
	waitfor test -S "$D/bus.sock" || return 1
	waitfor test -S "$D/run/control.sock" || return 1
	"$B/libexec/scm-test-notifyd" "$A" /dev/null >"$D/notifyd.out" 2>&1 &
	pids+=($!)
	waitfor grep -q ready "$D/notifyd.out" || return 1
	local proxy=
	if command -v xdg-dbus-proxy >/dev/null; then
		xdg-dbus-proxy "$A" "$D/proxy.sock" --filter --talk=org.freedesktop.Notifications 2>"$D/proxy.log" &
		pids+=($!)
		waitfor test -S "$D/proxy.sock" || return 1
		proxy=unix:path=$D/proxy.sock
	else
		echo "dbus-bridge-bench: xdg-dbus-proxy is not installed (scripts/install-deps.sh bench): not compared"
	fi
	printf '{"name":"dbus","interface":"dbus","exec":["%s"],"allow":["host"]}\n' "$B/libexec/scm-dbus-bridge" >"$D/dbus.json"
	SCM_RUNTIME_DIR=$D/run "$B/bin/scmctl" service register "$D/dbus.json" >/dev/null || return 1
	SCM_RUNTIME_DIR=$D/run "$B/bin/scmctl" endpoint create benchdbus --profiles bench-dbus >/dev/null || return 1
	"$B/libexec/scm-dbus-bridge-bench-client" "$kind" "$A" "$D/run/endpoints/benchdbus.sock" "$ROUNDS" $proxy
}
run_on dbus-broker || exit 1
run_on dbus-daemon || exit 1

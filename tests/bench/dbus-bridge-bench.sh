#!/usr/bin/env bash
# dbus-bridge-bench: a D-Bus method call through scm's D-Bus bridge against
# the same call directly on the bus (docs/dbus.md): a private dbus-daemon,
# the test notification daemon, scmd with the bridge registered, and a
# labelled endpoint whose profile grants the call (a container's endpoint
# takes the same path through scmd and the bridge). xdg-dbus-proxy is not
# packaged here, so it is not compared.
set -u
B=${SCM_BUILD:-$PWD/build}
SRC=${SCM_SRC:-.}
T=$(mktemp -d /tmp/dbus-bridge-bench.XXXXXX)
A=unix:path=$T/bus.sock
mkdir -p "$T/cfg/profiles"
cat >"$T/cfg/profiles/bench-dbus.json" <<JSON
{"name":"bench-dbus","priority":1,"services":[{"service":"dbus","methods":["call"],"action":"allow"}],
 "dbus":[{"bus":"$A","destination":"org.freedesktop.Notifications","path_prefix":"/org/freedesktop/Notifications",
  "interface":"org.freedesktop.Notifications","methods":["GetCapabilities"],"action":"allow"}]}
JSON
cat >"$T/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>$A</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_type="*"/></policy>
</busconfig>
XML
dbus-daemon --config-file="$T/bus.conf" --nofork --nopidfile 2>"$T/bus.log" &
BUS=$!
"$B/bin/scmd" --runtime-dir "$T/run" --config "$T/cfg" --idl-path "$SRC/stubs/idl" 2>"$T/scmd.log" &
SCMD=$!
NOTIFYD=
cleanup() {
	[ -z "$NOTIFYD" ] || kill "$NOTIFYD" 2>/dev/null
	kill "$SCMD" "$BUS" 2>/dev/null; wait "$SCMD" "$BUS" 2>/dev/null; rm -rf "$T"
}
trap cleanup EXIT
export SCM_RUNTIME_DIR=$T/run
for _ in $(seq 300); do [ -S "$T/bus.sock" ] && [ -S "$T/run/control.sock" ] && break; sleep 0.02; done
"$B/libexec/scm-test-notifyd" "$A" /dev/null >"$T/notifyd.out" 2>&1 &
NOTIFYD=$!
for _ in $(seq 300); do grep -q ready "$T/notifyd.out" && break; sleep 0.02; done
printf '{"name":"dbus","interface":"dbus","exec":["%s"],"allow":["host"]}\n' "$B/libexec/scm-dbus-bridge" >"$T/dbus.json"
"$B/bin/scmctl" service register "$T/dbus.json" >/dev/null || exit 1
"$B/bin/scmctl" endpoint create benchdbus --profiles bench-dbus >/dev/null || exit 1
"$B/libexec/scm-dbus-bridge-bench-client" "$A" "$T/run/endpoints/benchdbus.sock" "${DBUS_BRIDGE_ROUNDS:-2000}"

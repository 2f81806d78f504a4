#!/usr/bin/env bats
# scmd's API on D-Bus (docs/dbus.md): scm-dbus-manager owns
# org.scm.Manager1 on a private bus set up as the system bus is (deny by
# default, then the policy file scm ships), and gdbus, busctl and
# dbus-send drive scmd through it. A caller the bus lets through is
# checked again by uid (the bus daemon's word, not the caller's): only
# root changes state here (no polkit on the test bus). Each refusal is
# checked on scmd's side: the container was not made, not stopped.
load helpers

setup() {
	start_scmd
	BUSDIR=$SCMT/bus
	mkdir -p "$BUSDIR"
	chmod 755 "$SCMT" "$BUSDIR"
	id scmtest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin scmtest
}

teardown() {
	[ -z "${MGR:-}" ] || kill "$MGR" 2>/dev/null || true
	[ -z "${BUS:-}" ] || kill "$BUS" 2>/dev/null || true
	stop_scmd
}

# BUS: strict (the system bus's defaults and the shipped policy) or open
start_bus() {
	local policy
	if [ "$1" = strict ]; then
		policy="<policy context=\"default\"><allow user=\"*\"/><deny own=\"*\"/><deny send_type=\"method_call\"/>
<allow send_type=\"signal\"/><allow send_requested_reply=\"true\" send_type=\"method_return\"/>
<allow send_requested_reply=\"true\" send_type=\"error\"/><allow receive_type=\"*\"/>
<allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>
<allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Introspectable\"/></policy>
<include>$SCM_SRC/scm/manager/org.scm.Manager1.conf</include>"
	else
		policy='<policy context="default"><allow user="*"/><allow own="*"/><allow send_type="method_call"/><allow send_destination="*"/><allow receive_type="*"/></policy>'
	fi
	local sock=$BUSDIR/$1.sock
	cat >"$BUSDIR/$1.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=$sock</listen><auth>EXTERNAL</auth>
$policy</busconfig>
XML
	dbus-daemon --config-file="$BUSDIR/$1.conf" --nofork --nopidfile 2>"$BUSDIR/$1.log" &
	BUS=$!
	A=unix:path=$sock
	wait_until 60 test -S "$sock"
	chmod 666 "$sock"
	"$SCM_BUILD/libexec/scm-dbus-manager" --bus "$A" --runtime-dir "$SCMT/run" 2>"$BUSDIR/mgr.log" &
	MGR=$!
	wait_until 60 manager_on_bus
}
# (gdbus says Hello first; dbus-send on an --address does not, and the bus
# refuses it)
manager_on_bus() {
	timeout 5 gdbus call --address "$A" --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
		--method org.freedesktop.DBus.NameHasOwner org.scm.Manager1 2>/dev/null | grep -q true
}
state_is() { [ "$(state_of "$1")" = "$2" ]; }

m() { timeout 20 gdbus call --address "$A" --dest org.scm.Manager1 --object-path /org/scm/Manager1 --method "org.scm.Manager1.$1" "${@:2}"; }
as_user() { timeout 20 setpriv --reuid scmtest --regid scmtest --clear-groups "$@"; }
state_of() { "$SCMCTL" --json container show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }

@test "dbus manager: root lists, runs, pauses, stops and removes containers; signals and properties follow" {
	start_bus strict
	dbus-monitor --address "$A" "type='signal',sender='org.scm.Manager1'" >"$BUSDIR/mon.txt" 2>&1 &
	mon=$!
	# (dbus-monitor prints the bus's NameAcquired once its match rules or
	# monitor are in place: the strict bus refuses BecomeMonitor, so it
	# falls back to match rules and never loses its name)
	wait_until 60 grep -q member=NameAcquired "$BUSDIR/mon.txt"
	run m RunContainer c1 "['/bin/sleep','600']" "[]"
	echo "$output"
	[ "$status" -eq 0 ] && [[ "$output" == "('c1',)" ]]
	wait_until 60 state_is c1 running
	run m ListContainers
	[[ "$output" == *"('c1', 'running', uint32 "* ]]
	one_running() { [ "$(busctl --address="$A" get-property org.scm.Manager1 /org/scm/Manager1 org.scm.Manager1 RunningContainers)" = "u 1" ]; }
	wait_until 60 one_running
	[ "$(busctl --address="$A" get-property org.scm.Manager1 /org/scm/Manager1 org.scm.Manager1 RunningContainers)" = "u 1" ]
	run m PauseContainer c1
	[ "$status" -eq 0 ]
	wait_until 60 state_is c1 paused
	[ "$(state_of c1)" = paused ]
	m ResumeContainer c1
	m StopContainer c1 1000
	wait_until 60 state_is c1 exited
	m RemoveContainer c1
	run "$SCMCTL" container show c1
	[ "$status" -ne 0 ]
	# scm's error names become D-Bus error names, with scm's message
	run m PauseContainer nosuch
	[ "$status" -ne 0 ] && [[ "$output" == *"org.scm.Error.NotFound: no running container 'nosuch'"* ]]
	run m RunContainer c2 "@as []" "@as []"
	[ "$status" -ne 0 ] && [[ "$output" == *"InvalidArgs"* ]]
	signals_seen() {
		local s
		for s in running paused exited removed; do
			grep -A2 'member=ContainerStateChanged' "$BUSDIR/mon.txt" | grep -q "\"$s\"" || return 1
		done
		grep -q 'member=PropertiesChanged' "$BUSDIR/mon.txt"
	}
	wait_until 60 signals_seen || true # (the checks below say which is missing)
	kill "$mon"
	cat "$BUSDIR/mon.txt"
	grep -A2 'member=ContainerStateChanged' "$BUSDIR/mon.txt" | grep -q '"running"'
	grep -A2 'member=ContainerStateChanged' "$BUSDIR/mon.txt" | grep -q '"paused"'
	grep -A2 'member=ContainerStateChanged' "$BUSDIR/mon.txt" | grep -q '"exited"'
	grep -A2 'member=ContainerStateChanged' "$BUSDIR/mon.txt" | grep -q '"removed"'
	grep -q 'member=PropertiesChanged' "$BUSDIR/mon.txt"
	# introspection describes it, and services are listed
	busctl --address="$A" introspect org.scm.Manager1 /org/scm/Manager1 | grep -q RunContainer
	run m ListServices
	[ "$status" -eq 0 ]
}

@test "dbus manager: each change is signalled as it happens, a pause and resume in one breath too, and after scmd restarts in place" {
	start_bus open
	"$SCMCTL" container run -d --name quick -- /bin/sleep 600 >/dev/null
	wait_until 60 state_is quick running
	# the manager has seen it run (its signal for that is before the monitor)
	wait_until 60 sh -c "busctl --address='$A' get-property org.scm.Manager1 /org/scm/Manager1 org.scm.Manager1 RunningContainers | grep -qx 'u 1'"
	dbus-monitor --address "$A" "type='signal',sender='org.scm.Manager1'" >"$BUSDIR/mon.txt" 2>&1 &
	mon=$!
	wait_until 60 grep -q member=NameAcquired "$BUSDIR/mon.txt"
	# back to back: no list taken between them would see "paused"
	"$SCMCTL" container pause quick >/dev/null && "$SCMCTL" container resume quick >/dev/null
	states() { grep -A2 'member=ContainerStateChanged' "$BUSDIR/mon.txt" | sed -n 's/^ *string "\(paused\|running\|exited\|removed\)"$/\1/p' | tr '\n' ' '; }
	wait_until 60 sh -c "grep -A2 member=ContainerStateChanged '$BUSDIR/mon.txt' | grep -q '\"running\"'" || true
	echo "states: $(states)"
	[ "$(states)" = "paused running " ]
	# scmd restarts in place: the feed ends, the manager subscribes again
	run "$SCMCTL" daemon restart
	[ "$status" -eq 0 ]
	"$SCMCTL" container stop quick --timeout 1000 >/dev/null
	wait_until 60 sh -c "grep -A2 member=ContainerStateChanged '$BUSDIR/mon.txt' | grep -q '\"exited\"'" || true
	kill "$mon"
	cat "$BUSDIR/mon.txt"
	[ "$(states)" = "paused running exited " ]
}

@test "dbus manager: the shipped bus policy lets another user read, not change; the manager checks again by uid" {
	start_bus strict
	"$SCMCTL" container run -d --name keep -- /bin/sleep 600 >/dev/null
	wait_until 60 state_is keep running
	run timeout 10 as_user gdbus call --address "$A" --dest org.scm.Manager1 --object-path /org/scm/Manager1 --method org.scm.Manager1.ListContainers
	[ "$status" -eq 0 ] && [[ "$output" == *"'keep'"* ]]
	# the bus itself refuses: the policy does not let the call through
	run as_user gdbus call --address "$A" --dest org.scm.Manager1 --object-path /org/scm/Manager1 --method org.scm.Manager1.StopContainer keep 0
	echo "$output"
	[ "$status" -ne 0 ] && [[ "$output" == *"AccessDenied"* ]]
	[ "$(state_of keep)" = running ]
	# nobody but root owns the name
	run as_user dbus-send --address="$A" --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
		org.freedesktop.DBus.RequestName string:org.scm.Manager1 uint32:4
	[[ "$output" != *"uint32 1"* ]]
	kill "$MGR"; wait "$MGR" 2>/dev/null || true
	# a bus that lets everything through: the manager refuses by uid
	kill "$BUS"; wait "$BUS" 2>/dev/null || true
	start_bus open
	run as_user gdbus call --address "$A" --dest org.scm.Manager1 --object-path /org/scm/Manager1 --method org.scm.Manager1.StopContainer keep 0
	echo "$output"
	[ "$status" -ne 0 ] && [[ "$output" == *"AccessDenied: only root may change scm's state (no polkit on this bus)"* ]]
	run as_user gdbus call --address "$A" --dest org.scm.Manager1 --object-path /org/scm/Manager1 --method org.scm.Manager1.RunContainer evil "['/bin/true']" "[]"
	[ "$status" -ne 0 ]
	run "$SCMCTL" container show evil
	[ "$status" -ne 0 ]
	sleep 0.3
	[ "$(state_of keep)" = running ]
	"$SCMCTL" container kill keep
}

#!/usr/bin/env bats
# Host D-Bus services for containers (docs/dbus.md, "The D-Bus bridge"):
# a private bus started here with a small notification daemon on it
# (scm-test-notifyd, which logs every method call it receives), the
# bridge registered as the "dbus" service, and containers that call
# org.freedesktop.Notifications through scm with `scmctl dbus call`. What
# the profile's dbus rules allow arrives; every other call is refused by
# the bridge with a message naming why, and the daemon's log proves it
# never reached the bus.
load helpers

pre_start() {
	BUSDIR=$SCMT/bus
	mkdir -p "$BUSDIR" "$SCMT/cfg/profiles"
	A=unix:path=$BUSDIR/bus.sock
	cat >"$SCMT/cfg/profiles/notify.json" <<JSON
{"name":"notify","priority":10,
 "services":[{"service":"dbus","methods":["call","subscribe","signals"],"action":"allow"}],
 "dbus":[
  {"bus":"$A","destination":"org.freedesktop.Notifications","path_prefix":"/org/freedesktop/Notifications",
   "interface":"org.freedesktop.Notifications","methods":["NotificationClosed"],
   "args":{"arg0":{"range":[1,100]}},"action":"allow"},
  {"bus":"$A","destination":"org.freedesktop.Notifications","path_prefix":"/org/freedesktop/Notifications",
   "interface":"org.freedesktop.Notifications","methods":["Notify"],
   "args":{"arg0":{"in":["scm-app","mail"]},"arg7":{"range":[-1,10000]}},"action":"allow"},
  {"bus":"$A","destination":"org.freedesktop.Notifications","path_prefix":"/org/freedesktop/Notifications",
   "interface":"org.freedesktop.Notifications","methods":["GetCapabilities","Missing"],"action":"allow"},
  {"bus":"$A","destination":"org.freedesktop.Notifications","path_prefix":"/",
   "interface":"org.freedesktop.Notifications","methods":["CloseNotification"],"action":"deny"}
 ]}
JSON
	cat >"$SCMT/cfg/profiles/sigs.json" <<JSON
{"name":"sigs","priority":10,
 "services":[{"service":"dbus","methods":["subscribe","unsubscribe","signals"],"action":"allow"}],
 "dbus":[
  {"bus":"$A","destination":"org.freedesktop.Notifications","path_prefix":"/org/freedesktop/Notifications",
   "interface":"org.freedesktop.Notifications","methods":["NotificationClosed","ActionInvoked"],"action":"allow"}
 ]}
JSON
	cat >"$SCMT/cfg/profiles/nodbus.json" <<JSON
{"name":"nodbus","priority":10,"services":[{"service":"dbus","methods":["call"],"action":"allow"}]}
JSON
}

setup() {
	start_scmd
	cat >"$BUSDIR/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>$A</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_type="*"/></policy>
</busconfig>
XML
	dbus-daemon --config-file="$BUSDIR/bus.conf" --nofork --nopidfile 2>"$BUSDIR/bus.log" &
	BUS=$!
	wait_until 30 test -S "$BUSDIR/bus.sock"
	: >"$BUSDIR/notifyd.log"
	"$SCM_BUILD/libexec/scm-test-notifyd" "$A" "$BUSDIR/notifyd.log" >"$BUSDIR/notifyd.out" 2>&1 &
	NOTIFYD=$!
	wait_until 30 grep -q ready "$BUSDIR/notifyd.out"
	cat >"$SCMT/dbus.json" <<JSON
{"name":"dbus","interface":"dbus","exec":["$SCM_BUILD/libexec/scm-dbus-bridge"],"allow":["host"]}
JSON
	"$SCMCTL" service register "$SCMT/dbus.json" >/dev/null
}

teardown() {
	[ -z "${NOTIFYD:-}" ] || kill "$NOTIFYD" 2>/dev/null || true
	[ -z "${BUS:-}" ] || kill "$BUS" 2>/dev/null || true
	# the bridge ends with scmd; a sanitizer report in its log fails the test
	local bridge
	bridge=$("$SCMCTL" --json service list 2>/dev/null | python3 -c '
import json,sys
print(next((s.get("pid") or "" for s in json.load(sys.stdin)["services"] if s["name"]=="dbus"), ""))' 2>/dev/null || true)
	kill "$SCMD_PID" 2>/dev/null || true
	[ -z "$bridge" ] || [ "$bridge" = 0 ] || wait_until 30 test ! -e "/proc/$bridge" || true
	if grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SCMT/run/logs/dbus.log" 2>/dev/null; then
		stop_scmd
		return 1
	fi
	stop_scmd
}

# in_ctr NAME PROFILE SCRIPT: runs SCRIPT (sh) in a container; $D is
# `scmctl dbus call` with the test bus, $N the notification daemon's
# name and path
in_ctr() {
	"$SCMCTL" container run --name "$1" --profile "$2" --bind "$SCM_SRC/stubs/idl" \
		--env SCM_IDL_PATH="$SCM_SRC/stubs/idl" --env A="$A" --env S="$SCMCTL" --env D="$SCMCTL dbus call $A" \
		--env H="$SCM_BUILD/libexec/scm-test-dbus-signals" \
		--env N="org.freedesktop.Notifications /org/freedesktop/Notifications" -- /bin/sh -c "$3"
}

@test "dbus bridge: granted calls reach the daemon; methods, values, names and the bus daemon the rules do not grant are refused before the bus" {
	run in_ctr app notify '
		t() { name=$1; shift; echo "== $name"; "$@" 2>&1; echo "rc=$?"; }
		I=org.freedesktop.Notifications
		t notify $D $N $I Notify "susssasa{sv}i" scm-app 0 "" hello "from the container" "[]" "{\"urgency\":[\"y\",1]}" 5000
		t caps $D $N $I GetCapabilities
		t missing $D $N $I Missing
		t close $D $N $I CloseNotification u 1
		t info $D $N $I GetServerInformation
		t badapp $D $N $I Notify "susssasa{sv}i" evil 0 "" hi body "[]" "{}" 100
		t badtimeout $D $N $I Notify "susssasa{sv}i" mail 0 "" hi body "[]" "{}" 99999
		t badtype $D $N $I Notify "susssasa{sv}i" mail notanumber "" hi body "[]" "{}" 100
		t otherdest $D org.example.Other /org/freedesktop/Notifications $I Notify "susssasa{sv}i" mail 0 "" hi body "[]" "{}" 100
		t introother $D org.example.Other / org.freedesktop.DBus.Introspectable Introspect
		t introself $D $N org.freedesktop.DBus.Introspectable Introspect
		t own $D org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus RequestName su org.example.Mine 0
		t otherpath $D org.freedesktop.Notifications /org/freedesktop/NotificationsX $I GetCapabilities
		t session $S dbus call session $N $I GetCapabilities
		t unique $D :1.1 /org/freedesktop/Notifications $I GetCapabilities
	'
	echo "$output"
	sec() { awk -v s="== $1" '$0==s{f=1;next} /^== /{f=0} f' <<<"$output"; }
	# allowed: answered by the daemon
	[[ "$(sec notify)" == *"[1]"*"rc=0"* ]]
	[[ "$(sec caps)" == *'[["body","actions"]]'*"rc=0"* ]]
	# refused by the profile, each saying why (exit 4: denied)
	[[ "$(sec close)" == *"CloseNotification"*"denied by profile 'notify'"*"rc=4"* ]]
	[[ "$(sec info)" == *"GetServerInformation"*"no dbus rule of the caller's profiles allows it"*"rc=4"* ]]
	[[ "$(sec badapp)" == *'arg0 "evil" is not one of the allowed values'*"rc=4"* ]]
	[[ "$(sec badtimeout)" == *"arg7 99999 is out of the allowed range"*"rc=4"* ]]
	[[ "$(sec otherdest)" == *"on org.example.Other"*"no dbus rule"*"rc=4"* ]]
	[[ "$(sec introother)" == *"Introspectable.Introspect on org.example.Other"*"no dbus rule"*"rc=4"* ]]
	[[ "$(sec introself)" == *"Introspectable.Introspect on org.freedesktop.Notifications"*"no dbus rule"*"rc=4"* ]]
	[[ "$(sec own)" == *"RequestName"*"no dbus rule"*"rc=4"* ]]
	[[ "$(sec otherpath)" == *"NotificationsX"*"no dbus rule"*"rc=4"* ]]
	[[ "$(sec session)" == *"(bus session): no dbus rule"*"rc=4"* ]]
	[[ "$(sec unique)" == *'":1.1" is not a well-known bus name'*"rc=1"* ]]
	# allowed, and the service's own error comes back as the interface's Remote
	[[ "$(sec missing)" == *"org.freedesktop.DBus.Error.UnknownMethod: no such method here"*"rc=1"* ]]
	# allowed by the rules but not a valid Notify: refused by the bridge
	[[ "$(sec badtype)" == *"arg1: expected an integer"*"rc=1"* ]]
	# the daemon saw the three granted calls and nothing else
	cat "$BUSDIR/notifyd.log"
	[ "$(wc -l <"$BUSDIR/notifyd.log")" -eq 3 ]
	grep -q "^CALL org.freedesktop.Notifications /org/freedesktop/Notifications org.freedesktop.Notifications.Notify susssasa{sv}i app=scm-app summary=hello body=from the container timeout=5000$" "$BUSDIR/notifyd.log"
	grep -q "org.freedesktop.Notifications.GetCapabilities" "$BUSDIR/notifyd.log"
	grep -q "org.freedesktop.Notifications.Missing" "$BUSDIR/notifyd.log"
	# and the bridge owns no name on the bus
	run dbus-send --address="$A" --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.ListNames
	[[ "$output" != *"org.scm"* ]]
}

@test "dbus bridge: the rules are the caller's own profile's, whatever the call says; a bus that is gone is said so" {
	run in_ctr stranger nodbus '$D $N org.freedesktop.Notifications GetCapabilities'
	echo "$output"
	[ "$status" -eq 4 ]
	[[ "$output" == *"no dbus rule of the caller's profiles allows it"* ]]
	[ ! -s "$BUSDIR/notifyd.log" ]
	# the host (no dbus rules) neither
	run "$SCMCTL" dbus call "$A" org.freedesktop.Notifications /org/freedesktop/Notifications org.freedesktop.Notifications GetCapabilities
	[ "$status" -eq 4 ]
	[ ! -s "$BUSDIR/notifyd.log" ]
	# a granted call to a bus that is gone fails as such
	kill "$BUS"
	wait "$BUS" 2>/dev/null || true
	BUS=
	run in_ctr app notify '$D $N org.freedesktop.Notifications GetCapabilities'
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot reach the unix:path=$BUSDIR/bus.sock bus"* ]]
}

@test "dbus bridge: a container gets the signals it subscribed to that its rules allow, arguments checked signal by signal" {
	# refused subscriptions say why; the allowed one waits for two signals
	in_ctr listener notify '
		I=org.freedesktop.Notifications
		$S dbus subscribe $A $N $I ActionInvoked 2>&1; echo "rc=$?"
		$S dbus subscribe $A org.example.Other /org/freedesktop/Notifications $I NotificationClosed 2>&1; echo "rc=$?"
		$S dbus subscribe --count 2 $A $N $I NotificationClosed 2>&1; echo "rc=$?"
	' >"$SCMT/listener.out" 2>&1 < <(bare sleep 120) &
	local ctr=$!
	wait_until 60 grep -q "^subscribed" "$SCMT/listener.out"
	# the daemon emits ActionInvoked and NotificationClosed for each close
	for id in 7 500 8; do
		busctl --address="$A" call org.freedesktop.Notifications /org/freedesktop/Notifications \
			org.freedesktop.Notifications CloseNotification u "$id"
	done
	listener_done() { [ "$(grep -c '^rc=' "$SCMT/listener.out")" -eq 3 ]; }
	wait_until 60 listener_done
	wait "$ctr" || true
	cat "$SCMT/listener.out"
	run cat "$SCMT/listener.out"
	[[ "$output" == *"ActionInvoked on org.freedesktop.Notifications /org/freedesktop/Notifications"*"no dbus rule"*"rc=4"* ]]
	[[ "$output" == *"NotificationClosed on org.example.Other"*"no dbus rule"*"rc=4"* ]]
	# 7 and 8 arrive, in order; 500 is outside arg0's range and ActionInvoked
	# was never granted: neither reaches the container
	[ "$(grep -c '"member":"NotificationClosed"' "$SCMT/listener.out")" -eq 2 ]
	grep -q '"sender":"org.freedesktop.Notifications","path":"/org/freedesktop/Notifications","interface":"org.freedesktop.Notifications","member":"NotificationClosed","signature":"uu","body":\[7,3\]' "$SCMT/listener.out"
	grep -q '"body":\[8,3\]' "$SCMT/listener.out"
	! grep -q '500\|ActionInvoked","signature' "$SCMT/listener.out"
	[[ "$(tail -1 "$SCMT/listener.out")" == "rc=0" ]]
	grep -q "signal dropped: org.freedesktop.Notifications.NotificationClosed.*arg0 500 is out of the allowed range" "$SCMT/run/logs/dbus.log"
}

@test "dbus bridge: unsubscribe ends a subscription: the bus stops sending it, the channel's others go on" {
	local close=(busctl --address="$A" call org.freedesktop.Notifications /org/freedesktop/Notifications
		org.freedesktop.Notifications CloseNotification u)
	in_ctr unsub sigs '"$H" "$A"; echo "rc=$?"' >"$SCMT/unsub.out" 2>&1 < <(bare sleep 120) &
	local ctr=$!
	wait_until 60 grep -q "^subscribed" "$SCMT/unsub.out"
	"${close[@]}" 7
	wait_until 60 grep -q "^unsubscribed" "$SCMT/unsub.out"
	"${close[@]}" 8
	unsub_done() { grep -q '^rc=' "$SCMT/unsub.out"; }
	wait_until 60 unsub_done
	wait "$ctr" || true
	cat "$SCMT/unsub.out"
	run cat "$SCMT/unsub.out"
	[[ "$output" == *"subscribed 1 2"* ]]
	# both came for 7; for 8 only the subscription left
	grep -q '^signal ActionInvoked \[7,"default"\]$' "$SCMT/unsub.out"
	grep -q '^signal NotificationClosed \[7,3\]$' "$SCMT/unsub.out"
	grep -q '^signal NotificationClosed \[8,3\]$' "$SCMT/unsub.out"
	! grep -q '^signal ActionInvoked \[8' "$SCMT/unsub.out"
	# an id the channel no longer (or never) held is not found
	[[ "$output" == *"again: "*"no subscription 2 on this channel"*"[not-found]"* ]]
	[[ "$output" == *"never given: "*"no subscription 999 on this channel"*"[not-found]"* ]]
	[[ "$output" == *"rc=0"* ]]
}

@test "dbus rules in profiles: what a rule cannot grant is refused at load, naming the field" {
	mkdir -p "$SCMT/p/profiles"
	bad() { # JSON-OF-ONE-RULE EXPECTED
		printf '{"name":"b","priority":1,"dbus":[%s]}\n' "$1" >"$SCMT/p/profiles/b.json"
		run "$SCMCTL" policy lint --config "$SCMT/p" --idl "$SCM_SRC/stubs/idl"
		echo "$output"
		[ "$status" -ne 0 ]
		[[ "$output" == *"$2"* ]]
	}
	r='"bus":"session","path_prefix":"/","interface":"org.x.Y","methods":["M"],"action":"allow"'
	bad "{$r,\"destination\":\"org.freedesktop.DBus\"}" "/dbus/0/destination: the bus daemon is never granted"
	bad "{$r,\"destination\":\":1.4\"}" "/dbus/0/destination: \":1.4\" is a unique name"
	bad "{$r,\"destination\":\"nodots\"}" "/dbus/0/destination: expected a well-known bus name"
	bad "{$r,\"destination\":\"org.a.B\",\"args\":{\"argx\":{\"eq\":1}}}" "/dbus/0/args/argx: expected an argument position"
	bad "{$r,\"destination\":\"org.a.B\",\"acton\":\"deny\"}" "/dbus/0/acton: unknown key"
	bad '{"bus":"tcp host","destination":"org.a.B","path_prefix":"/","interface":"org.x.Y","methods":"*","action":"allow"}' "/dbus/0/bus: expected"
	bad '{"bus":"session","destination":"org.a.B","path_prefix":"/a/","interface":"org.x.Y","methods":"*","action":"allow"}' "/dbus/0/path_prefix: expected an object path"
	bad '{"bus":"session","destination":"org.a.B","path_prefix":"/","interface":"org.x.Y","methods":["M"],"args":{"arg0":{"eq":1}},"action":"deny"}' "a deny rule cannot carry args"
}

@test "dbus bridge: typed calls that scm-dbus-stubgen made from introspection XML go through the same rules" {
	run in_ctr typed notify "$SCM_BUILD/libexec/scm-notify-send --app scm-app --timeout 100 $A hello 'typed call'"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *'capabilities ["body","actions"]'* ]]
	[[ "$output" == *"id 1"* ]]
	grep -q "Notify susssasa{sv}i app=scm-app summary=hello body=typed call timeout=100$" "$BUSDIR/notifyd.log"
	# what the profile refuses a shell refuses a typed call too
	run in_ctr typed2 notify "$SCM_BUILD/libexec/scm-notify-send --app evil $A hi"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *'arg0 "evil" is not one of the allowed values'* ]]
	! grep -q "app=evil" "$BUSDIR/notifyd.log"
}

@test "scm-dbus-stubgen: what it cannot write C for is refused with the line and the reason, and nothing is written" {
	G=$SCM_BUILD/bin/scm-dbus-stubgen
	cd "$SCMT"
	printf '<node>\n<interface name="a.b">\n<method name="M"><arg type="q{" direction="in"/></method>\n</interface></node>\n' >bad-type.xml
	run "$G" bad-type.xml out
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"bad-type.xml: line 3: <arg> needs one complete D-Bus type, got q{"* ]]
	[ ! -e out.h ] && [ ! -e out.c ]
	printf '<node><interface name="a.b"><method name="M">\n</interface></node>' >bad-xml.xml
	run "$G" bad-xml.xml out
	[ "$status" -eq 1 ]
	[[ "$output" == *"bad-xml.xml: line 2: mismatched tag"* ]]
	printf '<node><interface name="no_dots"/></node>' >bad-name.xml
	run "$G" bad-name.xml out
	[ "$status" -eq 1 ]
	[[ "$output" == *"<interface> needs a valid interface name, got no_dots"* ]]
	run "$G" --interface org.example.None "$SCM_SRC/examples/dbus/notifications.xml" out
	[ "$status" -eq 1 ]
	[[ "$output" == *"has no interface org.example.None"* ]]
	[ ! -e out.h ]
	# an fd argument cannot pass the bridge: the method is left out, said so
	printf '<node><interface name="a.b"><method name="Fd"><arg type="h"/></method><method name="Ok"/></interface></node>' >fd.xml
	run "$G" fd.xml out
	[ "$status" -eq 0 ]
	grep -q "Fd: left out, file descriptors do not pass the bridge" out.h
	grep -q "^int a_b_ok(scm_channel \*ch, const struct scm_dbus_target \*t, scm_error \*\*ret_err);" out.h
	! grep -q "a_b_fd" out.c
}

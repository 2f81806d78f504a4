#!/usr/bin/env bats
# Container services on the host bus (docs/dbus.md, "Container services on
# the host bus"): the echo provider runs in a container (--trace: it logs
# every call a handler runs), `scmctl service export-dbus` puts it on a
# private bus set up as the system bus is (deny by default, a policy
# directory included), and gdbus, busctl and dbus-send call it from the
# host as different users. What the callers' profiles allow is answered;
# the rest is refused with a D-Bus error and never reaches the provider.
load helpers

pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	# root: greetings for two names, ping, echo, whoami; never crash
	cat >"$SCMT/cfg/profiles/echo-bus-user.json" <<'JSON'
{"name":"echo-bus-user","priority":10,"services":[
 {"service":"echo","methods":["ping","echo","whoami"],"action":"allow"},
 {"service":"echo","methods":["greet"],"args":{"name":{"in":["ann","bob"]}},"action":"allow"},
 {"service":"echo","methods":["crash"],"action":"deny"}]}
JSON
	# nobody: ping only
	cat >"$SCMT/cfg/profiles/echo-bus-guest.json" <<'JSON'
{"name":"echo-bus-guest","priority":10,"services":[{"service":"echo","methods":["ping"],"action":"allow"}]}
JSON
	# slow calls, for the bounds
	cat >"$SCMT/cfg/profiles/echo-bus-slow.json" <<'JSON'
{"name":"echo-bus-slow","priority":10,"services":[{"service":"echo","methods":["ping","sleep"],"action":"allow"}]}
JSON
}

setup() {
	start_scmd
	BUSDIR=$SCMT/bus
	mkdir -p "$BUSDIR/policy.d"
	chmod 755 "$BUSDIR"
	A=unix:path=$BUSDIR/bus.sock
	cat >"$BUSDIR/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>$A</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><deny own="*"/><deny send_type="method_call"/>
 <allow send_type="signal"/><allow send_requested_reply="true" send_type="method_return"/>
 <allow send_requested_reply="true" send_type="error"/>
 <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
 <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
 <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
 <allow receive_type="*"/></policy>
<includedir>$BUSDIR/policy.d</includedir>
</busconfig>
XML
	dbus-daemon --config-file="$BUSDIR/bus.conf" --nofork --nopidfile 2>"$BUSDIR/bus.log" &
	BUS=$!
	wait_until 30 test -S "$BUSDIR/bus.sock"
	cat >"$SCMT/echo.json" <<JSON
{"name":"echo","interface":"echo","exec":["scm-echo-provider","--trace"],"container":true,"allow":[]}
JSON
	"$SCMCTL" service register "$SCMT/echo.json" >/dev/null
	"$SCMCTL" service export-dbus echo --bus "$A" --name org.example.Echo --bus-policy-dir "$BUSDIR/policy.d" \
		--caller 0=echo-bus-user --caller nobody=echo-bus-guest >"$SCMT/export.out" 2>"$SCMT/export.err" < <(bare sleep 600) &
	EXPORT=$!
	wait_until 30 grep -q "^exported" "$SCMT/export.out"
}

teardown() {
	[ -z "${EXPORT:-}" ] || kill "$EXPORT" 2>/dev/null || true
	[ -z "${EXPORT:-}" ] || wait "$EXPORT" 2>/dev/null || true
	[ -z "${BUS:-}" ] || kill "$BUS" 2>/dev/null || true
	if grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SCMT"/export*.err 2>/dev/null; then
		stop_scmd_sanitized "$SCMT"/state/logs/provider-echo-*.log
		return 1
	fi
	stop_scmd_sanitized "$SCMT"/state/logs/provider-echo-*.log
}

# the provider's output: the log of its container (provider-echo-N)
plog() { cat "$SCMT"/state/logs/provider-echo-*.log 2>/dev/null || true; }
reached() { plog | grep -c "echo-provider: call" || true; }
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
O=(--dest org.example.Echo --object-path /org/example/Echo)

# the echo provider's processes (its container's), stopped and resumed so
# that calls stay in flight as long as a test needs
provider_pids() {
	local p kids=() all
	all=$("$SCMCTL" --json service show echo | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$')
	kids=($all)
	while [ "${#kids[@]}" -gt 0 ]; do
		kids=($(for p in "${kids[@]}"; do cat /proc/$p/task/*/children 2>/dev/null; done))
		all="$all ${kids[*]}"
	done
	echo $all
}
provider_signal() {
	local p=$(provider_pids)
	# never "kill -STOP 0" (this process group) when none runs
	[[ -n "$p" && " $p " != *" 0 "* ]] || return 1
	kill -"$1" $p
}
# export NAME ARGS...: echo exported as org.example.NAME, in the background
export_bg() {
	local n=$1
	shift
	"$SCMCTL" service export-dbus echo --bus "$A" --name "org.example.$n" --bus-policy-dir "$BUSDIR/policy.d" \
		"$@" >"$SCMT/export-$n.out" 2>"$SCMT/export-$n.err" < <(bare sleep 600) &
	XPID=$!
	wait_until 30 grep -q "^exported\|cannot\|usage" "$SCMT/export-$n.out" "$SCMT/export-$n.err"
	cat "$SCMT/export-$n.err"
	grep -q "^exported" "$SCMT/export-$n.out"
}
routed() { [ "$(grep -c "member=$1" "$SCMT/monitor.log")" -ge "$2" ]; }

@test "dbus export: gdbus, busctl and dbus-send are answered by the provider in its container; scm's policy refuses the rest before it" {
	# allowed, three clients
	run gdbus call --address "$A" "${O[@]}" --method org.example.Echo.Greet ann
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "('hello, ann',)" ]
	run busctl --address="$A" call org.example.Echo /org/example/Echo org.example.Echo Echo ay 3 1 2 255
	echo "$output"
	[ "$output" = "ay 3 1 2 255" ]
	run dbus-send --bus="$A" --print-reply --dest=org.example.Echo /org/example/Echo org.example.Echo.Ping
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"method return"* ]]
	# the provider sees the caller as the uid's endpoint
	run busctl --address="$A" call org.example.Echo /org/example/Echo org.example.Echo Whoami
	echo "$output"
	[[ "$output" == 'stxt "dbus-org.example.Echo-0" '* ]]
	[ "$(reached)" -eq 4 ]
	# refused by the profile: an argument outside its constraint, a method
	# it denies, one it does not name; each a D-Bus AccessDenied naming why
	run gdbus call --address "$A" "${O[@]}" --method org.example.Echo.Greet eve
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"AccessDenied"*"scm policy of endpoint 'dbus-org.example.Echo-0' (uid 0): echo.greet"* ]]
	run busctl --address="$A" call org.example.Echo /org/example/Echo org.example.Echo Crash
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Access denied"* ]] # busctl says only the error name's errno
	run dbus-send --bus="$A" --print-reply --dest=org.example.Echo /org/example/Echo org.example.Echo.Sleep uint64:1
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"org.freedesktop.DBus.Error.AccessDenied"*"echo.sleep"* ]]
	# another user, mapped to a narrower profile: ping yes, greet no
	run as_nobody busctl --address="$A" call org.example.Echo /org/example/Echo org.example.Echo Ping
	echo "$output"
	[ "$status" -eq 0 ]
	run as_nobody gdbus call --address "$A" "${O[@]}" --method org.example.Echo.Greet ann
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"AccessDenied"*"uid 65534"*"echo.greet"* ]]
	# a user no --caller names: the installed bus policy lets it not even send
	run setpriv --reuid=daemon --regid=daemon --clear-groups dbus-send --bus="$A" --print-reply --dest=org.example.Echo /org/example/Echo org.example.Echo.Ping
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"AccessDenied"*"Rejected send message"* ]]
	# arguments that are not the method's: refused as such
	run busctl --address="$A" call org.example.Echo /org/example/Echo org.example.Echo Greet i 5
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"expected arguments of signature 's', got 'i'"* ]]
	# only the five allowed calls reached the provider, which still runs
	plog
	[ "$(reached)" -eq 5 ]
	! plog | grep -q "call crash"
	grep -q "denied echo.crash" "$SCMT/export.err"
	# and scmd audited the calls as the uid's endpoint
	run "$SCMCTL" channel list
	[[ "$output" == *"dbus-org.example.Echo-0"* ]]
	# a reload that takes echo away: decided anew at the next call, and the
	# channel scmd cut is replaced without a failed call
	sed -i 's/"ping","echo","whoami"/"ping","whoami"/' "$SCMT/cfg/profiles/echo-bus-user.json"
	"$SCMCTL" policy reload >/dev/null
	run busctl --address="$A" call org.example.Echo /org/example/Echo org.example.Echo Echo ay 1 7
	[ "$status" -ne 0 ]
	grep -q "denied echo.echo" "$SCMT/export.err"
	run gdbus call --address "$A" "${O[@]}" --method org.example.Echo.Greet bob
	echo "$output"
	[ "$output" = "('hello, bob',)" ]
	run busctl --address="$A" call org.example.Echo /org/example/Echo org.example.Echo Whoami
	echo "$output"
	[[ "$output" == 'stxt "dbus-org.example.Echo-0" '* && "$output" != *" 1" ]] # a new channel
	[ "$(reached)" -eq 7 ]
}

@test "dbus export: introspection from the IDL; the bus policy snippet and the endpoints last as long as the export" {
	run busctl --address="$A" introspect org.example.Echo /org/example/Echo org.example.Echo
	echo "$output"
	[[ "$output" == *".Greet"*"method"*"s"*"s"* ]]
	[[ "$output" == *".ReadFd"*"method"*"ht"*"ay"* ]]
	grep -q '<allow own="org.example.Echo"/>' "$BUSDIR/policy.d/org.example.Echo.conf"
	grep -q '<policy user="65534">' "$BUSDIR/policy.d/org.example.Echo.conf"
	run "$SCMCTL" endpoint list
	[[ "$output" == *"dbus-org.example.Echo-0"* && "$output" == *"dbus-org.example.Echo-65534"* ]]
	# a second export of the same name is refused, and leaves the first's
	# snippet and endpoints alone
	run "$SCMCTL" service export-dbus echo --bus "$A" --name org.example.Echo --bus-policy-dir "$BUSDIR/policy.d" \
		--caller 0=echo-bus-guest
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"cannot own org.example.Echo"*"it is taken"* ]]
	grep -q '<policy user="65534">' "$BUSDIR/policy.d/org.example.Echo.conf"
	run busctl --address="$A" call org.example.Echo /org/example/Echo org.example.Echo Greet s bob
	[ "$output" = 's "hello, bob"' ]
	# '*' maps every uid no other --caller names: here user daemon, to the
	# guest profile, on a second name beside the first
	"$SCMCTL" service export-dbus echo --bus "$A" --name org.example.Echo2 --bus-policy-dir "$BUSDIR/policy.d" \
		--caller '*=echo-bus-guest' >"$SCMT/export2.out" 2>&1 < <(bare sleep 600) &
	local e2=$!
	wait_until 30 grep -q "^exported" "$SCMT/export2.out"
	run setpriv --reuid=daemon --regid=daemon --clear-groups busctl --address="$A" call org.example.Echo2 /org/example/Echo2 org.example.Echo2 Ping
	echo "$output"
	[ "$status" -eq 0 ]
	run setpriv --reuid=daemon --regid=daemon --clear-groups gdbus call --address "$A" --dest org.example.Echo2 \
		--object-path /org/example/Echo2 --method org.example.Echo2.Greet ann
	echo "$output"
	[[ "$output" == *"AccessDenied"*"endpoint 'dbus-org.example.Echo2-any' (uid 1)"* ]]
	kill "$e2"
	wait "$e2" || true
	[ ! -e "$BUSDIR/policy.d/org.example.Echo2.conf" ]
	# bad input: named
	run "$SCMCTL" service export-dbus echo --bus "$A" --name noDots --no-bus-policy --caller 0=x
	[ "$status" -eq 2 ]
	[[ "$output" == *"--name noDots is not a well-known bus name"* ]]
	run "$SCMCTL" service export-dbus echo --bus "$A" --name org.a.B --no-bus-policy --caller 0
	[ "$status" -eq 2 ]
	[[ "$output" == *"--caller 0: expected UID=PROFILE"* ]]
	run "$SCMCTL" service export-dbus echo --bus "$A" --name org.a.B --caller 0=x
	[ "$status" -eq 2 ]
	[[ "$output" == *"--bus-policy-dir"* ]]
	run "$SCMCTL" service export-dbus nosuch --bus "$A" --name org.a.B --no-bus-policy --caller 0=x
	[ "$status" -ne 0 ]
	[[ "$output" == *"service 'nosuch'"* ]]
	# a policy file already there for a name nobody owns now (a package's,
	# for a service not running) is neither replaced nor removed at exit
	printf '<busconfig><!-- the package'"'"'s --></busconfig>\n' >"$BUSDIR/policy.d/org.example.Pkg.conf"
	run timeout 20 "$SCMCTL" service export-dbus echo --bus "$A" --name org.example.Pkg \
		--bus-policy-dir "$BUSDIR/policy.d" --caller 0=echo-bus-guest
	echo "$output"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	[[ "$output" == *"policy.d/org.example.Pkg.conf exists"* ]]
	grep -q "the package's" "$BUSDIR/policy.d/org.example.Pkg.conf"
	[ -z "$(ls -A "$BUSDIR/policy.d" | grep '^\.')" ]
	# a service name with "--" (which no XML comment may hold) still makes
	# a snippet the bus reads
	sed 's/"name":"echo"/"name":"echo--b"/' "$SCMT/echo.json" >"$SCMT/echo-b.json"
	"$SCMCTL" service register "$SCMT/echo-b.json" >/dev/null
	"$SCMCTL" service export-dbus echo--b --bus "$A" --name org.example.Dash --bus-policy-dir "$BUSDIR/policy.d" \
		--caller 0=echo-bus-user >"$SCMT/export3.out" 2>&1 < <(bare sleep 600) &
	local e3=$!
	wait_until 30 grep -q "^exported\|cannot" "$SCMT/export3.out"
	cat "$SCMT/export3.out"
	grep -q "^exported" "$SCMT/export3.out"
	kill "$e3"
	wait "$e3" || true
	# the end of the export takes its snippet, its name and its endpoints
	kill "$EXPORT"
	wait "$EXPORT" || true
	EXPORT=
	[ ! -e "$BUSDIR/policy.d/org.example.Echo.conf" ]
	run "$SCMCTL" endpoint list
	[[ "$output" != *"dbus-org.example.Echo-"* ]]
	run busctl --address="$A" call org.example.Echo /org/example/Echo org.example.Echo Ping
	[ "$status" -ne 0 ]
}

@test "dbus export: calls in flight are bounded per caller uid and in all: the excess is refused at once, the rest answered" {
	export_bg Slow --caller 0=echo-bus-slow --caller nobody=echo-bus-slow --max-calls-per-caller 2 --max-calls 3
	local slow=$XPID
	local S=(--dest org.example.Slow --object-path /org/example/Slow --method org.example.Slow.Sleep 1)
	# what the bus routes to the export, in the order the export reads it
	dbus-monitor --address "$A" "interface='org.example.Slow'" >"$SCMT/monitor.log" 2>&1 < <(bare sleep 600) &
	local mon=$!
	wait_until 30 grep -q "NameAcquired\|NameLost\|member=" "$SCMT/monitor.log"
	# the provider running (it starts on demand), then stopped: nothing it
	# is sent is answered until resumed
	gdbus call --address "$A" --dest org.example.Slow --object-path /org/example/Slow --method org.example.Slow.Ping
	provider_signal STOP
	gdbus call --address "$A" "${S[@]}" >"$SCMT/q1" 2>&1 < <(bare sleep 600) &
	local q1=$!
	gdbus call --address "$A" "${S[@]}" >"$SCMT/q2" 2>&1 < <(bare sleep 600) &
	local q2=$!
	wait_until 30 routed Sleep 2
	# root's third: refused at once (the provider cannot have answered)
	run gdbus call --address "$A" "${S[@]}"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"LimitsExceeded"*"echo.sleep refused: uid has 2 calls in flight"*"--max-calls-per-caller"* ]]
	# another uid: one more fits the export's 3, the next does not
	as_nobody gdbus call --address "$A" "${S[@]}" >"$SCMT/q3" 2>&1 < <(bare sleep 600) &
	local q3=$!
	wait_until 30 routed Sleep 4
	run as_nobody gdbus call --address "$A" "${S[@]}"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"LimitsExceeded"*"the export has 3 calls in flight"*"--max-calls"* ]]
	provider_signal CONT
	# the first three are answered, and then the quota is free again
	wait "$q1" && wait "$q2" && wait "$q3"
	cat "$SCMT/q1" "$SCMT/q2" "$SCMT/q3"
	[ "$(cat "$SCMT/q1" "$SCMT/q2" "$SCMT/q3")" = "$(printf '()\n()\n()')" ]
	run gdbus call --address "$A" "${S[@]}"
	[ "$status" -eq 0 ]
	grep -q "uid 0: echo.sleep refused: 2 calls in flight of this uid" "$SCMT/export-Slow.err"
	kill "$mon" "$slow"
	wait "$slow" || true
	# bad bounds: named
	run "$SCMCTL" service export-dbus echo --bus "$A" --name org.a.B --no-bus-policy --caller 0=x --max-calls 0
	[ "$status" -eq 2 ]
	[[ "$output" == *"--max-calls 0: expected a number from 1 to 65536"* ]]
	run "$SCMCTL" service export-dbus echo --bus "$A" --name org.a.B --no-bus-policy --caller 0=x --call-timeout 1s
	[ "$status" -eq 2 ]
	[[ "$output" == *"--call-timeout 1s: expected seconds"* ]]
}

@test "dbus export: a call the provider does not answer within --call-timeout gets Timeout, and the next call works" {
	export_bg Quick --caller 0=echo-bus-slow --call-timeout 1 --max-calls-per-caller 1
	local quick=$XPID
	local Q=(--dest org.example.Quick --object-path /org/example/Quick)
	gdbus call --address "$A" "${Q[@]}" --method org.example.Quick.Ping
	provider_signal STOP
	run gdbus call --address "$A" "${Q[@]}" --method org.example.Quick.Sleep 1
	provider_signal CONT
	echo "$output"
	[ "$status" -ne 0 ]
	# the export's error (gdbus's own would come after 25 s, as NoReply)
	[[ "$output" == *"org.freedesktop.DBus.Error.Timeout"*"service 'echo' did not answer echo.sleep within 1000 ms"* ]]
	grep -q "echo.sleep got no answer within 1000 ms" "$SCMT/export-Quick.err"
	# its slot is free (1 per uid), and the provider answers again
	wait_until 30 gdbus call --address "$A" "${Q[@]}" --method org.example.Quick.Ping
	run gdbus call --address "$A" "${Q[@]}" --method org.example.Quick.Sleep 1
	[ "$output" = "()" ]
	kill "$quick"
	wait "$quick" || true
	! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SCMT/export-Quick.err"
}

@test "dbus export: an endpoint of the name it did not make is refused, not replaced; a dead export's is made anew" {
	# an admin's endpoint that happens to have the name
	"$SCMCTL" endpoint create dbus-org.example.Adm-0 --profiles echo-bus-guest >/dev/null
	run timeout 20 "$SCMCTL" service export-dbus echo --bus "$A" --name org.example.Adm \
		--bus-policy-dir "$BUSDIR/policy.d" --caller 0=echo-bus-user
	echo "$output"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	[[ "$output" == *"endpoint 'dbus-org.example.Adm-0' exists and is not one an export left"* ]]
	# still the admin's: same profiles, served
	run bash -c "'$SCMCTL' --json endpoint list | tr -d ' \n'"
	[[ "$output" == *'"name":"dbus-org.example.Adm-0"'*'"profiles":["echo-bus-guest"]'* ]]
	[ ! -e "$BUSDIR/policy.d/org.example.Adm.conf" ]
	# an export killed outright leaves its endpoint (and its snippet, to
	# remove by hand): the next export of the name knows it as its own
	export_bg Dead --caller 0=echo-bus-user
	kill -9 "$XPID"
	wait "$XPID" || true
	run "$SCMCTL" endpoint list
	[[ "$output" == *"dbus-org.example.Dead-0"* ]]
	rm "$BUSDIR/policy.d/org.example.Dead.conf"
	export_bg Dead --caller 0=echo-bus-user
	run busctl --address="$A" call org.example.Dead /org/example/Dead org.example.Dead Greet s ann
	[ "$output" = 's "hello, ann"' ]
	kill "$XPID"
	wait "$XPID" || true
	run "$SCMCTL" endpoint list
	[[ "$output" != *"dbus-org.example.Dead-0"* ]]
}

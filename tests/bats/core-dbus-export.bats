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
	if grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SCMT/export.err" 2>/dev/null; then
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

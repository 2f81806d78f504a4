#!/usr/bin/env bats
# scmd under systemd, without systemd as PID 1: the units pass
# `systemd-analyze verify`; socket activation runs through
# systemd-socket-activate (the first connection starts scmd, which serves
# the sockets it was given and refuses one of the wrong type or path);
# sd_notify reaches a NOTIFY_SOCKET listener (tests/bats/sd-notify-listener.py):
# READY=1 and STATUS=, RELOADING=1 on SIGHUP, STOPPING=1, WATCHDOG=1 pings
# at half of $WATCHDOG_USEC; the unit's NoNewPrivileges= leaves containers
# running; `make install` lays out units, tmpfiles and
# the default /etc/scm tree without overwriting a changed file, and the
# installed scmd serves the vdisk example and, through the installed
# D-Bus bridge, a container's desktop notification from that tree as it is.
load helpers

START=2147483648

setup_file() {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is missing (Debian package systemd, scripts/deps/test-core.txt)"
	# under /var/tmp: containers do not see /tmp, and the installed
	# provider runs in one
	export STAGE=$(mktemp -d /var/tmp/scm-sd-stage.XXXXXX)
	chmod 755 "$STAGE"
	make -s -C "$SCM_SRC" B="${SCM_BUILD#$SCM_SRC/}" SAN="${SCM_SAN:-}" DESTDIR="$STAGE" PREFIX=/usr/local install >/dev/null
}
teardown_file() { rm -rf "$STAGE"; }

setup() {
	SCMT=$(mktemp -d /tmp/scm-bats.XXXXXX)
	chmod 711 "$SCMT"
	export SCMT SCM_RUNTIME_DIR=$SCMT/run
	mkdir -p "$SCMT/run/endpoints" "$SCMT/cfg/services"
	cp "$SCM_SRC/examples/services/echo.json" "$SCMT/cfg/services/"
	SD_ARGS=(--runtime-dir "$SCMT/run" --state-dir "$SCMT/state" --config "$SCMT/cfg" --idl-path "$SCM_SRC/stubs/idl")
}
teardown() {
	[ -z "${NL_PID:-}" ] || { kill "$NL_PID" 2>/dev/null; wait "$NL_PID" 2>/dev/null || true; }
	[ -z "${NOTIFYD:-}" ] || kill "$NOTIFYD" 2>/dev/null || true
	[ -z "${BUS:-}" ] || kill "$BUS" 2>/dev/null || true
	stop_scmd
}

# Starts the notification listener on $SCMT/notify.sock; its lines go to
# $SCMT/notify.log.
listener_start() {
	python3 "$SCM_SRC/tests/bats/sd-notify-listener.py" "$SCMT/notify.sock" "$SCMT/notify.log" &
	NL_PID=$!
	wait_until 60 test -S "$SCMT/notify.sock" && return 0
	echo "the listener did not start"; return 1
}
# notify_wait PATTERN [N]: until the listener has N (default 1) lines matching.
notified() { [ "$(grep -c -- "$1" "$SCMT/notify.log" 2>/dev/null)" -ge "$2" ]; }
notify_wait() {
	wait_until 60 notified "$1" "${2:-1}" && return 0
	echo "no ${2:-1} notifications matching $1:"; cat "$SCMT/notify.log" "$SCMT/scmd.log"; return 1
}

@test "the units pass systemd-analyze verify, and a mistake in one does not" {
	local u=$SCMT/units
	mkdir -p "$u"
	cp "$STAGE/usr/local/lib/systemd/system/"* "$u/"
	# the installed ExecStart names PREFIX/bin/scmd; verify checks it exists
	grep -q '^ExecStart=/usr/local/bin/scmd --config /etc/scm$' "$u/scmd.service"
	sed -i "s#^ExecStart=/usr/local/bin/scmd#ExecStart=$STAGE/usr/local/bin/scmd#" "$u/scmd.service"
	cp "$u/scmd-endpoint@.socket" "$u/scmd-endpoint@demo.socket"
	cd "$u"
	run systemd-analyze verify --man=no scmd.service scmd.socket ./scmd-endpoint@demo.socket
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	grep -q '^Type=notify$' scmd.service
	grep -q '^WatchdogSec=' scmd.service
	grep -q '^ListenSequentialPacket=/run/scm/control.sock$' scmd.socket
	grep -q '^FileDescriptorName=control$' scmd.socket
	grep -q '^SocketMode=0600$' scmd.socket
	# verify does say when something is wrong (it warns, exit 0)
	sed -i 's/^KillMode=mixed/KillMode=bogus/' scmd.service
	sed -i 's/^FileDescriptorName=endpoint-%i/FileDescriptorName=endpoint:%i/' scmd-endpoint@demo.socket
	run systemd-analyze verify --man=no scmd.service ./scmd-endpoint@demo.socket
	[[ "$output" == *"kill mode"*"bogus"* ]]
	[[ "$output" == *"Invalid file descriptor name"*"endpoint:demo"* ]]
}

@test "socket activation: the first scmctl starts scmd on the control socket and a named endpoint" {
	systemd-socket-activate --seqpacket -l "$SCMT/run/control.sock" -l "$SCMT/run/endpoints/demo.sock" \
		--fdname=control:endpoint-demo "$SCMD" "${SD_ARGS[@]}" 2>"$SCMT/scmd.log" &
	SCMD_PID=$!
	wait_until 60 test -S "$SCMT/run/endpoints/demo.sock"
	[ -S "$SCMT/run/control.sock" ]
	# nobody connected yet: still systemd-socket-activate, not scmd
	[ "$(cat /proc/$SCMD_PID/comm)" = systemd-socket- ]
	run "$SCMCTL" status
	echo "$output"; cat "$SCMT/scmd.log"
	[ "$status" -eq 0 ]
	[[ "$output" == "scmd pid $SCMD_PID,"* ]]
	[ "$(cat /proc/$SCMD_PID/comm)" = scmd ]
	grep -q 'control socket .*/control.sock (socket-activated)' "$SCMT/scmd.log"
	# the endpoint is scmd's under its fd name, and serves (echo allows "demo")
	run "$SCMCTL" endpoint list
	[[ "$output" == *"demo "*"$SCMT/run/endpoints/demo.sock"* ]]
	run "$SCMCTL" call --endpoint demo echo greet '{"name":"activated"}'
	[ "$status" -eq 0 ]
	[[ "$output" == *"hello, activated"* ]]
	# the sockets are systemd's: scmd leaves them in place when it stops
	stop_scmd_keep() { kill "$SCMD_PID"; wait "$SCMD_PID" || true; SCMD_PID=; }
	stop_scmd_keep
	[ -S "$SCMT/run/control.sock" ]
	[ -S "$SCMT/run/endpoints/demo.sock" ]
}

@test "socket activation: a socket of the wrong type, or bound elsewhere, is refused by name" {
	# a stream socket as the control socket: scmd does not start
	systemd-socket-activate -l "$SCMT/run/control.sock" --fdname=control "$SCMD" "${SD_ARGS[@]}" 2>"$SCMT/scmd.log" &
	local p=$!
	wait_until 60 test -S "$SCMT/run/control.sock"
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$SCMT/run/control.sock"
	wait "$p" || rc=$?
	cat "$SCMT/scmd.log"
	[ "${rc:-0}" -eq 1 ]
	grep -q '^<3>scmd: cannot start:$' "$SCMT/scmd.log"
	grep -q 'activated control socket (fd 3) is not SOCK_SEQPACKET .*ListenSequentialPacket=' "$SCMT/scmd.log"
	rm -f "$SCMT/run/control.sock"
	# an endpoint bound at another path: scmd runs, without it, and says why
	systemd-socket-activate --seqpacket -l "$SCMT/run/control.sock" -l "$SCMT/elsewhere.sock" \
		--fdname=control:endpoint-demo "$SCMD" "${SD_ARGS[@]}" 2>"$SCMT/scmd.log" &
	SCMD_PID=$!
	wait_until 60 test -S "$SCMT/elsewhere.sock"
	run "$SCMCTL" endpoint list
	[ "$status" -eq 0 ]
	[[ "$output" != *demo* ]]
	grep -q "^<4>scmd: not serving activated socket 'endpoint-demo':" "$SCMT/scmd.log"
	grep -q "bound to $SCMT/elsewhere.sock, not $SCMT/run/endpoints/demo.sock" "$SCMT/scmd.log"
}

@test "hardening: scmd with no_new_privs (NoNewPrivileges=yes) still runs containers" {
	grep -q '^NoNewPrivileges=yes$' "$STAGE/usr/local/lib/systemd/system/scmd.service"
	command -v setpriv >/dev/null || skip "no setpriv (util-linux)"
	setpriv --no-new-privs "$SCMD" "${SD_ARGS[@]}" 2>"$SCMT/scmd.log" &
	SCMD_PID=$!
	wait_until 60 test -S "$SCMT/run/control.sock"
	grep -q '^NoNewPrivs:[[:space:]]*1$' /proc/$SCMD_PID/status
	run "$SCMCTL" container run -- /bin/sh -c 'id -u; echo container ran'
	echo "$output"; cat "$SCMT/scmd.log"
	[ "$status" -eq 0 ]
	[[ "$output" == *"container ran"* ]]
}

@test "sd_notify: READY=1 with STATUS=, RELOADING=1 on SIGHUP, STOPPING=1; no watchdog unless asked" {
	listener_start
	NOTIFY_SOCKET=$SCMT/notify.sock "$SCMD" "${SD_ARGS[@]}" 2>"$SCMT/scmd.log" &
	SCMD_PID=$!
	notify_wait '^[0-9.]* READY=1$'
	grep -q '^[0-9.]* STATUS=1 services, 0 endpoints, 0 containers, 0 channels$' "$SCMT/notify.log"
	# READY=1 comes once the control socket serves
	"$SCMCTL" status >/dev/null
	kill -HUP "$SCMD_PID"
	notify_wait '^[0-9.]* RELOADING=1$'
	notify_wait '^[0-9.]* READY=1$' 2
	kill "$SCMD_PID"; wait "$SCMD_PID" || true; SCMD_PID=
	notify_wait '^[0-9.]* STOPPING=1$'
	cat "$SCMT/notify.log"
	run grep -c WATCHDOG "$SCMT/notify.log"
	[ "$output" = 0 ]
	# the order: ready, reloading, ready, stopping
	[ "$(sed -n 's/^[0-9.]* \([A-Z]*\)=.*/\1/p' "$SCMT/notify.log" | grep -v STATUS | tr '\n' ' ')" = "READY RELOADING READY STOPPING " ]
}

@test "sd_notify: WATCHDOG=1 pings at half of WATCHDOG_USEC, and none for another process's watchdog" {
	listener_start
	# 1 s: a ping every 500 ms
	NOTIFY_SOCKET=$SCMT/notify.sock WATCHDOG_USEC=1000000 "$SCMD" "${SD_ARGS[@]}" 2>"$SCMT/scmd.log" &
	SCMD_PID=$!
	notify_wait '^[0-9.]* WATCHDOG=1$' 6
	grep -q '^<6>scmd: watchdog: a ping every 500 ms$' "$SCMT/scmd.log"
	cat "$SCMT/notify.log"
	# 6 pings are at least 5 half-intervals apart (the timer never fires
	# early; one half-interval of slack for when the listener ran): a
	# count over the time they took, not a latency
	python3 - "$SCMT/notify.log" <<'PY'
import sys
t = [float(l.split()[0]) for l in open(sys.argv[1]) if l.split()[1] == "WATCHDOG=1"]
span = t[5] - t[0]
print("6 pings over %.3f s" % span)
assert span >= 4 * 0.5, span
PY
	kill "$SCMD_PID"; wait "$SCMD_PID" || true; SCMD_PID=
	# WATCHDOG_PID names another process: that one is watched, not scmd
	: >"$SCMT/notify.log"
	NOTIFY_SOCKET=$SCMT/notify.sock WATCHDOG_USEC=200000 WATCHDOG_PID=1 "$SCMD" "${SD_ARGS[@]}" 2>"$SCMT/scmd.log" &
	SCMD_PID=$!
	notify_wait '^[0-9.]* READY=1$'
	"$SCMCTL" status >/dev/null
	kill "$SCMD_PID"; wait "$SCMD_PID" || true; SCMD_PID=
	notify_wait '^[0-9.]* STOPPING=1$'
	run grep -c WATCHDOG "$SCMT/notify.log"
	[ "$output" = 0 ]
}

@test "make install: units, tmpfiles and /etc/scm in place; a changed profile survives install and uninstall" {
	local st=$(mktemp -d /tmp/scm-stage.XXXXXX) mk=(make -s -C "$SCM_SRC" B="${SCM_BUILD#$SCM_SRC/}" SAN="${SCM_SAN:-}" PREFIX=/usr/local)
	"${mk[@]}" DESTDIR="$st" install >/dev/null
	for f in scmd.service scmd.socket scmd-endpoint@.socket; do
		[ -f "$st/usr/local/lib/systemd/system/$f" ] || { echo "no $f"; false; }
	done
	grep -q '^d /run/scm ' "$st/usr/local/lib/tmpfiles.d/scm.conf"
	grep -q '^d /var/lib/scm ' "$st/usr/local/lib/tmpfiles.d/scm.conf"
	[ -f "$st/etc/scm/README" ]
	for p in base dbus-notify desktop-app gfx-proxy vdisk-provider vdisk-reader vdisk-writer; do
		cmp "$SCM_SRC/examples/profiles/$p.json" "$st/etc/scm/profiles/$p.json"
	done
	cmp "$SCM_SRC/examples/services/vdisk.json" "$st/etc/scm/services/vdisk.json"
	cmp "$SCM_SRC/examples/services/dbus.json" "$st/etc/scm/services/dbus.json"
	[ -f "$st/usr/local/share/scm/examples/two-apps.json" ]
	# the administrator changes a profile: install keeps it, and says so
	echo '{"name":"base","priority":0}' >"$st/etc/scm/profiles/base.json"
	rm "$st/etc/scm/profiles/gfx-proxy.json"
	run "${mk[@]}" DESTDIR="$st" install
	[ "$status" -eq 0 ]
	[[ "$output" == *"keeping $st/etc/scm/profiles/base.json, changed here"* ]]
	[ "$(cat "$st/etc/scm/profiles/base.json")" = '{"name":"base","priority":0}' ]
	# a deleted one comes back (it is missing, not changed)
	cmp "$SCM_SRC/examples/profiles/gfx-proxy.json" "$st/etc/scm/profiles/gfx-proxy.json"
	# an upgrade: a file as an older install shipped it (its sum recorded
	# then), never changed here, gets the new version; a changed one stays
	local sums=$st/usr/local/share/scm/etc-scm.sha256
	grep -q "  profiles/dbus-notify.json$" "$sums"
	echo '{"name":"dbus-notify","priority":1}' >"$st/etc/scm/profiles/dbus-notify.json"
	sed -i "s|^[0-9a-f]*  profiles/dbus-notify.json$|$(sha256sum <"$st/etc/scm/profiles/dbus-notify.json" | cut -d' ' -f1)  profiles/dbus-notify.json|" "$sums"
	run "${mk[@]}" DESTDIR="$st" install
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"updated $st/etc/scm/profiles/dbus-notify.json (unchanged since the last install)"* ]]
	cmp "$SCM_SRC/examples/profiles/dbus-notify.json" "$st/etc/scm/profiles/dbus-notify.json"
	[ "$(cat "$st/etc/scm/profiles/base.json")" = '{"name":"base","priority":0}' ]
	# uninstall takes what is as shipped and leaves the changed file
	run "${mk[@]}" DESTDIR="$st" uninstall
	[ "$status" -eq 0 ]
	run find "$st" -not -type d
	rm -rf "$st"
	[ "$output" = "$st/etc/scm/profiles/base.json" ]
}

@test "the installed scmd serves the vdisk example from the installed /etc/scm, nothing copied" {
	unshare -m --propagation private true 2>/dev/null || skip "no mount namespaces"
	local E=$STAGE/etc/scm
	# /srv/disks, as the installed tmpfiles.d entry makes it, in a private
	# mount namespace of scmd's (the host's /srv stays untouched)
	line=$(grep '^d /srv/disks ' "$STAGE/usr/local/lib/tmpfiles.d/scm.conf")
	read -r _ dir mode user group _ <<<"$line"
	[ "$dir $user $group" = "/srv/disks $START $START" ]
	cat >"$SCMT/scmd-ns" <<SH
#!/bin/sh
exec unshare -m --propagation private sh -c 'mount -t tmpfs -o mode=755 scm-test /srv && mkdir -m $mode /srv/disks && chown $user:$group /srv/disks && exec "\$0" "\$@"' "$STAGE/usr/local/bin/scmd" "\$@"
SH
	chmod +x "$SCMT/scmd-ns"
	"$SCMT/scmd-ns" --runtime-dir "$SCMT/run" --state-dir "$SCMT/state" --config "$E" \
		--idl-path "$STAGE/usr/local/share/scm/idl" 2>"$SCMT/scmd.log" &
	SCMD_PID=$!
	wait_until 60 test -S "$SCMT/run/control.sock"
	C=$STAGE/usr/local/bin/scmctl
	# the manifests in /etc/scm/services are registered at start
	run "$C" service list
	echo "$output"; cat "$SCMT/scmd.log"
	[[ "$output" == *echo* ]]
	[[ "$output" == *vdisk* ]]
	run grep -c skipping "$SCMT/scmd.log"
	[ "$output" = 0 ]
	# the host makes a disk through the provider, in its container with
	# the installed vdisk-provider profile's /srv/disks
	run "$C" call vdisk create '{"path":"/srv/disks/a.vhdx","size":8388608,"block_size":0,"sector_size":0,"fixed":false,"parent":""}'
	echo "$output"; cat "$SCMT/scmd.log"
	[ "$status" -eq 0 ]
	run nsenter -t "$SCMD_PID" -m stat -c '%u %s' /srv/disks/a.vhdx
	echo "$output"
	[[ "$output" == "$START "* ]]
	run nsenter -t "$SCMD_PID" -m "$STAGE/usr/local/bin/scm-vdisk" info /srv/disks/a.vhdx
	[[ "$output" == *"8 MiB"* || "$output" == *8388608* ]]
	# the installed reader and writer profiles, on endpoints
	"$C" endpoint create reader --profiles vdisk-reader >/dev/null
	run "$C" call --endpoint reader vdisk create '{"path":"/srv/disks/b.vhdx","size":8388608,"block_size":0,"sector_size":0,"fixed":false,"parent":""}'
	[ "$status" -ne 0 ]
	[[ "$output" == *denied* ]]
	run "$C" call --endpoint reader vdisk open '{"path":"/srv/disks/a.vhdx","readonly":true,"shared":false}'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *handle* ]]
	# the installed profiles lint clean, and the desktop's merge as its apps carry them
	run "$C" policy lint --config "$E" --idl "$STAGE/usr/local/share/scm/idl"
	echo "$output"
	[ "$status" -eq 0 ]
	run "$C" policy check --config "$E" --idl "$STAGE/usr/local/share/scm/idl" --profiles base,desktop-app gfx-two-apps present
	echo "$output"
	[ "$status" -eq 0 ]
}

# The new user's notification (issue 16's trial): the installed scmd, the
# installed bridge manifest and dbus-notify profile, nothing copied; a
# private session bus with the test's notification daemon stands in for
# the desktop's. The container's Notify arrives; Introspect does not.
@test "the installed scmd sends a desktop notification from a container through the installed bridge, nothing copied" {
	command -v dbus-daemon >/dev/null || skip "dbus-daemon is missing"
	local L=$STAGE/usr/local A="unix:path=$SCMT/bus.sock"
	cat >"$SCMT/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>$A</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_type="*"/></policy>
</busconfig>
XML
	bare dbus-daemon --config-file="$SCMT/bus.conf" --nofork --nopidfile 2>"$SCMT/bus.log" &
	BUS=$!
	wait_until 30 test -S "$SCMT/bus.sock"
	: >"$SCMT/notifyd.log"
	bare "$L/libexec/scm/scm-test-notifyd" "$A" "$SCMT/notifyd.log" >"$SCMT/notifyd.out" 2>&1 &
	NOTIFYD=$!
	wait_until 30 grep -q ready "$SCMT/notifyd.out"
	DBUS_SESSION_BUS_ADDRESS=$A "$L/bin/scmd" --runtime-dir "$SCMT/run" --state-dir "$SCMT/state" \
		--config "$STAGE/etc/scm" --idl-path "$L/share/scm/idl" 2>"$SCMT/scmd.log" &
	SCMD_PID=$!
	wait_until 60 test -S "$SCMT/run/control.sock"
	run "$L/bin/scmctl" service list
	echo "$output"
	[[ "$output" == *dbus* ]]
	run "$L/bin/scmctl" container run --profile dbus-notify -- "$L/bin/scmctl" dbus call session \
		org.freedesktop.Notifications /org/freedesktop/Notifications org.freedesktop.Notifications Notify \
		'susssasa{sv}i' mail 0 '' 'New mail' 'From: ann' '[]' '{}' 5000
	echo "$output"; cat "$SCMT/scmd.log"
	[ "$status" -eq 0 ]
	run "$L/bin/scmctl" container run --profile dbus-notify -- "$L/bin/scmctl" dbus call session \
		org.freedesktop.Notifications /org/freedesktop/Notifications org.freedesktop.DBus.Introspectable Introspect
	echo "$output"
	[ "$status" -eq 4 ]
	kill "$NOTIFYD" "$BUS"
	NOTIFYD= BUS=
	cat "$SCMT/notifyd.log"
	[ "$(wc -l <"$SCMT/notifyd.log")" -eq 1 ]
	grep -q "Notify susssasa{sv}i app=mail summary=New mail body=From: ann timeout=5000$" "$SCMT/notifyd.log"
}

#!/usr/bin/env bats
# Attached runs from a terminal: the container gets a pty of its own that
# scmctl relays, never the caller's terminal. The "caller's terminal" here
# is a pty this test holds (tests/bats/pty-run.py), so the test can look
# at its settings and its input queue after scmctl is gone.
load helpers

H=$SCM_BUILD/libexec/scm-test-helper
PTY_RUN="python3 $SCM_SRC/tests/bats/pty-run.py"

setup() { start_scmd; }
teardown() { stop_scmd; }

@test "terminal: a program that turns echo off leaves the caller's terminal as it was" {
	run $PTY_RUN -- "$SCMCTL" container run --name noecho -- "$H" noecho
	echo "$output"
	[ "$status" -eq 0 ]
	# It did turn echo off, on its own terminal...
	[[ "$output" == *"noecho: OK"* ]]
	[[ "$output" == *"exit 0"* ]]
	# ...and the caller's terminal has echo on, and is not left raw.
	[[ "$output" == *"outer: echo on, icanon on"* ]]
}

@test "terminal: TIOCSTI inside an attached run injects nothing into the caller's input" {
	run $PTY_RUN -- "$SCMCTL" container run --name sti -- "$H" tiocsti "id; echo INJECTED"
	echo "$output"
	[[ "$output" == *"tiocsti: EPERM"* ]]
	[[ "$output" == *"outer input: 0 bytes"* ]]
}

@test "terminal: the container's pty has the caller's window size; stdin is a terminal inside" {
	run $PTY_RUN --rows 33 --cols 101 -- "$SCMCTL" container run --name size -- \
		/bin/sh -c 'stty size; [ -t 0 ] && echo stdin-is-a-tty'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"33 101"* ]]
	[[ "$output" == *"stdin-is-a-tty"* ]]
	# The pty is the container's own (its devpts), as with runc: tty names
	# it, and /dev/pts inside shows it.
	run $PTY_RUN -- "$SCMCTL" container run --name ttyname -- /bin/sh -c 'tty; ls /dev/pts | tr "\n" " "; echo'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"/dev/pts/0"* ]]
	[[ "$output" == *"0 ptmx"* ]]
	# Input typed on the caller's terminal reaches the program.
	run $PTY_RUN --input 'hello-from-outside\n' -- "$SCMCTL" container run --name input -- \
		/bin/sh -c 'read line; echo "got:$line"'
	echo "$output"
	[[ "$output" == *"got:hello-from-outside"* ]]
}

@test "terminal: without a terminal on stdin nothing changes (a pipe in, output to the log)" {
	run sh -c "echo piped | '$SCMCTL' container run --name piped -- /bin/sh -c 'read l; echo got:\$l; [ -t 0 ] || echo not-a-tty'"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"got:piped"* ]]
	[[ "$output" == *"not-a-tty"* ]]
	run "$SCMCTL" container logs piped
	[[ "$output" == *"got:piped"* ]]
}

@test "terminal: after container exec from a terminal, the terminal's settings are back" {
	"$SCMCTL" container run -d --name bg -- "$H" sleep 30 >/dev/null
	run $PTY_RUN -- "$SCMCTL" container exec bg -- "$H" noecho
	echo "$output"
	"$SCMCTL" container kill bg >/dev/null 2>&1 || true
	[[ "$output" == *"noecho: OK"* ]]
	[[ "$output" == *"outer: echo on, icanon on"* ]]
}

@test "terminal: stdin a terminal, stdout a file: a pty, and the file gets no \\r" {
	python3 -c '
import os, subprocess, sys
m, s = os.openpty()
out = subprocess.run(sys.argv[1:], stdin=s, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     start_new_session=True, timeout=30).stdout
sys.stdout.write(repr(out))' "$SCMCTL" container run --name tofile -- /bin/sh -c '[ -t 0 ] && printf "a\nb\n"' >"$SCMT/out"
	cat "$SCMT/out"
	[ "$(cat "$SCMT/out")" = "b'a\\nb\\n'" ]
}

@test "rootless: a user's scmd gives an attached run a pty too; the caller's terminal keeps echo" {
	id scmtest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin scmtest
	D=$(mktemp -d /tmp/scm-rootless-tty.XXXXXX)
	mkdir -p "$D/cfg"
	chmod 755 "$D"; chown -R scmtest "$D"
	setpriv --reuid scmtest --regid scmtest --clear-groups "$SCMD" --runtime-dir "$D/run" --state-dir "$D/state" --config "$D/cfg" \
		--idl-path "$SCM_SRC/stubs/idl" 2>"$D/scmd.log" &
	upid=$!
	wait_until 60 test -S "$D/run/control.sock"
	run $PTY_RUN -- setpriv --reuid scmtest --regid scmtest --clear-groups env SCM_RUNTIME_DIR="$D/run" \
		"$SCMCTL" container run -- "$H" noecho
	echo "$output"
	kill "$upid"; wait "$upid" || true
	rm -rf "$D"
	[[ "$output" == *"noecho: OK"* ]]
	[[ "$output" == *"exit 0"* ]]
	[[ "$output" == *"outer: echo on, icanon on"* ]]
}

@test "terminal: -t without a terminal: still a pty, and the end of stdin is the end of its input" {
	run sh -c "printf 'one\ntwo\n' | '$SCMCTL' container run -t --name forced -- /bin/sh -c '[ -t 0 ] && echo tty; cat; echo done'"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *tty*one*two*done* ]]
	run sh -c "true | '$SCMCTL' container run -t --name forced-tty -- /bin/sh -c 'tty'"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"/dev/pts/0"* ]]
}

@test "terminal: a bundle's process.terminal does not hand it scmd's own controlling terminal" {
	# A second scmd with a controlling terminal (script gives it a pty).
	local T B spid
	T=$(mktemp -d /tmp/scm-ctty.XXXXXX)
	mkdir -p "$T/cfg"
	chmod 711 "$T"
	script -qfc "exec '$SCMD' --runtime-dir '$T/run' --state-dir '$T/state' --config '$T/cfg' --idl-path '$SCM_SRC/stubs/idl' --subids 2147483648:65536" \
		/dev/null >"$T/scmd.out" 2>&1 &
	spid=$!
	wait_until 60 test -S "$T/run/control.sock"
	B=$(mktemp -d /var/tmp/scm-ctty-b.XXXXXX)
	mkdir -p "$B/rootfs"
	(cd "$B" && crun spec)
	cp "$H" "$B/rootfs/helper"
	jq '.process.terminal=true | .process.args=["/helper","open","/dev/tty"]' "$B/config.json" >"$B/c" &&
		mv "$B/c" "$B/config.json"
	# scmd runs it in a user namespace: root inside is the range's first
	# id, which must reach the bundle and make its mount points
	chmod 755 "$B"; chown -R 2147483648:2147483648 "$B/rootfs"
	run sh -c "echo | SCM_RUNTIME_DIR='$T/run' '$SCMCTL' container run --bundle '$B'"
	echo "$output"
	kill $(pgrep -P "$spid") 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	rm -rf "$B" "$T"
	[ "$output" = "open /dev/tty: ENXIO" ]
}

#!/usr/bin/env bats
# scmd never waits on a container, and containers' lives are tracked by
# object, not by name: control-socket latency while a launch hangs on a
# dead mount or many mounts are set up, an exec stuck before its execve,
# stop/rm/run of the same name, what a killed scmd leaves behind, scmd's
# file descriptors under many containers, names that are paths, the IDL
# set read once, shutdown with one deadline for all containers.
#
# The dead mount is tests/tools/stuck-fuse.py (lookups never answered),
# mounted in a private mount namespace that only this test's scmd shares,
# so no other program on the machine can trip over it.
load helpers
load ../helper/container-common

PING=$SCM_BUILD/libexec/scm-ctl-ping

setup_file() { container_setup_file; }
teardown_file() { container_teardown_file; }

# start_scmd_ns [SCMD ARGS]: scmd and the stuck FUSE mount at $SCMT/fuse in
# a mount namespace of their own.
start_scmd_ns() {
	SCMT=$(mktemp -d /tmp/scm-bats.XXXXXX)
	chmod 755 "$SCMT"
	export SCMT SCM_RUNTIME_DIR=$SCMT/run
	mkdir -p "$SCMT/cfg/services" "$SCMT/fuse"
	if declare -F pre_start >/dev/null; then pre_start; fi
	# SCMD_AS=user: a rootless scmd (the mount is allow_other).
	local as=
	if [ "${SCMD_AS:-root}" = user ]; then
		chown "$TEST_USER" "$SCMT"
		as="setpriv --reuid $TEST_USER --regid $TEST_USER --clear-groups"
	fi
	unshare -m --propagation private -- sh -c '
		python3 "$1" "$2" >"$3/fuse.out" 2>&1 &
		echo $! >"$3/fuse.pid"
		for i in $(seq 3000); do grep -q ready "$3/fuse.out" && break; sleep 0.02; done
		shift 3; exec "$@"' sh "$SCM_SRC/tests/tools/stuck-fuse.py" "$SCMT/fuse" "$SCMT" \
		$as "$SCMD" --runtime-dir "$SCMT/run" --state-dir "$SCMT/state" --config "$SCMT/cfg" \
		--idl-path "$SCM_SRC/stubs/idl" "$@" \
		2>"$SCMT/scmd.log" &
	SCMD_PID=$!
	wait_until 60 test -S "$SCMT/run/control.sock" && return 0
	echo "scmd did not start:"; cat "$SCMT/scmd.log" "$SCMT/fuse.out"
	return 1
}

kill_running() {
	"$SCMCTL" --json container list 2>/dev/null | jq -r '.containers[] | select(.state!="exited") | .name' |
		while read -r n; do "$SCMCTL" container kill "$n" >/dev/null 2>&1 || true; done
}

teardown() {
	[ -n "${SCMT:-}" ] && [ -S "$SCMT/run/control.sock" ] && kill_running
	[ -n "${BGPID:-}" ] && kill "$BGPID" 2>/dev/null
	local f=${SCMT:-}/fuse.pid
	stop_scmd_keep
	# The FUSE server last: its end aborts the mount, and anything still
	# waiting on it gets ENOTCONN.
	[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	[ -n "${SCMT:-}" ] && rm -rf "$SCMT"
	[ -n "${D:-}" ] && rm -rf "$D"
	return 0
}
stop_scmd_keep() {
	if [ -n "${SCMD_PID:-}" ]; then
		kill "$SCMD_PID" 2>/dev/null || true
		wait "$SCMD_PID" 2>/dev/null || true
	fi
	if [ -n "${SCMT:-}" ] && grep -qE "ERROR: AddressSanitizer|runtime error:" "$SCMT/scmd.log" 2>/dev/null; then
		echo "scmd reported a memory error:"; cat "$SCMT/scmd.log"; return 1
	fi
}

wait_state() { # NAME STATE
	wait_until 60 state_is "$1" "$2" && return 0
	echo "container $1 never reached state $2:"; "$SCMCTL" --json container show "$1"; return 1
}
state_is() { "$SCMCTL" --json container show "$1" 2>/dev/null | jq -e --arg s "$2" '.state==$s' >/dev/null; }
no_containers() { "$SCMCTL" --json container list | jq -e '.containers==[]' >/dev/null; }
none_running() { "$SCMCTL" --json container list | jq -e '[.containers[] | select(.state!="exited")] == []' >/dev/null; }
stopped() { ! kill -0 "$1" 2>/dev/null; }

# A bundle running the test helper on host binaries, plus MOUNTS (a JSON
# array of extra mounts): bundle DIR MOUNTS ARGS...
bundle() {
	local dir=$1 mounts=$2; shift 2
	make_bundle "$dir" "$@"
	bundle_edit "$dir" ".mounts += $mounts | .root.readonly = true | del(.linux.resources) |
		.mounts += [{\"destination\":\"/bin\",\"type\":\"bind\",\"source\":\"/bin\",\"options\":[\"rbind\",\"ro\"]},
			    {\"destination\":\"/usr\",\"type\":\"bind\",\"source\":\"/usr\",\"options\":[\"rbind\",\"ro\"]},
			    {\"destination\":\"/lib\",\"type\":\"bind\",\"source\":\"/lib\",\"options\":[\"rbind\",\"ro\"]},
			    {\"destination\":\"/lib64\",\"type\":\"bind\",\"source\":\"/lib64\",\"options\":[\"rbind\",\"ro\"]}]"
	mkdir -p "$dir/rootfs/bin" "$dir/rootfs/usr" "$dir/rootfs/lib" "$dir/rootfs/lib64" "$dir/rootfs/helper" \
		"$dir/rootfs/hung" "$dir/rootfs/stuck" "$dir/rootfs/m"
	touch "$dir/rootfs/helper"  2>/dev/null || true
	rmdir "$dir/rootfs/helper"; touch "$dir/rootfs/helper"
	# scmd runs it in a user namespace: root inside is the subordinate
	# range's first id (scmd's default range), which must reach the bundle
	# and make the spec's other mount points.
	chmod 755 "$(dirname "$dir")"
	chown -R 2147483648:2147483648 "$dir/rootfs"
}

p99() { sed -n 's/.*p99_us=\([0-9]*\).*/\1/p'; }

@test "root: status round trips stay fast while a launch hangs on a dead mount; the launch times out" {
	start_scmd_ns --launch-timeout 4000
	D=$(mktemp -d /var/tmp/scm-async.XXXXXX)
	bundle "$D/b" "[{\"destination\":\"/hung\",\"type\":\"bind\",\"source\":\"$SCMT/fuse/x\",\"options\":[\"rbind\"]}]" sleep 600
	base=$("$PING" "$SCMT/run/control.sock" 100 2)
	echo "# idle: $base" >&3
	# The reply to `run` waits for the launch, in the background.
	( rc=0; "$SCMCTL" container run -d --name hung --bundle "$D/b" >"$SCMT/hung.out" 2>&1 || rc=$?; echo "exit $rc" >>"$SCMT/hung.out" ) &
	BGPID=$!
	wait_state hung starting
	busy=$("$PING" "$SCMT/run/control.sock" 200 5)
	echo "# launch hung on a dead FUSE mount: $busy" >&3
	[ "$("$SCMCTL" --json container show hung | jq -r .state)" = starting ] # it still hangs
	[ "$(echo "$busy" | p99)" -lt 100000 ]
	# The launch timer gives up: a clear error for the client, nothing left.
	wait_until 60 grep -q '^exit' "$SCMT/hung.out" || { cat "$SCMT/hung.out"; false; }
	cat "$SCMT/hung.out"
	grep -q '^exit 7' "$SCMT/hung.out"
	grep -q "did not start within 4000 ms" "$SCMT/hung.out"
	wait_until 60 no_containers
	"$SCMCTL" --json container list | jq -e '.containers==[]'
	[ ! -e "$(ep hung)" ]
	[ -z "$(ls "$SCMT/run/containers" | grep -v -e '^lock$' -e '^instance$')" ]
	# The name is free again, and scmd works.
	run "$SCMCTL" container run --name hung -- /bin/true
	[ "$status" -eq 0 ]
}

check_stop_hung() {
	SCMD_AS=$1 start_scmd_ns
	c() { if [ "$1" = user ]; then shift; setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --clear-groups \
		env SCM_RUNTIME_DIR="$SCMT/run" "$SCMCTL" "$@"; else shift; "$SCMCTL" "$@"; fi; }
	D=$(mktemp -d /var/tmp/scm-async.XXXXXX)
	bundle "$D/b" "[{\"destination\":\"/hung\",\"type\":\"bind\",\"source\":\"$SCMT/fuse/x\",\"options\":[\"rbind\"]}]" sleep 600
	chmod -R a+rX "$D"
	[ "$1" = root ] || chown -R "$TEST_USER" "$D/b/rootfs" # its mount points are the user's to make
	( rc=0; c "$1" container run -d --name hung --bundle "$D/b" >"$SCMT/hung.out" 2>&1 || rc=$?; echo "exit $rc" >>"$SCMT/hung.out" ) &
	BGPID=$!
	hung_starting() { c "$1" --json container show hung 2>/dev/null | jq -e '.state=="starting"' >/dev/null; }
	wait_until 60 hung_starting "$1" || { cat "$SCMT/hung.out" "$SCMT/scmd.log"; false; }
	c "$1" --json container show hung | jq -e '.state=="starting"' || { cat "$SCMT/hung.out" "$SCMT/scmd.log"; false; }
	pid=$(c "$1" --json container show hung | jq -r .pid)
	kill -0 "$pid"
	busy=$("$PING" "$SCMT/run/control.sock" 50 5)
	echo "# $1: launch hung on a dead FUSE mount: $busy" >&3
	[ "$(echo "$busy" | p99)" -lt 100000 ]
	run c "$1" container stop hung
	[ "$status" -eq 0 ]
	wait_until 60 grep -q '^exit' "$SCMT/hung.out" || { cat "$SCMT/hung.out"; false; }
	cat "$SCMT/hung.out"
	grep -q "stopped while it was starting" "$SCMT/hung.out"
	! grep -q '^exit 0' "$SCMT/hung.out"
	wait_until 60 stopped "$pid"
	! kill -0 "$pid" 2>/dev/null
}
@test "root: stop ends a hanging launch at once; the client's run gets the error" { check_stop_hung root; }
@test "rootless: stop ends a hanging launch at once; the client's run gets the error" { check_stop_hung user; }

@test "root: status round trips while launches of 250 mounts each run back to back" {
	start_scmd_ns
	D=$(mktemp -d /var/tmp/scm-async.XXXXXX)
	mounts=$(seq 0 239 | jq -s '[.[] | {"destination":"/m/\(.)","type":"tmpfs","source":"tmpfs","options":["size=64k"]}]')
	bundle "$D/b" "$mounts" exit 0
	base=$("$PING" "$SCMT/run/control.sock" 100 2)
	( for i in 1 2 3 4; do "$SCMCTL" container run --name many$i --bundle "$D/b" || exit 1; done ) >"$SCMT/many.out" 2>&1 &
	BGPID=$!
	busy=$("$PING" "$SCMT/run/control.sock" 150 2)
	wait "$BGPID"
	BGPID=
	cat "$SCMT/many.out"
	echo "# idle: $base" >&3
	echo "# 250-mount launches: $busy" >&3
	[ "$(echo "$busy" | p99)" -lt 100000 ]
}

@test "root: an exec that never reaches execve times out and is killed; scmd stays responsive" {
	start_scmd_ns --exec-timeout 1500
	D=$(mktemp -d /var/tmp/scm-async.XXXXXX)
	bundle "$D/b" "[{\"destination\":\"/stuck\",\"type\":\"bind\",\"source\":\"$SCMT/fuse\",\"options\":[\"rbind\",\"ro\"]}]" sleep 600
	run "$SCMCTL" container run -d --name box --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_state box running
	pid1=$("$SCMCTL" --json container show box | jq -r .pid)
	ns=$(readlink /proc/$pid1/ns/pid)
	# The exec'd process stops before its execve (here: the lookup of its
	# program never returns, as a SIGSTOP before exec would leave it).
	( rc=0; timeout 20 "$SCMCTL" container exec box -- /stuck/prog >"$SCMT/exec.out" 2>&1 || rc=$?; echo "exit $rc" >>"$SCMT/exec.out" ) &
	BGPID=$!
	busy=$("$PING" "$SCMT/run/control.sock" 100 5)
	echo "# exec stuck before execve: $busy" >&3
	[ "$(echo "$busy" | p99)" -lt 100000 ]
	wait "$BGPID"
	BGPID=
	cat "$SCMT/exec.out"
	grep -q "did not reach its program within 1500 ms" "$SCMT/exec.out"
	grep -q '^exit 7' "$SCMT/exec.out"
	# Nothing of the exec is left in the container's pid namespace: PID 1
	# and its main process only.
	at_most_two() { # sets n to the number of processes in pid namespace $ns
		n=0
		for p in /proc/[0-9]*; do [ "$(readlink $p/ns/pid 2>/dev/null)" = "$ns" ] && n=$((n + 1)); done
		[ "$n" -le 2 ]
	}
	wait_until 60 at_most_two
	[ "$n" -eq 2 ]
	run "$SCMCTL" container exec box -- /bin/true
	[ "$status" -eq 0 ]
}

@test "root: a client's connect whose provider container hangs in its launch: others are served, the connect fails in time" {
	pre_start() {
		mkdir -p "$SCMT/cfg/profiles"
		cat >"$SCMT/cfg/profiles/hungprov.json" <<JSON
{"name":"hungprov","priority":5,"sandbox":{"mounts":[{"source":"$SCMT/fuse/x","destination":"/hung","readonly":true}]}}
JSON
	}
	start_scmd_ns
	cat >"$SCMT/echo.json" <<JSON
{"name":"echo","interface":"echo","exec":["scm-echo-provider"],"container":{"profiles":["hungprov"]},
 "allow":["host"],"timeout_ms":3000}
JSON
	"$SCMCTL" service register "$SCMT/echo.json"
	# Any client's connect starts the provider's launch.
	( rc=0; timeout 20 "$SCMCTL" call echo ping >"$SCMT/call.out" 2>&1 || rc=$?; echo "exit $rc" >>"$SCMT/call.out" ) &
	BGPID=$!
	echo_starting() { "$SCMCTL" --json container list | jq -e '.containers[] | select(.provides=="echo" and .state=="starting")' >/dev/null; }
	wait_until 60 echo_starting
	"$SCMCTL" --json container list | jq -e '.containers[] | select(.provides=="echo" and .state=="starting")'
	busy=$("$PING" "$SCMT/run/control.sock" 100 5)
	echo "# provider launch hung on a dead FUSE mount: $busy" >&3
	[ "$(echo "$busy" | p99)" -lt 100000 ]
	wait "$BGPID" || true
	BGPID=
	cat "$SCMT/call.out"
	grep -q "did not say ready within 3000 ms" "$SCMT/call.out"
	! grep -q '^exit 0' "$SCMT/call.out"
	! grep -q '^exit 124' "$SCMT/call.out" # answered, not timed out by the test
	wait_until 60 none_running
	"$SCMCTL" --json container list | jq -e '[.containers[] | select(.state!="exited")] == []'
}

check_reuse() {
	local who=$1
	if [ "$who" = root ]; then
		start_scmd
	else
		D=$(mktemp -d /tmp/scm-reuse.XXXXXX); chmod 755 "$D"; chown "$TEST_USER" "$D"
		SCMT=$D/t; mkdir -p "$SCMT/cfg"; chown -R "$TEST_USER" "$SCMT"
		setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --clear-groups "$SCMD" --runtime-dir "$SCMT/run" \
			--state-dir "$SCMT/state" --config "$SCMT/cfg" --idl-path "$SCM_SRC/stubs/idl" 2>"$D/scmd.log" &
		SCMD_PID=$!
		wait_until 60 test -S "$SCMT/run/control.sock"
		SCMCTL_AS="setpriv --reuid $TEST_USER --regid $TEST_USER --clear-groups env SCM_RUNTIME_DIR=$SCMT/run"
	fi
	c() { ${SCMCTL_AS:-} "$SCMCTL" "$@"; }
	c container run -d --name foo -- /bin/sleep 600
	wait_state_c foo running
	# stop arms a 1.5 s SIGKILL timer; foo ends on SIGTERM long before.
	c container stop foo --timeout 1500
	c container rm foo
	c container run -d --name foo -- /bin/sleep 600
	newpid=$(c --json container show foo | jq -r .pid)
	t0=$(date +%s%N)
	# Past the old timer's deadline (1.5 s after the stop):
	while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 2500 ]; do sleep 0.1; done
	c --json container show foo | jq -e '.state=="running"'
	kill -0 "$newpid"
	c container kill foo
	SCMCTL_AS=
}
wait_state_c() { wait_until 60 state_c_is "$1" "$2"; }
state_c_is() { c --json container show "$1" | jq -e --arg s "$2" '.state==$s' >/dev/null; }
@test "root: stop foo; rm foo; run --name foo: the old stop timer does not kill the new foo" { check_reuse root; }
@test "rootless: stop foo; rm foo; run --name foo: the old stop timer does not kill the new foo" { check_reuse user; }

@test "root: containers a killed scmd left are killed and their cgroups removed by the next scmd" {
	pre_start() {
		mkdir -p "$SCMT/cfg/profiles"
		cp "$SCM_SRC/examples/profiles/base.json" "$SCMT/cfg/profiles/"
	}
	start_scmd
	"$SCMCTL" container run -d --name left1 --profile base -- /bin/sleep 600
	"$SCMCTL" container run -d --name left2 -- /bin/sleep 600
	p1=$("$SCMCTL" --json container show left1 | jq -r .pid)
	p2=$("$SCMCTL" --json container show left2 | jq -r .pid)
	inst=$(cat "$SCMT/run/containers/instance")
	cg=$(find /sys/fs/cgroup -maxdepth 5 -type d -path "*/scm/$inst/left1" | head -1)
	[ -n "$cg" ]
	grep -qx "$p1" "$cg/cgroup.procs"
	[ -e "$SCMT/state/logs/left1.log" ]
	kill -9 "$SCMD_PID"; wait "$SCMD_PID" 2>/dev/null || true
	kill -0 "$p1" && kill -0 "$p2" # untracked, still running
	touch "$SCMT/state/logs/left2.log.1" # as if rotated
	# The next scmd on the same runtime directory.
	"$SCMD" --runtime-dir "$SCMT/run" --state-dir "$SCMT/state" --config "$SCMT/cfg" --idl-path "$SCM_SRC/stubs/idl" \
		2>"$SCMT/scmd2.log" &
	SCMD_PID=$!
	wait_until 60 grep -q ready "$SCMT/scmd2.log" || { cat "$SCMT/scmd2.log"; false; }
	cat "$SCMT/scmd2.log"
	! kill -0 "$p1" 2>/dev/null
	! kill -0 "$p2" 2>/dev/null
	grep -q "container 'left1' (pid $p1) was left running by a previous scmd: killing it" "$SCMT/scmd2.log"
	grep -q "container 'left2' (pid $p2) was left running by a previous scmd: killing it" "$SCMT/scmd2.log"
	grep -q "removed cgroup .*/scm/$inst" "$SCMT/scmd2.log"
	[ -z "$(find /sys/fs/cgroup -maxdepth 5 -type d -path "*/scm/$inst*")" ]
	[ ! -e "$SCMT/run/containers/left1.state" ]
	# and their logs, which no record leads to any more
	[ ! -e "$SCMT/state/logs/left1.log" ]
	[ ! -e "$SCMT/state/logs/left2.log" ]
	[ ! -e "$SCMT/state/logs/left2.log.1" ]
	# The new scmd's containers get cgroups of its own instance.
	inst2=$(cat "$SCMT/run/containers/instance")
	[ "$inst2" != "$inst" ]
	"$SCMCTL" container run -d --name left1 --profile base -- /bin/sleep 600
	[ -n "$(find /sys/fs/cgroup -maxdepth 5 -type d -path "*/scm/$inst2/left1")" ]
	"$SCMCTL" container kill left1
}

@test "rootless: containers a killed scmd left are killed by the next scmd" {
	D=$(mktemp -d /tmp/scm-left.XXXXXX); chmod 755 "$D"
	mkdir -p "$D/cfg"; chown -R "$TEST_USER" "$D"
	u() { setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --clear-groups "$@"; }
	# setpriv itself in the background (not a function): $! is scmd
	setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --clear-groups \
		"$SCMD" --runtime-dir "$D/run" --state-dir "$D/state" --config "$D/cfg" --idl-path "$SCM_SRC/stubs/idl" 2>"$D/scmd.log" &
	SCMD_PID=$!
	wait_until 60 test -S "$D/run/control.sock"
	u env SCM_RUNTIME_DIR="$D/run" "$SCMCTL" container run -d --name left -- /bin/sleep 600
	p=$(u env SCM_RUNTIME_DIR="$D/run" "$SCMCTL" --json container show left | jq -r .pid)
	kill -9 "$SCMD_PID"; wait "$SCMD_PID" 2>/dev/null || true
	kill -0 "$p"
	setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --clear-groups \
		"$SCMD" --runtime-dir "$D/run" --state-dir "$D/state" --config "$D/cfg" --idl-path "$SCM_SRC/stubs/idl" 2>"$D/scmd2.log" &
	SCMD_PID=$!
	wait_until 60 grep -q ready "$D/scmd2.log" || { cat "$D/scmd2.log"; false; }
	cat "$D/scmd2.log"
	! kill -0 "$p" 2>/dev/null
	grep -q "container 'left' (pid $p) was left running by a previous scmd: killing it" "$D/scmd2.log"
}

@test "root: a second scmd on the same runtime directory is refused" {
	start_scmd
	run "$SCMD" --runtime-dir "$SCMT/run" --state-dir "$SCMT/state" --config "$SCMT/cfg" --idl-path "$SCM_SRC/stubs/idl"
	[ "$status" -ne 0 ]
	[[ "$output" == *"another scmd runs with the runtime directory"* ]]
	scmd_alive
	"$SCMCTL" status >/dev/null
}

@test "root: 40 base containers under a small fd limit: the rest is refused by quota, logs still work" {
	pre_start() {
		mkdir -p "$SCMT/cfg/profiles"
		cp "$SCM_SRC/examples/profiles/base.json" "$SCMT/cfg/profiles/"
	}
	SCMT=$(mktemp -d /tmp/scm-bats.XXXXXX)
	chmod 711 "$SCMT" # the containers' ids must reach the runtime directory
	export SCMT SCM_RUNTIME_DIR=$SCMT/run
	mkdir -p "$SCMT/cfg/services"; pre_start
	# A hard limit of 160: scmd raises its soft limit to it and lets
	# containers hold half.
	prlimit --nofile=64:160 -- "$SCMD" --runtime-dir "$SCMT/run" --state-dir "$SCMT/state" --config "$SCMT/cfg" \
		--idl-path "$SCM_SRC/stubs/idl" 2>"$SCMT/scmd.log" &
	SCMD_PID=$!
	wait_until 60 test -S "$SCMT/run/control.sock"
	grep -E "^Max open files +160 +160" /proc/$SCMD_PID/limits
	ok=0 refused=0
	for i in $(seq 40); do
		if out=$("$SCMCTL" container run -d --name b$i --profile base -- /bin/sh -c "echo hello-$i; exec sleep 600" 2>&1); then
			ok=$((ok + 1))
		else
			[[ "$out" == *"file descriptors scmd allows them"* ]] || { echo "$out"; false; }
			refused=$((refused + 1))
		fi
	done
	echo "# $ok started, $refused refused, scmd holds $(ls /proc/$SCMD_PID/fd | wc -l) fds" >&3
	[ "$ok" -ge 10 ] && [ "$refused" -gt 0 ]
	logs_have() { "$SCMCTL" container logs "$1" | grep -q "$2"; }
	wait_until 60 logs_have b1 hello-1
	"$SCMCTL" container logs b1 | grep -qx hello-1
	"$SCMCTL" container logs b$ok | grep -qx hello-$ok
	# Clients still get in.
	"$PING" "$SCMT/run/control.sock" 20 0
}

@test "container names that are paths are refused everywhere" {
	start_scmd
	for op in stop kill rm logs show; do
		run "$SCMCTL" container $op ../x
		[ "$status" -ne 0 ]
		[[ "$output" == *"not valid"* ]]
	done
	run "$SCMCTL" container exec ../x -- /bin/true
	[[ "$output" == *"not valid"* ]]
	# desktop stop NAME names a state file: a path is refused before any
	# file is touched.
	# ($RUNTIME/desktops/../x.json is $RUNTIME/x.json: a state file naming
	# a process of ours that `stop` would signal.)
	mkdir -p "$SCMT/run/desktops"
	sleep 600 &
	victim=$!
	echo "{\"pid\": $victim}" >"$SCMT/run/x.json"
	run "$SCMCTL" desktop stop ../x
	echo "$output"
	kill -0 "$victim"
	kill "$victim"
	[ "$status" -eq 2 ]
	[[ "$output" == *"not valid"* ]]
	[ -e "$SCMT/run/x.json" ]
	scmd_alive
}

@test "container list: the columns stay aligned with names past 20 characters" {
	start_scmd
	"$SCMCTL" container run --name short -- /bin/true
	"$SCMCTL" container run --name a-container-name-of-forty-characters-x -- /bin/true
	run "$SCMCTL" container list
	echo "$output"
	[ "$status" -eq 0 ]
	# every row's state starts in the header's STATE column
	col=$(echo "$output" | head -n1 | awk '{ print index($0, "STATE") }')
	[ "$col" -gt 21 ]
	[ "$(echo "$output" | tail -n +2 | cut -c"$col"- | awk '{ print $1 }' | sort -u)" = exited ]
}

@test "the IDL set is read once: a container create after the IDL directory changed does not read it" {
	pre_start() {
		mkdir -p "$SCMT/cfg/profiles"
		cp "$SCM_SRC/examples/profiles/base.json" "$SCMT/cfg/profiles/"
		cp -r "$SCM_SRC/stubs/idl" "$SCMT/idl"
	}
	SCMT=$(mktemp -d /tmp/scm-bats.XXXXXX)
	chmod 711 "$SCMT" # the containers' ids must reach the runtime directory
	export SCMT SCM_RUNTIME_DIR=$SCMT/run
	mkdir -p "$SCMT/cfg/services"; pre_start
	"$SCMD" --runtime-dir "$SCMT/run" --state-dir "$SCMT/state" --config "$SCMT/cfg" --idl-path "$SCMT/idl" \
		2>"$SCMT/scmd.log" &
	SCMD_PID=$!
	wait_until 60 test -S "$SCMT/run/control.sock"
	# A broken file that every re-read would trip over.
	echo '{' >"$SCMT/idl/broken.json"
	run "$SCMCTL" container run --profile base -- /bin/true
	echo "$output"
	[ "$status" -eq 0 ]
	# policy reload reads the directory again, and refuses the broken set.
	run "$SCMCTL" policy reload
	[ "$status" -ne 0 ]
	[[ "$output" == *"broken.json"* ]]
}

@test "root: shutdown stops every container at once, with one deadline for all" {
	start_scmd
	logs_ready() { "$SCMCTL" container logs "$1" | grep -q ready; }
	pids=()
	for i in 1 2 3 4; do
		"$SCMCTL" container run -d --name stubborn$i -- /bin/sh -c 'trap "" TERM; echo ready; while :; do sleep 1; done'
		pids+=("$("$SCMCTL" --json container show stubborn$i | jq -r .pid)")
	done
	for i in 1 2 3 4; do
		wait_until 60 logs_ready stubborn$i
	done
	t0=$(date +%s%N)
	kill -TERM "$SCMD_PID"
	wait "$SCMD_PID" || true
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	SCMD_PID=
	echo "# shutdown with 4 containers ignoring SIGTERM: $ms ms" >&3
	# One 2 s deadline for all four, not 2 s each.
	[ "$ms" -lt 5000 ]
	for p in "${pids[@]}"; do ! kill -0 "$p" 2>/dev/null; done
}

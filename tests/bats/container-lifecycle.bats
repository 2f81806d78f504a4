#!/usr/bin/env bats
# Container lifecycle through scm-run: exit status, signal forwarding, stop
# with SIGTERM then SIGKILL, logs, OCI bundles from `crun spec`, bad specs,
# and that nothing is left behind (mounts, cgroups, state).

load ../helper/container-common

setup_file() { container_setup_file; }
teardown_file() { container_teardown_file; }

setup() {
	D=$(mktemp -d /var/tmp/scm-lctest.XXXXXX)
	chmod 755 "$D"
}
teardown() { rm -rf "$D"; }

check_exit() {
	run as "$1" "$BIN/scm-run" -- "$(H)" exit 42
	[ "$status" -eq 42 ]
	run as "$1" "$BIN/scm-run" -- /bin/true
	[ "$status" -eq 0 ]
	# Killed by a signal: 128 + N, as a shell reports it.
	run as "$1" "$BIN/scm-run" -- /bin/sh -c 'kill -KILL $$'
	[ "$status" -eq 137 ]
	run as "$1" "$BIN/scm-run" -- /nonexistent/program
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"exec /nonexistent/program: No such file or directory"* ]]
}
@test "root: the container's exit status is scm-run's" { check_exit root; }
@test "rootless: the container's exit status is scm-run's" { check_exit user; }

wait_for() { # file text
	wait_until 60 grep -q "$2" "$1" 2>/dev/null && return 0
	echo "timed out waiting for '$2' in $1:"; cat "$1"; return 1
}

# Runs in a subshell that execs, so $! is scm-run itself.
as_exec() {
	local who=$1; shift
	if [ "$who" = root ]; then exec "$@"; fi
	exec setpriv --reuid="$TEST_USER" --regid="$TEST_USER" --clear-groups --reset-env "$@"
}

check_forward() {
	( as_exec "$1" "$BIN/scm-run" -- "$(H)" trap-term 7 ) >"$D/out" 2>&1 3>&- &
	local pid=$!
	wait_for "$D/out" ready
	kill -TERM $pid
	local rc=0
	wait $pid || rc=$?
	cat "$D/out"
	[ "$rc" -eq 7 ]
	grep -q "got SIGTERM" "$D/out"
}
@test "root: SIGTERM to scm-run reaches the main process through PID 1" { check_forward root; }
@test "rootless: SIGTERM to scm-run reaches the main process through PID 1" { check_forward user; }

check_stop() {
	( as_exec "$1" "$BIN/scm-run" --stop-timeout 300 -- "$(H)" ignore-term ) >"$D/out" 2>&1 3>&- &
	local pid=$!
	wait_for "$D/out" ready
	kill -TERM $pid
	local rc=0
	wait $pid || rc=$?
	# Ignored SIGTERM, then SIGKILL after the timeout.
	[ "$rc" -eq 137 ]
}
@test "root: stop sends SIGTERM, then SIGKILL after the timeout" { check_stop root; }
@test "rootless: stop sends SIGTERM, then SIGKILL after the timeout" { check_stop user; }

check_logs() {
	touch "$D/log"
	[ "$1" = root ] || chown "$TEST_USER" "$D/log"
	run as "$1" "$BIN/scm-run" --log "$D/log" -- /bin/sh -c 'echo to-stdout; echo to-stderr >&2; exit 3'
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	grep -qx to-stdout "$D/log"
	grep -qx to-stderr "$D/log"
}
@test "root: stdout and stderr go to the log file" { check_logs root; }
@test "rootless: stdout and stderr go to the log file" { check_logs user; }

check_clean() {
	local who=$1 id="lctest-$$-$1" before after state="$D/state-$1"
	mkdir -p "$state"
	[ "$who" = root ] || chown "$TEST_USER" "$state"
	before=$(mount_count)
	run as "$who" "$BIN/scm-run" --state-dir "$state" --id "$id" --profile-sandbox '{"pids":100,"memory":268435456}' -- "$(H)" exit 5
	[ "$status" -eq 5 ]
	run as "$who" "$BIN/scm-run" --state-dir "$state" --id "$id" --profile-sandbox '{"pids":100}' -- /bin/sh -c 'sleep 61 & sleep 61 & kill -KILL $$'
	[ "$status" -eq 137 ]
	( as_exec "$who" "$BIN/scm-run" --state-dir "$state" --id "$id" --stop-timeout 100 -- "$(H)" ignore-term ) >"$D/out" 2>&1 3>&- &
	local pid=$!
	wait_for "$D/out" ready
	kill -TERM $pid
	wait $pid || true
	after=$(mount_count)
	[ "$before" -eq "$after" ]
	[ -z "$(leftover_cgroups "$id")" ]
	# No process of the containers survives (their sleeps included).
	! pgrep -f "^sleep 61$"
	# State: the seccomp cache and the empty anchor of the quick path.
	[ "$(ls "$state" | paste -sd' ')" = "cache stage" ]
	[ -z "$(ls -A "$state/stage")" ]
	[ "$(ls "$state/cache" | grep -c '^seccomp-[0-9a-f]*\.bpf$')" -ge 1 ]
	[ -z "$(ls "$state/cache" | grep -v '^seccomp-[0-9a-f]*\.bpf$')" ]
}
@test "root: nothing is left behind (mounts, cgroups, processes, state)" { check_clean root; }
@test "rootless: nothing is left behind (mounts, cgroups, processes, state)" { check_clean user; }

check_crun_bundle() {
	make_bundle "$D/b" id
	[ "$1" = root ] || chown -R "$TEST_USER" "$D/b"
	run as "$1" "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == uid=0\ gid=0* ]]
	# crun spec's capabilities, and no more.
	bundle_edit "$D/b" '.process.args=["/helper","caps"]'
	run as "$1" "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	grep -qx "bounding=0000000020000420" <<<"$output"
	grep -qx "effective=0000000020000420" <<<"$output"
	bundle_edit "$D/b" '.process.args=["/helper","ls","/dev"]'
	run as "$1" "$BIN/scm-run" --bundle "$D/b"
	[ "$(echo "$output" | sort | paste -sd' ')" = "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero" ]
}
@test "root: an OCI bundle made with crun spec runs" { check_crun_bundle root; }
@test "rootless: an OCI bundle made with crun spec runs" { check_crun_bundle user; }

# bad_spec JQ-EDIT EXPECTED-MESSAGE: refused with exit 125, the message
# names the field, and nothing is created.
bad_spec() {
	make_bundle "$D/b" id
	bundle_edit "$D/b" "$1"
	local before id="lcbad-$$"
	before=$(mount_count)
	run "$BIN/scm-run" --id "$id" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"$2"* ]]
	[ "$(mount_count)" -eq "$before" ]
	[ -z "$(leftover_cgroups "$id")" ]
	rm -rf "$D/b"
}

@test "bad spec: unknown fields are refused, naming them" {
	bad_spec '.process.foo=1' "/process/foo: unknown field"
	bad_spec '.linux.sysctl={}' "/linux/sysctl: unknown field"
	bad_spec '.mounts[0].bogus=true' "/mounts/0/bogus: unknown field"
	bad_spec '.linux.namespaces[0].path="/proc/1/ns/pid"' "/linux/namespaces/0/path: joining an existing pid namespace is not supported"
	bad_spec '.annotations={"org.scm.colour":"red"}' "/annotations/org.scm.colour: unknown scm annotation"
}

@test "bad spec: wrong types are refused, naming the field" {
	bad_spec '.process.args=["/helper","id",3]' "/process/args/2: expected a string, got an integer"
	bad_spec '.process.terminal="no"' "/process/terminal: expected a boolean, got a string"
	bad_spec '.process.user.uid=-1' "/process/user/uid: -1 out of range"
	bad_spec '.linux.resources={"memory":{"limit":"1G"}}' "/linux/resources/memory/limit: expected an integer, got a string"
	bad_spec '.process.capabilities.bounding=["CAP_FLY"]' '/process/capabilities/bounding/0: unknown capability "CAP_FLY"'
	bad_spec '.mounts[1].options=["nosuid","frobnicate"]' '/mounts/1/options/1: unsupported mount option "frobnicate"'
	bad_spec '.linux.seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["nosuchcall"],"action":"SCMP_ACT_ERRNO"}]}' '/linux/seccomp/syscalls/0/names/0: unknown system call "nosuchcall"'
	bad_spec '.mounts[0].destination="/proc/../etc"' '/mounts/0/destination: "/proc/../etc" has a "." or ".." component'
}

@test "bad spec: a missing rootfs is refused" {
	bad_spec '.root.path="/nonexistent/rootfs"' "/root/path: /nonexistent/rootfs: No such file or directory"
	bad_spec 'del(.root)' "/root: required field is missing"
	run "$BIN/scm-run" --bundle /nonexistent/bundle
	[ "$status" -eq 125 ]
	[[ "$output" == *"/nonexistent/bundle: No such file or directory"* ]]
}

@test "bad spec: impossible id mappings are refused" {
	bad_spec '.linux.uidMappings=[{"containerID":0,"hostID":1000,"size":1}]' '/linux/uidMappings: mappings need a "user" namespace'
	bad_spec '.linux.namespaces+=[{"type":"user"}] | .linux.uidMappings=[{"containerID":0,"hostID":1000,"size":10},{"containerID":5,"hostID":2000,"size":10}] | .linux.gidMappings=[{"containerID":0,"hostID":1000,"size":1}]' '/linux/uidMappings/1: overlaps mapping 0'
	bad_spec '.linux.namespaces+=[{"type":"user"}] | .linux.uidMappings=[{"containerID":1,"hostID":1000,"size":1}] | .linux.gidMappings=[{"containerID":0,"hostID":1000,"size":1}]' '/process/user/uid: 0 is not mapped by /linux/uidMappings'
	bad_spec '.linux.namespaces+=[{"type":"user"}] | .linux.uidMappings=[{"containerID":0,"hostID":4294967290,"size":100}] | .linux.gidMappings=[{"containerID":0,"hostID":1000,"size":1}]' '/linux/uidMappings/0: range overflows'
	bad_spec '.linux.namespaces+=[{"type":"user"}] | .linux.uidMappings=[{"containerID":0,"hostID":1000,"size":0}] | .linux.gidMappings=[{"containerID":0,"hostID":1000,"size":1}]' '/linux/uidMappings/0/size: 0 out of range'
	# A non-root caller can map only itself.
	make_bundle "$D/b" id
	chown -R "$TEST_USER" "$D/b"
	bundle_edit "$D/b" '.linux.namespaces+=[{"type":"user"}] | .linux.uidMappings=[{"containerID":0,"hostID":0,"size":1}] | .linux.gidMappings=[{"containerID":0,"hostID":0,"size":1}]'
	run as user "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"/linux/uidMappings: a non-root caller can only map its own uid"* ]]
}

@test "root: a user namespace with explicit mappings runs as the mapped ids" {
	make_bundle "$D/b" id
	bundle_edit "$D/b" '.linux.namespaces+=[{"type":"user"}] | .process.user={"uid":1,"gid":1} | .linux.uidMappings=[{"containerID":0,"hostID":100000,"size":65536}] | .linux.gidMappings=[{"containerID":0,"hostID":100000,"size":65536}]'
	# The rootfs belongs to the mapped range, as an image unpacked for it.
	chown -R 100000:100000 "$D/b/rootfs"
	chmod -R a+rX "$D"
	run "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == uid=1\ gid=1* ]]
}

@test "sandbox: a spec asking for more than the sandbox allows is refused, naming the field" {
	make_bundle "$D/b" id
	local caps='"capabilities":["CAP_KILL","CAP_AUDIT_WRITE","CAP_NET_BIND_SERVICE"]'
	local helper="{\"source\":\"$BIN/scm-test-helper\",\"destination\":\"/helper\"}"
	run "$BIN/scm-run" --profile-sandbox '{}' --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"/process/capabilities/bounding: CAP_KILL is not allowed by the sandbox"* ]]
	run "$BIN/scm-run" --profile-sandbox "{$caps,\"mounts\":[$helper]}" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 0 ]
	bundle_edit "$D/b" '.linux.resources.pids={"limit":1000}'
	run "$BIN/scm-run" --profile-sandbox "{$caps,\"mounts\":[$helper],\"pids\":100}" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"/linux/resources/pids/limit: 1000 exceeds the sandbox's 100"* ]]
	bundle_edit "$D/b" '.mounts += [{"destination":"/data","type":"bind","source":"/etc","options":["rbind"]}]'
	run "$BIN/scm-run" --profile-sandbox "{$caps,\"mounts\":[$helper],\"pids\":1000}" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"/mounts/8/source: binding (writable) /etc at /data is not allowed by the sandbox"* ]]
	bundle_edit "$D/b" 'del(.linux.namespaces[] | select(.type=="network"))'
	run "$BIN/scm-run" --profile-sandbox "{$caps,\"pids\":1000,\"mounts\":[$helper,{\"source\":\"/etc\",\"destination\":\"/data\",\"writable\":true}]}" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"/linux/namespaces: the sandbox allows no network"* ]]
	run "$BIN/scm-run" --profile-sandbox "{\"network\":true,$caps,\"pids\":1000,\"mounts\":[$helper,{\"source\":\"/etc\",\"destination\":\"/data\",\"writable\":true}]}" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "sandbox: binds it grants appear on the quick path, read-only unless writable" {
	# The quick path's root is a read-only tmpfs holding /usr, /etc and the
	# mount points the runtime makes for binds.
	mkdir -p "$D/data"
	echo hello >"$D/data/f"
	local sb="{\"mounts\":[{\"source\":\"$D/data\",\"destination\":\"/mnt\"}]}"
	run "$BIN/scm-run" --profile-sandbox "$sb" -- "$(H)" read /mnt/f
	echo "$output"
	[ "$output" = "read /mnt/f: 6 bytes" ]
	run "$BIN/scm-run" --profile-sandbox "$sb" -- "$(H)" write /mnt/g
	echo "$output"
	[[ "$output" == *EROFS* ]]
	sb="{\"mounts\":[{\"source\":\"$D/data\",\"writable\":true}]}"
	run "$BIN/scm-run" --profile-sandbox "$sb" -- "$(H)" write "$D/data/g"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -f "$D/data/g" ]
	# Without the bind, the host path is not there at all.
	run "$BIN/scm-run" -- "$(H)" write "$D/data/h"
	[[ "$output" == *ENOENT* ]]
}

@test "bad sandbox JSON is refused, naming the field" {
	run "$BIN/scm-run" --profile-sandbox '{"pids":"many"}' -- /bin/true
	[ "$status" -eq 125 ]
	[[ "$output" == *"/pids: expected an integer, got a string"* ]]
	run "$BIN/scm-run" --profile-sandbox '{"syscalls":{"deny":["nosuch"]}}' -- /bin/true
	[[ "$output" == *'/syscalls/deny/0: unknown system call "nosuch"'* ]]
}

@test "the endpoint is bound at /run/scm/scm.sock and the compiled filter is cached" {
	"$BIN/scm-test-helper" listen-unix "$D/ep.sock" >"$D/ep.log" 2>&1 3>&- &
	local l=$!
	wait_for "$D/ep.log" listening
	run "$BIN/scm-run" --state-dir "$D/state" --endpoint "$D/ep.sock" -- "$(H)" connect-unix /run/scm/scm.sock
	kill $l
	[ "$status" -eq 0 ]
	[ "$(ls "$D/state/cache" | grep -c '^seccomp-.*\.bpf$')" -eq 1 ]
	# A different rule set compiles (and caches) another filter.
	run "$BIN/scm-run" --state-dir "$D/state" --profile-sandbox '{"syscalls":{"deny":["getpriority"]}}' -- "$(H)" try-syscall read
	[ "$(ls "$D/state/cache" | grep -c '^seccomp-.*\.bpf$')" -eq 2 ]
}

check_exec() {
	# The exec'd process shares the container's pid namespace (PID 1, the
	# main process, itself) and gets the same sandbox.
	run as "$1" "$BIN/scm-run" --exec "$(H) pids" -- "$(H)" sleep 100
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | sort -n | paste -sd' ')" = "1 2 3" ]
	run as "$1" "$BIN/scm-run" --exec "$(H) try-syscall mount unshare dup" -- "$(H)" sleep 100
	echo "$output"
	[ "$(echo "$output" | paste -sd' ')" = "mount: EPERM unshare: EPERM dup: EBADF" ]
	run as "$1" "$BIN/scm-run" --exec "$(H) caps" -- "$(H)" sleep 100
	grep -qx "effective=0000000000000000" <<<"$output"
	grep -qx "bounding=0000000000000000" <<<"$output"
	run as "$1" "$BIN/scm-run" --exec "$(H) exit 9" -- "$(H)" sleep 100
	[ "$status" -eq 9 ]
}
@test "root: exec runs a command inside a running container, same namespaces and sandbox" { check_exec root; }
@test "rootless: exec runs a command inside a running container, same namespaces and sandbox" { check_exec user; }

@test "root: the container and exec join the container's cgroup, which is its cgroup namespace root" {
	run "$BIN/scm-run" --profile-sandbox '{"pids":50}' --exec "/bin/cat /proc/self/cgroup" -- "$(H)" sleep 100
	echo "$output"
	[ "$status" -eq 0 ]
	# Inside its cgroup namespace the container's cgroup is the root.
	grep -qx '[0-9]*:pids:/' <<<"$output"
	# The same for the main process; the host sees scm/ID.
	run "$BIN/scm-run" --id "lc-cg-$$" --profile-sandbox '{"pids":50}' -- /bin/cat /proc/self/cgroup
	grep -qx '[0-9]*:pids:/' <<<"$output"
	( exec "$BIN/scm-run" --id "lc-cg2-$$" --profile-sandbox '{"pids":50}' -- "$(H)" trap-term 0 ) >"$D/out" 2>&1 3>&- &
	local pid=$!
	wait_for "$D/out" ready
	cat /sys/fs/cgroup/pids/scm/lc-cg2-$$/cgroup.procs
	[ "$(wc -l </sys/fs/cgroup/pids/scm/lc-cg2-$$/cgroup.procs)" -eq 2 ] # PID 1 and the helper
	kill -TERM $pid
	wait $pid
	[ -z "$(leftover_cgroups "lc-cg2-$$")" ]
}

check_example() {
	run as "$1" "$BIN/scm-run" --bundle "$SCM_SRC/examples/bundles/host-ro"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "hello from scm-example: 0 in "* ]]
}
@test "root: examples/bundles/host-ro (root \"/\", read-only) runs" { check_example root; }
@test "rootless: examples/bundles/host-ro (root \"/\", read-only) runs" { check_example user; }

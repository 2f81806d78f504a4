#!/usr/bin/env bats
# scm-oci's command line, driven directly as an engine would (runc's
# create, start, state, kill, delete, features) against one scmd: the
# container is scmd's (its host ids are scm's range, its endpoint under the
# annotation's profiles), the monitor the engine watches lives as long as
# it, and bad bundles are refused with the field named and nothing left.
load helpers

OCI=$SCM_BUILD/bin/scm-oci

pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	cat >"$SCMT/cfg/profiles/caller.json" <<'JSON'
{"name":"caller","priority":10,"services":[{"service":"echo","methods":["ping","whoami"],"action":"allow"}],
 "sandbox":{"limits":{"pids":32}}}
JSON
}

setup_file() {
	start_scmd
	export SCMD_PID
	# a bundle as `crun spec` makes it, over a busybox rootfs
	B=$SCMT/bundle
	mkdir -p "$B/rootfs/bin"
	cp /bin/busybox "$B/rootfs/bin/"
	for c in sh true echo sleep cat id readlink; do ln -s busybox "$B/rootfs/bin/$c"; done
	(cd "$B" && crun spec)
	jq '.process.terminal=false | .process.args=["/bin/sh","-c","echo hello from oci; exec sleep 600"]' \
		"$B/config.json" >"$B/c" && mv "$B/c" "$B/config.json"
	export B ROOT=$SCMT/oci
}

teardown_file() {
	for id in $(ls "$ROOT" 2>/dev/null); do "$OCI" --root "$ROOT" delete --force "$id" >/dev/null 2>&1 || true; done
	stop_scmd
}

oci() { "$OCI" --root "$ROOT" --scm-runtime-dir "$SCMT/run" "$@"; }

# create keeps the engine's stdio in the monitor: never under `run`
create() { # ID [BUNDLE]
	oci create --bundle "${2:-$B}" --pid-file "$SCMT/$1.pid" "$1" >"$SCMT/$1.out" 2>"$SCMT/$1.err" </dev/null
}

status_of() { oci state "$1" | jq -r .status; }

wait_status() { # ID STATUS
	for _ in $(seq 300); do
		[ "$(status_of "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	echo "$1 never became $2: $(oci state "$1")"
	return 1
}

@test "features and version: JSON an engine can read" {
	run oci features
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .ociVersionMax)" = "1.1.0" ]
	echo "$output" | jq -e '.linux.namespaces | index("user")'
	echo "$output" | jq -e '.linux.capabilities | index("CAP_CHOWN")'
	run "$OCI" --version
	[[ "$output" == *"scm-oci version"* ]]
}

@test "create, start, state, kill, delete: scmd's container with scm's identity on the host" {
	create t1
	run oci state t1
	echo "$output"
	[ "$(echo "$output" | jq -r .status)" = created ]
	[ "$(echo "$output" | jq -r .pid)" = "$(cat "$SCMT/t1.pid")" ]
	[ "$(echo "$output" | jq -r .bundle)" = "$B" ]
	# created: nothing runs yet in scmd
	run "$SCMCTL" container show t1
	[ "$status" -ne 0 ]
	run oci start t1
	[ "$status" -eq 0 ]
	[ "$(status_of t1)" = running ]
	# the container's process on the host runs as scm's subordinate root,
	# not as host root
	pid=$("$SCMCTL" --json container show t1 | jq -r .pid)
	[ "$pid" -gt 1 ]
	uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
	[ "$uid" -ge 2147483648 ]
	# ps: the host pids in its pid namespace (scm's PID 1 and sleep)
	run oci ps --format json t1
	echo "$output"
	echo "$output" | jq -e "index($pid)"
	[ "$(echo "$output" | jq length)" -ge 2 ]
	# its output reaches the stdio the engine gave create
	for _ in $(seq 300); do grep -q "hello from oci" "$SCMT/t1.out" && break; sleep 0.1; done
	grep -q "hello from oci" "$SCMT/t1.out"
	# exec: in the foreground with the exit status, and detached with a
	# monitor (conmon's way) whose pid the --pid-file gets
	run oci exec t1 /bin/sh -c 'echo in t1; exit 6'
	[ "$status" -eq 6 ]
	[ "$output" = "in t1" ]
	echo '{"args":["/bin/sh","-c","echo detached >/dev/shm/x; exit 0"],"cwd":"/"}' >"$SCMT/p.json"
	oci exec --detach --pid-file "$SCMT/exec.pid" --process "$SCMT/p.json" t1 >/dev/null
	[ "$(cat "$SCMT/exec.pid")" -gt 1 ]
	for _ in $(seq 150); do oci exec t1 /bin/cat /dev/shm/x 2>/dev/null | grep -q detached && break; sleep 0.2; done
	[ "$(oci exec t1 /bin/cat /dev/shm/x)" = detached ]
	# a running container is not deleted without --force
	run oci delete t1
	[ "$status" -ne 0 ]
	[[ "$output" == *"is running"* ]]
	run oci kill t1 TERM
	[ "$status" -eq 0 ]
	wait_status t1 stopped
	! kill -0 "$pid" 2>/dev/null
	run oci kill t1 KILL
	[ "$status" -ne 0 ]
	[[ "$output" == *"not running"* ]]
	run oci delete t1
	[ "$status" -eq 0 ]
	run oci state t1
	[ "$status" -ne 0 ]
	[[ "$output" == *'"t1" does not exist'* ]]
	# gone from scmd, no mount left behind
	run "$SCMCTL" container show t1
	[ "$status" -ne 0 ]
	! grep -q "$ROOT" /proc/mounts
	[ ! -e "$ROOT/t1" ]
}

@test "kill of a created container stops it; delete --force of a running one; start twice refused" {
	create t2
	run oci kill t2 SIGKILL
	[ "$status" -eq 0 ]
	wait_status t2 stopped
	run oci start t2
	[ "$status" -ne 0 ]
	[[ "$output" == *"stopped, not created"* ]]
	oci delete t2
	create t3
	oci start t3
	run oci start t3
	[ "$status" -ne 0 ]
	[[ "$output" == *"running, not created"* ]]
	pid=$("$SCMCTL" --json container show t3 | jq -r .pid)
	run oci delete --force t3
	[ "$status" -eq 0 ]
	! kill -0 "$pid" 2>/dev/null
	run "$SCMCTL" container show t3
	[ "$status" -ne 0 ]
	[ ! -e "$ROOT/t3" ]
}

@test "the annotation's profiles: the endpoint is under them; a missing profile fails the start, saying so" {
	jq '.annotations={"org.scm.profile":"caller"}' "$B/config.json" >"$SCMT/c.json"
	mkdir -p "$SCMT/b5" && cp "$SCMT/c.json" "$SCMT/b5/config.json" && ln -s "$B/rootfs" "$SCMT/b5/rootfs"
	create t5 "$SCMT/b5"
	oci start t5
	run "$SCMCTL" --json endpoint list
	echo "$output"
	echo "$output" | jq -e '.endpoints[] | select(.name=="t5") | .profiles | index("caller")'
	# the engine's 2048 pids and capabilities narrowed to the profile's sandbox
	echo "$(oci state t5)" | jq -e '.annotations["org.scm.profiles"]=="caller"'
	oci delete --force t5
	jq '.annotations={"org.scm.profiles":"nosuchprofile"}' "$B/config.json" >"$SCMT/b5/config.json"
	create t6 "$SCMT/b5"
	run oci start t6
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"nosuchprofile"* ]]
	wait_status t6 stopped
	oci delete t6
}

@test "bad bundles and arguments: a clear error naming what is wrong, nothing left" {
	mkdir -p "$SCMT/bad"
	run oci create --bundle "$SCMT/bad" b1
	[ "$status" -ne 0 ]
	[[ "$output" == *"no config.json"* ]]
	echo '{"ociVersion": "1.0.2", "process": ' >"$SCMT/bad/config.json"
	run oci create --bundle "$SCMT/bad" b1
	[ "$status" -ne 0 ]
	[[ "$output" == *"not JSON"* ]]
	ln -s "$B/rootfs" "$SCMT/bad/rootfs"
	jq '.hooks={"prestart":[{"path":"/bin/true"}]}' "$B/config.json" >"$SCMT/bad/config.json"
	run oci create --bundle "$SCMT/bad" b1
	[ "$status" -ne 0 ]
	[[ "$output" == *"/hooks"* ]]
	jq '.linux.namespaces += [{"type":"pid","path":"/proc/1/ns/pid"}]' "$B/config.json" >"$SCMT/bad/config.json"
	run oci create --bundle "$SCMT/bad" b1
	[ "$status" -ne 0 ]
	[[ "$output" == *"/linux/namespaces/"*"/path"*"pid namespace is not supported"* ]]
	jq '.process.terminal=true' "$B/config.json" >"$SCMT/bad/config.json"
	run oci create --bundle "$SCMT/bad" b1
	[[ "$output" == *"/process/terminal is true: --console-socket is needed"* ]]
	run oci create --bundle "$B" --console-socket "$SCMT/nosock" b1
	[[ "$output" == *"/process/terminal is not true"* ]]
	# what scm's own parser refuses, named by its pointer
	jq '.process.args=["/bin/sh", 7]' "$B/config.json" >"$SCMT/bad/config.json"
	run oci create --bundle "$SCMT/bad" b1
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/process/args/1"* ]]
	jq '.root.path="nothere"' "$B/config.json" >"$SCMT/bad/config.json"
	run oci create --bundle "$SCMT/bad" b1
	[ "$status" -ne 0 ]
	[[ "$output" == *"nothere"* ]]
	[ ! -e "$ROOT/b1" ]
	! grep -q "$ROOT/b1" /proc/mounts
	run oci create --bundle "$B" ../x
	[ "$status" -ne 0 ]
	[[ "$output" == *"is not valid"* ]]
	run oci start nosuch
	[[ "$output" == *'"nosuch" does not exist'* ]]
	run oci kill t1 NOTASIGNAL
	[[ "$output" == *"not a signal"* ]]
	run oci exec nosuch /bin/true
	[[ "$output" == *'"nosuch" does not exist'* ]]
	run oci frobnicate x
	[ "$status" -ne 0 ]
	[[ "$output" == *"unknown command"* ]]
	# --log-format json: the error is a JSON line in --log too
	run "$OCI" --root "$ROOT" --log "$SCMT/log.json" --log-format json start nosuch
	jq -e 'select(.level=="error") | .msg | contains("does not exist")' "$SCMT/log.json"
}

# BUNDLE-DIR NS-TYPE PATH: $B's spec joining PATH as its NS-TYPE namespace
join_bundle() {
	mkdir -p "$1"
	ln -sfn "$B/rootfs" "$1/rootfs"
	jq --arg t "$2" --arg p "$3" '.linux.namespaces |= (map(select(.type != $t)) + [{"type": $t, "path": $p}])
		| .process.args=["/bin/sh","-c","readlink /proc/self/ns/net"]' "$B/config.json" >"$1/config.json"
}

@test "namespaces joined by path: a network namespace made outside; bogus paths refused, naming the field" {
	# a network namespace of the host's making, held by a sleep
	bare unshare --net sleep 600 </dev/null >/dev/null 2>&1 &
	holder=$!
	wait_until 60 sh -c "[ \"\$(readlink /proc/$holder/ns/net)\" != \"\$(readlink /proc/self/ns/net)\" ]"
	want=$(readlink "/proc/$holder/ns/net")
	join_bundle "$SCMT/j" network "/proc/$holder/ns/net"
	create j1 "$SCMT/j"
	oci start j1
	wait_status j1 stopped
	cat "$SCMT/j1.out"
	[ "$(cat "$SCMT/j1.out")" = "$want" ]
	oci delete j1
	# what is not a namespace of its type is refused at create, by fd
	join_bundle "$SCMT/j" network "$B/config.json"
	run oci create --bundle "$SCMT/j" j2
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/linux/namespaces/"*"/path: $B/config.json is not a namespace"* ]]
	join_bundle "$SCMT/j" network "/proc/$holder/ns/ipc"
	run oci create --bundle "$SCMT/j" j2
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/path: /proc/$holder/ns/ipc is a ipc namespace, not network"* ]]
	join_bundle "$SCMT/j" ipc "$SCMT/nothere"
	run oci create --bundle "$SCMT/j" j2
	[ "$status" -ne 0 ]
	[[ "$output" == *"/path: $SCMT/nothere: No such file"* ]]
	[ ! -e "$ROOT/j2" ]
	# a profile without network: no joining one either (said at start)
	join_bundle "$SCMT/j" network "/proc/$holder/ns/net"
	jq '.annotations["org.scm.profiles"]="caller"' "$SCMT/j/config.json" >"$SCMT/j/c" && mv "$SCMT/j/c" "$SCMT/j/config.json"
	create j3 "$SCMT/j"
	run oci start j3
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"the sandbox allows no network, so the container cannot join network namespace"* ]]
	oci delete --force j3
	kill "$holder"
}

@test "namespaces joined by path: a FIFO is never opened; a sandbox's container joins a container's ipc, never the host's" {
	# under the caller profile's sandbox: the host's ipc namespace (a host
	# process's) is refused
	bare sleep 600 </dev/null >/dev/null 2>&1 &
	local holder=$! host
	host=$(readlink /proc/self/ns/ipc)
	join_bundle "$SCMT/jh" ipc "/proc/$holder/ns/ipc"
	jq '.annotations["org.scm.profiles"]="caller" | .process.args=["/bin/sh","-c","readlink /proc/self/ns/ipc"]' \
		"$SCMT/jh/config.json" >"$SCMT/jh/c" && mv "$SCMT/jh/c" "$SCMT/jh/config.json"
	create jh1 "$SCMT/jh" || { cat "$SCMT/jh1.err"; false; }
	run oci start jh1
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/proc/$holder/ns/ipc is not a container's ipc namespace"* ]]
	[ "$(cat "$SCMT/jh1.out")" != "$host" ]
	oci delete --force jh1
	kill "$holder"
	# opened as root a FIFO would hang the runtime (and a device act): it
	# is looked at by an O_PATH fd first
	mkfifo "$SCMT/fifo"
	join_bundle "$SCMT/jf" ipc "$SCMT/fifo"
	run timeout 20 "$OCI" --root "$ROOT" --scm-runtime-dir "$SCMT/run" create --bundle "$SCMT/jf" jf1 </dev/null
	echo "$output"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	[[ "$output" == *"/path: $SCMT/fifo is not a namespace"* ]]
	[ ! -e "$ROOT/jf1" ]
	# another container's (a pod's) is joined: the engine's path to its
	# monitor becomes its PID 1's
	create jp1
	oci start jp1
	wait_status jp1 running
	join_bundle "$SCMT/jm" ipc "/proc/$(cat "$SCMT/jp1.pid")/ns/ipc"
	jq '.annotations["org.scm.profiles"]="caller" | .process.args=["/bin/sh","-c","readlink /proc/self/ns/ipc"]' \
		"$SCMT/jm/config.json" >"$SCMT/jm/c" && mv "$SCMT/jm/c" "$SCMT/jm/config.json"
	create jm1 "$SCMT/jm"
	oci start jm1
	wait_status jm1 stopped
	cat "$SCMT/jm1.out"
	[[ "$(cat "$SCMT/jm1.out")" == ipc:* ]]
	[ "$(cat "$SCMT/jm1.out")" != "$host" ]
	oci delete jm1
	oci delete --force jp1
}

@test "namespaces joined by path are pinned at create: a pod's infra pid reused by start names another namespace, not joined" {
	# the infra container, and a member joining its network by the path
	# the engine gives (its monitor's), which create turns into its PID 1's
	create jr1
	oci start jr1
	wait_status jr1 running
	local infra want impostor= p
	infra=$("$SCMCTL" --json container show jr1 | jq -r .pid)
	want=$(readlink "/proc/$infra/ns/net")
	join_bundle "$SCMT/jr" network "/proc/$(cat "$SCMT/jr1.pid")/ns/net"
	create jr2 "$SCMT/jr" || { cat "$SCMT/jr2.err"; false; }
	[ "$(jq -r '.linux.namespaces[] | select(.type == "network") | .path' "$ROOT/jr2/config.json")" = "/proc/$infra/ns/net" ]
	# the infra's PID 1 ends; its pid goes to a process in a network
	# namespace of its own (the next pid set by ns_last_pid)
	kill -KILL "$infra"
	wait_until 60 sh -c "[ ! -e /proc/$infra ]"
	for _ in $(seq 200); do
		echo $((infra - 1)) >/proc/sys/kernel/ns_last_pid
		bare unshare --net sleep 600 </dev/null >/dev/null 2>&1 &
		p=$!
		[ "$p" = "$infra" ] && break
		kill "$p"
	done
	[ "$p" = "$infra" ] || skip "another process kept taking pid $infra"
	wait_until 60 sh -c "[ \"\$(readlink /proc/$infra/ns/net)\" != \"$want\" ] && [ \"\$(readlink /proc/$infra/ns/net)\" != \"\$(readlink /proc/self/ns/net)\" ]"
	impostor=$(readlink "/proc/$infra/ns/net")
	echo "infra's: $want; its pid's now: $impostor"
	oci start jr2
	wait_status jr2 stopped
	kill "$p"
	cat "$SCMT/jr2.out"
	[ "$(cat "$SCMT/jr2.out")" = "$want" ]
	# scmd's own threads never stepped into it (a thread made for the
	# clone did, and ended)
	local t host
	host=$(readlink /proc/self/ns/net)
	for t in /proc/"$SCMD_PID"/task/*; do [ "$(readlink "$t/ns/net")" = "$host" ]; done
	oci delete jr2
	oci delete --force jr1
}

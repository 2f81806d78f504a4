#!/usr/bin/env bats
# Containers run by scmd and driven through scmctl: lifecycle, logs, exec,
# stop, the endpoint each container gets (and nothing else), providers in
# containers called from clients in other containers, profile sandboxes,
# bad specs, and that nothing is left behind.
load helpers

H=$SCM_BUILD/libexec/scm-test-helper

pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	cat >"$SCMT/cfg/profiles/caller.json" <<'JSON'
{"name":"caller","priority":10,"services":[{"service":"echo","methods":["ping","whoami","greet"],"action":"allow"}],
 "sandbox":{"limits":{"pids":32,"memory":67108864}}}
JSON
}
setup() { start_scmd; }
teardown() {
	[ -z "${upid:-}" ] || kill "$upid" 2>/dev/null || true
	"$SCMCTL" --json container list 2>/dev/null | python3 -c '
import json,sys
for c in json.load(sys.stdin)["containers"]:
    if c["state"]=="running": print(c["name"])' | while read -r n; do "$SCMCTL" container kill "$n" >/dev/null 2>&1 || true; done
	stop_scmd
}

wait_state() { # NAME STATE
	wait_until 60 state_is "$1" "$2"
}
state_is() { "$SCMCTL" container show "$1" 2>/dev/null | grep -q "\"state\":\"$2\""; }

@test "run attached: output, exit status, hostname, a private pid namespace" {
	run "$SCMCTL" container run --name one -- /bin/sh -c 'echo out; echo err >&2; hostname; echo pid=$$; exit 7'
	[ "$status" -eq 7 ]
	[[ "$output" == *"out"* && "$output" == *"err"* ]]
	[[ "$output" == *"one"* ]]
	[[ "$output" == *"pid=2"* ]]
	run "$SCMCTL" container logs one
	[[ "$output" == *"out"*"err"* ]]
	run "$SCMCTL" --json container show one
	[[ "$output" == *'"state":"exited"'* && "$output" == *'"exit_code":7'* ]]
}

@test "detached: list, exec, stop (SIGTERM), logs; endpoint and state removed" {
	run "$SCMCTL" container run -d --name bg -- /bin/sh -c 'echo started; trap "echo got TERM; exit 0" TERM; while :; do sleep 0.1; done'
	[ "$status" -eq 0 ]
	[ "$output" = "bg" ]
	wait_state bg running
	[ -S "$(ep bg)" ]
	run "$SCMCTL" container list
	[[ "$output" == *"bg"*"running"* ]]
	run "$SCMCTL" container exec bg -- /bin/sh -c 'echo inside; exit 4'
	[ "$status" -eq 4 ]
	[[ "$output" == *"inside"* ]]
	run "$SCMCTL" container stop bg
	[ "$status" -eq 0 ]
	wait_state bg exited
	run "$SCMCTL" container logs bg
	[[ "$output" == *"started"*"got TERM"* ]]
	[ ! -e "$(ep bg)" ]
	run "$SCMCTL" container rm bg
	[ "$status" -eq 0 ]
	run "$SCMCTL" container show bg
	[ "$status" -eq 5 ]
	! grep -q "scm/bg" /proc/self/mountinfo
	[ ! -e /sys/fs/cgroup/pids/scm/bg ]
}

@test "stop escalates to SIGKILL when SIGTERM is ignored" {
	"$SCMCTL" container run -d --name stubborn -- /bin/sh -c 'trap "" TERM; while :; do sleep 0.1; done' >/dev/null
	wait_state stubborn running
	run "$SCMCTL" container stop stubborn --timeout 300
	wait_state stubborn exited
	run "$SCMCTL" --json container show stubborn
	[[ "$output" == *'"exit_code":137'* ]]
}

@test "the only door out is the container's own endpoint" {
	"$SCMCTL" endpoint create neighbour >/dev/null
	run "$SCMCTL" container run --name snoop -- /bin/sh -c "
		ls /run/scm; ls '$SCMT/run' 2>&1;
		$H connect-unix '$SCMT/run/control.sock';
		$H connect-unix '$(ep neighbour)';
		$H connect-unix /run/scm/scm.sock"
	echo "$output"
	[[ "$output" == *"scm.sock"* ]]
	[[ "$output" == *"No such file"* ]]
	# control socket and the neighbour's endpoint unreachable, our own reachable
	[ "$(echo "$output" | grep -c ': OK$')" -eq 1 ]
	[[ "$output" == *"connect /run/scm/scm.sock: OK"* ]]
	[ "$(echo "$output" | grep -c '^connect .*: E[A-Z]*$')" -eq 2 ]
}

@test "a provider in a container, called from a client in another container, decided by profiles" {
	cat >"$SCMT/echo.json" <<JSON
{"name":"echo","interface":"echo","exec":["scm-echo-provider"],"container":true,"allow":["host"]}
JSON
	"$SCMCTL" service register "$SCMT/echo.json" >/dev/null
	run "$SCMCTL" container run --name app --profile caller --bind "$SCM_SRC/stubs/idl" \
		--env SCM_IDL_PATH="$SCM_SRC/stubs/idl" -- \
		"$SCMCTL" call echo whoami
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"caller":"app"'* ]]
	run "$SCMCTL" --json container list
	[[ "$output" == *'"provides":"echo"'* ]]
	# without the profile: default deny
	run "$SCMCTL" container run --name stranger --bind "$SCM_SRC/stubs/idl" --env SCM_IDL_PATH="$SCM_SRC/stubs/idl" -- "$SCMCTL" call echo ping
	[ "$status" -eq 4 ]
	# the provider's container ends with the service
	"$SCMCTL" service unregister echo
	no_echo_running() { ! "$SCMCTL" --json container list | grep -q '"provides":"echo","state":"running"'; }
	wait_until 60 no_echo_running
	run "$SCMCTL" --json container list
	! echo "$output" | python3 -c '
import json,sys
cs=[c for c in json.load(sys.stdin)["containers"] if c.get("provides")=="echo" and c["state"]=="running"]
sys.exit(0 if cs else 1)'
}

@test "a provider container that dies mid-call: the client gets provider-gone" {
	cat >"$SCMT/echo.json" <<JSON
{"name":"echo","interface":"echo","exec":["scm-echo-provider"],"container":true,"allow":["demo"]}
JSON
	"$SCMCTL" service register "$SCMT/echo.json" >/dev/null
	"$SCMCTL" endpoint create demo >/dev/null
	SCM_ENDPOINT=$(ep demo) run timeout 20 "$TC" crash
	[ "$status" -eq 0 ]
	[[ "$output" == *"crash returned provider-gone"* ]]
}

@test "the profile's limits apply: a fork bomb stops at the pids limit, scmd is fine" {
	run timeout 60 "$SCMCTL" container run --name bomb --profile caller -- "$H" forkbomb
	echo "$output"
	scmd_alive
	run "$SCMCTL" call --endpoint nonexistent echo ping
	run "$SCMCTL" status
	[ "$status" -eq 0 ]
}

@test "bad bundles: the field is named, nothing is left" {
	mkdir -p "$SCMT/b/rootfs"
	echo '{"ociVersion":"1.0.2","process":{"args":["/bin/true"],"cwd":"/"},"root":{"path":"rootfs"},"colour":1}' >"$SCMT/b/config.json"
	run "$SCMCTL" container run --name bad1 --bundle "$SCMT/b"
	[ "$status" -ne 0 ]
	[[ "$output" == *"colour"* ]]
	echo '{"ociVersion":"1.0.2","process":{"args":["/bin/true", 5],"cwd":"/"},"root":{"path":"rootfs"}}' >"$SCMT/b/config.json"
	run "$SCMCTL" container run --name bad2 --bundle "$SCMT/b"
	[[ "$output" == *"/process/args/1"* ]]
	echo '{"ociVersion":"1.0.2","process":{"args":["/bin/true"],"cwd":"/"},"root":{"path":"nope"}}' >"$SCMT/b/config.json"
	run "$SCMCTL" container run --name bad3 --bundle "$SCMT/b"
	[[ "$output" == *"root"* ]]
	run "$SCMCTL" --json container list
	[[ "$output" != *"bad"* ]]
	[ ! -e "$(ep bad1)" ] && [ ! -e "$(ep bad2)" ] && [ ! -e "$(ep bad3)" ]
	run "$SCMCTL" container run --name 'no/slash' -- /bin/true
	[ "$status" -ne 0 ]
	[[ "$output" == *"not valid"* ]]
}

@test "an OCI bundle made with crun spec runs" {
	mkdir -p "$SCMT/oci/rootfs" && cd "$SCMT/oci"
	crun spec
	# a rootfs from the host's binaries, read-only binds
	python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/sh", "-c", "echo from-oci; cat /etc/hostname 2>/dev/null; exit 5"]
c["root"] = {"path": "rootfs", "readonly": True}
for d in ["/bin", "/lib", "/lib64", "/usr"]:
    c["mounts"].append({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro"]})
c["linux"].pop("resources", None)
json.dump(c, open("config.json", "w"))
PY
	# The container's root is an unprivileged host id: the root-owned rootfs
	# must hold its mount points (the endpoint's /run/scm among them).
	mkdir -p rootfs/bin rootfs/lib rootfs/lib64 rootfs/usr rootfs/proc rootfs/dev rootfs/tmp rootfs/sys rootfs/etc \
		rootfs/run/scm
	run "$SCMCTL" container run --name oci --bundle "$SCMT/oci"
	echo "$output"
	[ "$status" -eq 5 ]
	[[ "$output" == *"from-oci"* ]]
}

@test "rootless: a user's own scmd runs containers in user namespaces and brokers between them" {
	id scmtest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin scmtest
	D=$(mktemp -d /tmp/scm-rootless.XXXXXX)
	mkdir -p "$D/cfg"
	cat >"$D/echo.json" <<JSON
{"name":"echo","interface":"echo","exec":["scm-echo-provider"],"container":true,"allow":["client"]}
JSON
	chmod 755 "$D"; chown -R scmtest "$D"
	as_user() { setpriv --reuid scmtest --regid scmtest --clear-groups env SCM_RUNTIME_DIR="$D/run" "$@"; }
	# setpriv execs scmd, so $! is scmd's pid
	setpriv --reuid scmtest --regid scmtest --clear-groups "$SCMD" --runtime-dir "$D/run" --state-dir "$D/state" --config "$D/cfg" \
		--idl-path "$SCM_SRC/stubs/idl" 2>"$D/scmd.log" &
	upid=$!
	wait_until 60 test -S "$D/run/control.sock"
	run as_user "$SCMCTL" container run -- /bin/sh -c 'id -u; cat /proc/self/uid_map'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"0"*"0"*"$(id -u scmtest)"*"1"* ]]
	as_user "$SCMCTL" service register "$D/echo.json"
	run as_user "$SCMCTL" container run --name client --bind "$SCM_SRC/stubs/idl" \
		--env SCM_IDL_PATH="$SCM_SRC/stubs/idl" -- "$SCMCTL" call echo whoami
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"caller":"client"'* && "$output" == *"\"uid\":$(id -u scmtest)"* ]]
	kill "$upid"; wait "$upid" || true
	rm -rf "$D"
}

#!/usr/bin/env bats
# containerd with scm-oci as the runtime binary of its io.containerd.runc.v2
# shim (`ctr run --runc-binary`, as BinaryName in a CRI config): a
# containerd of the test's own (root, state and sockets in the test's
# directory), an image imported with `ctr image import` from an archive
# built here (busybox-static, scmctl with its libraries, the echo IDL),
# and containers that run under scm, one calling the echo service through
# its endpoint under the profile its annotation names.
load helpers

OCI=$SCM_BUILD/bin/scm-oci
NS=scmtest

pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	cat >"$SCMT/cfg/profiles/caller.json" <<'JSON'
{"name":"caller","priority":10,"services":[{"service":"echo","methods":["ping","whoami"],"action":"allow"}]}
JSON
}

containerd_up() { ctr --address "$SCMT/cd/containerd.sock" version >/dev/null 2>&1; }

setup_file() {
	command -v containerd >/dev/null || skip "containerd is not installed (scripts/install-deps.sh test)"
	start_scmd
	export SCMD_PID
	D=$SCMT/cd
	mkdir -p "$D"
	cat >"$D/config.toml" <<TOML
version = 2
root = "$D/root"
state = "$D/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$D/containerd.sock"
[ttrpc]
  address = "$D/containerd.sock.ttrpc"
TOML
	bare containerd --config "$D/config.toml" --log-level warn </dev/null >"$D/containerd.log" 2>&1 &
	echo $! >"$D/containerd.pid"
	wait_until 60 containerd_up
	# the runtime as the shim runs it: a script, so scm-oci finds this
	# test's scmd
	cat >"$D/scm-oci" <<SH
#!/bin/sh
exec "$OCI" --scm-runtime-dir "$SCMT/run" "\$@"
SH
	chmod +x "$D/scm-oci"
	cat >"$SCMT/echo.json" <<JSON
{"name":"echo","interface":"echo","exec":["scm-echo-provider"],"container":true,"allow":["host"]}
JSON
	"$SCMCTL" service register "$SCMT/echo.json" >/dev/null
	# a docker-archive image: one layer, its config, the manifest
	R=$SCMT/image
	mkdir -p "$SCMT/archive"
	busybox_scmctl_rootfs "$R" sh true echo sleep cat id
	tar -C "$R" -cf "$SCMT/archive/layer.tar" .
	diff=$(sha256sum "$SCMT/archive/layer.tar" | cut -d' ' -f1)
	cat >"$SCMT/archive/config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]},
 "rootfs":{"type":"layers","diff_ids":["sha256:$diff"]}}
JSON
	echo '[{"Config":"config.json","RepoTags":["localhost/scm-oci-test:latest"],"Layers":["layer.tar"]}]' \
		>"$SCMT/archive/manifest.json"
	tar -C "$SCMT/archive" -cf "$SCMT/image.tar" manifest.json config.json layer.tar
	ctr_ image import --snapshotter native "$SCMT/image.tar" >/dev/null
}

teardown_file() {
	[ -z "${SCMT:-}" ] && return 0
	if [ -e "$SCMT/cd/containerd.pid" ]; then
		for c in $(ctr_ containers list -q 2>/dev/null); do
			ctr_ tasks kill -s KILL "$c" >/dev/null 2>&1 || true
			ctr_ tasks delete -f "$c" >/dev/null 2>&1 || true
			ctr_ containers delete "$c" >/dev/null 2>&1 || true
		done
		kill "$(cat "$SCMT/cd/containerd.pid")" 2>/dev/null || true
		# the shims end with their tasks; the snapshots' mounts go with
		# containerd's state
		grep -o " $SCMT/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
	fi
	stop_scmd
}

ctr_() { ctr --address "$SCMT/cd/containerd.sock" -n "$NS" "$@"; }

# ctr run with scm-oci as the runc shim's binary
run_scm() { # ctr run options... IMAGE ID CMD...
	timeout 120 ctr --address "$SCMT/cd/containerd.sock" -n "$NS" run --rm --snapshotter native \
		--runc-binary "$SCMT/cd/scm-oci" --runc-root "$SCMT/cd/runc" "$@"
}

@test "containerd: ctr run through the runc shim with scm-oci; output and exit status come back" {
	run run_scm localhost/scm-oci-test:latest c1 /bin/sh -c 'echo hello from containerd; id -u; exit 3'
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"hello from containerd"* ]]
	# root inside, scm's subordinate id outside
	[[ "$output" == *$'\n0'* ]]
	# --rm: gone from containerd, scm-oci and scmd
	[ -z "$(ctr_ containers list -q)" ]
	[ -z "$(ls "$SCMT/cd/runc/$NS" 2>/dev/null)" ]
	! "$SCMCTL" --json container list | grep -q '"name":"c1"'
}

@test "containerd: a container calls the echo service through its endpoint under the annotation's profile" {
	run run_scm --annotation org.scm.profiles=caller --env SCM_IDL_PATH=/idl localhost/scm-oci-test:latest c2 \
		/bin/scmctl call echo whoami
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"caller":"c2"'* ]]
	[[ "$output" == *'"uid":2147483648'* ]]
	run run_scm --env SCM_IDL_PATH=/idl localhost/scm-oci-test:latest c3 /bin/scmctl call echo whoami
	echo "$output"
	[ "$status" -eq 4 ]
	[[ "$output" == *"not on the allow list of service 'echo'"* ]]
}

@test "containerd: a detached task, its state, kill and delete" {
	timeout 120 ctr --address "$SCMT/cd/containerd.sock" -n "$NS" run -d --snapshotter native --runc-binary "$SCMT/cd/scm-oci" --runc-root "$SCMT/cd/runc" \
		localhost/scm-oci-test:latest c4 /bin/sleep 600 >/dev/null
	run ctr_ tasks list
	echo "$output"
	[[ "$output" == *"c4"*"RUNNING"* ]]
	pid=$("$SCMCTL" --json container show c4 | jq -r .pid)
	[ "$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")" -ge 2147483648 ]
	run timeout 60 ctr --address "$SCMT/cd/containerd.sock" -n "$NS" tasks kill -s TERM c4
	echo "$output"
	[ "$status" -eq 0 ]
	wait_until 60 sh -c "ctr --address '$SCMT/cd/containerd.sock' -n $NS tasks list | grep -q 'c4.*STOPPED'"
	! kill -0 "$pid" 2>/dev/null
	ctr_ tasks delete c4
	ctr_ containers delete c4
	[ -z "$(ctr_ containers list -q)" ]
	! "$SCMCTL" --json container list | grep -q '"name":"c4"'
}

#!/usr/bin/env bats
# Real podman with scm-oci as its runtime (--runtime): a root filesystem
# made here from busybox-static (plus scmctl and its libraries) and
# brought in with `podman import`; podman run, ps, stop and rm; a container
# calling the echo service through its endpoint under the profile its
# annotation names, and refused without it. podman's storage lives in the
# test's directory (--root, --runroot, --tmpdir).
load helpers

OCI=$SCM_BUILD/bin/scm-oci

pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	cat >"$SCMT/cfg/profiles/caller.json" <<'JSON'
{"name":"caller","priority":10,"services":[{"service":"echo","methods":["ping","whoami"],"action":"allow"}]}
JSON
}

setup_file() {
	command -v podman >/dev/null || skip "podman is not installed (scripts/install-deps.sh test)"
	start_scmd
	export SCMD_PID
	# podman with its storage here and scm-oci as its runtime (a script,
	# so that timeout can run it)
	# rlimits this machine's hard limits allow, for containers made
	# without --ulimit too (a pod's infra container)
	cat >"$SCMT/containers.conf" <<'TOML'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
TOML
	cat >"$SCMT/podman" <<SH
#!/bin/sh
CONTAINERS_CONF="$SCMT/containers.conf" exec podman --root "$SCMT/storage" --runroot "$SCMT/runroot" --tmpdir "$SCMT/ptmp" --cgroup-manager cgroupfs \\
	--events-backend file --runtime "$OCI" --runtime-flag "scm-runtime-dir=$SCMT/run" "\$@"
SH
	chmod +x "$SCMT/podman"
	cat >"$SCMT/echo.json" <<JSON
{"name":"echo","interface":"echo","exec":["scm-echo-provider"],"container":true,"allow":["host"]}
JSON
	"$SCMCTL" service register "$SCMT/echo.json" >/dev/null
	# the image: busybox-static, scmctl with the libraries it links, the
	# echo interface
	R=$SCMT/image
	busybox_scmctl_rootfs "$R" sh true echo sleep cat stty tty readlink nc ip
	printf '#!/bin/sh\nexec sleep 100000\n' >"$R/bin/pause" && chmod 755 "$R/bin/pause"
	tar -C "$R" -cf "$SCMT/image.tar" .
	podman_ import -q "$SCMT/image.tar" localhost/scm-oci-test >/dev/null
}

teardown_file() {
	[ -z "${SCMT:-}" ] && return 0
	podman_ rm -af -t 0 >/dev/null 2>&1 || true
	# podman's overlay mounts in the test's storage
	grep -o " $SCMT/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
	stop_scmd
}

podman_() { "$SCMT/podman" "$@"; }

# podman as root asks for rlimits above this machine's hard limits
RUN_OPTS=(--network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

@test "podman run --rm: the output and the exit status come back through scm-oci" {
	run timeout 120 "$SCMT/podman" run --rm "${RUN_OPTS[@]}" localhost/scm-oci-test /bin/sh -c 'echo hello from scm; exit 3'
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"hello from scm"* ]]
	# --rm deleted it everywhere
	[ -z "$(podman_ ps -aq)" ]
	! "$SCMCTL" --json container list | grep -q '"name":"oci-'
}

@test "a container calls the echo service through its endpoint, under the annotation's profile" {
	run timeout 120 "$SCMT/podman" run --rm "${RUN_OPTS[@]}" --annotation org.scm.profiles=caller -e SCM_IDL_PATH=/idl \
		localhost/scm-oci-test /bin/scmctl call echo whoami
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"caller":"oci-'* ]]
	[[ "$output" == *'"uid":2147483648'* ]]
	# without the profile: default deny, said by scmd
	run timeout 120 "$SCMT/podman" run --rm "${RUN_OPTS[@]}" -e SCM_IDL_PATH=/idl localhost/scm-oci-test \
		/bin/scmctl call echo whoami
	echo "$output"
	[ "$status" -eq 4 ]
	[[ "$output" == *"not on the allow list of service 'echo'"* ]]
}

@test "podman run -d, ps, stop, rm: a long-running container under scm" {
	run timeout 120 "$SCMT/podman" run -d --name bg "${RUN_OPTS[@]}" localhost/scm-oci-test \
		/bin/sh -c 'echo started; trap "echo got TERM; exit 5" TERM; while :; do sleep 0.2; done'
	[ "$status" -eq 0 ]
	id=$output
	run podman_ ps --format '{{.Names}} {{.Status}}'
	echo "$output"
	[[ "$output" == "bg Up"* ]]
	# the container on the host: scmd's, running as scm's subordinate root
	name=$("$OCI" state "$id" | jq -r .scm_name)
	pid=$("$SCMCTL" --json container show "$name" | jq -r .pid)
	[ "$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")" -ge 2147483648 ]
	# podman exec: conmon runs `scm-oci exec --detach --process ...`
	run timeout 120 "$SCMT/podman" exec bg /bin/sh -c 'echo inside $(cat /proc/1/cmdline | tr "\\0" " "); exit 4'
	echo "$output"
	[ "$status" -eq 4 ]
	[[ "$output" == *"inside"* ]]
	run timeout 120 "$SCMT/podman" stop -t 20 bg
	[ "$status" -eq 0 ]
	run podman_ ps -a --format '{{.Names}} {{.Status}}'
	echo "$output"
	[[ "$output" == "bg Exited (5)"* ]]
	! kill -0 "$pid" 2>/dev/null
	for _ in $(seq 100); do podman_ logs bg | grep -q "got TERM" && break; sleep 0.1; done
	run podman_ logs bg
	[[ "$output" == *"started"*"got TERM"* ]]
	run podman_ rm bg
	[ "$status" -eq 0 ]
	[ -z "$(podman_ ps -aq)" ]
	# nothing left: not in scm-oci's state, not in scmd, no mount
	run "$OCI" state "$id"
	[ "$status" -ne 0 ]
	! "$SCMCTL" --json container list | grep -q "\"name\":\"$name\""
	! grep -q "scm-oci/$id" /proc/mounts
}

# podman sets no process.consoleSize: it resizes the terminal through conmon
# once attached, which may be after the program started (with any runtime).
# Until then busybox's `stty size` prints nothing on stdout (0 rows is an
# error to it, said on stderr, exit status 0), so wait for a size (30 s at
# most).
SIZE='i=0; while [ $i -lt 300 ]; do case "$(stty size 2>/dev/null)" in ""|"0 "*|*" 0") ;; *) break ;; esac; i=$((i+1)); sleep 0.1; done; stty size'

@test "podman run -t and exec -t: the pty comes over --console-socket; the container has a terminal of the caller's size" {
	run timeout 120 "$SCM_SRC/tests/bats/pty-run.py" --rows 31 --cols 97 --input 'typed-in\n' -- \
		"$SCMT/podman" run --rm -it "${RUN_OPTS[@]}" localhost/scm-oci-test \
		/bin/sh -c "$SIZE"'; [ -t 0 ] && [ -t 1 ] && echo stdin-and-stdout-are-a-tty; read l; echo "got:$l"; exit 6'
	echo "$output"
	[[ "$output" == *"31 97"* ]]
	[[ "$output" == *"stdin-and-stdout-are-a-tty"* ]]
	[[ "$output" == *"got:typed-in"* ]]
	[[ "$output" == *"exit 6"* ]]
	# the pty is the container's own (its devpts, as with runc and crun)
	run timeout 120 "$SCM_SRC/tests/bats/pty-run.py" -- \
		"$SCMT/podman" run --rm -t "${RUN_OPTS[@]}" localhost/scm-oci-test /bin/sh -c 'tty; ls /dev/pts'
	echo "$output"
	[[ "$output" == *"/dev/pts/0"* ]]
	[[ "$output" == *"exit 0"* ]]
	# exec -t into a running container: conmon's exec --console-socket
	run timeout 120 "$SCMT/podman" run -d --name tty-bg "${RUN_OPTS[@]}" localhost/scm-oci-test /bin/sleep 600
	[ "$status" -eq 0 ]
	run timeout 120 "$SCM_SRC/tests/bats/pty-run.py" --rows 12 --cols 34 -- \
		"$SCMT/podman" exec -t tty-bg /bin/sh -c "$SIZE"'; [ -t 0 ] && echo exec-has-a-tty'
	echo "$output"
	[[ "$output" == *"12 34"* ]]
	[[ "$output" == *"exec-has-a-tty"* ]]
	[[ "$output" == *"exit 0"* ]]
	run timeout 120 "$SCMT/podman" rm -f -t 0 tty-bg
	[ "$status" -eq 0 ]
}

@test "podman pod: containers join the infra container's network, ipc and uts namespaces and talk over loopback" {
	run timeout 120 "$SCMT/podman" pod create --name pod1 --network none --infra-image localhost/scm-oci-test \
		--infra-command /bin/pause
	echo "$output"
	[ "$status" -eq 0 ]
	run timeout 120 "$SCMT/podman" run -d --pod pod1 --name srv localhost/scm-oci-test \
		/bin/sh -c 'for n in net ipc uts; do readlink /proc/self/ns/$n; done; nc -l -p 7777'
	echo "$output"
	[ "$status" -eq 0 ]
	# The message comes from a quoted here-document, which the shell writes
	# into nc's stdin before nc runs. busybox nc reads stdin before the
	# socket, so the server's end of writing (its stdin is /dev/null: it
	# shuts its side at once) cannot end the client before it sent; with
	# `echo | nc` it could, on a loaded machine (the echo not yet written).
	run timeout 120 "$SCMT/podman" run --rm --pod pod1 localhost/scm-oci-test \
		/bin/sh -c 'for n in net ipc uts; do readlink /proc/self/ns/$n; done
			# until the server listens
			for i in $(seq 300); do nc 127.0.0.1 7777 2>/dev/null <<\EOF && exit
over-loopback
EOF
			sleep 0.1; done; exit 1'
	echo "$output"
	[ "$status" -eq 0 ]
	client=$output
	wait_until 60 sh -c "'$SCMT/podman' logs srv | grep -q over-loopback" || {
		echo "the server's log:"; podman_ logs srv; podman_ ps -a; false
	}
	server=$(podman_ logs srv | grep -v over-loopback)
	echo "server: $server"
	[ "$(echo "$client" | grep -c '^net:\|^ipc:\|^uts:')" -eq 3 ]
	[ "$client" = "$server" ]
	# ... the infra container's, not the host's
	[[ "$client" != *"$(readlink /proc/self/ns/net)"* ]]
	infra=$(podman_ pod inspect pod1 --format '{{.InfraContainerID}}')
	pid=$("$SCMCTL" --json container show "$("$OCI" state "$infra" | jq -r .scm_name)" | jq -r .pid)
	[[ "$client" == *"$(readlink /proc/$pid/ns/net)"* ]]
	run timeout 120 "$SCMT/podman" pod rm -f pod1
	[ "$status" -eq 0 ]
}

@test "podman's own network (a netns path under /run/netns) and --network container:NAME are the container's" {
	run timeout 120 "$SCMT/podman" run --rm --network bridge localhost/scm-oci-test /bin/sh -c 'ip -o addr; readlink /proc/self/ns/net'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"eth0"*"inet "* ]]
	# --network container:NAME: the same rule outside a pod
	run timeout 120 "$SCMT/podman" run -d --name solo "${RUN_OPTS[@]}" localhost/scm-oci-test /bin/sleep 600
	[ "$status" -eq 0 ]
	want=$(podman_ exec solo readlink /proc/self/ns/net)
	run timeout 120 "$SCMT/podman" run --rm --network container:solo localhost/scm-oci-test readlink /proc/self/ns/net
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$want" ]
	[ "$want" != "$(readlink /proc/self/ns/net)" ]
	run timeout 120 "$SCMT/podman" rm -f -t 0 solo
	[ "$status" -eq 0 ]
}

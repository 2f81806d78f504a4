#!/usr/bin/env bats
# Security properties of the container runtime, each as root and as an
# unprivileged user (rootless: user namespace), proven from inside with the
# static test helper.

load ../helper/container-common

# The default deny list (docs/containers.md), as x86_64 names, plus the
# argument-filtered cases: device mknod, packet/raw sockets, namespace
# flags on clone.
DENIED="mount umount2 pivot_root chroot fsopen fsconfig fsmount fspick move_mount open_tree
mount_setattr kexec_load kexec_file_load init_module finit_module delete_module create_module
bpf perf_event_open lookup_dcookie uselib iopl ioperm syslog keyctl add_key request_key ptrace
process_vm_readv process_vm_writev reboot swapon swapoff acct quotactl quotactl_fd
clock_settime settimeofday adjtimex clock_adjtime open_by_handle_at name_to_handle_at
userfaultfd unshare setns mknod mknodat ioctl-tiocsti socket-packet socket-raw clone-newuser
clone-newns clone-newnet clone-newpid io_uring_setup io_uring_enter io_uring_register pidfd_getfd
kcmp process_madvise move_pages migrate_pages fanotify_init ioctl-tioclinux ioctl-tiocsti-high"

setup_file() { container_setup_file; }
teardown_file() { container_teardown_file; }

setup() {
	D=$(mktemp -d /run/scm-sectest.XXXXXX)
	chmod 755 "$D"
}

teardown() {
	[ -n "${LISTENERS:-}" ] && kill $LISTENERS 2>/dev/null || true
	rm -rf "$D"
}

check_denied() {
	run as "$1" "$BIN/scm-run" -- "$(H)" try-syscall $DENIED dup mknod-fifo
	echo "$output"
	[ "$status" -eq 0 ]
	local name bad=""
	for name in $DENIED; do
		grep -qx "$name: EPERM" <<<"$output" || bad="$bad $name"
	done
	[ -z "$bad" ] || { echo "not blocked:$bad"; return 1; }
	# Controls: the method tells blocked from allowed.
	grep -qx "dup: EBADF" <<<"$output"
	grep -qx "mknod-fifo: ENOENT" <<<"$output"
	# clone3 hides its flags from the filter: ENOSYS sends libc to clone.
	run as "$1" "$BIN/scm-run" -- "$(H)" try-syscall clone3
	[ "$output" = "clone3: ENOSYS" ]
}

@test "root: every default-denied syscall fails with the filter's EPERM" { check_denied root; }
@test "rootless: every default-denied syscall fails with the filter's EPERM" { check_denied user; }

@test "root: the filter, not missing capabilities, blocks them (all capabilities kept)" {
	make_bundle "$D/b" try-syscall $DENIED
	# Every capability, no sandbox: only seccomp stands in the way.
	bundle_edit "$D/b" '.process.capabilities = ({} | .bounding=$c | .effective=$c | .permitted=$c) ' \
		2>/dev/null || true
	local all
	all=$(printf '"%s",' CAP_SYS_ADMIN CAP_SYS_BOOT CAP_SYS_MODULE CAP_SYS_TIME CAP_SYS_PTRACE \
		CAP_SYS_PACCT CAP_SYS_RAWIO CAP_NET_RAW CAP_MKNOD CAP_DAC_READ_SEARCH CAP_SYSLOG \
		CAP_SYS_TTY_CONFIG CAP_BPF CAP_PERFMON CAP_SYS_CHROOT)
	bundle_edit "$D/b" ".process.capabilities = {\"bounding\":[${all%,}],\"effective\":[${all%,}],\"permitted\":[${all%,}]}"
	run "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 0 ]
	local name bad=""
	for name in $DENIED; do
		grep -qx "$name: EPERM" <<<"$output" || bad="$bad $name"
	done
	[ -z "$bad" ] || { echo "not blocked:$bad"; return 1; }
}

@test "root: a syscall the sandbox allows reaches the kernel (EFAULT, not EPERM)" {
	run "$BIN/scm-run" --profile-sandbox '{"syscalls":{"allow":["mount","chroot"]}}' -- \
		"$(H)" try-syscall mount chroot umount2
	echo "$output"
	[ "$status" -eq 0 ]
	grep -qx "mount: EFAULT" <<<"$output"
	grep -qx "chroot: EFAULT" <<<"$output"
	grep -qx "umount2: EPERM" <<<"$output"
}

check_caps_empty() {
	run as "$1" "$BIN/scm-run" -- "$(H)" caps
	echo "$output"
	[ "$status" -eq 0 ]
	local set
	for set in effective permitted bounding ambient inheritable; do
		grep -qx "$set=0000000000000000" <<<"$output"
	done
}
@test "root: capability sets are empty by default" { check_caps_empty root; }
@test "rootless: capability sets are empty by default" { check_caps_empty user; }

check_nnp() {
	run as "$1" "$BIN/scm-run" -- "$(H)" nnp
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^NoNewPrivs:[[:space:]]+1$ ]]
}
@test "root: no_new_privs is set" { check_nnp root; }
@test "rootless: no_new_privs is set" { check_nnp user; }

check_pids() {
	run as "$1" "$BIN/scm-run" -- "$(H)" pids
	echo "$output"
	[ "$status" -eq 0 ]
	# PID 1 (our init) and the helper itself; nothing from the host.
	[ "$(echo "$output" | sort -n | paste -sd' ')" = "1 2" ]
}
@test "root: host PIDs are invisible" { check_pids root; }
@test "rootless: host PIDs are invisible" { check_pids user; }

check_host_paths() {
	local who=$1
	echo secret >"$D/secret"
	chmod 644 "$D/secret"
	make_bundle "$D/b" open /etc/hostname
	# A rootless user runs bundles it owns.
	bundle_own "$who" "$D/b"
	ln -s /etc/hostname "$D/b/rootfs/link"
	ln -s ../../../../../etc/hostname "$D/b/rootfs/dotdot"
	chmod -R a+rX "$D"
	local path
	for path in /etc/hostname /proc/1/root/etc/hostname /link /dotdot /../../etc/hostname \
		/proc/self/root/../etc/hostname "$D/secret" /proc/1/cwd/etc/hostname; do
		bundle_edit "$D/b" ".process.args=[\"/helper\",\"open\",\"$path\"]"
		run as "$who" "$BIN/scm-run" --bundle "$D/b"
		echo "$path -> $output"
		[ "$status" -eq 1 ]
		# /proc/1 is PID 1 of the container, which is not readable at all
		[[ "$output" == *ENOENT* || ( "$path" == /proc/1/* && "$output" == *EACCES* ) ]]
	done
	# The quick path shows the host / read-only, but not /run or /tmp.
	echo secret >"/tmp/scm-sectest-$$"
	run as "$who" "$BIN/scm-run" -- "$(H)" open "/tmp/scm-sectest-$$"
	rm -f "/tmp/scm-sectest-$$"
	[[ "$output" == *ENOENT* ]]
	run as "$who" "$BIN/scm-run" -- "$(H)" open "$D/secret"
	[[ "$output" == *ENOENT* ]]
	run as "$who" "$BIN/scm-run" -- "$(H)" write /etc/scm-sectest
	echo "$output"
	[[ "$output" == *EROFS* ]]
}
@test "root: host paths outside the binds are unreachable (/proc/1/root, symlinks, ..)" { check_host_paths root; }
@test "rootless: host paths outside the binds are unreachable (/proc/1/root, symlinks, ..)" { check_host_paths user; }

check_proc_sys() {
	local who=$1 path
	local paths="/proc/sys/kernel/hostname /proc/sys/vm/drop_caches /sys/kernel/uevent_helper
		/sys/kernel/mm/transparent_hugepage/enabled /proc/sys/net/ipv4/ip_forward"
	# Kernels built without magic SysRq have no trigger file to protect.
	[ -e /proc/sysrq-trigger ] && paths="$paths /proc/sysrq-trigger"
	for path in $paths; do
		[ -e "$path" ] || continue
		run as "$who" "$BIN/scm-run" -- "$(H)" write "$path"
		echo "$output"
		[ "$status" -eq 1 ]
		[[ "$output" == *EROFS* ]]
	done
	# Same through the bundle path (crun spec's /sys and readonlyPaths).
	make_bundle "$D/b" write /proc/sys/kernel/hostname
	bundle_own "$who" "$D/b"
	run as "$who" "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	[[ "$output" == *EROFS* ]]
	bundle_edit "$D/b" '.process.args=["/helper","write","/sys/kernel/uevent_helper"]'
	run as "$who" "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	[[ "$output" == *EROFS* ]]
	# Masked: empty files and directories.
	local masked=0
	for path in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do
		[ -e "$path" ] || continue # not built into this kernel
		masked=$((masked + 1))
		run as "$who" "$BIN/scm-run" -- "$(H)" read "$path"
		echo "$output"
		[ "$output" = "read $path: 0 bytes" ]
	done
	[ "$masked" -gt 0 ]
	for path in /sys/firmware /proc/scsi; do
		[ -e "$path" ] || continue
		run as "$who" "$BIN/scm-run" -- "$(H)" ls "$path"
		echo "$path: $output"
		[ "$status" -eq 0 ]
		[ -z "$output" ]
	done
}
@test "root: /proc/sys, /proc/sysrq-trigger and /sys are read-only, sensitive /proc masked" { check_proc_sys root; }
@test "rootless: /proc/sys, /proc/sysrq-trigger and /sys are read-only, sensitive /proc masked" { check_proc_sys user; }

check_raw_mknod() {
	run as "$1" "$BIN/scm-run" -- "$(H)" raw-socket
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "raw-socket: inet EPERM, packet EPERM" ]
	run as "$1" "$BIN/scm-run" -- "$(H)" mknod
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "mknod: EPERM" ]
}
@test "root: raw sockets and mknod fail" { check_raw_mknod root; }
@test "rootless: raw sockets and mknod fail" { check_raw_mknod user; }

listen() { # path
	"$BIN/scm-test-helper" listen-unix "$1" >"$1.log" 2>&1 3>&- &
	LISTENERS="${LISTENERS:-} $!"
	wait_until 60 grep -q listening "$1.log" 2>/dev/null
}

check_sockets() {
	local who=$1
	listen "$D/control.sock"
	listen "$D/a.sock"
	listen "$D/b.sock"
	listen "/tmp/scm-sectest-$$.sock"
	# Its own endpoint works (control), nothing else does.
	run as "$who" "$BIN/scm-run" --endpoint "$D/b.sock" -- "$(H)" connect-unix /run/scm/scm.sock
	echo "$output"
	[ "$status" -eq 0 ]
	local path
	for path in "$D/control.sock" "$D/a.sock" "/tmp/scm-sectest-$$.sock" /run/scm/control.sock; do
		run as "$who" "$BIN/scm-run" --endpoint "$D/b.sock" -- "$(H)" connect-unix "$path"
		echo "$output"
		rm -f "/tmp/scm-sectest-$$.sock.x"
		[ "$status" -eq 1 ]
		[[ "$output" == *ENOENT* ]]
	done
	# Another container's endpoint through /proc/PID/root: container A
	# runs with a.sock as its endpoint; B cannot see A's processes.
	local secs=$((300 + RANDOM % 1000)) a apid="" hpid="" i
	as "$who" "$BIN/scm-run" --endpoint "$D/a.sock" -- "$(H)" sleep $secs 3>&- &
	a=$!
	# A's PID 1 is the parent of its main process, the helper.
	helper_found() { hpid=$(pgrep -f "^[^ ]*scm-test-helper sleep $secs$" | head -1); [ -n "$hpid" ]; }
	wait_until 60 helper_found
	apid=$(ps -o ppid= -p "$hpid" | tr -d ' ')
	echo "container A's PID 1 on the host: $apid"
	[ -n "$apid" ]
	# The host sees A's endpoint there once A is set up.
	wait_until 60 test -S "/proc/$apid/root/run/scm/scm.sock"
	[ -S "/proc/$apid/root/run/scm/scm.sock" ]
	run as "$who" "$BIN/scm-run" --endpoint "$D/b.sock" -- "$(H)" connect-unix "/proc/$apid/root/run/scm/scm.sock"
	echo "$output"
	kill -9 "$apid" 2>/dev/null || true
	wait $a 2>/dev/null || true
	[ "$status" -eq 1 ]
	[[ "$output" == *ENOENT* ]]
	rm -f "/tmp/scm-sectest-$$.sock" "/tmp/scm-sectest-$$.sock.log"
}
@test "root: the container reaches its own endpoint and no other socket" { check_sockets root; }
@test "rootless: the container reaches its own endpoint and no other socket" { check_sockets user; }

check_forkbomb() {
	local who=$1 id="sectest-fb-$$-$who"
	run as "$who" "$BIN/scm-run" --id "$id" --profile-sandbox '{"pids":64}' -- "$(H)" forkbomb
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ stopped\ after\ ([0-9]+)\ forks:\ EAGAIN ]]
	[ "${BASH_REMATCH[1]}" -lt 64 ]
	# The host is fine and nothing is left.
	run true
	[ "$status" -eq 0 ]
	[ -z "$(leftover_cgroups "$id")" ]
}
@test "root: a fork bomb is stopped by pids.limit" { check_forkbomb root; }
@test "rootless: a fork bomb is stopped by the pids limit" { check_forkbomb user; }

check_memhog() {
	local who=$1 id="sectest-mem-$$-$who"
	run as "$who" "$BIN/scm-run" --id "$id" --profile-sandbox '{"memory":67108864}' -- "$(H)" memhog 1024
	echo "status $status: $output"
	[ "$status" -ne 0 ]
	[[ "$output" != *"allocated 1024 MB"* ]]
	if [ "$who" = root ]; then
		# The cgroup's OOM killer ends it: SIGKILL.
		[ "$status" -eq 137 ]
	fi
	[ -z "$(leftover_cgroups "$id")" ]
}
@test "root: a memory hog is stopped by memory.limit" { check_memhog root; }
@test "rootless: a memory hog is stopped by the memory limit" { check_memhog user; }

check_fds() {
	# A host fd the launcher holds (not close-on-exec) must not reach the
	# container, and PID 1 (a copy of the runtime, never exec'd) keeps none
	# and cannot be read through /proc/1.
	exec 7</etc/hostname
	run as "$1" "$BIN/scm-run" -- "$(H)" ls /proc/self/fd
	echo "$output"
	[ "$(echo "$output" | sort -n | paste -sd' ')" = "0 1 2 3" ] # 3: the listing itself
	run as "$1" "$BIN/scm-run" -- "$(H)" read /proc/1/mem
	echo "$output"
	[ "$output" = "read /proc/1/mem: EACCES" ]
	# Its fds cannot be opened (a uid-0 container may list their numbers).
	local fd
	for fd in 0 3 4 8; do
		run as "$1" "$BIN/scm-run" -- "$(H)" open /proc/1/fd/$fd
		echo "$output"
		[[ "$output" == *EACCES* || "$output" == *ENOENT* ]]
	done
	run as "$1" "$BIN/scm-run" -- "$(H)" read /proc/1/environ
	[ "$output" = "read /proc/1/environ: EACCES" ]
	exec 7<&-
}
@test "root: no host fd reaches the container, PID 1 is unreadable" { check_fds root; }
@test "rootless: no host fd reaches the container, PID 1 is unreadable" { check_fds user; }

# The same properties for root with a subordinate range (scmd's way).
@test "remap: every default-denied syscall fails with the filter's EPERM" { check_denied remap; }
@test "remap: capability sets are empty by default" { check_caps_empty remap; }
@test "remap: no_new_privs is set" { check_nnp remap; }
@test "remap: host PIDs are invisible" { check_pids remap; }
@test "remap: host paths outside the binds are unreachable (/proc/1/root, symlinks, ..)" { check_host_paths remap; }
@test "remap: /proc/sys, /proc/sysrq-trigger and /sys are read-only, sensitive /proc masked" { check_proc_sys remap; }
@test "remap: raw sockets and mknod fail" { check_raw_mknod remap; }
@test "remap: the container reaches its own endpoint and no other socket" { check_sockets remap; }
@test "remap: a fork bomb is stopped by pids.limit" { check_forkbomb remap; }
@test "remap: a memory hog is stopped by memory.limit" { check_memhog remap; }
@test "remap: no host fd reaches the container, PID 1 is unreadable" { check_fds remap; }

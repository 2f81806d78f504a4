#!/usr/bin/env bats
# The container's file system view against a hostile bundle and a hostile
# program: masks that are no host inode, bundle rootfs paths resolved by fd
# (symlinks never lead the runtime out of the rootfs), device nodes in a
# rootfs that open nothing. Each test looks at the host afterwards.

load ../helper/container-common

setup_file() { container_setup_file; }
teardown_file() { container_teardown_file; }

setup() {
	D=$(mktemp -d /run/scm-rootfstest.XXXXXX)
	chmod 755 "$D"
	# Host directories a bundle's links point at: not under /run or /tmp
	# (the quick path hides those), owned by the rootless user so that
	# only the runtime's care keeps it out.
	HOSTD=$(mktemp -d /var/tmp/scm-rootfs-host.XXXXXX)
	chmod 755 "$HOSTD"
	chown "$TEST_USER" "$HOSTD"
	NULL_BEFORE=$(stat -c '%a %u %g %X %Y %Z' /dev/null)
}

teardown() {
	# A failing run of the old code could have changed the host's
	# /dev/null: put it back before anything else needs it.
	chmod 666 /dev/null 2>/dev/null || true
	chown 0:0 /dev/null 2>/dev/null || true
	rm -rf "$D" "$HOSTD"
}

# Item: a masked /proc file is an empty, read-only file of the container's
# own; write, chmod, touch and chown all fail and the host's /dev/null
# (what masks used to bind) keeps its mode, owner and times.
check_masks_private() {
	local who=$1 path
	for path in /proc/keys /proc/kcore /proc/timer_list; do
		[ -e "$path" ] || continue
		run as "$who" "$BIN/scm-run" -- "$(H)" tamper "$path"
		echo "$output"
		[ "$status" -eq 0 ]
		[[ "$output" != *" OK"* ]]
	done
	# The bundle path, with a spec mask of its own (a file in the rootfs).
	make_bundle "$D/b" tamper /secret
	echo secret >"$D/b/rootfs/secret"
	bundle_edit "$D/b" '.linux.maskedPaths += ["/secret"]'
	[ "$who" = root ] || chown -R "$TEST_USER" "$D/b"
	run as "$who" "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *" OK"* ]]
	bundle_edit "$D/b" '.process.args=["/helper","read","/secret"]'
	run as "$who" "$BIN/scm-run" --bundle "$D/b"
	[ "$output" = "read /secret: 0 bytes" ]
	# The container's own /dev/null works, but its inode (the host's, in
	# a user namespace) cannot be touched or chmod'ed.
	run as "$who" "$BIN/scm-run" -- "$(H)" tamper /dev/null
	echo "$output"
	[[ "$output" == *"write OK"* ]]
	[[ "$output" != *"chmod OK"* && "$output" != *"touch OK"* && "$output" != *"chown OK"* ]]
	[ "$(stat -c '%a %u %g %X %Y %Z' /dev/null)" = "$NULL_BEFORE" ]
	[ "$(cat "$D/b/rootfs/secret")" = secret ]
}
@test "root: masks are a private empty file; the host's /dev/null is untouched" { check_masks_private root; }
@test "rootless: masks are a private empty file; the host's /dev/null is untouched" { check_masks_private user; }

# Item: links in a bundle rootfs never lead the runtime onto the host.
# rootfs/run -> HOSTD (absolute), a mount destination that is a link to a
# host directory, a masked path and a read-only path that are links to a
# host file and directory: nothing may appear in or change under HOSTD.
check_links_stay_inside() {
	local who=$1
	mkdir "$HOSTD/dir"
	echo host >"$HOSTD/file"
	chmod -R a+rwX "$HOSTD"
	local before
	before=$(cd "$HOSTD" && find . -printf '%p %m %s %T@\n' | sort)
	make_bundle "$D/b" exit 0
	ln -s "$HOSTD" "$D/b/rootfs/run"
	ln -s "$HOSTD/dir" "$D/b/rootfs/data"
	ln -s "$HOSTD/file" "$D/b/rootfs/evil"
	[ "$who" = root ] || chown -R "$TEST_USER" "$D/b"
	local mounts=(
		'{"destination":"/run/made/by/mkdir","type":"tmpfs","source":"tmpfs"}'
		"{\"destination\":\"/run/sub/helper\",\"type\":\"bind\",\"source\":\"$BIN/scm-test-helper\",\"options\":[\"bind\"]}"
		'{"destination":"/data","type":"tmpfs","source":"tmpfs"}'
	)
	local m
	for m in "${mounts[@]}"; do
		cp "$D/b/config.json" "$D/config.orig"
		bundle_edit "$D/b" ".mounts += [$m]"
		run as "$who" "$BIN/scm-run" --bundle "$D/b"
		echo "$m -> $status $output"
		# Refused, naming the mount point (the link leads nowhere
		# inside the rootfs), or mounted inside: never on the host.
		[ "$(cd "$HOSTD" && find . -printf '%p %m %s %T@\n' | sort)" = "$before" ]
		cp "$D/config.orig" "$D/b/config.json"
	done
	# The endpoint bind (/run/scm/scm.sock) through rootfs/run -> HOSTD.
	touch "$D/ep.sock"
	chmod 666 "$D/ep.sock"
	run as "$who" "$BIN/scm-run" --endpoint "$D/ep.sock" --bundle "$D/b"
	echo "endpoint -> $status $output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"mount point /run/scm/scm.sock"* ]]
	[ "$(cd "$HOSTD" && find . -printf '%p %m %s %T@\n' | sort)" = "$before" ]
	# Masks and read-only paths through links: resolved inside the rootfs
	# (where they lead nowhere), so the run goes on and the host file and
	# directory stay as they were.
	bundle_edit "$D/b" '.linux.maskedPaths += ["/evil", "/data"] | .linux.readonlyPaths += ["/run", "/data"]'
	bundle_edit "$D/b" '.process.args=["/helper","exit","0"]'
	run as "$who" "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(cd "$HOSTD" && find . -printf '%p %m %s %T@\n' | sort)" = "$before" ]
	[ "$(cat "$HOSTD/file")" = host ]
}
@test "root: links in a bundle rootfs never lead mkdir, mounts or masks onto the host" { check_links_stay_inside root; }
@test "rootless: links in a bundle rootfs never lead mkdir, mounts or masks onto the host" { check_links_stay_inside user; }

# Links that stay inside the rootfs still work: a mount through one lands
# where the link leads, inside.
check_links_inside() {
	local who=$1
	make_bundle "$D/b" write /inside/m/x hello
	mkdir -p "$D/b/rootfs/inside"
	ln -s /inside "$D/b/rootfs/lnk"
	bundle_edit "$D/b" '.mounts += [{"destination":"/lnk/m","type":"tmpfs","source":"tmpfs"}]'
	[ "$who" = root ] || chown -R "$TEST_USER" "$D/b"
	run as "$who" "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "write /inside/m/x: OK" ]
	[ -d "$D/b/rootfs/inside/m" ]
	[ ! -e /inside ]
}
@test "root: a link inside the rootfs is followed inside" { check_links_inside root; }
@test "rootless: a link inside the rootfs is followed inside" { check_links_inside user; }

# Item: device nodes in a bundle rootfs open nothing (the rootfs is
# nodev): a kmsg node writes no line to the host's kernel log, a null node
# does not open. The /dev the runtime makes keeps working.
@test "root: device nodes in a bundle rootfs open nothing (kmsg writes no kernel log line)" {
	local marker="scm-rootfs-kmsg-$$-$RANDOM"
	make_bundle "$D/b" write /kmsg "$marker"
	mknod -m 666 "$D/b/rootfs/kmsg" c 1 11
	mknod -m 666 "$D/b/rootfs/null" c 1 3
	run "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "write /kmsg: EACCES" ]
	! dmesg | grep -q "$marker"
	bundle_edit "$D/b" '.process.args=["/helper","write","/null"]'
	run "$BIN/scm-run" --bundle "$D/b"
	[ "$output" = "write /null: EACCES" ]
	bundle_edit "$D/b" '.process.args=["/helper","write","/dev/null"]'
	run "$BIN/scm-run" --bundle "$D/b"
	[ "$output" = "write /dev/null: OK" ]
	# A node the container makes in its /dev (given CAP_MKNOD and a filter
	# that allows mknod) opens nothing either: /dev is nodev, its own
	# nodes are binds.
	bundle_edit "$D/b" '.process.capabilities.bounding += ["CAP_MKNOD"] |
		.process.capabilities.effective += ["CAP_MKNOD"] |
		.process.capabilities.permitted += ["CAP_MKNOD"] |
		.linux.seccomp = {"defaultAction":"SCMP_ACT_ALLOW",
			"syscalls":[{"names":["mknod","mknodat"],"action":"SCMP_ACT_ALLOW"}]} |
		.process.args=["/helper","mknod","/dev/kmsg2","1","11","'"$marker"'"]'
	run "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	[[ "$output" == *"mknod /dev/kmsg2: OK"* ]]
	[[ "$output" == *"write /dev/kmsg2: EACCES"* ]]
	! dmesg | grep -q "$marker"
}

# Item: device rules that allow are enforced: the rootfs keeps device
# access and the kernel lets through only what the rules allow (and the
# runtime's own nodes): a v1 devices cgroup, or on cgroup v2 a BPF device
# program (SCM_DEVICES_BPF=1 takes that way on this hybrid host).
check_device_rules() {
	local how=$1
	if [ "$how" = v1 ]; then
		[ "$(stat -f -c %T /sys/fs/cgroup/devices 2>/dev/null)" = cgroupfs ] ||
			skip "no v1 devices controller"
	else
		[ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] ||
			[ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ] || skip "no cgroup v2"
		export SCM_DEVICES_BPF=1
	fi
	# Not under /run: a host mounting it nodev would decide for us.
	local B marker="scm-rootfs-kmsg-$$-$RANDOM" out=()
	B=$(mktemp -d /var/tmp/scm-devtest.XXXXXX)
	make_bundle "$B" write /kmsg "$marker"
	mknod -m 666 "$B/rootfs/kmsg" c 1 11
	mknod -m 666 "$B/rootfs/null" c 1 3
	# tun, allowed for reading only (whether its driver is there or not,
	# the cgroup's EPERM comes first).
	mknod -m 666 "$B/rootfs/tun" c 10 200
	bundle_edit "$B" '.linux.resources.devices = [{"allow":false,"access":"rwm"},
		{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"},
		{"allow":true,"type":"c","major":10,"minor":200,"access":"r"}]'
	local args
	for args in "write /kmsg $marker" "write /null" "write /dev/zero" "read /tun" "write /tun"; do
		bundle_edit "$B" ".process.args=([\"/helper\"] + (\"$args\" | split(\" \")))"
		run "$BIN/scm-run" --id "scm-devtest-$$" --bundle "$B"
		echo "$args -> $output"
		out+=("$output")
	done
	# A process exec'd into the running container is held the same way.
	bundle_edit "$B" '.process.args=["/helper","sleep","5"]'
	run "$BIN/scm-run" --bundle "$B" --exec "/helper write /kmsg $marker"
	echo "exec -> $output"
	out+=("$output")
	unset SCM_DEVICES_BPF
	rm -rf "$B"
	[ "${out[5]}" = "write /kmsg: EPERM" ]
	[ "${out[0]}" = "write /kmsg: EPERM" ]
	! dmesg | grep -q "$marker"
	[ "${out[1]}" = "write /null: OK" ]
	[ "${out[2]}" = "write /dev/zero: OK" ]
	[[ "${out[3]}" != *EPERM* ]]
	[ "${out[4]}" = "write /tun: EPERM" ]
	# The cgroup went with the container.
	[ -z "$(leftover_cgroups "scm-devtest-$$")" ]
}
@test "root: device rules that allow are enforced by the v1 devices cgroup (null opens, kmsg does not)" { check_device_rules v1; }
@test "root: device rules that allow are enforced by a BPF device program on cgroup v2" { check_device_rules bpf; }

@test "rootless: device rules that allow are refused, naming the field" {
	make_bundle "$D/b" exit 0
	bundle_edit "$D/b" '.linux.resources.devices = [{"allow":true,"type":"c","major":1,"minor":11,"access":"rw"}]'
	chown -R "$TEST_USER" "$D/b"
	run as user "$BIN/scm-run" --bundle "$D/b"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/linux/resources/devices: a rule allows devices, but a rootless runtime"* ]]
}

# A runtime whose own tree lies under /tmp (a source tree cloned there, as
# `make demo` from /tmp/scm would): the quick path's private /tmp covered
# its bind, so none of its programs ran in a container. The tree is bound
# again, read-only, on the private /tmp; the rest of /tmp stays private.
@test "remap: a runtime whose own tree lies under /tmp runs its programs in the quick path" {
	T=$(mktemp -d /tmp/scm-selftree.XXXXXX)
	mkdir -p "$T/bin" "$T/libexec"
	cp "$BIN/scm-run" "$T/bin/"
	cp "$(H)" "$T/libexec/helper"
	echo host-only >"$T/../$(basename "$T").secret"
	chmod 755 "$T" "$T/bin" "$T/libexec"
	run as remap "$T/bin/scm-run" -- /bin/sh -c \
		"$T/libexec/helper read $T/libexec/helper >/dev/null && echo ran;
		 touch $T/bin/planted 2>/dev/null && echo planted;
		 cat $T.secret 2>/dev/null; echo tmp: \$(ls /tmp)"
	rm -f "$T.secret"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *ran* ]]
	[ ! -e "$T/bin/planted" ]
	[[ "$output" != *planted* ]]
	[[ "$output" != *host-only* ]]
	# /tmp inside holds the tree's path only, nothing else of the host's
	[[ "$output" == *"tmp: $(basename "$T")" ]]
	rm -rf "$T"
}

#!/usr/bin/env bats
# vdisk under policy: the example profiles (examples/profiles/vdisk-*.json,
# their /srv/disks turned into a scratch directory) in a private scmd, the
# provider from examples/services/vdisk.json in a container of its own that
# sees the disk directory only through the vdisk-provider profile's mount,
# and vdisk-client in client containers carrying the reader or the writer
# profile. The libscm skeleton enforces the grant's argument constraints
# before the provider's handler runs; these tests see what a client sees.
load helpers

# The containers' ids on the host (scmd --subids): the provider's uid 0
# is START, which owns the disk directory as a real deployment's would.
START=2147483648
V=$SCM_BUILD/bin/scm-vdisk
C=$SCM_BUILD/libexec/vdisk-client

pre_start() {
	# Not under /tmp: quick-path client containers get a private /tmp, and
	# they read their input files from D.
	D=$(mktemp -d /var/tmp/scm-vdisk-policy.XXXXXX)
	chmod 755 "$D"
	export D
	mkdir -p "$SCMT/cfg/profiles"
	for p in "$SCM_SRC"/examples/profiles/vdisk-*.json; do
		sed "s#/srv/disks#$D#g" "$p" >"$SCMT/cfg/profiles/$(basename "$p")"
	done
	# A directory beside the prefix that the provider's container sees too
	# (read-only), so links out of the prefix are refused by the grant
	# rather than by the container's view.
	mkdir -m 755 "$D.other"
	python3 - "$SCMT/cfg/profiles/vdisk-provider.json" "$D.other" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["sandbox"]["mounts"].append({"source": sys.argv[2], "destination": sys.argv[2], "readonly": True})
json.dump(p, open(sys.argv[1], "w"))
PY
}

setup() {
	start_scmd --subids "$START:65536"
	"$SCMCTL" service register "$SCM_SRC/examples/services/vdisk.json" >/dev/null
	# a base disk with data, a differencing child, both made by scm-vdisk
	"$V" create --size 16M --block-size 1M "$D/base.vhdx"
	head -c 4M /dev/urandom >"$D/data.raw"
	"$V" write --offset 0 "$D/base.vhdx" <"$D/data.raw"
	"$V" create --parent "$D/base.vhdx" "$D/child.vhdx"
	qemu-img check -q "$D/base.vhdx"
	"$V" check "$D/child.vhdx" >/dev/null
	"$V" convert "$D/child.vhdx" "$D/expect.raw"
	chown -R "$START:$START" "$D"
}

teardown() {
	stop_scmd
	[ -z "${D:-}" ] || rm -rf "$D" "$D.other"
}

# in_container PROFILE CMD...: runs CMD in a quick-path container carrying
# PROFILE, with the interfaces and D (its input files) bound read-only. LeakSanitizer needs ptrace, which the container's seccomp filter
# denies: under SAN=1 the clients run with leak detection off (ASan and
# UBSan stay on; leaks are checked in vdisk-provider.bats, on the host).
in_container() {
	local p=$1; shift
	"$SCMCTL" container run --name "c$RANDOM" --profile "$p" --env SCM_IDL_PATH="$SCM_SRC/stubs/idl" \
		--bind "$SCM_SRC/stubs/idl" --bind "$D" \
		--env ASAN_OPTIONS=detect_leaks=0 -- "$@"
}

@test "policy: a reader opens a disk below its prefix read-only, through a provider in a container" {
	run in_container vdisk-reader /bin/sh -c "'$C' copy-out '$D/child.vhdx' /tmp/out.raw && sha256sum /tmp/out.raw"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "$(sha256sum <"$D/expect.raw" | cut -d' ' -f1)"* ]]
	run in_container vdisk-reader "$C" info "$D/child.vhdx"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"type":"differencing"'*'"read_only":true'* ]]
	# the provider runs in its own container, started for the service
	run "$SCMCTL" --json container list
	[[ "$output" == *'"provides":"vdisk"'* ]]
}

@test "policy: a reader asking for read-write is denied, naming the parameter" {
	run in_container vdisk-reader "$C" copy-in "$D/child.vhdx" "$D/data.raw"
	echo "$output"
	[ "$status" -eq 11 ]
	[[ "$output" == *"open: parameter 'readonly' is not the allowed value"* ]]
	[[ "$output" == *"denied"* ]]
	# nothing was written: the child still reads as before
	"$V" convert "$D/child.vhdx" "$SCMT/now.raw"
	cmp "$D/expect.raw" "$SCMT/now.raw"
}

@test "policy: paths outside the prefix are denied, with .. or without" {
	mkdir -p "$D.other"
	"$V" create --size 8M "$D.other/x.vhdx"
	for p in "$D.other/x.vhdx" "$D/../$(basename "$D").other/x.vhdx" "$D/./base.vhdx" "$D//base.vhdx" \
		 "${D%/*}/base.vhdx" "base.vhdx"; do
		run in_container vdisk-reader "$C" info "$p"
		echo "$p: $output"
		[ "$status" -eq 11 ]
		[[ "$output" == *"open: parameter 'path' is not a clean path under the allowed directory"* ]]
	done
	rm -rf "$D.other"
	# methods the profile does not name are not granted at all
	run in_container vdisk-reader "$SCMCTL" call vdisk create "{\"path\":\"$D/new.vhdx\",\"size\":1048576,\"block_size\":0,\"sector_size\":0,\"fixed\":false,\"parent\":\"\"}"
	echo "$output"
	[ "$status" -eq 4 ]
	[[ "$output" == *"denied"* ]]
	[ ! -e "$D/new.vhdx" ]
}

@test "policy: a writer writes the child; parent untouched, images check clean" {
	head -c 2M /dev/urandom >"$D/new.raw"
	run in_container vdisk-writer "$C" copy-in "$D/child.vhdx" "$D/new.raw"
	echo "$output"
	[ "$status" -eq 0 ]
	"$V" convert "$D/child.vhdx" "$SCMT/child.raw"
	cmp -n 2097152 "$D/new.raw" "$SCMT/child.raw"
	cmp -i 2097152 "$D/expect.raw" "$SCMT/child.raw"
	"$V" check "$D/child.vhdx"
	qemu-img check "$D/base.vhdx"
	"$V" convert "$D/base.vhdx" "$SCMT/base.raw"
	cmp -n 4194304 "$D/data.raw" "$SCMT/base.raw"
	# a writer may create base disks under its prefix, but not children
	run in_container vdisk-writer "$SCMCTL" call vdisk create "{\"path\":\"$D/new.vhdx\",\"size\":8388608,\"block_size\":0,\"sector_size\":0,\"fixed\":false,\"parent\":\"\"}"
	echo "$output"
	[ "$status" -eq 0 ]
	qemu-img check "$D/new.vhdx"
	run in_container vdisk-writer "$SCMCTL" call vdisk create "{\"path\":\"$D/kid.vhdx\",\"size\":0,\"block_size\":0,\"sector_size\":0,\"fixed\":false,\"parent\":\"$D/base.vhdx\"}"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"parameter 'parent'"* ]]
	[ ! -e "$D/kid.vhdx" ]
}

@test "policy: without the mount the provider's container cannot write the disk" {
	"$SCMCTL" service unregister vdisk
	cat >"$SCMT/bare.json" <<JSON
{"name":"vdisk","interface":"vdisk","exec":["scm-vdisk-provider"],"container":true,"allow":["host"]}
JSON
	"$SCMCTL" service register "$SCMT/bare.json" >/dev/null
	run in_container vdisk-writer "$C" copy-in "$D/child.vhdx" "$D/data.raw"
	echo "$output"
	[ "$status" -ne 0 ]
	# the disk directory is not in its view at all
	[[ "$output" == *"No such file"* || "$output" == *"NotFound"* || "$output" == *"ENOENT"* ]]
	"$V" convert "$D/child.vhdx" "$SCMT/now.raw"
	cmp "$D/expect.raw" "$SCMT/now.raw"
	run in_container vdisk-reader "$C" info "$D/base.vhdx"
	[ "$status" -ne 0 ]
}

@test "policy: batched reads (readv) are granted to the reader, and read the child through the chain" {
	run in_container vdisk-reader /bin/sh -c "'$C' vcopy-out '$D/child.vhdx' /tmp/out.raw && sha256sum /tmp/out.raw"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "$(sha256sum <"$D/expect.raw" | cut -d' ' -f1)"* ]]
}

@test "policy: a symbolic link under the prefix is not followed, inside or out" {
	mkdir -p "$D.other"
	"$V" create --size 8M "$D.other/x.vhdx"
	ln -s "$D.other/x.vhdx" "$D/escape.vhdx"
	ln -s "$D.other" "$D/outdir"
	ln -s base.vhdx "$D/alias.vhdx"
	run in_container vdisk-reader "$C" info "$D/escape.vhdx"
	echo "$output"
	[ "$status" -eq 11 ]
	[[ "$output" == *"$D/escape.vhdx: not a regular file (a symbolic link, not followed under a grant)"* ]]
	run in_container vdisk-writer "$SCMCTL" call vdisk create "{\"path\":\"$D/outdir/new.vhdx\",\"size\":8388608,\"block_size\":0,\"sector_size\":0,\"fixed\":false,\"parent\":\"\"}"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"a symbolic link on the way (not followed under a grant)"* ]]
	[ ! -e "$D.other/new.vhdx" ]
	# a link is refused even when it stays inside: openat2's
	# RESOLVE_NO_SYMLINKS, so no swapped link can ever be raced
	run in_container vdisk-reader "$C" info "$D/alias.vhdx"
	echo "$output"
	[ "$status" -eq 11 ]
	rm -rf "$D.other"
}

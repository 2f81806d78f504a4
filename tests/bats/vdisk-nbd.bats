#!/usr/bin/env bats
# NBD export (issue 14 item 2): `scm-vdisk export` serves a vdisk through
# nbdkit and our plugin, a client of the provider with the caller's grant.
# Real NBD clients (nbdinfo, nbdcopy, nbdsh, qemu-img, qemu-io) read and
# write it; the bytes and block states are checked in the VHDX afterwards,
# and refusals are checked by what is (not) served and (not) written.
load helpers

V=$SCM_BUILD/bin/scm-vdisk
C=$SCM_BUILD/libexec/vdisk-client

pre_start() {
	D=$SCMT/disks
	mkdir -p "$D/a" "$D/b" "$SCMT/cfg/profiles"
	export D
	for p in reader writer; do
		sed "s#/srv/disks#$D#g" "$SCM_SRC/examples/profiles/vdisk-$p.json" >"$SCMT/cfg/profiles/vdisk-$p.json"
	done
	# a writer granted only D/a
	sed -e "s#/srv/disks#$D/a#g" -e 's#"vdisk-writer"#"vdisk-writer-a"#' -e 's#"priority": 20#"priority": 25#' \
		"$SCM_SRC/examples/profiles/vdisk-writer.json" >"$SCMT/cfg/profiles/vdisk-writer-a.json"
}

setup() {
	command -v nbdkit >/dev/null && command -v nbdinfo >/dev/null || {
		echo "nbdkit and libnbd-bin are test dependencies (scripts/deps/test-vdisk.txt)" >&2; return 1; }
	start_scmd
	cat >"$SCMT/vdisk.json" <<JSON
{ "name": "vdisk", "interface": "vdisk", "exec": ["$SCM_BUILD/libexec/scm-vdisk-provider"],
  "allow": ["reader", "writer", "writer_a"] }
JSON
	"$SCMCTL" service register "$SCMT/vdisk.json" >/dev/null
	"$SCMCTL" endpoint create reader --profiles vdisk-reader >/dev/null
	"$SCMCTL" endpoint create writer --profiles vdisk-writer >/dev/null
	"$SCMCTL" endpoint create writer_a --profiles vdisk-writer-a >/dev/null
	export SCM_EXPORT_DIR=$SCMT/exports
	S=$SCMT/nbd.sock
	EXPORTS=""
}

teardown() {
	for n in $EXPORTS; do "$V" export --stop "$n" 2>/dev/null || true; done
	for p in ${HOLDS:-}; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	kill "$SCMD_PID" 2>/dev/null || true
	wait "$SCMD_PID" 2>/dev/null || true
	local bad=0 f
	for f in "$SCMT/scmd.log" "$SCMT"/run/logs/vdisk.log*; do
		if grep -q "Sanitizer" "$f" 2>/dev/null; then cat "$f"; bad=1; fi
	done
	stop_scmd
	return $bad
}

# export EP NAME DISK ARGS...: detached; its URI in $URI
export_() {
	local e=$1 name=$2 disk=$3
	shift 3
	run "$V" export --endpoint "$(ep "$e")" --detach --name "$name" "$disk" "$@"
	echo "$output"
	[ "$status" -eq 0 ]
	EXPORTS="$EXPORTS $name"
	URI=$(echo "$output" | awk -v n="$name" '$1 == n { print $2 }')
	[ -n "$URI" ]
}

stop_() { "$V" export --stop "$1"; }

# the provider lets go of a disk on a worker after its last close
convert_free() {
	for _ in $(seq 200); do
		"$V" convert -O raw "$1" "$2" 2>/dev/null && return 0
		sleep 0.05
	done
	"$V" convert -O raw "$1" "$2"
}

# data_map DISK: our map of a disk without parent as NBD would say it:
# "OFFSET LENGTH data|hole" with neighbours merged
our_map() {
	"$V" map --json "$1" | python3 -c '
import json, sys
out = []
for r in json.load(sys.stdin):
    k = "data" if r["state"] in ("allocated", "partial") else "hole"
    if out and out[-1][2] == k:
        out[-1][1] += r["length"]
    else:
        out.append([r["start"], r["length"], k])
for o in out: print(*o)'
}

# nbd_map URI: nbdinfo --map the same way (type 0 data, 3 hole,zero)
nbd_map() {
	nbdinfo --map --json "$1" | python3 -c '
import json, sys
out = []
for r in json.load(sys.stdin):
    k = {0: "data", 3: "hole"}.get(r["type"], "type%d" % r["type"])
    if out and out[-1][2] == k:
        out[-1][1] += r["length"]
    else:
        out.append([r["offset"], r["length"], k])
for o in out: print(*o)'
}

base_disk() { # FILE: 64 MiB in 1 MiB blocks: data, written zeros, holes
	"$V" create --size 64M --block-size 1M "$1"
	head -c 4M /dev/urandom | "$V" write --offset 0 "$1"
	head -c 2M /dev/zero | "$V" write --offset 16M "$1"
	head -c 1M /dev/urandom | "$V" write --offset 40M "$1"
}

@test "nbd: nbdinfo shows the size, block sizes, multi-conn and our allocation map" {
	base_disk "$D/m.vhdx"
	export_ reader m "$D/m.vhdx" --readonly --nbd "unix:$S"
	[[ $URI == "nbd+unix:///m?socket=$S" ]]
	run nbdinfo --json "$URI"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | python3 -c '
import json, sys
e = json.load(sys.stdin)["exports"][0]
assert e["export-size"] == 64 << 20, e
assert e["is_read_only"] is True, e
assert e["can_multi_conn"] is True, e
assert e["block_size_minimum"] == 512, e
assert e["block_size_preferred"] == 4096, e
assert e["block_size_maximum"] == 4 << 20, e
'
	our_map "$D/m.vhdx" >"$SCMT/ours"
	nbd_map "$URI" >"$SCMT/theirs"
	cat "$SCMT/ours" "$SCMT/theirs"
	diff "$SCMT/ours" "$SCMT/theirs"
	# the zeros written at 16M are data (allocated), the rest holes
	grep -q "^16777216 2097152 data$" "$SCMT/theirs" || grep -q "^16777216 .* data$" "$SCMT/theirs"
	grep -q "^4194304 12582912 hole$" "$SCMT/theirs"
}

@test "nbd: qemu-img convert of the export equals our convert (whole differencing chain)" {
	"$V" create --size 32M --block-size 1M "$D/base.vhdx"
	head -c 32M /dev/urandom | "$V" write --offset 0 "$D/base.vhdx"
	"$V" create --parent "$D/base.vhdx" "$D/child.vhdx"
	head -c 4096 /dev/urandom | "$V" write --offset 1M "$D/child.vhdx"
	head -c 3M /dev/zero | "$V" write --offset 8M "$D/child.vhdx"
	head -c 512 /dev/urandom | "$V" write --offset 20M "$D/child.vhdx"
	"$V" trim --offset 24M --length 2M "$D/child.vhdx"
	"$V" convert -O raw "$D/child.vhdx" "$SCMT/ours.raw"
	export_ reader c "$D/child.vhdx" --readonly --nbd "unix:$S"
	qemu-img convert -f raw -O raw "$URI" "$SCMT/qemu.raw"
	cmp "$SCMT/ours.raw" "$SCMT/qemu.raw"
	qemu-img compare -f raw -F raw "$SCMT/ours.raw" "$URI"
	nbdcopy "$URI" "$SCMT/nbdcopy.raw"
	cmp "$SCMT/ours.raw" "$SCMT/nbdcopy.raw"
	# block status through the chain: data where any file holds it
	nbd_map "$URI" | grep -q "^0 33554432 data$"
}

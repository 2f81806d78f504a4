# vdisk-nbd.bash: what the NBD export's tests share (vdisk-nbd.bats,
# vdisk-nbdserve.bats): a scmd per test with the example vdisk profiles
# granted to D, exports made and stopped, maps as NBD and as we say them.
# (the scmd and provider set-up, hold and convert_free: vdisk.bash)
load vdisk

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
	# opens read-write, may serve NBD and read, not write (nor trim, zero)
	cat >"$SCMT/cfg/profiles/vdisk-nowrite.json" <<JSON
{ "name": "vdisk-nowrite", "priority": 30,
  "services": [
    { "service": "vdisk", "methods": ["open"], "action": "allow", "args": { "path": { "path_prefix": "$D" } } },
    { "service": "vdisk", "methods": ["read", "nbd_serve", "flush", "info", "close", "extents"], "action": "allow" } ] }
JSON
	# opens read-write, may write and zero, not trim, nor ask block status
	cat >"$SCMT/cfg/profiles/vdisk-notrim.json" <<JSON
{ "name": "vdisk-notrim", "priority": 30,
  "services": [
    { "service": "vdisk", "methods": ["open"], "action": "allow", "args": { "path": { "path_prefix": "$D" } } },
    { "service": "vdisk", "methods": ["read", "write", "zero", "nbd_serve", "flush", "info", "close"], "action": "allow" } ] }
JSON
	# opens read-write, may write, trim and zero, not flush (so no FUA)
	cat >"$SCMT/cfg/profiles/vdisk-noflush.json" <<JSON
{ "name": "vdisk-noflush", "priority": 30,
  "services": [
    { "service": "vdisk", "methods": ["open"], "action": "allow", "args": { "path": { "path_prefix": "$D" } } },
    { "service": "vdisk", "methods": ["read", "write", "trim", "zero", "nbd_serve", "info", "close", "extents"], "action": "allow" } ] }
JSON
}

setup() {
	command -v nbdkit >/dev/null && command -v nbdinfo >/dev/null || {
		echo "nbdkit and libnbd-bin are test dependencies (scripts/deps/test-vdisk.txt)" >&2; return 1; }
	vdisk_setup reader:vdisk-reader writer:vdisk-writer writer_a:vdisk-writer-a nowrite:vdisk-nowrite \
		notrim:vdisk-notrim noflush:vdisk-noflush
	export SCM_EXPORT_DIR=$SCMT/exports
	S=$SCMT/nbd.sock
	EXPORTS=""
}

teardown() {
	for n in $EXPORTS; do "$V" export --stop "$n" 2>/dev/null || true; done
	touch "$SCMT/stop"
	vdisk_teardown
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

# nbd_flags URI: what nbdinfo says the export offers, one "key value" a line
nbd_flags() {
	nbdinfo --json --no-content "$1" | python3 -c '
import json, sys
e = json.load(sys.stdin)["exports"][0]
for k in ("is_read_only", "can_flush", "can_fua", "can_trim", "can_zero", "can_multi_conn"):
    print(k, str(e[k]).lower())
print("contexts", " ".join(e.get("contexts", [])) or "none")'
}

# nbdsh runs python3 -mnbd: Debian's python3, whatever PATH says
nbdsh() { PATH=/usr/bin:$PATH command nbdsh "$@"; }

# gone PID: no such process, or a zombie nobody reaped yet
gone() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0; [[ $st == Z* ]]; }

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


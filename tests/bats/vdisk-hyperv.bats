#!/usr/bin/env bats
# vdisk and Hyper-V: the metadata Windows wrote survives our engine. Uses
# the sample disks in ../shared/vhdx-samples by path (decompressed into a
# temp dir, never copied into the tree; SOURCES.txt there says what each
# is). Oracles: libvhdi's vhdiinfo, qemu-img, and vdisk-forge.py reading
# the locator bytes itself.

setup() {
	V=$SCM_BUILD/bin/scm-vdisk
	F=$SCM_SRC/tests/bats/vdisk-forge.py
	T=$(mktemp -d)
	cd "$T"
}

teardown() {
	cd /
	rm -rf "$T"
}

samples_dir() {
	local d
	for d in "${SCM_VHDX_SAMPLES:-}" "$SCM_SRC/../shared/vhdx-samples" "$SCM_SRC/../../shared/vhdx-samples"; do
		[ -n "$d" ] && [ -f "$d/SOURCES.txt" ] && { echo "$d"; return 0; }
	done
	echo "the VHDX sample disks are missing: set SCM_VHDX_SAMPLES to the vhdx-samples directory" >&2
	return 1
}

unpack() { # SAMPLE: decompressed into $T; prints the path
	local out=$T/$(basename "${1%.*}")
	case $1 in
	*.bz2) bzip2 -dc "$1" >"$out" ;;
	*.gz) gzip -dc "$1" >"$out" ;;
	*) return 1 ;;
	esac
	echo "$out"
}

# The Hyper-V checkpoint and an empty stand-in for its unpublished parent
# (where relative_path says, with the DataWriteGuid given, default the
# recorded parent_linkage). Sets img and parent.
hyperv_child() {
	img=$(unpack "$(samples_dir)/dissect-differencing.avhdx.gz")
	local linkage vsize lsec name
	read -r linkage vsize lsec name < <(python3 "$F" parent "$img" | tr -d '\r')
	parent=$T/$name
	"$V" create --size "$vsize" --sector-size "$lsec" --block-size 2M "$parent"
	python3 "$F" dwg "$parent" "${1:-$linkage}"
}

locator_json() { # FILE: the locator entries per our info --json, key=value a line
	"$V" info --json "$1" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["parent_locator"]:
    print(e["key"] + "=" + e["value"])'
}

@test "a write to a Hyper-V child keeps every locator entry Windows wrote" {
	hyperv_child
	python3 "$F" locator "$img" >before.txt
	grep -q '^absolute_win32_path=C:\\Users\\' before.txt
	grep -q '^volume_path=\\\\?\\Volume{' before.txt
	grep -q '^parent_linkage2=' before.txt
	[ "$(wc -l <before.txt)" -eq 5 ]
	vhdiinfo "$img" >vhdi-before.txt
	# a write through our engine (read-write open, data, close)
	head -c 1M /dev/urandom >data
	"$V" write --offset 1M "$img" <data
	"$V" read --offset 1M --length 1M "$img" | cmp - data
	# the bytes of the locator item: every entry, same order, same values
	python3 "$F" locator "$img" >after.txt
	diff before.txt after.txt
	# our info says the same as the bytes, and libvhdi sees what it saw
	locator_json "$img" >ours.txt
	diff before.txt ours.txt
	vhdiinfo "$img" >vhdi-after.txt
	diff <(grep -i parent vhdi-before.txt) <(grep -i parent vhdi-after.txt)
	"$V" check "$img"
}

@test "compact of a Hyper-V child keeps its locator entries and contents" {
	hyperv_child
	python3 "$F" locator "$img" >before.txt
	"$V" convert "$img" before.raw
	"$V" compact "$img"
	python3 "$F" locator "$img" >after.txt
	diff before.txt after.txt
	"$V" convert "$img" after.raw
	cmp before.raw after.raw
	rm -f before.raw after.raw
	# the child's own sectors are still its own (not folded into zeros)
	"$V" map "$img" | grep -q partial
	"$V" check "$img"
}

@test "parent_linkage2 is accepted as MS-VHDX says; a parent matching neither is refused" {
	other='{6b1b7a3e-2c1f-4d7e-9a55-0123456789ab}'
	hyperv_child "$other"
	# the stand-in's DataWriteGuid is not parent_linkage: refused
	run "$V" check "$img"
	[ "$status" -ne 0 ]
	[[ $output == *"does not match"* ]]
	# recorded as parent_linkage2 (same length, in place): accepted
	python3 "$F" setkey "$img" parent_linkage2 "$other"
	run "$V" info --json "$img"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *'"parent_linkage2":"{6B1B7A3E-2C1F-4D7E-9A55-0123456789AB}"'* ]]
	[[ $output == *'"parent_available":true'* ]]
	"$V" check "$img"
	# libvhdi agrees the locator is well formed
	vhdiinfo "$img" >/dev/null
	# and a write keeps both linkages
	"$V" write --offset 0 "$img" < <(head -c 4096 /dev/urandom)
	python3 "$F" locator "$img" | grep -qx "parent_linkage2=$other"
	python3 "$F" locator "$img" | grep -qx 'parent_linkage={ff34003b-11ed-4cf8-a166-b2be05e20b80}'
	# a parent matching neither linkage is still refused
	python3 "$F" dwg "$parent" '{11111111-2222-3333-4444-555555555555}'
	run "$V" check "$img"
	[ "$status" -ne 0 ]
	[[ $output == *"nor parent_linkage2 {6B1B7A3E-2C1F-4D7E-9A55-0123456789AB}) does not match"* ]]
}

@test "info and check of a differencing disk whose parent is missing" {
	img=$(unpack "$(samples_dir)/dissect-differencing.avhdx.gz")
	run "$V" info "$img"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"format: vhdx (differencing)"* ]]
	[[ $output == *"partially_present 32"* ]]
	[[ $output == *"parent linkage: {FF34003B-11ED-4CF8-A166-B2BE05E20B80}"* ]]
	[[ $output == *"parent: NOT AVAILABLE"* ]]
	# what vhdiinfo reports from the file alone, we report too
	vhdiinfo "$img" >vhdi.txt
	size=$(sed -n 's/.*Media size.*(\([0-9]*\) bytes).*/\1/p' vhdi.txt)
	pid=$(sed -n 's/.*Parent identifier[^:]*: //p' vhdi.txt)
	"$V" info --json "$img" >info.json
	python3 - "$size" "$pid" <<'EOF'
import json, sys
j = json.load(open("info.json"))
assert j["virtual_size"] == int(sys.argv[1]), j["virtual_size"]
assert j["parent_linkage"].strip("{}").lower() == sys.argv[2].strip().lower(), j["parent_linkage"]
assert j["parent_available"] is False and "parent not found" in j["parent_error"]
assert len(j["parent_locator"]) == 5
EOF
	# check: the file alone is clean; exit 4 says the parent is missing
	run "$V" check "$img"
	echo "$output"
	[ "$status" -eq 4 ]
	[[ $output == *"parent not available"* ]]
	[[ $output == *"0 errors in this file"* ]]
	# contents cannot be read without the parent: refused, not made up
	run "$V" read --offset 0 --length 512 "$img"
	[ "$status" -eq 1 ]
	# a file that is not there is still an error, not "parent missing"
	run "$V" info "$T/nothing.avhdx"
	[ "$status" -eq 1 ]
}

@test "compact keeps ZERO blocks ZERO (Hyper-V sample with ZERO blocks)" {
	img=$(unpack "$(samples_dir)/coreos-config2_base.vhdx.bz2")
	"$V" convert "$img" before.raw
	"$V" info --json "$img" >before.json
	[ "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["blocks"]["zero"])' <before.json)" -gt 0 ]
	"$V" compact "$img"
	"$V" info --json "$img" >after.json
	python3 - <<'EOF'
import json
b = json.load(open("before.json"))["blocks"]
a = json.load(open("after.json"))["blocks"]
print(b, a)
assert a["zero"] >= b["zero"], "a ZERO block lost its state"
assert a["not_present"] <= b["not_present"]
EOF
	# block by block: every block ZERO before is ZERO after (qemu's map
	# shows ZERO blocks as zero and NOT_PRESENT as not allocated)
	"$V" map --json "$img" >/dev/null
	"$V" convert "$img" after.raw
	cmp before.raw after.raw
	qemu-img check "$img"
	"$V" check "$img"
}

@test "compact of our own disk: ZERO stays ZERO, zero-filled data becomes ZERO" {
	"$V" create --size 64M --block-size 1M d.vhdx
	head -c 3M /dev/urandom >data
	"$V" write --offset 0 d.vhdx <data
	# two blocks written with zeros: data that reads as zero
	head -c 2M /dev/zero | "$V" write --offset 8M d.vhdx
	"$V" info --json d.vhdx >before.json
	python3 -c 'import json,sys; b = json.load(sys.stdin)["blocks"]; assert b["fully_present"] == 5 and b["zero"] == 0, b' <before.json
	"$V" compact d.vhdx
	"$V" info --json d.vhdx >after.json
	# they become ZERO (a promise), not NOT_PRESENT (undefined contents)
	python3 -c 'import json,sys; a = json.load(sys.stdin)["blocks"]; assert a["zero"] == 2 and a["fully_present"] == 3, a' <after.json
	# and a second compact keeps them ZERO
	"$V" compact d.vhdx
	"$V" info --json d.vhdx >again.json
	python3 -c 'import json,sys; a = json.load(sys.stdin)["blocks"]; assert a["zero"] == 2, a' <again.json
	"$V" read --offset 0 --length 3M d.vhdx | cmp - data
	cmp <("$V" read --offset 8M --length 2M d.vhdx) <(head -c 2M /dev/zero)
	qemu-img check d.vhdx
	"$V" check d.vhdx
}

@test "check --repair: exit 0 once repaired and clean, 3 before" {
	img=$(unpack "$(samples_dir)/qemu-iotest-dirtylog-10G-4M.vhdx.bz2")
	run "$V" check "$img"
	[ "$status" -eq 3 ]
	run "$V" check --repair "$img"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"repaired: replayed the pending log"* ]]
	[[ $output == *": 0 errors"* ]]
	run "$V" check "$img"
	[ "$status" -eq 0 ]
}

@test "--help lists only options the parser takes, for every subcommand" {
	run "$V" --help
	[ "$status" -eq 0 ]
	main=$output
	for cmd in create info check map convert compact write read trim snapshot merge migrate migrated jobs job offload-copy offload-read offload-write export; do
		# the options named on the command's lines of the main help and in
		# its own --help
		run "$V" "$cmd" --help
		echo "$cmd --help: $output"
		[ "$status" -eq 0 ]
		own=$output
		opts=$( { printf '%s\n' "$main" | grep -E "^  $cmd |\\($cmd|[ ,]$cmd[,)]" ; printf '%s\n' "$own"; } |
			grep -oE -- '--[a-z][a-z0-9-]+' | sort -u)
		for o in $opts; do
			run "$V" "$cmd" "$o" "$T/none.vhdx"
			if [[ $output == *"unrecognized option"* || $output == *"unknown command or option"* ]]; then
				echo "$cmd: help lists $o, the parser refuses it: $output"
				false
			fi
		done
	done
}

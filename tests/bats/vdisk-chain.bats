#!/usr/bin/env bats
# vdisk differencing chains, trim, compact and the tool's refusals.

setup() {
	V=$SCM_BUILD/bin/scm-vdisk
	T=$(mktemp -d)
	cd "$T"
}

teardown() {
	cd /
	rm -rf "$T"
}

pattern() { # BYTE-OCTAL LENGTH
	head -c "$2" /dev/zero | tr '\0' "\\$1"
}

@test "differencing: reads fall through per sector, writes go to the child" {
	head -c 16M /dev/urandom > base.raw
	"$V" convert -O vhdx base.raw base.vhdx
	"$V" create --parent base.vhdx child.vhdx
	pattern 231 1536 | "$V" write --offset 4608 child.vhdx
	pattern 230 512 | "$V" write --offset 3M child.vhdx
	cp base.raw expect.raw
	pattern 231 1536 | dd of=expect.raw bs=512 seek=9 conv=notrunc status=none
	pattern 230 512 | dd of=expect.raw bs=1M seek=3 conv=notrunc status=none
	"$V" convert child.vhdx child.raw
	cmp child.raw expect.raw
	# the parent did not change
	"$V" convert base.vhdx base-after.raw
	cmp base-after.raw base.raw
	run "$V" info --json child.vhdx
	[[ $output == *'"type":"differencing"'* ]]
	[[ $output == *'"partially_present":2'* ]]
	[[ $output == *'base.vhdx"]'* ]]
	run "$V" map child.vhdx
	[[ $output == *partial* ]]
	[[ $output == *parent* ]]
	"$V" check child.vhdx
}

@test "differencing: a three-level chain reads through to the base" {
	pattern 001 8M > base.raw
	"$V" convert -O vhdx base.raw base.vhdx
	"$V" create --parent base.vhdx mid.vhdx
	pattern 002 1M | "$V" write --offset 1M mid.vhdx
	"$V" create --parent mid.vhdx top.vhdx
	pattern 003 512 | "$V" write --offset 1M top.vhdx
	"$V" convert top.vhdx top.raw
	cp base.raw expect.raw
	pattern 002 1M | dd of=expect.raw bs=1M seek=1 conv=notrunc status=none
	pattern 003 512 | dd of=expect.raw bs=1M seek=1 conv=notrunc status=none
	cmp top.raw expect.raw
	run "$V" info top.vhdx
	[[ $output == *"2: "*"base.vhdx"* ]]
}

@test "differencing: a modified parent is refused naming both files and GUIDs" {
	"$V" create --size 8M base.vhdx
	"$V" create --parent base.vhdx child.vhdx
	old=$("$V" info --json base.vhdx | sed 's/.*"data_write_guid":"\([^"]*\)".*/\1/')
	pattern 007 4096 | "$V" write --offset 0 base.vhdx
	new=$("$V" info --json base.vhdx | sed 's/.*"data_write_guid":"\([^"]*\)".*/\1/')
	[ "$old" != "$new" ]
	run "$V" info child.vhdx
	[ "$status" -eq 1 ]
	[[ $output == *"child.vhdx"* ]]
	[[ $output == *"base.vhdx"* ]]
	[[ ${output,,} == *"${old,,}"* ]]
	[[ ${output,,} == *"${new,,}"* ]]
	run "$V" convert child.vhdx out.raw
	[ "$status" -eq 1 ]
	[ ! -e out.raw ]
	# the override opens it, read-only
	"$V" info --override-parent-id child.vhdx
	"$V" convert --override-parent-id child.vhdx out.raw
	run "$V" write --override-parent-id --offset 0 child.vhdx < /dev/zero
	[ "$status" -ne 0 ]
}

@test "trim releases file space: a filled then trimmed disk shrinks" {
	head -c 64M /dev/urandom > data.raw
	"$V" convert -O vhdx --block-size 1M data.raw d.vhdx
	before=$(du -k d.vhdx | cut -f1)
	[ "$before" -gt 60000 ]
	"$V" trim --offset 0 --length 64M d.vhdx
	after=$(du -k d.vhdx | cut -f1)
	[ "$after" -lt 10000 ]
	run "$V" info --json d.vhdx
	[[ $output == *'"unmapped":64'* ]]
	qemu-img check d.vhdx
	head -c 64M /dev/zero > zero.raw
	qemu-img compare -F raw d.vhdx zero.raw
	# and it is still writable afterwards
	pattern 044 1M | "$V" write --offset 5M d.vhdx
	"$V" read --offset 5M --length 512 d.vhdx | od -An -tx1 | grep -q 24
}

@test "compact drops trimmed space and keeps contents and identity" {
	head -c 32M /dev/urandom > data.raw
	"$V" convert -O vhdx --block-size 1M data.raw d.vhdx
	"$V" trim --offset 8M --length 16M d.vhdx
	dd if=/dev/zero of=data.raw bs=1M seek=8 count=16 conv=notrunc status=none
	"$V" create --parent d.vhdx child.vhdx
	size_before=$(stat -c %s d.vhdx)
	"$V" compact d.vhdx
	size_after=$(stat -c %s d.vhdx)
	[ "$size_after" -lt "$size_before" ]
	"$V" convert d.vhdx back.raw
	cmp back.raw data.raw
	qemu-img check d.vhdx
	# the child still accepts its compacted parent
	"$V" info child.vhdx
}

@test "convert: raw to vhdx to raw round trip, and no DST left on failure" {
	head -c 5M /dev/urandom > a.raw
	"$V" convert a.raw a.vhdx
	"$V" convert a.vhdx b.raw
	cmp a.raw b.raw
	"$V" convert -O vhdx --format raw a.raw c.bin
	run "$V" info c.bin
	[ "$status" -eq 0 ]
	printf 'vhdxfile-but-broken' > bad.vhdx
	head -c 2M /dev/zero >> bad.vhdx
	run "$V" convert bad.vhdx out.raw
	[ "$status" -eq 1 ]
	[ ! -e out.raw ]
	run ls
	[[ $output != *tmp-* ]]
}

@test "tool: usage errors exit 2, create refuses an existing file and bad sizes" {
	run "$V"
	[ "$status" -eq 2 ]
	run "$V" --help
	[ "$status" -eq 0 ]
	[[ $output == *"create"*"convert"* ]]
	run "$V" create d.vhdx
	[ "$status" -eq 2 ]
	run "$V" create --size 12Q d.vhdx
	[ "$status" -eq 2 ]
	run "$V" create --size 8M --sector-size 1024 d.vhdx
	[ "$status" -eq 2 ]
	run "$V" create --size 8M --block-size 3M d.vhdx
	[ "$status" -eq 1 ]
	[[ $output == *"block size"* ]]
	"$V" create --size 8M d.vhdx
	run "$V" create --size 8M d.vhdx
	[ "$status" -eq 1 ]
	[[ $output == *"exists"* ]]
	run "$V" frobnicate d.vhdx
	[ "$status" -eq 2 ]
	# an option before the command says where options go
	run "$V" --endpoint /nonexistent migrate d.vhdx e.vhdx
	[ "$status" -eq 2 ]
	[[ $output == *"--endpoint: options go after the command"* ]]
	[ ! -e e.vhdx ]
}

@test "differencing: stale parent paths are rewritten by a read-write open" {
	mkdir a b
	"$V" create --size 8M a/base.vhdx
	"$V" create --parent a/base.vhdx a/child.vhdx
	run vhdiinfo a/child.vhdx
	[[ $output == *"Parent filename"*"\\a\\base.vhdx"* ]]
	mv a/base.vhdx a/child.vhdx b/
	# read-only: found through the relative path, nothing written
	"$V" info b/child.vhdx
	run vhdiinfo b/child.vhdx
	[[ $output == *"\\a\\base.vhdx"* ]]
	# read-write: the absolute path is renewed (through the log)
	pattern 012 512 | "$V" write --offset 0 b/child.vhdx
	run vhdiinfo b/child.vhdx
	[[ $output == *"Parent filename"*"\\b\\base.vhdx"* ]]
	"$V" check b/child.vhdx
	"$V" read --offset 0 --length 512 b/child.vhdx | od -An -tx1 | grep -q 0a
}

@test "convert draws a progress bar on a terminal only; map --json lists the ranges" {
	head -c 6M /dev/urandom > a.raw
	script -qec "$V convert a.raw a.vhdx" /dev/null > tty.out
	grep -q '\[#*' tty.out
	grep -q '100%' tty.out
	run "$V" convert a.vhdx b.raw
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	cmp a.raw b.raw
	"$V" trim --offset 0 --length 6M a.vhdx
	run "$V" map --json a.vhdx
	[ "$status" -eq 0 ]
	[[ $output == '[{"start":0,'* ]]
	[[ $output == *'"state":"unmapped"'* ]]
}

@test "differencing: a parent outside the child's directory is recorded with .. and found after a move" {
	mkdir -p tree/disks/base tree/vms/one/deep
	"$V" create --size 8M --block-size 1M tree/disks/base/base.vhdx
	pattern 101 1M | "$V" write --offset 0 tree/disks/base/base.vhdx
	"$V" create --parent tree/disks/base/base.vhdx tree/vms/one/deep/child.vhdx
	run "$V" info --json tree/vms/one/deep/child.vhdx
	[[ $output == *'"parent_relative_path":"..\\..\\..\\disks\\base\\base.vhdx"'* ]]
	# a sibling directory and the root of a tree: one and no ..
	"$V" create --parent tree/disks/base/base.vhdx tree/disks/sib.vhdx
	run "$V" info tree/disks/sib.vhdx
	[[ $output == *'parent relative path: .\base\base.vhdx'* ]]
	# libvhdi reads our locator
	run vhdiinfo tree/vms/one/deep/child.vhdx
	[[ $output == *"Parent filename"*"\\tree\\disks\\base\\base.vhdx"* ]]
	# the whole tree moves: the absolute path is stale, the relative one leads there
	mv tree moved
	run "$V" info moved/vms/one/deep/child.vhdx
	[ "$status" -eq 0 ]
	[[ $output == *"parent absolute path: "*"\\tree\\disks\\base\\base.vhdx"* ]]
	"$V" read --offset 0 --length 512 moved/vms/one/deep/child.vhdx | cmp - <(pattern 101 512)
	# a read-write open renews the absolute path, keeps the relative one
	pattern 102 512 | "$V" write --offset 4096 moved/vms/one/deep/child.vhdx
	run "$V" info --json moved/vms/one/deep/child.vhdx
	[[ $output == *'"parent_relative_path":"..\\..\\..\\disks\\base\\base.vhdx"'* ]]
	[[ $output == *'"parent_absolute_path":"'*'\\moved\\disks\\base\\base.vhdx"'* ]]
	"$V" check moved/vms/one/deep/child.vhdx
	# a relative path alone is enough: the absolute one is gone for good
	mv moved again
	"$V" read --offset 0 --length 512 again/vms/one/deep/child.vhdx | cmp - <(pattern 101 512)
	"$V" read --offset 4096 --length 512 again/vms/one/deep/child.vhdx | cmp - <(pattern 102 512)
}

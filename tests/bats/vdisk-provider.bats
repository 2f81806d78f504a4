#!/usr/bin/env bats
# vdisk provider end to end: a private scmd, the vdisk service registered
# with scmctl, and vdisk-client moving data through the channel's shared
# buffer.
load helpers
load vdisk

setup() {
	vdisk_setup app viewer
	"$SCMCTL" endpoint create stranger >/dev/null # not on the allow list
}

teardown() {
	vdisk_teardown
}

@test "provider: data written through the shared buffer lands in the VHDX" {
	"$V" create --size 24M --block-size 1M "$D/a.vhdx"
	head -c 24M /dev/urandom > "$SCMT/in.raw"
	"$C" --endpoint "$(ep app)" copy-in "$D/a.vhdx" "$SCMT/in.raw"
	"$V" convert "$D/a.vhdx" "$SCMT/direct.raw"
	cmp "$SCMT/in.raw" "$SCMT/direct.raw"
	"$C" --endpoint "$(ep viewer)" copy-out "$D/a.vhdx" "$SCMT/out.raw"
	cmp "$SCMT/in.raw" "$SCMT/out.raw"
	qemu-img check "$D/a.vhdx"
}

@test "provider: info reports type, blocks and chain" {
	"$V" create --size 8M "$D/base.vhdx"
	"$V" create --parent "$D/base.vhdx" "$D/child.vhdx"
	run "$C" --endpoint "$(ep app)" info "$D/child.vhdx"
	[ "$status" -eq 0 ]
	[[ $output == *'"type":"differencing"'* ]]
	[[ $output == *'base.vhdx"]'* ]]
	[[ $output == *'"parent_linkage":"{'* ]]
}

@test "provider: several readers at once, a second writer refused unless shared" {
	"$V" create --size 8M "$D/s.vhdx"
	hold viewer "$D/s.vhdx" ro
	hold app "$D/s.vhdx" ro
	hold app "$D/s.vhdx" rw
	run "$C" --endpoint "$(ep viewer)" copy-in "$D/s.vhdx" /dev/null
	[ "$status" -ne 0 ]
	[[ $output == *"open for writing by another client"* ]]
	# readers still welcome
	"$C" --endpoint "$(ep viewer)" copy-out "$D/s.vhdx" "$SCMT/o.raw"
	# shared writers go together, when their grants make disks shareable
	# (the grant setting, docs/vdisk.md "Reservations")
	"$V" create --size 8M "$D/t.vhdx"
	run "$C" --endpoint "$(ep app)" hold "$D/t.vhdx" shared </dev/null
	[ "$status" -eq 11 ]
	[[ $output == *"does not make disks shareable"* ]]
	mkdir -p "$SCMT/cfg/profiles"
	cat >"$SCMT/cfg/profiles/sharer.json" <<'JSON'
{ "name": "sharer", "priority": 10, "services": [ { "service": "vdisk", "methods": "*", "action": "allow",
  "settings": { "shareable": true } } ] }
JSON
	"$SCMCTL" policy reload >/dev/null
	"$SCMCTL" endpoint create sharea --profiles sharer >/dev/null
	"$SCMCTL" endpoint create shareb --profiles sharer >/dev/null
	hold sharea "$D/t.vhdx" shared
	hold shareb "$D/t.vhdx" shared
}

@test "provider: a modified parent is refused with the ParentChanged error" {
	"$V" create --size 8M "$D/base.vhdx"
	"$V" create --parent "$D/base.vhdx" "$D/child.vhdx"
	head -c 4096 /dev/urandom | "$V" write --offset 0 "$D/base.vhdx"
	run "$C" --endpoint "$(ep app)" info "$D/child.vhdx"
	[ "$status" -ne 0 ]
	[[ $output == *"does not match the DataWriteGuid"* ]]
	[[ $output == *"ParentChanged"* || $output == *"102"* ]]
}

@test "provider: an endpoint not on the allow list cannot reach it" {
	"$V" create --size 8M "$D/a.vhdx"
	run "$C" --endpoint "$(ep stranger)" info "$D/a.vhdx"
	[ "$status" -ne 0 ]
	[[ $output == *"denied"* || $output == *"allow list"* ]]
}

@test "provider: readv/writev batches land where their extents say" {
	"$V" create --size 9M --block-size 1M "$D/v.vhdx"
	# 9 MiB + a 512-byte tail is not a whole number of 64 KiB pieces: the
	# last extent is short
	head -c 9M /dev/urandom > "$SCMT/in.raw"
	"$C" --endpoint "$(ep app)" vcopy-in "$D/v.vhdx" "$SCMT/in.raw"
	"$V" convert "$D/v.vhdx" "$SCMT/direct.raw"
	cmp "$SCMT/in.raw" "$SCMT/direct.raw"
	"$C" --endpoint "$(ep viewer)" vcopy-out "$D/v.vhdx" "$SCMT/out.raw"
	cmp "$SCMT/in.raw" "$SCMT/out.raw"
	qemu-img check "$D/v.vhdx"
	# an odd size with 4096-byte sectors: the tail extent is one sector
	"$V" create --size 4100K --sector-size 4096 --block-size 1M "$D/w.vhdx"
	head -c 4100K /dev/urandom > "$SCMT/w.raw"
	"$C" --endpoint "$(ep app)" vcopy-in "$D/w.vhdx" "$SCMT/w.raw"
	"$C" --endpoint "$(ep app)" vcopy-out "$D/w.vhdx" "$SCMT/w.out"
	cmp "$SCMT/w.raw" "$SCMT/w.out"
}

@test "provider: malformed batches are refused whole, naming the extent" {
	"$V" create --size 8M --block-size 1M "$D/b.vhdx"
	run "$C" --endpoint "$(ep app)" badvec "$D/b.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c ': refused: ' <<<"$output")" -eq 12 ]
	[[ $output == *"read past the buffer: refused: buffer_offset 4193792 + length 4096 is past"* ]]
	[[ $output == *"write past the buffer: refused: buffer_offset 4193792 + length 4096 is past"* ]]
	! grep -q ACCEPTED <<<"$output"
	[[ $output == *"partial record: refused: "*"not 1 to 1024 records of 24 bytes"* ]]
	[[ $output == *"unaligned offset: refused: "*"extents[1]: offset 100"* ]]
	[[ $output == *"past the disk: refused: "*"extents[1]"*"inside the 8388608-byte disk"* ]]
	[[ $output == *"past the buffer: refused: "*"extents[1]: buffer_offset"* ]]
	[[ $output == *"BadRange"* || $output == *"105"* ]]
	# extent 0 of each batch was good, and nothing was written
	run "$V" map "$D/b.vhdx"
	[[ $output != *allocated* ]]
	# a good batch on a read-only handle is refused too
	run "$C" --endpoint "$(ep viewer)" badvec "$D/b.vhdx" ro
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"read-only handle: refused: "*"is read-only"* ]]
	run "$V" map "$D/b.vhdx"
	[[ $output != *allocated* ]]
}

@test "provider: a client gets 8 read rings (memory and a thread each); the next is refused until one goes" {
	"$V" create --size 8M "$D/r.vhdx"
	run "$C" --endpoint "$(ep app)" rings "$D/r.vhdx" 10
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"rings 8"* ]]
	[[ $output == *"refused: code 108: "*"has 8 read rings already, the provider's cap"*"read through calls"* ]]
	[[ $output == *"again: ring"* ]]
	# another client has its own 8
	run "$C" --endpoint "$(ep viewer)" rings "$D/r.vhdx" 8
	echo "$output"
	[[ $output == *"rings 8"* ]]
}

@test "provider: a grant with ring but not read gets no ring, and no byte of the disk through one" {
	"$V" create --size 8M --block-size 1M "$D/r.vhdx"
	head -c 8M /dev/urandom >"$SCMT/r.raw"
	"$C" --endpoint "$(ep app)" copy-in "$D/r.vhdx" "$SCMT/r.raw"
	mkdir -p "$SCMT/cfg/profiles"
	cat >"$SCMT/cfg/profiles/ringonly.json" <<JSON
{ "name": "ringonly", "priority": 20, "services": [
  { "service": "vdisk", "methods": ["open"], "action": "allow",
    "args": { "path": { "path_prefix": "$D" }, "readonly": { "eq": true } } },
  { "service": "vdisk", "methods": ["ring", "info", "close"], "action": "allow" } ] }
JSON
	"$SCMCTL" policy reload
	"$SCMCTL" endpoint create ringonly --profiles ringonly >/dev/null
	# the ring is refused: no memfd, no doorbell, nothing read
	run "$C" --endpoint "$(ep ringonly)" badring "$D/r.vhdx"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"ring: "*"the grant does not allow read, and a read ring is reads: no ring"* ]]
	[[ $output != *"good read"* ]]
	# and reads through calls are refused as they always were
	run "$C" --endpoint "$(ep ringonly)" copy-out "$D/r.vhdx" "$SCMT/out.raw"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"vdisk.read is not in this channel's grant"* ]]
	run cmp -s "$SCMT/r.raw" "$SCMT/out.raw"
	[ "$status" -ne 0 ]
	# a grant with read gets its ring, which reads what a call reads
	run "$C" --endpoint "$(ep app)" badring "$D/r.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"good read: same as the call's"* ]]
}

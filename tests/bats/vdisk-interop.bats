#!/usr/bin/env bats
# vdisk interop: qemu-img/qemu-io and libvhdi as oracles for the VHDX
# engine and the scm-vdisk tool.

setup() {
	V=$SCM_BUILD/bin/scm-vdisk
	L=$SCM_BUILD/libexec
	T=$(mktemp -d)
	cd "$T"
}

teardown() {
	cd /
	rm -rf "$T"
}

@test "qemu-made dynamic image reads back byte-identical through convert" {
	qemu-img create -f vhdx q.vhdx 64M
	qemu-io -c 'write -P 0xab 0 1M' -c 'write -P 0x11 33M 5M' -c 'write -P 0x22 63M 512' q.vhdx
	"$V" convert q.vhdx ours.raw
	qemu-img convert -O raw q.vhdx theirs.raw
	cmp ours.raw theirs.raw
	# and the data is really there (not two empty files)
	run od -An -tx1 -N1 -j 34603008 ours.raw
	[[ $output == *11* ]]
}

@test "qemu-made image with 4096-byte sectors and 1 MiB blocks reads back" {
	qemu-img create -f vhdx -o block_size=1M,log_size=1M q.vhdx 40M
	qemu-io -c 'write -P 0x5c 4096 3M' -c 'write -P 0x6d 20M 8192' q.vhdx
	"$V" convert q.vhdx ours.raw
	qemu-img convert -O raw q.vhdx theirs.raw
	cmp ours.raw theirs.raw
}

@test "our dynamic image filled with data passes qemu-img check and compare" {
	head -c 48M /dev/urandom > twin.raw
	dd if=/dev/zero of=twin.raw bs=1M seek=10 count=8 conv=notrunc status=none
	"$V" convert -O vhdx twin.raw d.vhdx
	qemu-img check d.vhdx
	qemu-img compare -f vhdx -F raw d.vhdx twin.raw
	run "$V" info --json d.vhdx
	[[ $output == *'"type":"dynamic"'* ]]
}

@test "our fixed image passes qemu-img check and compare" {
	"$V" create --fixed --size 24M --block-size 4M f.vhdx
	head -c 24M /dev/zero > twin.raw
	qemu-img compare -f vhdx -F raw f.vhdx twin.raw
	qemu-io -c 'write -P 0x42 1M 2M' f.vhdx
	qemu-io -f raw -c 'write -P 0x42 1M 2M' twin.raw
	qemu-img check f.vhdx
	"$V" convert f.vhdx back.raw
	cmp back.raw twin.raw
	run "$V" info f.vhdx
	[[ $output == *"(fixed)"* ]]
}

@test "our images with several block sizes pass qemu-img compare" {
	head -c 20M /dev/urandom > twin.raw
	for bs in 1M 2M 8M 32M 256M; do
		"$V" convert -O vhdx --block-size $bs twin.raw d$bs.vhdx
		qemu-img check d$bs.vhdx
		qemu-img compare -F raw d$bs.vhdx twin.raw
	done
	run qemu-img info d1M.vhdx
	[[ $output == *"cluster_size: 1048576"* ]]
}

@test "4096-byte logical sectors: libvhdi reads our geometry, contents round-trip" {
	# qemu's vhdx driver supports only 512-byte logical sectors, so libvhdi
	# is the outside oracle here
	head -c 20M /dev/urandom > twin.raw
	for bs in 1M 4M 64M; do
		"$V" convert -O vhdx --block-size $bs --sector-size 4096 twin.raw d$bs.vhdx
		run vhdiinfo d$bs.vhdx
		[ "$status" -eq 0 ]
		[[ $output == *"Bytes per sector"*"4096"* ]]
		"$V" convert d$bs.vhdx back$bs.raw
		cmp back$bs.raw twin.raw
		"$V" check d$bs.vhdx
	done
	run "$V" write --offset 512 d1M.vhdx < twin.raw
	[ "$status" -eq 1 ]
	[[ $output == *"4096-byte sector"* ]]
}

@test "a pending log written by qemu is replayed by us" {
	qemu-img create -f vhdx q.vhdx 64M
	# the BAT's file offset, from region table entry 0 (qemu puts the BAT first)
	bat=$(od -An -tu8 -N8 -j $((192*1024+32)) q.vhdx | tr -d ' ')
	[ "$bat" -ge 1048576 ]
	# fail every write to the BAT: qemu has written and flushed the log
	# entry by then, so the image is left with a pending log
	cat > bd.cfg <<CFG
[inject-error]
event = "pwritev"
errno = "5"
sector = "$((bat / 512))"
once = "off"
CFG
	run qemu-io --image-opts "driver=vhdx,file.driver=blkdebug,file.config=bd.cfg,file.image.driver=file,file.image.filename=q.vhdx" -c 'write -P 0xab 0 1M'
	run qemu-img info q.vhdx
	[ "$status" -ne 0 ]
	[[ $output == *"log that needs to be replayed"* ]]
	run "$V" check q.vhdx
	[ "$status" -eq 3 ]
	[[ $output == *"pending replay"* ]]
	cp q.vhdx qemu-replayed.vhdx
	qemu-img check -r all qemu-replayed.vhdx
	qemu-img convert -O raw qemu-replayed.vhdx expect.raw
	# read-only: replayed in memory
	"$V" convert q.vhdx ro.raw
	cmp ro.raw expect.raw
	# repair: replayed into the file, which qemu then opens cleanly
	run "$V" check --repair q.vhdx
	[ "$status" -eq 0 ]
	[[ $output == *"replayed the pending log"* ]]
	qemu-img check q.vhdx
	qemu-img convert -O raw q.vhdx rw.raw
	cmp rw.raw expect.raw
	run od -An -tx1 -N1 ro.raw
	[[ $output == *ab* ]]
}

@test "a pending log written by us is replayed by qemu" {
	"$V" create --size 64M d.vhdx
	"$L/vdisk-logtool" d.vhdx 1048576 2097152 0x5a
	run qemu-img info d.vhdx
	[[ $output == *"log that needs to be replayed"* ]]
	cp d.vhdx ours.vhdx
	qemu-img check -r all d.vhdx
	qemu-img convert -O raw d.vhdx theirs.raw
	"$V" convert ours.vhdx ours.raw
	cmp ours.raw theirs.raw
	run od -An -tx1 -N1 -j 2097152 theirs.raw
	[[ $output == *5a* ]]
}

@test "our differencing disk is recognised by vhdiinfo with the parent's DataWriteGuid" {
	"$V" create --size 32M base.vhdx
	"$V" create --parent base.vhdx child.vhdx
	dwg=$("$V" info --json base.vhdx | sed 's/.*"data_write_guid":"{\([^}]*\)}".*/\1/' | tr A-F a-f)
	run vhdiinfo child.vhdx
	[ "$status" -eq 0 ]
	[[ $output == *"Differential"* ]]
	[[ $output == *"Parent identifier"*": $dwg"* ]]
	[[ $output == *"base.vhdx"* ]]
}


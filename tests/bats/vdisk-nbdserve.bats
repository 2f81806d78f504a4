#!/usr/bin/env bats
# The provider-served NBD export (docs/vdisk.md "NBD export"): scm-vdisk
# export does the handshake and hands each plain connection to the
# provider, which parses every request itself. Bad requests from a raw
# client (nbd-raw.py: what libnbd will not send) get their error or end
# their connection, never the provider, and other clients read right
# meanwhile; a read-only export refuses a write with EPERM and the file
# does not change; block status is what qemu-nbd says of the same data;
# a served connection goes on across provider restarts (its socket and
# state carried to the new process).
load helpers
load vdisk-nbd

RAW="python3 $BATS_TEST_DIRNAME/nbd-raw.py"
provider_pid() { "$SCMCTL" service list | awk '$1 == "vdisk" { print $4 }'; }
# hooked VAR=VALUE: the path of a provider program that runs with that test
# hook set, for `service restart vdisk --exec`
hooked() {
	local f=$SCMT/hooked-${1%%=*}
	printf '#!/bin/sh\nexec env %s %s\n' "$1" "$SCM_BUILD/libexec/scm-vdisk-provider" >"$f"
	chmod +x "$f"
	echo "$f"
}

@test "nbdserve: malformed requests get an error or end their connection; the provider serves the others right" {
	"$V" create --size 16M --block-size 1M "$D/m.vhdx"
	head -c 16M /dev/urandom >"$SCMT/m.raw"
	"$V" write "$D/m.vhdx" <"$SCMT/m.raw"
	export_ reader m "$D/m.vhdx" --readonly --nbd "unix:$S"
	pid=$(provider_pid)
	want=$(head -c 4096 "$SCMT/m.raw" | sha256sum | cut -d' ' -f1)
	# past the disk's end, longer than the maximum block size, not whole
	# sectors: each an EINVAL, and the same connection reads right after
	run $RAW "$S" m read $((16 << 20)) 4096 read $(((16 << 20) - 512)) 1024 read 0 $((8 << 20)) \
		read 100 512 read 0 4096
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "size 16777216" ]
	[ "${lines[1]}" = "read error 22" ]
	[ "${lines[2]}" = "read error 22" ]
	[ "${lines[3]}" = "read error 22" ]
	[ "${lines[4]}" = "read error 22" ]
	[ "${lines[5]}" = "read ok $want" ]
	# a bad magic is a protocol violation: the connection ends unanswered
	run $RAW "$S" m read 0 4096 0x12345678 expect-closed
	echo "$output"
	[ "${lines[1]}" = "closed" ]
	# a write longer than the maximum: its data is not read, closed
	run $RAW "$S" m rawwrite 0 $((64 << 20)) expect-closed
	echo "$output"
	[ "${lines[1]}" = "closed" ]
	# garbage in place of requests
	python3 - "$S" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(18)
s.sendall(struct.pack(">I", 3))
n = b"m"; d = struct.pack(">I", len(n)) + n + struct.pack(">H", 0)
s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, len(d)) + d)
s.sendall(bytes(range(256)) * 64)
PY
	# the provider is the same process and still reads right, for a new
	# client and through libnbd
	[ "$(provider_pid)" = "$pid" ]
	run $RAW "$S" m read 0 4096
	[ "${lines[1]}" = "read ok $want" ]
	nbdcopy "$URI" "$SCMT/out.raw"
	cmp "$SCMT/m.raw" "$SCMT/out.raw"
	grep -q "bad request magic" "$SCMT"/run/logs/vdisk.log*
}

@test "nbdserve: a read-only export refuses a write with EPERM; the file is unchanged" {
	base_disk "$D/ro.vhdx"
	sum=$(sha256sum <"$D/ro.vhdx")
	# a writer's grant, the export read-only: the handle is read-only too
	export_ writer ro "$D/ro.vhdx" --readonly --nbd "unix:$S"
	run $RAW "$S" ro write 0 4096 write $((1 << 20)) 512 read 0 4096
	echo "$output"
	[ "${lines[1]}" = "write error 1" ]
	[ "${lines[2]}" = "write error 1" ]
	[[ ${lines[3]} == "read ok "* ]]
	run nbdsh -u "$URI" -c 'h.zero(1 << 20, 0)'
	[ "$status" -ne 0 ]
	stop_ ro
	[ "$(sha256sum <"$D/ro.vhdx")" = "$sum" ]
}

# qemu's VHDX driver has no block status (qemu-nbd -f vhdx says "all
# data"): qemu-nbd serves the same bytes as a sparse raw file instead, its
# holes where the VHDX has no block, and says where they are from the file
# system (SEEK_DATA), independently of our engine.
@test "nbdserve: block status equals qemu-nbd's of the same data; bytes equal through both" {
	"$V" create --size 64M --block-size 1M "$D/q.vhdx"
	truncate -s 64M "$SCMT/q.raw"
	put() { # OFFSET FILE: into both
		"$V" write --offset "$1" "$D/q.vhdx" <"$2"
		dd if="$2" of="$SCMT/q.raw" bs=1M seek="$(($1 >> 20))" conv=notrunc 2>/dev/null
	}
	head -c 4M /dev/urandom >"$SCMT/p1"; put 0 "$SCMT/p1"
	head -c 2M /dev/zero >"$SCMT/p2"; put $((16 << 20)) "$SCMT/p2"   # written zeros: data on both
	head -c 3M /dev/urandom >"$SCMT/p3"; put $((40 << 20)) "$SCMT/p3"
	head -c 1M /dev/urandom >"$SCMT/p4"; put $((63 << 20)) "$SCMT/p4"
	export_ reader q "$D/q.vhdx" --readonly --nbd "unix:$S"
	qemu-nbd -r -f raw --persistent -k "$SCMT/qemu.sock" "$SCMT/q.raw" 3>&- &
	HOLDS="${HOLDS:-} $!"
	wait_until 60 test -S "$SCMT/qemu.sock"
	qemu_uri="nbd+unix:///?socket=$SCMT/qemu.sock"
	nbd_map "$URI" >"$SCMT/ours"
	nbd_map "$qemu_uri" >"$SCMT/qemus"
	cat "$SCMT/ours" "$SCMT/qemus"
	diff "$SCMT/ours" "$SCMT/qemus"
	grep -q "^4194304 12582912 hole$" "$SCMT/ours"
	# qemu-img map asks per extent: the same runs
	qemu-img map --output=json -f raw "$URI" | python3 -c '
import json, sys
m = [(e["start"], e["length"], e["data"]) for e in json.load(sys.stdin)]
assert (0, 4 << 20, True) in m and (4 << 20, 12 << 20, False) in m, m'
	nbdcopy "$URI" "$SCMT/a.raw"
	cmp "$SCMT/q.raw" "$SCMT/a.raw"
}

@test "nbdserve: a served connection goes on across provider restarts: every byte as written, no reconnect" {
	base_disk "$D/h.vhdx"
	"$V" convert -O raw "$D/h.vhdx" "$SCMT/h.raw"
	export_ writer h "$D/h.vhdx" --nbd "unix:$S"
	# one libnbd connection writing and reading back patterns, 8 requests
	# in flight at a time; a raw client holding a connection open too
	/usr/bin/python3 "$BATS_TEST_DIRNAME/nbd-pattern.py" "$URI" "$SCMT/h.raw" "$SCMT/want.raw" "$SCMT/stop-pattern" \
		>"$SCMT/pattern.out" 2>&1 3>&- &
	local client=$!
	$RAW "$S" h read 0 4096 wait "$SCMT/go" read 0 4096 >"$SCMT/raw.out" 2>&1 3>&- &
	local raw=$!
	BG="${BG:-} $raw"
	wait_until 60 grep -q "^waiting" "$SCMT/raw.out"
	wait_until 60 grep -q "^round 3$" "$SCMT/pattern.out" || { cat "$SCMT/pattern.out" "$SCMT"/run/logs/vdisk.log*; false; }
	# qemu-io on another export, one connection: a pattern written, half
	# a second, read back and verified, 16 times
	base_disk "$D/q.vhdx"
	"$V" convert -O raw "$D/q.vhdx" "$SCMT/q.raw"
	export_ writer q "$D/q.vhdx" --nbd "unix:$SCMT/q.sock"
	local k qargs=()
	for k in $(seq 1 16); do
		qargs+=(-c "write -P $((k + 64)) $((k << 20)) 1M" -c "sleep 500" -c "read -P $((k + 64)) $((k << 20)) 1M")
		python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2]) << 20); f.write(bytes([int(sys.argv[3])]) * (1 << 20))' \
			"$SCMT/q.raw" "$k" $((k + 64))
	done
	qemu-io -f raw "${qargs[@]}" "$URI" >"$SCMT/qemu-io.out" 2>&1 3>&- &
	local qio=$!
	# restarts until qemu-io is done, 5 at least
	local i=0 prev rounds
	while [ $i -lt 5 ] || kill -0 $qio 2>/dev/null; do
		i=$((i + 1))
		prev=$(provider_pid)
		rounds=$(grep -c "^round" "$SCMT/pattern.out")
		run "$SCMCTL" service restart vdisk
		echo "$output"
		[ "$status" -eq 0 ]
		[ "$(provider_pid)" != "$prev" ]
		# the client goes on with the new process
		wait_until 60 sh -c "[ \$(grep -c '^round' '$SCMT/pattern.out') -gt $((rounds + 2)) ]"
		! grep -q "^error" "$SCMT/pattern.out"
	done
	echo "$i restarts"
	wait $qio
	cat "$SCMT/qemu-io.out"
	[ "$(grep -c "^read 1048576/1048576 bytes" "$SCMT/qemu-io.out")" -eq 16 ]
	! grep -qi "fail\|error" "$SCMT/qemu-io.out"
	stop_ q
	convert_free "$D/q.vhdx" "$SCMT/qgot.raw"
	cmp "$SCMT/q.raw" "$SCMT/qgot.raw"
	touch "$SCMT/stop-pattern"
	wait_until 120 grep -q "^ok \|^error" "$SCMT/pattern.out"
	wait "$client"
	tail -3 "$SCMT/pattern.out"
	grep -q "^ok " "$SCMT/pattern.out"
	! grep -q "^error" "$SCMT/pattern.out"
	# the held connection was never closed, and reads on the new process
	# what the pattern client left: a new connection too
	touch "$SCMT/go"
	wait "$raw"
	cat "$SCMT/raw.out"
	[ "$(sed -n 3,4p "$SCMT/raw.out")" = "$(printf '%s\n' waiting \
		"read ok $(head -c 4096 "$SCMT/want.raw" | sha256sum | cut -d' ' -f1)")" ]
	run $RAW "$S" h read 0 4096
	[[ ${lines[1]} == "read ok "* ]]
	# the new process serves the adopted sockets (and its logs say so)
	! grep -q "not adopted" "$SCMT"/run/logs/vdisk.log*
	stop_ h
	convert_free "$D/h.vhdx" "$SCMT/got.raw"
	cmp "$SCMT/want.raw" "$SCMT/got.raw"
	"$V" check "$D/h.vhdx"
}

@test "nbdserve: a restart called off: the connection reads on in the old process; one the successor cannot adopt ends cleanly" {
	base_disk "$D/r.vhdx"
	"$V" convert -O raw "$D/r.vhdx" "$SCMT/r.raw"
	export_ writer r "$D/r.vhdx" --nbd "unix:$S"
	/usr/bin/python3 "$BATS_TEST_DIRNAME/nbd-pattern.py" "$URI" "$SCMT/r.raw" "$SCMT/want.raw" "$SCMT/stop-pattern" \
		>"$SCMT/pattern.out" 2>&1 3>&- &
	local client=$! old rounds
	wait_until 60 grep -q "^round 3$" "$SCMT/pattern.out"
	# a successor that refuses the state after adopting the disks: the
	# handover is called off, the old process reads the connection again
	old=$(provider_pid)
	rounds=$(grep -c "^round" "$SCMT/pattern.out")
	run "$SCMCTL" service restart vdisk --exec "$(hooked SCM_VDISK_RESTORE_FAIL=1)"
	echo "$output"
	[ "$status" -ne 0 ]
	[ "$(provider_pid)" = "$old" ]
	wait_until 60 sh -c "[ \$(grep -c '^round' '$SCMT/pattern.out') -gt $((rounds + 2)) ]"
	touch "$SCMT/stop-pattern"
	wait_until 120 grep -q "^ok \|^error" "$SCMT/pattern.out"
	wait "$client"
	grep -q "^ok " "$SCMT/pattern.out"
	# a successor that takes over but cannot adopt the connection: the
	# client sees its connection end (no hang), the export serves anew
	$RAW "$S" r read 0 4096 hold >"$SCMT/raw.out" 2>&1 3>&- < <(bare sleep 600) &
	HOLDS="${HOLDS:-} $!"
	wait_until 60 grep -q "^held" "$SCMT/raw.out"
	run "$SCMCTL" service restart vdisk --exec "$(hooked SCM_VDISK_NBD_NOADOPT=1)"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(provider_pid)" != "$old" ]
	wait_until 60 grep -q "^closed" "$SCMT/raw.out"
	grep -q "not adopted (refused" "$SCMT"/run/logs/vdisk.log*
	run $RAW "$S" r read 0 4096
	[[ ${lines[1]} == "read ok "* ]]
	stop_ r
	convert_free "$D/r.vhdx" "$SCMT/got.raw"
	cmp "$SCMT/want.raw" "$SCMT/got.raw"
	"$V" check "$D/r.vhdx"
}

@test "nbdserve: a grant with nbd_serve and read but not write: a write gets EPERM, the disk is unchanged" {
	base_disk "$D/nw.vhdx"
	sum=$(sha256sum <"$D/nw.vhdx")
	# the handle is read-write (the grant allows such an open), the
	# connection is not: write is not among the grant's methods
	export_ nowrite nw "$D/nw.vhdx" --nbd "unix:$S"
	run $RAW "$S" nw write 0 4096 write $((1 << 20)) 512 read 0 4096
	echo "$output"
	[ "${lines[1]}" = "write error 1" ]
	[ "${lines[2]}" = "write error 1" ]
	[[ ${lines[3]} == "read ok "* ]]
	run nbdsh -u "$URI" -c 'h.trim(1 << 20, 0)'
	[ "$status" -ne 0 ]
	stop_ nw
	[ "$(sha256sum <"$D/nw.vhdx")" = "$sum" ]
}

# What the handshake advertises is what the grant allows (nbd_serve's
# results): a client such as qemu or nbdcopy sees a read-only export, or
# one without trim, instead of meeting EPERM; a raw client that sends
# them anyway still gets EPERM and the file does not change.
@test "nbdserve: the handshake advertises what the grant allows; refused commands sent anyway change no byte" {
	base_disk "$D/fw.vhdx"
	base_disk "$D/fn.vhdx"
	base_disk "$D/ft.vhdx"
	export_ writer fw "$D/fw.vhdx" --nbd "unix:$SCMT/fw.sock"
	run nbd_flags "$URI"
	echo "$output"
	[ "$output" = "$(printf '%s\n' 'is_read_only false' 'can_flush true' 'can_fua true' 'can_trim true' \
		'can_zero true' 'can_multi_conn true' 'contexts base:allocation')" ]
	# no write: read-only, no trim, zero or FUA; flush and block status stay
	sum=$(sha256sum <"$D/fn.vhdx")
	export_ nowrite fn "$D/fn.vhdx" --nbd "unix:$SCMT/fn.sock"
	run nbd_flags "$URI"
	echo "$output"
	[ "$output" = "$(printf '%s\n' 'is_read_only true' 'can_flush true' 'can_fua false' 'can_trim false' \
		'can_zero false' 'can_multi_conn true' 'contexts base:allocation')" ]
	run $RAW "$SCMT/fn.sock" fn write 0 4096 fuawrite 0 4096 trim 0 $((1 << 20)) zero $((1 << 20)) 65536 \
		read 0 4096 flush 0 0
	echo "$output"
	[ "$(echo "$output" | tail -n +2 | sed 's/^read ok .*/read ok/')" = "$(printf '%s\n' 'write error 1' \
		'fuawrite error 1' 'trim error 1' 'zero error 1' 'read ok' 'flush ok')" ]
	# qemu-io reads the flags and refuses a write itself
	run qemu-io -f raw -c 'write -P 0x11 0 64k' "$URI"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"can't open device"*"Permission denied"* ]]
	stop_ fn
	[ "$(sha256sum <"$D/fn.vhdx")" = "$sum" ]
	# no trim, no extents: writable, no TRIM, no base:allocation (block
	# status asked for anyway: refused)
	sum=$(sha256sum <"$D/ft.vhdx")
	export_ notrim ft "$D/ft.vhdx" --nbd "unix:$SCMT/ft.sock"
	run nbd_flags "$URI"
	echo "$output"
	[ "$output" = "$(printf '%s\n' 'is_read_only false' 'can_flush true' 'can_fua true' 'can_trim false' \
		'can_zero true' 'can_multi_conn true' 'contexts none')" ]
	run nbdinfo --map "$URI"
	[ "$status" -ne 0 ]
	run $RAW "$SCMT/ft.sock" ft trim 0 $((1 << 20)) trim $((40 << 20)) $((1 << 20)) read 0 4096
	echo "$output"
	[ "${lines[1]}" = "trim error 1" ]
	[ "${lines[2]}" = "trim error 1" ]
	[[ ${lines[3]} == "read ok "* ]]
	stop_ ft
	[ "$(sha256sum <"$D/ft.vhdx")" = "$sum" ]
	# and the writes the notrim grant allows do land: zero through nbdsh
	export_ notrim ft "$D/ft.vhdx" --nbd "unix:$SCMT/ft.sock"
	nbdsh -u "$URI" -c 'h.zero(1 << 20, 0)' -c 'h.flush()'
	stop_ ft
	"$V" convert -O raw "$D/ft.vhdx" "$SCMT/ft.raw"
	cmp -n $((1 << 20)) "$SCMT/ft.raw" /dev/zero
}

# A handover's pause bounds what the client makes it wait (5 s), not the
# disk: a reader in a slow read of its own (7 s here, a test hook; scmd
# gives the quiesce 10 s) when the restart comes is let finish, its reply
# sent, and the connection goes on in the new process.
@test "nbdserve: a restart during a slow disk read carries the connection: the read answered, the next one on the new process" {
	base_disk "$D/sl.vhdx"
	"$V" convert -O raw "$D/sl.vhdx" "$SCMT/sl.raw"
	want512=$(head -c 512 "$SCMT/sl.raw" | sha256sum | cut -d' ' -f1)
	want4k=$(head -c 4096 "$SCMT/sl.raw" | sha256sum | cut -d' ' -f1)
	export_ writer sl "$D/sl.vhdx" --nbd "unix:$S"
	run "$SCMCTL" service restart vdisk --exec "$(hooked SCM_VDISK_NBD_SLOW_READ_MS=7000)"
	[ "$status" -eq 0 ]
	slow=$(provider_pid)
	$RAW "$S" sl read 0 512 wait "$SCMT/go" read 0 4096 >"$SCMT/raw.out" 2>&1 3>&- &
	local client=$!
	BG="${BG:-} $client"
	wait_until 60 grep -q "a slow read (test hook)" "$SCMT"/run/logs/vdisk.log*
	run "$SCMCTL" service restart vdisk
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(provider_pid)" != "$slow" ]
	touch "$SCMT/go"
	wait "$client"
	cat "$SCMT/raw.out"
	[ "$(sed -n 2,4p "$SCMT/raw.out")" = "$(printf '%s\n' "read ok $want512" waiting "read ok $want4k")" ]
	! grep -q "pause wait" "$SCMT"/run/logs/vdisk.log*
	! grep -q "not adopted" "$SCMT"/run/logs/vdisk.log*
}

# ... nor a reader that holds a whole request and waits for room in flight
# (64 requests): the first of 65 writes takes 7 s (test hook), the other
# 63 in flight wait behind it, the 65th waits for a slot when the restart
# comes. All are answered, and the connection reads on in the new process.
@test "nbdserve: a restart while the window of 64 requests is full behind a slow write carries the connection" {
	base_disk "$D/wi.vhdx"
	export_ writer wi "$D/wi.vhdx" --nbd "unix:$S"
	run "$SCMCTL" service restart vdisk --exec "$(hooked SCM_VDISK_NBD_SLOW_WRITE_MS=7000)"
	[ "$status" -eq 0 ]
	slow=$(provider_pid)
	$RAW "$S" wi pipeline 65 512 wait "$SCMT/go" read 0 4096 >"$SCMT/raw.out" 2>&1 3>&- &
	local client=$!
	BG="${BG:-} $client"
	wait_until 60 grep -q "a slow write (test hook)" "$SCMT"/run/logs/vdisk.log*
	run "$SCMCTL" service restart vdisk
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(provider_pid)" != "$slow" ]
	touch "$SCMT/go"
	wait "$client"
	cat "$SCMT/raw.out"
	want=$(head -c 4096 /dev/zero | tr '\0' '\356' | sha256sum | cut -d' ' -f1)
	[ "$(sed -n 2,4p "$SCMT/raw.out")" = "$(printf '%s\n' "pipeline ok 65" waiting "read ok $want")" ]
	! grep -q "pause wait" "$SCMT"/run/logs/vdisk.log*
	! grep -q "not adopted" "$SCMT"/run/logs/vdisk.log*
	stop_ wi
	"$V" check "$D/wi.vhdx"
}

# NBD sockets take the room the state has left after the channels' and
# disks' fds (SCM_HANDOVER_FDS_MAX; lowered here by a test hook): the
# connections past it end cleanly, the restart goes on, the others are
# carried and read on the new process.
@test "nbdserve: NBD connections past the state's fd budget end cleanly; the restart goes on with the others" {
	base_disk "$D/bu.vhdx"
	"$V" convert -O raw "$D/bu.vhdx" "$SCMT/bu.raw"
	want=$(head -c 4096 "$SCMT/bu.raw" | sha256sum | cut -d' ' -f1)
	export_ writer bu "$D/bu.vhdx" --nbd "unix:$S"
	run "$SCMCTL" service restart vdisk --exec "$(hooked SCM_VDISK_NBD_HANDOVER_FDS=1)"
	[ "$status" -eq 0 ]
	local old i pids=()
	old=$(provider_pid)
	for i in 1 2 3; do
		$RAW "$S" bu read 0 4096 wait "$SCMT/go" read 0 4096 >"$SCMT/raw$i.out" 2>&1 3>&- &
		pids+=($!)
		BG="${BG:-} $!"
	done
	for i in 1 2 3; do wait_until 60 grep -q "^waiting" "$SCMT/raw$i.out"; done
	run "$SCMCTL" service restart vdisk
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(provider_pid)" != "$old" ]
	grep -q "room for 1 NBD sockets .*: 2 of 3 NBD connections ended" "$SCMT"/run/logs/vdisk.log*
	touch "$SCMT/go"
	for i in 0 1 2; do wait "${pids[$i]}"; done
	cat "$SCMT"/raw?.out
	[ "$(cat "$SCMT"/raw?.out | grep -c "^closed$")" -eq 2 ]
	[ "$(cat "$SCMT"/raw?.out | grep -c "^read ok $want$")" -eq 4 ]
	run $RAW "$S" bu read 0 4096
	[ "${lines[1]}" = "read ok $want" ]
}

# FUA is a flush of the handle: on any command it needs flush, trim and
# write zeroes included (they were let through without it)
@test "nbdserve: FUA without the flush grant gets EPERM on write, trim and write zeroes; the file is unchanged" {
	base_disk "$D/fu.vhdx"
	sum=$(sha256sum <"$D/fu.vhdx")
	export_ noflush fu "$D/fu.vhdx" --nbd "unix:$S"
	run nbd_flags "$URI"
	echo "$output"
	[ "$output" = "$(printf '%s\n' 'is_read_only false' 'can_flush false' 'can_fua false' 'can_trim true' \
		'can_zero true' 'can_multi_conn true' 'contexts base:allocation')" ]
	run $RAW "$S" fu fuatrim 0 $((1 << 20)) fuazero $((1 << 20)) 65536 fuawrite 0 4096 flush 0 0 read 0 4096
	echo "$output"
	[ "$(echo "$output" | tail -n +2 | sed 's/^read ok .*/read ok/')" = "$(printf '%s\n' 'fuatrim error 1' \
		'fuazero error 1' 'fuawrite error 1' 'flush error 1' 'read ok')" ]
	stop_ fu
	[ "$(sha256sum <"$D/fu.vhdx")" = "$sum" ]
	# without FUA the same grant trims and writes zeroes
	export_ noflush fu "$D/fu.vhdx" --nbd "unix:$S"
	run $RAW "$S" fu trim 0 $((1 << 20)) zero $((1 << 20)) 65536
	echo "$output"
	[ "${lines[1]}" = "trim ok" ]
	[ "${lines[2]}" = "zero ok" ]
	stop_ fu
	"$V" convert -O raw "$D/fu.vhdx" "$SCMT/fu.raw"
	cmp -n $(((1 << 20) + 65536)) "$SCMT/fu.raw" /dev/zero
}

@test "nbdserve: a client that never reads its replies stalls no other client; stopping its export does not hang" {
	base_disk "$D/fl.vhdx"
	base_disk "$D/ok.vhdx"
	export_ writer fl "$D/fl.vhdx" --nbd "unix:$S"
	export_ writer ok "$D/ok.vhdx" --nbd "unix:$SCMT/ok.sock"
	# 64 rounds of write, 4 MiB read, flush, none of the replies read:
	# far more than the socket buffers hold, many done by the pool
	$RAW "$S" fl flood 64 $((4 << 20)) >"$SCMT/flood.out" 2>&1 < <(bare sleep 600) &
	HOLDS="${HOLDS:-} $!"
	wait_until 60 grep -q "^flooded" "$SCMT/flood.out"
	# another client, another disk: its writes and reads complete
	for i in 1 2 3 4 5 6 7 8; do
		run timeout 30 $RAW "$SCMT/ok.sock" ok write $((i << 20)) 65536 read $((i << 20)) 65536 flush 0 0
		echo "$output"
		[ "${lines[1]}" = "write ok" ]
		[[ ${lines[2]} == "read ok "* ]]
	done
	# ending the flooded export's connection (its handle closes) does not
	# wait for the client: the export stops, the provider answers others
	run timeout 45 "$V" export --stop fl
	echo "$output"
	[ "$status" -eq 0 ]
	wait_until 60 grep -q "^closed" "$SCMT/flood.out"
	run timeout 30 $RAW "$SCMT/ok.sock" ok read 0 4096
	[[ ${lines[1]} == "read ok "* ]]
	stop_ ok
	"$V" check "$D/ok.vhdx"
}

@test "nbdserve: a client gets at most 16 served connections across its exports" {
	base_disk "$D/c1.vhdx"
	base_disk "$D/c2.vhdx"
	export_ reader c1 "$D/c1.vhdx" --readonly --nbd "unix:$S"
	export_ reader c2 "$D/c2.vhdx" --readonly --nbd "unix:$SCMT/c2.sock"
	local i
	for i in $(seq 1 16); do
		if [ "$i" -le 10 ]; then sock=$S name=c1; else sock=$SCMT/c2.sock name=c2; fi
		$RAW "$sock" $name read 0 4096 hold >"$SCMT/hold.$i" 2>&1 < <(bare sleep 600) &
		HOLDS="${HOLDS:-} $!"
	done
	for i in $(seq 1 16); do wait_until 60 grep -q "^read ok" "$SCMT/hold.$i"; done
	# the 17th, on either export, is refused; the writer (another client) is served
	run $RAW "$SCMT/c2.sock" c2 read 0 4096
	echo "$output"
	[[ $output != *"read ok"* ]]
	[[ $output == *"NBD connections are served for this client already"* ]]
	base_disk "$D/w.vhdx"
	export_ writer w "$D/w.vhdx" --nbd "unix:$SCMT/w.sock"
	run $RAW "$SCMT/w.sock" w read 0 4096
	[[ ${lines[1]} == "read ok "* ]]
	# one ends: a new one is served again
	kill ${HOLDS##* }
	wait_until 60 sh -c "$RAW $SCMT/c2.sock c2 read 0 4096 | grep -q 'read ok'"
}

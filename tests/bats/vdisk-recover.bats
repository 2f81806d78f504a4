#!/usr/bin/env bats
# The vdisk provider's channels back after a crash (docs/handover.md, "A
# provider that crashes"): with "recover": true, the provider checkpoints
# each channel's handles (disk path, rw, shared) and data buffer; SIGKILLed
# while a client writes patterns, a new process opens the disks again by
# path beneath the channel's grant (the log replayed) and the client goes
# on writing on its same channel and handles: only the call in progress at
# the crash fails (provider-gone), it is done again, and every flushed
# write is in the disk.
load helpers
load vdisk

# the cluster example's profiles (shareable disks), its directory turned
# into ours
pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	for p in "$SCM_SRC"/examples/cluster/cluster-*.json; do
		sed "s#/srv/disks/cluster#$SCMT/disks#g" "$p" >"$SCMT/cfg/profiles/$(basename "$p")"
	done
}

setup() {
	vdisk_setup --recover app hog hosta:cluster-node
}

teardown() {
	vdisk_teardown
}

recoveries() { "$SCMCTL" --json service show vdisk | grep -o '"recoveries": *[0-9]*' | grep -o '[0-9]*$'; }
recovered() { [ "$(recoveries)" = "$1" ]; }
taken_at_least() { [ "$("$SCMCTL" --json service show vdisk | grep -o '"taken": *[0-9]*' | grep -o '[0-9]*$')" -ge "$1" ]; }
reads_at_least() { [ "$(grep -c . "$SCMT/reads")" -ge "$1" ]; }
# oks_after N M: at least M whole reads right after the first N lines
oks_after() { [ "$(tail -n +$(($1 + 1)) "$SCMT/reads" | grep -c '^ok$')" -ge "$2" ]; }
ck_fds_at_least() { [ "$("$SCMCTL" --json service show vdisk | jq '[.. | objects | .checkpoint? | objects | .fds] | max')" -ge "$1" ]; }

@test "kill -9 while a client writes patterns: it goes on on the same handles, and every flushed write is there" {
	"$V" create --size 32M --block-size 1M "$D/a.vhdx"
	head -c 4M /dev/urandom | "$V" write --offset 0 "$D/a.vhdx"
	"$V" create --size 8M "$D/b.vhdx"
	head -c 512 /dev/urandom | "$V" write --offset 0 "$D/b.vhdx"
	"$V" convert -O raw "$D/a.vhdx" "$SCMT/expected"
	rm -f "$SCMT/stop"
	VDISK_PATTERN_RETRY=1 VDISK_PATTERN_ALSO="$D/b.vhdx" \
		"$C" --endpoint "$(ep app)" pattern "$D/a.vhdx" "$SCMT/expected" 0 "$SCMT/stop" >"$SCMT/writer.out" 2>&1 &
	WRITER=$!
	BG="$WRITER"
	wait_until 60 test -s "$SCMT/expected.pending"
	old=$(provider_pid)
	# its checkpoint names both handles (the opens sent one before replying)
	"$SCMCTL" --json service show vdisk | grep -q '"held": *true'
	kill -9 "$old"
	t=$(date +%s%N)
	wait_until 60 recovered 1
	new=$(provider_pid)
	[ "$new" != "$old" ]
	# the writer goes on with the new process, and the disk is locked by it
	wait_until 60 wrote_since "$t"
	locked "$D/a.vhdx"
	touch "$SCMT/stop"
	wait "$WRITER"
	BG=
	cat "$SCMT/writer.out"
	grep -q "^wrote [1-9]" "$SCMT/writer.out"
	grep -q "^retried [0-3]$" "$SCMT/writer.out"
	grep -q "channel [0-9]* recovered after a crash: 2 of 2 handles opened again" "$SCMT"/run/logs/vdisk.log
	grep -q "service 'vdisk' recovered its channels: pid $old crashed, pid $new took 1 channels over" "$SCMT/scmd.log"
	echo "# $(sed -n 's/.*recovered its channels: .*checkpoint of \([0-9]* bytes, [0-9]* fds\), in \([0-9]*\) us/\1, ready \2 us after the crash was reaped/p' "$SCMT/scmd.log"); $(tr '\n' ' ' <"$SCMT/writer.out")" >&3
	# every acknowledged write is in the disk, once the provider let it go
	wait_until 60 "$V" convert -O raw "$D/a.vhdx" "$SCMT/got.raw"
	cmp "$SCMT/expected" "$SCMT/got.raw"
	qemu-img check "$D/a.vhdx"
}

# One engine handle per disk, shared by its channels: a reader's channel
# made after a writer's on the same disk (its open made nothing new). scmd
# hands the channels back newest first, so after the crash the reader's
# handle is opened again first, read-only; the writer's must still come
# back (the disk opened read-write then, as a live open does), and its
# writes must land in the disk, where the reader sees them.
@test "kill -9 with a writer's and then a reader's channel on one disk: both handles come back, the writes land" {
	"$V" create --size 8M "$D/s.vhdx"
	mkfifo "$SCMT/w.in" "$SCMT/r.in"
	"$C" --endpoint "$(ep hosta)" pr "$D/s.vhdx" write 0 4096 0x11 -- wait -- write 0 4096 0x22 -- check 0 4096 \
		<"$SCMT/w.in" >"$SCMT/w.out" 2>&1 &
	W=$!
	BG="$W"
	exec 7>"$SCMT/w.in"
	wait_until 60 grep -q waiting "$SCMT/w.out"
	"$C" --endpoint "$(ep hosta)" pr "$D/s.vhdx" --ro check 0 4096 -- wait -- check 0 4096 \
		<"$SCMT/r.in" >"$SCMT/r.out" 2>&1 7>&- &
	R=$!
	BG="$BG $R"
	exec 8>"$SCMT/r.in"
	wait_until 60 grep -q waiting "$SCMT/r.out"
	grep -q "byte 0x11" "$SCMT/r.out"
	# the checkpoint of the second open went out (one per open)
	wait_until 60 taken_at_least 2
	old=$(provider_pid)
	kill -9 "$old"
	wait_until 60 recovered 1
	cat "$SCMT"/run/logs/vdisk.log
	[ "$(grep -c "recovered after a crash: 1 of 1 handles opened again" "$SCMT"/run/logs/vdisk.log)" -eq 2 ]
	# the writer writes on its handle, the reader reads it on its own
	echo go >&7
	exec 7>&-
	wait "$W" || { cat "$SCMT/w.out"; false; }
	cat "$SCMT/w.out"
	[ "$(tail -1 "$SCMT/w.out")" = "byte 0x22" ]
	echo go >&8
	exec 8>&-
	wait "$R" || { cat "$SCMT/r.out"; false; }
	cat "$SCMT/r.out"
	[ "$(tail -1 "$SCMT/r.out")" = "byte 0x22" ]
	BG=
	# in the disk, once the provider let it go: 4 KiB of 0x22
	wait_until 60 "$V" convert -O raw "$D/s.vhdx" "$SCMT/s.raw"
	[ "$(head -c 4096 "$SCMT/s.raw" | tr -d '\042' | wc -c)" -eq 0 ]
	[ "$(head -c 8192 "$SCMT/s.raw" | tail -c 4096 | tr -d '\000' | wc -c)" -eq 0 ]
	qemu-img check "$D/s.vhdx"
}

# The NBD export through nbdkit (--nbdkit) reads through the provider's
# read ring (docs/vdisk.md "The read ring"); the ring is in the checkpoint,
# and the new process marks it stopped and hands back the reads the dead
# one left, so the export goes on
# with calls on the same channel instead of waiting for a ring nobody
# serves. A read cut by the crash may fail (EIO); none returns wrong bytes.
@test "kill -9 under an NBD export reading through its ring: the export goes on with calls, every byte right" {
	export SCM_EXPORT_DIR=$SCMT/exports
	"$V" create --size 16M --block-size 1M "$D/r.vhdx"
	head -c 16M /dev/urandom >"$SCMT/r.raw"
	"$V" write "$D/r.vhdx" <"$SCMT/r.raw"
	run "$V" export --endpoint "$(ep app)" --detach --nbdkit --name rr --readonly "$D/r.vhdx" --nbd "unix:$SCMT/rr.sock"
	echo "$output"
	[ "$status" -eq 0 ]
	pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$SCM_EXPORT_DIR/rr.json")
	read_all() { # N: one whole read of the export, compared
		if timeout 60 nbdcopy --request-size=65536 "nbd+unix:///rr?socket=$SCMT/rr.sock" "$SCMT/got$1.raw"; then
			cmp -s "$SCMT/r.raw" "$SCMT/got$1.raw" && echo ok || echo bad
		else
			echo failed
		fi
		rm -f "$SCMT/got$1.raw"
	}
	read_all 0 >"$SCMT/reads"
	[ "$(cat "$SCMT/reads")" = ok ]
	grep -q "vdisk-ring" "/proc/$pid/maps"
	( for i in $(seq 1 400); do [ -e "$SCMT/stop" ] && break; read_all "$i"; done >>"$SCMT/reads" ) < <(bare true) &
	BG=$!
	wait_until 60 reads_at_least 3
	old=$(provider_pid)
	kill -9 "$old"
	wait_until 60 recovered 1
	n=$(grep -c . "$SCMT/reads")
	# whole reads after the recovery, through the same export
	wait_until 120 oks_after $((n + 1)) 2
	touch "$SCMT/stop"
	wait "$BG"
	BG=
	sort "$SCMT/reads" | uniq -c
	! grep -q bad "$SCMT/reads"
	kill -0 "$pid"
	grep -q "ring\|recovered after a crash: 1 of 1" "$SCMT"/run/logs/vdisk.log
	"$V" export --stop rr
}

# The checkpoint holds 256 fds. A client that opens channels by the
# hundred (each a data buffer) gets its share of them, not all: an older
# client's channel (an NBD export's lane, newer channels are saved first)
# is still in it and goes on after the crash.
@test "kill -9 after another client opened 300 channels: an older export's channel is still recovered" {
	export SCM_EXPORT_DIR=$SCMT/exports
	"$V" create --size 4M --block-size 1M "$D/h.vhdx"
	head -c 4M /dev/urandom >"$SCMT/h.raw"
	"$V" write "$D/h.vhdx" <"$SCMT/h.raw"
	run "$V" export --endpoint "$(ep app)" --detach --nbdkit --name hh --readonly --lanes 1 "$D/h.vhdx" --nbd "unix:$SCMT/hh.sock"
	echo "$output"
	[ "$status" -eq 0 ]
	timeout 60 nbdcopy "nbd+unix:///hh?socket=$SCMT/hh.sock" "$SCMT/got.raw"
	cmp "$SCMT/h.raw" "$SCMT/got.raw"
	rm -f "$SCMT/hog.in"
	mkfifo "$SCMT/hog.in"
	"$C" --endpoint "$(ep hog)" channels "$D/h.vhdx" 300 <"$SCMT/hog.in" >"$SCMT/hog.out" 2>&1 &
	BG=$!
	exec 8>"$SCMT/hog.in"
	wait_until 120 grep -q "^channels" "$SCMT/hog.out"
	cat "$SCMT/hog.out"
	grep -q "^channels 300$" "$SCMT/hog.out"
	# the checkpoint scmd holds has the hog's channels in it (as many as
	# it may: 64 fds, and the export's 2)
	wait_until 60 ck_fds_at_least 66
	old=$(provider_pid)
	kill -9 "$old"
	wait_until 60 recovered 1
	# the export's channel and handle came back: a whole read through it
	rm -f "$SCMT/got.raw"
	timeout 60 nbdcopy "nbd+unix:///hh?socket=$SCMT/hh.sock" "$SCMT/got.raw"
	cmp "$SCMT/h.raw" "$SCMT/got.raw"
	grep -q "recovered after a crash: 1 of 1 handles opened again" "$SCMT"/run/logs/vdisk.log
	grep -q "of hog (uid [0-9]*) left out of the checkpoint: its client has its share" "$SCMT"/run/logs/vdisk.log
	exec 8>&-
	wait "$BG" || true
	BG=
	"$V" export --stop hh
}

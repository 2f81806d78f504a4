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

setup() {
	start_scmd
	V=$SCM_BUILD/bin/scm-vdisk
	C=$SCM_BUILD/libexec/vdisk-client
	D=$SCMT/disks
	mkdir -p "$D"
	cat >"$SCMT/vdisk.json" <<JSON
{ "name": "vdisk", "interface": "vdisk", "exec": ["$SCM_BUILD/libexec/scm-vdisk-provider"],
  "allow": ["app"], "recover": true }
JSON
	"$SCMCTL" service register "$SCMT/vdisk.json" >/dev/null
	"$SCMCTL" endpoint create app >/dev/null
}

teardown() {
	for p in ${BG:-}; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	stop_scmd_sanitized "$SCMT"/run/logs/vdisk.log*
}

provider_pid() { "$SCMCTL" service list | awk '$1 == "vdisk" { print $4 }'; }
recoveries() { "$SCMCTL" --json service show vdisk | grep -o '"recoveries": *[0-9]*' | grep -o '[0-9]*$'; }
wrote_since() { [ "$(stat -c %.9Y "$SCMT/expected.pending" | tr -d .)" -gt "$1" ]; }
locked() { ! qemu-io -f vhdx -c 'write 0 512' "$1" >/dev/null 2>&1; }

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
	wait_until 60 test "$(recoveries)" = 1
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

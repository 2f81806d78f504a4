#!/usr/bin/env bats
# libscm's deferred replies and call timeouts, end to end: a private scmd,
# real providers, real clients. The vdisk provider runs disk work on worker
# threads with deferred replies, so one client's flush of a large dirty
# disk does not hold up another client's reads of another disk; a
# synchronous call to a provider that does not answer ends with a timeout
# error naming the service and the method.
load helpers
load vdisk

setup() {
	vdisk_start
}

teardown() {
	stop_scmd
}

@test "vdisk: a client's reads of one disk are not held up by another client's flush of a large dirty disk" {
	vdisk_register app
	"$V" create --size 2G "$D/a.vhdx"
	"$V" create --size 64M "$D/b.vhdx"
	head -c 64M /dev/urandom >"$SCMT/b.raw"
	"$C" --endpoint "$(ep app)" copy-in "$D/b.vhdx" "$SCMT/b.raw"
	# A writes 1.5 GiB (page cache) and flushes it; B reads 4 KiB of b.vhdx
	# again and again meanwhile. On a provider that serves every disk on
	# its loop, the read that arrives during the flush waits for all of it
	# (b_max_ms about flush_ms, a read or two in all).
	run "$C" --endpoint "$(ep app)" flush-latency "$D/a.vhdx" "$D/b.vhdx" 1536
	echo "$output"
	[ "$status" -eq 0 ]
	flush=$(sed -n 's/.*flush_ms=\([0-9.]*\).*/\1/p' <<<"$output")
	bmax=$(sed -n 's/.*b_max_ms=\([0-9.]*\).*/\1/p' <<<"$output")
	bp50=$(sed -n 's/.*b_p50_ms=\([0-9.]*\).*/\1/p' <<<"$output")
	reads=$(sed -n 's/.*reads=\([0-9]*\).*/\1/p' <<<"$output")
	# the flush must be long enough to tell the two apart
	awk -v f="$flush" 'BEGIN { exit !(f >= 100) }' || skip "the flush took only $flush ms on this storage"
	# B kept going during the flush (the old provider: one read, which
	# waited for all of it), its typical read is far below the flush time,
	# and not even its slowest waited for most of it. The slowest is held
	# to less than the others: on a loaded 2-CPU machine B's process alone
	# may wait hundreds of ms for a CPU.
	[ "$reads" -ge 20 ]
	awk -v f="$flush" -v b="$bp50" 'BEGIN { exit !(b * 20 < f) }'
	awk -v f="$flush" -v b="$bmax" 'BEGIN { exit !(b < 0.75 * f) }'
	# and A's data is all there
	"$V" check "$D/a.vhdx"
}

@test "vdisk: writes then a read on the same disk see each other through the queue" {
	vdisk_register app
	"$V" create --size 32M --block-size 1M "$D/o.vhdx"
	head -c 32M /dev/urandom >"$SCMT/in.raw"
	# writev in 4 KiB extents and reads back through readv: many jobs on
	# one disk queue, answered out of the loop, in order
	"$C" --endpoint "$(ep app)" vcopy-in "$D/o.vhdx" "$SCMT/in.raw"
	"$C" --endpoint "$(ep app)" vcopy-out "$D/o.vhdx" "$SCMT/out.raw"
	cmp "$SCMT/in.raw" "$SCMT/out.raw"
}

@test "call timeout: a provider that does not answer gives a timeout error naming service, method and time" {
	"$SCMCTL" service register "$(manifest slow)"
	"$SCMCTL" endpoint create demo >/dev/null
	t0=$(date +%s%N)
	SCM_CALL_TIMEOUT_MS=400 run "$SCMCTL" call --endpoint demo slow sleep '{"ms":20000}'
	t1=$(date +%s%N)
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"echo.sleep"* ]]
	[[ $output == *"service 'slow'"* ]]
	[[ $output == *"400 ms"* ]]
	[[ $output == *"timeout"* ]]
	ms=$(( (t1 - t0) / 1000000 ))
	echo "took $ms ms"
	[ "$ms" -ge 390 ] && [ "$ms" -lt 5000 ]
}

@test "vdisk: a client that leaves with a flush and a read in progress cancels them cleanly" {
	vdisk_register app
	"$V" create --size 1G "$D/c.vhdx"
	# the flush of 512 MiB is still running on a worker when the channel
	# ends: the provider must finish it, drop the replies, free the
	# channel only then, and go on serving
	run "$C" --endpoint "$(ep app)" write-flush-exit "$D/c.vhdx" 512
	[ "$status" -eq 0 ]
	[ "$output" = sent ]
	run "$C" --endpoint "$(ep app)" info "$D/c.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *'"type":"dynamic"'* ]]
	# the data the client wrote before leaving is on the disk, whole
	"$C" --endpoint "$(ep app)" copy-out "$D/c.vhdx" "$SCMT/c.raw"
	head -c 512M "$SCMT/c.raw" | cmp - <(head -c 512M /dev/zero | tr '\0' '\245')
	"$V" check "$D/c.vhdx"
	# one provider process served all of it: started once, never failed
	"$SCMCTL" --json service show vdisk | python3 -c 'import json,sys
s=json.load(sys.stdin); s=s.get("service", s)
print({k: s[k] for k in ("pid", "activations", "failures")}); assert s["activations"] == 1 and s["failures"] == 0 and s["pid"] > 0'
}
